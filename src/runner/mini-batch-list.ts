// This node's mini-batches as the partition cut them, held as columns of numbers (41 bytes a
// mini-batch) rather than as objects: a million mini-batches take about 40 MB and no hidden
// classes. A mini-batch becomes an object (one shape per kind) only when it is handed out
// (`at()`), and that object is dropped once the mini-batch has its final status.
import { miniBatchId, type FilesMiniBatch, type MiniBatch, type TabularMiniBatch } from './partition.js';
import type { TabularFormat } from './tabular.js';

const FILES = 0;
const TABULAR = 1;
/** Any other kind: kept as the object it was given (unreadable inputs, rare). */
const OBJECT = 2;

/** A mini-batch before the partition numbers it (for each kind of the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'index' | 'id'> : never;

/** Inputs of the partition that tabular mini-batches point into (their `ref`). */
interface TabularFile {
  readonly file: string;
  readonly format: TabularFormat;
  header: readonly string[] | undefined;
}

export class MiniBatchList implements Iterable<MiniBatch> {
  private n = 0;
  private capacity = 0;
  private kind = new Uint8Array(0);
  /** files: index of the first path in `paths`; tabular: index in `tabularFiles`; object: index in `objects`. */
  private ref = new Uint32Array(0);
  private items = new Uint32Array(0);
  /** tabular: start, end, firstRow, firstLine (byte offsets and counts beyond 2^32 stay exact as doubles). */
  private nums = new Float64Array(0);
  private readonly tabularFiles: TabularFile[] = [];
  private readonly objects: MiniBatch[] = [];
  /** Local indexes of the mini-batches that could not be read (kept as objects). */
  readonly unreadable: number[] = [];

  /**
   * `paths`: the listed input files that files mini-batches are slices of. Global index of local
   * mini-batch i: i × nodeCount + nodeRank (node r keeps every nodeCount-th, see partition.ts).
   */
  constructor(
    private readonly paths: readonly string[],
    private readonly nodeCount = 1,
    private readonly nodeRank = 0,
  ) {}

  get length(): number {
    return this.n;
  }

  /** The global index of local mini-batch `i`. */
  indexOf(i: number): number {
    return i * this.nodeCount + this.nodeRank;
  }

  /** paths[first, first + count) */
  addFiles(first: number, count: number): void {
    this.slot(FILES, first, count);
  }

  /** A tabular file whose mini-batches follow (addTabular); returns its reference. */
  tabularFile(file: string, format: TabularFormat): number {
    this.tabularFiles.push({ file, format, header: undefined });
    return this.tabularFiles.length - 1;
  }

  /** The CSV header of a tabular file, once read (every mini-batch of the file carries it). */
  setHeader(ref: number, header: readonly string[] | undefined): void {
    this.tabularFiles[ref]!.header = header;
  }

  addTabular(ref: number, start: number, end: number, firstRow: number, firstLine: number, items: number): void {
    const i = this.slot(TABULAR, ref, items);
    const o = 4 * i;
    this.nums[o] = start;
    this.nums[o + 1] = end;
    this.nums[o + 2] = firstRow;
    this.nums[o + 3] = firstLine;
  }

  /** A mini-batch of another kind, kept as it is (an unreadable input). */
  addObject(mb: Unnumbered<MiniBatch>): void {
    const i = this.slot(OBJECT, this.objects.length, mb.items);
    const index = this.indexOf(i);
    this.objects.push({ ...mb, index, id: miniBatchId(index) } as MiniBatch);
    if (mb.kind === 'unreadable') this.unreadable.push(i);
  }

  /** Forget the mini-batches from local index `length` on (a file that failed halfway is one unreadable mini-batch instead). */
  truncate(length: number): void {
    while (this.n > length) {
      this.n--;
      if (this.kind[this.n] === OBJECT) {
        this.objects.pop();
        if (this.unreadable[this.unreadable.length - 1] === this.n) this.unreadable.pop();
      }
    }
  }

  /** Local mini-batch `i` as an object (a fresh one each call). */
  at(i: number): MiniBatch {
    const index = this.indexOf(i);
    const ref = this.ref[i]!;
    const items = this.items[i]!;
    switch (this.kind[i]) {
      case FILES:
        return filesMiniBatch(index, items, this.paths.slice(ref, ref + items));
      case TABULAR: {
        const f = this.tabularFiles[ref]!;
        const o = 4 * i;
        return tabularMiniBatch(index, items, f, this.nums[o]!, this.nums[o + 1]!, this.nums[o + 2]!, this.nums[o + 3]!);
      }
      default:
        return this.objects[ref]!;
    }
  }

  /** Whether local mini-batch `i` can go to a worker (not an unreadable input). */
  runnable(i: number): boolean {
    return this.kind[i] !== OBJECT || this.objects[this.ref[i]!]!.kind !== 'unreadable';
  }

  *[Symbol.iterator](): Iterator<MiniBatch> {
    for (let i = 0; i < this.n; i++) yield this.at(i);
  }

  private slot(kind: number, ref: number, items: number): number {
    if (this.n === this.capacity) this.grow();
    const i = this.n++;
    this.kind[i] = kind;
    this.ref[i] = ref;
    this.items[i] = items;
    return i;
  }

  private grow(): void {
    const capacity = Math.max(1024, this.capacity * 2);
    const kind = new Uint8Array(capacity);
    kind.set(this.kind);
    const ref = new Uint32Array(capacity);
    ref.set(this.ref);
    const items = new Uint32Array(capacity);
    items.set(this.items);
    const nums = new Float64Array(4 * capacity);
    nums.set(this.nums);
    this.kind = kind;
    this.ref = ref;
    this.items = items;
    this.nums = nums;
    this.capacity = capacity;
  }
}

// One literal shape per kind, properties always in the same order: every mini-batch object of a
// kind shares one hidden class (a spread such as `{ ...mb, index, id }` would give each its own).
function filesMiniBatch(index: number, items: number, files: readonly string[]): FilesMiniBatch {
  return { kind: 'files', index, id: miniBatchId(index), items, files };
}

function tabularMiniBatch(index: number, items: number, f: TabularFile, start: number, end: number, firstRow: number, firstLine: number): TabularMiniBatch {
  return { kind: 'tabular', index, id: miniBatchId(index), items, file: f.file, format: f.format, start, end, firstRow, firstLine, header: f.header };
}
