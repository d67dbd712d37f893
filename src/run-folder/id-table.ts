// The one structure of the reader that grows with the mini-batches: every mini-batch id seen, as a
// 64-bit hash and a byte of flags (9 bytes a slot, at most half full: 9–18 bytes an id, 18 MB for a
// million). It counts the distinct mini-batches and finds the ones seen twice (a re-run into the
// same folder). Two ids with the same 64-bit hash would count as one: for a million ids the chance
// is about 3 in 10^8.

const USED = 0x80;

/** FNV-1a over the UTF-16 code units, and a second, differently mixed 32-bit hash. */
function hashes(id: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, fmix(b ^ id.length)];
}

/** MurmurHash3's finaliser: every bit of the input moves every bit of the output. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class IdTable {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private flags: Uint8Array;
  private mask: number;
  private used = 0;

  constructor(capacity = 1024) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.hi = new Uint32Array(size);
    this.lo = new Uint32Array(size);
    this.flags = new Uint8Array(size);
    this.mask = size - 1;
  }

  /** Distinct ids seen. */
  get size(): number {
    return this.used;
  }

  /** The slot of `id`, taken when it is new (then its flags are 0). */
  slot(id: string): number {
    const [h, l] = hashes(id);
    let i = fmix(h ^ l) & this.mask;
    for (;;) {
      const f = this.flags[i]!;
      if (f === 0) break;
      if (this.hi[i] === h && this.lo[i] === l) return i;
      i = (i + 1) & this.mask;
    }
    if ((this.used + 1) * 2 > this.mask + 1) {
      this.grow();
      return this.slot(id);
    }
    this.hi[i] = h;
    this.lo[i] = l;
    this.flags[i] = USED;
    this.used++;
    return i;
  }

  /** The flags of a slot (the caller's bits: 1 to 0x40). */
  flagsAt(slot: number): number {
    return this.flags[slot]! & ~USED;
  }

  addFlags(slot: number, flags: number): void {
    this.flags[slot] = this.flags[slot]! | flags;
  }

  private grow(): void {
    const { hi, lo, flags } = this;
    const size = flags.length * 2;
    this.hi = new Uint32Array(size);
    this.lo = new Uint32Array(size);
    this.flags = new Uint8Array(size);
    this.mask = size - 1;
    for (let j = 0; j < flags.length; j++) {
      if (flags[j] === 0) continue;
      let i = fmix(hi[j]! ^ lo[j]!) & this.mask;
      while (this.flags[i] !== 0) i = (i + 1) & this.mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.flags[i] = flags[j]!;
    }
  }
}
