// The one structure of the reader that grows with the mini-batches: every mini-batch id seen, as a
// 64-bit hash and its flags (12 bytes a slot, at most half full: 12–24 bytes an id, 25 MB for a
// million). It counts the distinct mini-batches, tells a mini-batch's later attempts from its
// first, and finds the ones reported twice (a re-run into the same folder). Two ids with the same
// 64-bit hash would count as one: for a million ids the chance is about 3 in 10^8.
// The runner's ids (`mb-00042`, miniBatchId()) are numbers in all but name: theirs are flags in an
// array by that number (4 bytes an id, read in order as the files are), not hashed slots (a
// random probe into 25 MB, a cache miss an id, was most of the time a million spans took here).

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

/** Ids numbered past this are hashed (the flags of dense ids stay under 64 MB). */
const DENSE_MAX = 1 << 24;

/** The number of a runner's mini-batch id (`mb-` and five digits, or more without a leading zero, as miniBatchId() writes it); -1 for any other id. */
function denseIndex(id: string): number {
  const digits = id.length - 3;
  if (digits < 5 || digits > 8 || id.charCodeAt(0) !== 0x6d /* m */ || id.charCodeAt(1) !== 0x62 /* b */ || id.charCodeAt(2) !== 0x2d /* - */) return -1;
  if (digits > 5 && id.charCodeAt(3) === 0x30) return -1; // mb-042000 is not miniBatchId(42000)
  let n = 0;
  for (let i = 3; i < id.length; i++) {
    const d = id.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n < DENSE_MAX ? n : -1;
}

export class IdTable {
  /** Three words a slot: the two hashes and the flags (one cache line for a probe). */
  private words: Uint32Array;
  private mask: number;
  private used = 0;
  /** The flags of the dense ids, by number: their slots are -1 - number. */
  private dense = new Uint32Array(1024);

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
    const n = denseIndex(id);
    if (n >= 0) {
      if (n >= this.dense.length) this.growDense(n);
      if (this.dense[n] === 0) {
        this.dense[n] = USED;
        this.used++;
      }
      return -1 - n;
    }
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
    return ((slot < 0 ? this.dense[-1 - slot]! : this.words[slot * 3 + 2]!) & ~USED) >>> 0;
  }

  addFlags(slot: number, flags: number): void {
    if (slot < 0) this.dense[-1 - slot] = this.dense[-1 - slot]! | flags;
    else this.words[slot * 3 + 2] = this.words[slot * 3 + 2]! | flags;
  }

  private growDense(n: number): void {
    let size = this.dense.length;
    while (size <= n) size *= 2;
    const d = new Uint32Array(Math.min(size, DENSE_MAX));
    d.set(this.dense);
    this.dense = d;
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
