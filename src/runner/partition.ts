// Partitioning: list the input, cut it into mini-batches, and take this node's share.
// Every node computes the same global list (sorted paths, the same sizes), so mini-batch ids are
// global and node r takes the mini-batches whose index i has i % node_count === r: several nodes
// cover one input exactly once, and their run folders merge without id clashes. The share is held
// as columns (mini-batch-list.ts): a million mini-batches cost about 40 MB and a fraction of a second.
// The cut streams: it runs in slices of a few milliseconds on the event loop, and what it has cut
// is handed out while it cuts the rest (PartitionCut), so the first mini-batch never waits for the
// last; the totals are final once it ends. partition_keys (which needs every row of the input
// before it can group them) and files inputs cut in one go.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { globToRegExp, RunnerConfigError, type ResolvedRunConfig } from './config.js';
import { MiniBatchList } from './mini-batch-list.js';
import { errnoText } from '../util/errno-text.js';
import { cutByPartitionKeys } from './partition-keys.js';
import type { KeyedTask, TabularTask } from './protocol.js';
import { scanCsvUnits, scanJsonLines, tabularFormat, TABULAR_EXTENSIONS, type Pause, type TabularFormat } from './tabular.js';

interface MiniBatchBase {
  /** Global index over all nodes. */
  readonly index: number;
  /** `mb-00042`. */
  readonly id: string;
  /** Input items in the mini-batch. */
  readonly items: number;
}

export interface FilesMiniBatch extends MiniBatchBase {
  readonly kind: 'files';
  readonly files: readonly string[];
}

/** A tabular mini-batch is exactly the task a worker gets for it, plus the bookkeeping fields. */
export interface TabularMiniBatch extends MiniBatchBase, TabularTask {}

/** The rows that share the values of the partition_keys columns (see partition-keys.ts). */
export interface KeyedMiniBatch extends MiniBatchBase, KeyedTask {
  /** The key values as JSON (`{"store":"1001"}`): the attempt span's `mini_batch.partition_keys` and the reports'. */
  readonly keysText: string;
}

/** An input that could not be read while partitioning: one failed item, never sent to a worker. */
export interface UnreadableMiniBatch extends MiniBatchBase {
  readonly kind: 'unreadable';
  readonly file: string;
  readonly reason: string;
}

export type MiniBatch = FilesMiniBatch | TabularMiniBatch | KeyedMiniBatch | UnreadableMiniBatch;

export interface Partition {
  /** This node's mini-batches, in order (as columns: a mini-batch is an object only once handed out). */
  readonly miniBatches: MiniBatchList;
  /** Mini-batches over all nodes (so far, until `final`). */
  readonly totalMiniBatches: number;
  /** Input files over all nodes. */
  readonly totalFiles: number;
  /** Items in this node's share (so far, until `final`). */
  readonly items: number;
  /** The cut has ended: the list and the totals are final. */
  readonly final: boolean;
  /** This node's mini-batches that can be handed out (cut and published): all of them once final. */
  readonly ready: number;
}

/** The cut hands out what it has after slices of this long (a chunk of input at least). */
const SLICE_MS = 8;

/**
 * A partition being cut: `miniBatches` grows in slices, between which the event loop runs (the
 * scheduler hands out what is there); `onGrow` hears of each slice and of the end. Everything
 * cut in a slice is published at its end, together: nothing is seen half made.
 */
export class PartitionCut implements Partition {
  miniBatches!: MiniBatchList;
  totalMiniBatches = 0;
  totalFiles = 0;
  items = 0;
  final = false;
  /** Resolves once the first slice is published (or the cut ended); rejects with a configuration error. */
  readonly first: Promise<void>;
  /** Resolves when the cut has ended (the totals are final). */
  readonly done: Promise<void>;
  /** Called after each published slice and at the end. */
  onGrow: (() => void) | undefined;
  /** Epoch ms when the cut began (the partition span's start). */
  readonly startedAt = Date.now();
  /** Epoch ms when it ended. */
  endedAt = 0;
  /** Milliseconds spent cutting (from the start to the end less the waits between slices). */
  busyMs = 0;
  /** What was published last: the local length, the global index and the items then. */
  published = { length: 0, index: 0, items: 0 };

  get ready(): number {
    return this.final ? this.miniBatches.length : this.published.length;
  }

  private firstSeen!: () => void;
  private sliceStart = performance.now();
  private hurried = false;
  /** The first slice was published. */
  private begun = false;
  /** What the next slice waits for (holdUntil), and what releases it early (finish). */
  private gate: Promise<void> | undefined;
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  /**
   * `firstCount`: the first slice ends once this many mini-batches a worker can run are cut (one for
   * each worker; unreadable inputs go to none), however long that takes: the step loads once each
   * worker's first attempt has an outcome (early-start.ts), and the slices after the first wait for it.
   */
  constructor(
    run: (cut: PartitionCut) => Promise<void>,
    private readonly firstCount = 1,
  ) {
    let failFirst!: (error: unknown) => void;
    this.first = new Promise<void>((resolve, reject) => {
      this.firstSeen = resolve;
      failFirst = reject;
    });
    this.done = run(this).then(
      () => {
        this.busyMs += performance.now() - this.sliceStart;
        this.endedAt = Date.now();
        this.final = true;
        this.firstSeen();
        this.onGrow?.();
      },
      (error: unknown) => {
        failFirst(error);
        throw error;
      },
    );
    // the failure is the awaiter's to report (the cut may begin before anything awaits it: cli.ts)
    this.first.catch(() => {});
    this.done.catch(() => {});
  }

  /** Between two records: publishes the slice and yields to the event loop once it has taken SLICE_MS (the first: once it has cut enough). */
  readonly pause: Pause = () => {
    if (this.hurried) return undefined;
    // the first slice lasts until there is a mini-batch for every worker; the others SLICE_MS
    if (!this.begun ? this.miniBatches.length - this.miniBatches.unreadable.length < this.firstCount : performance.now() - this.sliceStart < SLICE_MS) return undefined;
    this.begun = true;
    this.publish();
    return this.nextSlice();
  };

  /** The slices wait for `until` (what holds the cores or this process's event loop first: cli.ts, run.ts); a later call adds to it. */
  holdUntil(until: Promise<unknown>): void {
    this.gate = Promise.race([until, this.released]).then(
      () => {},
      () => {},
    );
  }

  /** After a turn of the event loop, and once what holds the slices let them go (what it let go first runs first, and may hold them again). */
  private async nextSlice(): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const gate = this.gate;
      if (gate === undefined) break;
      await gate;
      if (this.gate === gate) this.gate = undefined;
    }
    this.sliceStart = performance.now();
  }

  /** Cut the rest without yielding (the job ended first: its files need the totals); resolves at the end. */
  finish(): Promise<void> {
    this.hurried = true;
    this.release();
    return this.done;
  }

  private publish(): void {
    this.busyMs += performance.now() - this.sliceStart;
    this.published = { length: this.miniBatches.length, index: this.totalMiniBatches, items: this.items };
    this.firstSeen();
    this.onGrow?.();
  }
}

export function miniBatchId(index: number): string {
  return `mb-${String(index).padStart(5, '0')}`;
}

/** The input files in a stable order: each input as given, folders walked recursively, sorted by name. */
export function listInputFiles(inputs: readonly string[], pattern: string | undefined): string[] {
  const re = pattern === undefined ? undefined : globToRegExp(pattern);
  const matchBase = pattern !== undefined && !pattern.includes('/');
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    out.push(file);
  };
  for (const input of inputs) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(input);
    } catch {
      stat = undefined; // a dangling link: an item that will fail with its reason
    }
    if (!stat?.isDirectory()) {
      add(input);
      continue;
    }
    const walk = (dir: string, rel: string): void => {
      const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        const abs = path.join(dir, entry.name);
        const relPath = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          walk(abs, relPath);
          continue;
        }
        if (re && !re.test(matchBase ? entry.name : relPath)) continue;
        add(abs);
      }
    };
    walk(input, '');
  }
  return out;
}

/**
 * Cut the input into mini-batches and keep this node's share, in slices (see PartitionCut). Throws
 * RunnerConfigError (through `first`) for a tabular input of unknown type. `files`: the input as
 * listInputFiles() listed it already (a queue's leader, for the input's identity); else it is listed here.
 */
export function startPartition(config: ResolvedRunConfig, files?: readonly string[]): PartitionCut {
  return new PartitionCut((cut) => cutInput(config, cut, files), config.processCountPerNode);
}

/** The whole partition at once (tests; the runner's own paths use startPartition). */
export async function partition(config: ResolvedRunConfig): Promise<Partition> {
  const cut = startPartition(config);
  await cut.done;
  return cut;
}

async function cutInput(config: ResolvedRunConfig, cut: PartitionCut, listed: readonly string[] | undefined): Promise<void> {
  const files = listed ?? listInputFiles(config.inputs, config.inputPattern);
  const { nodeCount, nodeRank } = config;
  const mine = new MiniBatchList(files, nodeCount, nodeRank);
  cut.miniBatches = mine;
  cut.totalFiles = files.length;
  /** Global index of the next mini-batch (cut.totalMiniBatches): node r keeps those with index % node_count === r. */
  const ours = (): boolean => cut.totalMiniBatches++ % nodeCount === nodeRank;
  /** A mini-batch kept as the object it is (an unreadable input, a keyed group of rows). */
  const push = (mb: Parameters<MiniBatchList['addObject']>[0]): void => {
    if (!ours()) return;
    mine.addObject(mb);
    cut.items += mb.items;
  };

  if (config.inputType === 'files') {
    for (let i = 0; i < files.length; i += config.miniBatchSize) {
      const count = Math.min(config.miniBatchSize, files.length - i);
      if (!ours()) continue;
      mine.addFiles(i, count);
      cut.items += count;
    }
    return;
  }
  const unknown = files.filter((f) => tabularFormat(f) === undefined);
  if (unknown.length > 0) {
    throw new RunnerConfigError([
      {
        field: 'input',
        source: 'input',
        expected: `tabular files (${Object.keys(TABULAR_EXTENSIONS).join(', ')}) for input_type tabular; use input_pattern to pick them`,
        got: `${unknown.length} other file(s), e.g. ${unknown.slice(0, 3).join(', ')}`,
      },
    ]);
  }
  const unreadable = (file: string, reason: string): void => push({ kind: 'unreadable', file, reason, items: 1 });
  if (config.partitionKeys.length > 0) {
    for (const mb of await cutByPartitionKeys(files, config.partitionKeys, (file, error) => unreadable(file, errnoText(error)))) push(mb);
    return;
  }
  for (const file of files) {
    const format = tabularFormat(file)!;
    const ref = mine.tabularFile(file, format);
    const before = { index: cut.totalMiniBatches, items: cut.items, length: mine.length };
    try {
      await cutTabularFile(
        file,
        format,
        config.miniBatchSize,
        (start, end, firstRow, firstLine, n) => {
          if (!ours()) return;
          mine.addTabular(ref, start, end, firstRow, firstLine, n);
          cut.items += n;
        },
        { pause: cut.pause, onHeader: (header) => mine.setHeader(ref, header) },
      );
    } catch (error) {
      // a file that cannot be read to its end is one unreadable mini-batch instead of its cuts so
      // far; those already handed out (a read error halfway through a file, after a slice) stay,
      // and the rest of the file is the unreadable one
      const p = cut.published;
      const handedOut = p.index > before.index;
      const back = handedOut ? p : before;
      cut.totalMiniBatches = back.index;
      cut.items = back.items;
      mine.truncate(back.length);
      unreadable(file, handedOut ? `${errnoText(error)} (after its first ${mine.length - before.length} mini-batches on this node were cut: they stand)` : errnoText(error));
    }
  }
}

/**
 * Mini-batches of at most `size` bytes (at least one record each) within one file, given to `emit`
 * in order: bytes [start, end), the first row (0-based) and line (1-based), the items. CSV/TSV: a
 * malformed record (csv-parse cannot read it) goes with the record after it, one item more that
 * the worker fails with its line; the first record is the header, returned (undefined for JSON
 * Lines). Throws when the file cannot be read.
 */
export async function cutTabularFile(
  file: string,
  format: TabularFormat,
  size: number,
  emit: (start: number, end: number, firstRow: number, firstLine: number, items: number) => void,
  opts: {
    /** Only these rows (--input-failed): a row left out ends the mini-batch. */
    readonly keep?: (row: number) => boolean;
    /** Between records: may yield to the event loop (see PartitionCut). */
    readonly pause?: Pause;
    /** A CSV/TSV header, as soon as it is read (before the file's first mini-batch). */
    readonly onHeader?: (header: string[]) => void;
  } = {},
): Promise<string[] | undefined> {
  const { keep, pause } = opts;
  let header: string[] | undefined;
  let start = -1;
  let end = 0;
  let rows = 0;
  let firstRow = 0;
  let firstLine = 1;
  let row = 0;
  const close = (): void => {
    if (rows > 0) emit(start, end, firstRow, firstLine, rows);
    rows = 0;
    start = -1;
  };
  /** Records [s, e) starting on `line`, `n` items. */
  const add = (s: number, e: number, line: number, n: number): void => {
    if (keep && !keep(row)) {
      // only the rows asked for (--input-failed): a gap ends the mini-batch
      close();
      row += n;
      return;
    }
    if (rows > 0 && e - start > size) close();
    if (rows === 0) {
      start = s;
      firstRow = row;
      firstLine = line;
    }
    end = e;
    rows += n;
    row += n;
  };
  if (format === 'jsonl') {
    await scanJsonLines(file, (s, e, line) => add(s, e, line, 1), pause);
    close();
    return undefined;
  }
  header = await scanCsvUnits(file, format, opts.onHeader ?? (() => {}), (_fields, s, e, line, n) => add(s, e, line, n), pause);
  close();
  return header;
}
