// The one structure of the reader that grows with the mini-batches: every mini-batch id seen, as a
// 64-bit hash and its flags (12 bytes a slot, at most half full: 12–24 bytes an id, 25 MB for a
// million). It counts the distinct mini-batches, tells a mini-batch's later attempts from its
// first, and finds the ones reported twice (a re-run into the same folder). Two ids with the same
// 64-bit hash would count as one: for a million ids the chance is about 3 in 10^8.

/** Set in every slot in use (the caller's flags are the bits below it). */
const USED = 0x80000000;

// the two hashes of the last id, without an allocation per call
let h1 = 0;
let h2 = 0;

/** FNV-1a over the UTF-16 code units, and a second, differently mixed 32-bit hash. */
function hash(id: string): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  h1 = a >>> 0;
  h2 = fmix(b ^ id.length);
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
  /** Three words a slot: the two hashes and the flags (one cache line for a probe). */
  private words: Uint32Array;
  private mask: number;
  private used = 0;

  constructor(capacity = 1024) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.words = new Uint32Array(size * 3);
    this.mask = size - 1;
  }

  /** Distinct ids seen. */
  get size(): number {
    return this.used;
  }

  /** The slot of `id`, taken when it is new (then its flags are 0). */
  slot(id: string): number {
    hash(id);
    const w = this.words;
    let i = fmix(h1 ^ h2) & this.mask;
    for (;;) {
      const at = i * 3;
      if (w[at + 2] === 0) break;
      if (w[at] === h1 && w[at + 1] === h2) return i;
      i = (i + 1) & this.mask;
    }
    if ((this.used + 1) * 2 > this.mask + 1) {
      this.grow();
      return this.slot(id);
    }
    w[i * 3] = h1;
    w[i * 3 + 1] = h2;
    w[i * 3 + 2] = USED;
    this.used++;
    return i;
  }

  /** The flags of a slot (the caller's bits: 1 to 2^30). */
  flagsAt(slot: number): number {
    return (this.words[slot * 3 + 2]! & ~USED) >>> 0;
  }

  addFlags(slot: number, flags: number): void {
    this.words[slot * 3 + 2] = this.words[slot * 3 + 2]! | flags;
  }

  private grow(): void {
    const old = this.words;
    const size = (this.mask + 1) * 2;
    const w = new Uint32Array(size * 3);
    this.mask = size - 1;
    for (let j = 0; j < old.length; j += 3) {
      if (old[j + 2] === 0) continue;
      let i = fmix(old[j]! ^ old[j + 1]!) & this.mask;
      while (w[i * 3 + 2] !== 0) i = (i + 1) & this.mask;
      w[i * 3] = old[j]!;
      w[i * 3 + 1] = old[j + 1]!;
      w[i * 3 + 2] = old[j + 2]!;
    }
    this.words = w;
  }
}
