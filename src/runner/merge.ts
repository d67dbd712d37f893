// The job's single set of files across the nodes of a shared queue or of the static split, in the
// step folder that holds the node-<rank> folders (written by the nodes of a queue as they end, or
// by `step-telemetry merge`, also for a job whose nodes died):
//   <output folder>/parallel_run_step.txt  the rows of every mini-batch once, in mini-batch order:
//                                           per mini-batch, the journal entry the queue's record
//                                           names (without the records: the first node's entry)
//   processed-mini-batches.csv              one row per mini-batch: that of the node that counted
//   failed-items.jsonl                      the failed items of the mini-batches that failed in the end
//   mini-batches.jsonl                      the job's mini-batches (one manifest of the nodes')
//   result.json                             the job: counts from the merged rows, status and cause
//                                           from the nodes' results (the queue's verdict first)
// A node's own output file may hold rows that do not count (a node lost before its commit, a
// mini-batch that had finished elsewhere); its output-journal.jsonl and the queue's record say
// which do. Every file is written whole and renamed, so merging again replaces it.
import fs from 'node:fs';
import path from 'node:path';
import { FAILED_ITEMS_FILE } from './failed-items-file.js';
import { JOURNAL_FILE, readJournal, type JournalEntry } from './output-journal.js';
import { miniBatchId } from './partition.js';
import { decodeRecord, recordCount } from './queue/job-state.js';
import { FILES, PROCESSED_COLUMNS, round3, writeAtomic } from './reports.js';
import type { ParallelRunErrorInfo, ParallelRunResult, ParallelRunStatus } from './types.js';

export interface MergeResult {
  readonly folder: string;
  readonly output?: string;
  readonly rows: number;
  readonly nodes: number;
  readonly status?: ParallelRunStatus;
  readonly error?: string;
}

export interface MergeOptions {
  /** The queue's record of every mini-batch: which run counts (without: the first node's journal entry). */
  readonly records?: Buffer;
  /** The queue's address as shown (for a job none of whose nodes wrote result.json). */
  readonly queue?: string;
}

/** Causes that a queue's nodes share (the job's verdict), or that fail a static split's job. */
const JOB_WIDE = new Set(['ThresholdExceeded', 'InitFailure', 'ProgressTimeout']);
const STATUS = PROCESSED_COLUMNS.indexOf('status');
const SUCCEEDED = PROCESSED_COLUMNS.indexOf('succeeded_items');
const FAILED = PROCESSED_COLUMNS.indexOf('failed_items');

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function lines(file: string): string[] {
  return (readText(file) ?? '').split('\n').filter((l) => l.trim() !== '');
}

function parse<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined; // torn: written as its process died
  }
}

/** Merge the node folders under `stepFolder` into the job's files beside them. */
export function mergeJob(stepFolder: string, options: MergeOptions = {}): MergeResult {
  try {
    return merge(stepFolder, options);
  } catch (error) {
    return { folder: stepFolder, rows: 0, nodes: 0, error: (error as Error).message };
  }
}

interface NodeFolder {
  readonly folder: string;
  readonly rank: number;
  readonly result: ParallelRunResult | undefined;
  /** From step.json, for a node that wrote no result.json (epoch ms). */
  readonly started?: number;
  readonly entries: JournalEntry[];
  /** Writer id → the output file its entries point into (a node restarted in its folder has several). */
  readonly outputs: Map<number, string>;
}

function readNode(stepFolder: string, name: string): NodeFolder {
  const folder = path.join(stepFolder, name);
  const result = parse<ParallelRunResult>(readText(path.join(folder, FILES.result)) ?? '');
  const step = parse<{ started?: string }>(readText(path.join(folder, 'step.json')) ?? '');
  const outputs = new Map<number, string>();
  for (const line of lines(path.join(folder, JOURNAL_FILE))) {
    const h = line.includes('"output":') ? parse<{ w: number; output: string }>(line) : undefined;
    if (h) outputs.set(h.w, h.output);
  }
  if (result?.output_file && outputs.size === 0) outputs.set(1, result.output_file);
  return { folder, rank: Number(name.slice(5)), result, started: step?.started ? Date.parse(step.started) : undefined, entries: readJournal(path.join(folder, JOURNAL_FILE)), outputs };
}

/** What became of one mini-batch in the job. */
interface Fate {
  readonly ok: boolean;
  readonly succeeded: number;
  readonly failed: number;
}

function merge(stepFolder: string, options: MergeOptions): MergeResult {
  const { records } = options;
  const nodes = fs
    .readdirSync(stepFolder)
    .filter((n) => /^node-\d+$/.test(n))
    .map((n) => readNode(stepFolder, n))
    .sort((a, b) => a.rank - b.rank);
  if (nodes.length === 0) throw new Error(`${stepFolder} holds no node-<rank> folders`);

  // the job's mini-batches and their items: the nodes' manifests (a queue's are the same job's)
  const manifests = nodes.map((n) => path.join(n.folder, FILES.manifest)).filter((f) => fs.existsSync(f));
  const totals = new Map<string, number>();
  const manifest: string[] = [];
  for (const line of manifests.flatMap(lines)) {
    const m = parse<{ mini_batch_id: string; items: number }>(line);
    if (!m || totals.has(m.mini_batch_id)) continue;
    totals.set(m.mini_batch_id, m.items);
    manifest.push(line);
  }

  // which rows count: per mini-batch one journal entry (the queue's record decides; else the first seen)
  const counted = new Map<number, { node: NodeFolder; e: JournalEntry }>();
  for (const node of nodes) {
    for (const e of node.entries) {
      if (records) {
        const r = decodeRecord(records, e.i);
        if (!r || r.failed || r.writer !== e.w || r.seq !== e.s) continue;
      } else if (counted.has(e.i)) continue;
      counted.set(e.i, { node, e });
    }
  }
  const { output, rows } = mergeOutput(nodes, counted);

  // each mini-batch's fate, and the folder whose rows of it count (of its counted entry, else of the writer its record names)
  const fates = new Map<string, Fate>();
  const countedFolder = new Map<string, string>();
  for (const { node, e } of counted.values()) {
    fates.set(e.mb, { ok: true, succeeded: e.ok, failed: e.f });
    countedFolder.set(e.mb, node.folder);
  }
  const folderOfWriter = new Map<number, NodeFolder>();
  for (const n of nodes) for (const w of n.outputs.keys()) folderOfWriter.set(w, n);
  for (let i = 0; records && i < recordCount(records); i++) {
    const r = decodeRecord(records, i);
    if (!r?.failed) continue;
    const id = miniBatchId(i);
    fates.set(id, { ok: false, succeeded: 0, failed: totals.get(id) ?? 0 });
    const node = folderOfWriter.get(r.writer);
    if (node) countedFolder.set(id, node.folder);
  }

  // processed rows: one per mini-batch, the counted node's, else a final one (not ABORTED), else any;
  // within one folder a later row is a later state (a node restarted or resumed in its folder)
  const processed = new Map<string, { cells: string[]; line: string; folder: string; rank: number }>();
  let header = '';
  for (const node of nodes) {
    const [h, ...rest] = lines(path.join(node.folder, FILES.processed));
    header ||= h ?? '';
    for (const line of rest) {
      const cells = line.split(',', STATUS + 1);
      const id = cells[0]!;
      const rank = (node.folder === countedFolder.get(id) ? 2 : 0) + (cells[STATUS] === 'ABORTED' ? 0 : 1);
      const had = processed.get(id);
      if (!had || rank > had.rank || (rank === had.rank && had.folder === node.folder)) processed.set(id, { cells, line, folder: node.folder, rank });
    }
  }
  if (header) writeAtomic(path.join(stepFolder, FILES.processed), `${[header, ...[...processed.values()].map((p) => p.line)].join('\n')}\n`);
  if (!records) {
    // without the records, a final row that is not RUN_DONE and has no counted entry: the mini-batch failed
    for (const [id, p] of processed) {
      const status = p.cells[STATUS];
      if (!fates.has(id) && status !== 'ABORTED' && status !== 'RUN_DONE') fates.set(id, { ok: false, succeeded: Number(p.cells[SUCCEEDED]) || 0, failed: Number(p.cells[FAILED]) || 0 });
    }
  }

  // failed items: those of each mini-batch from the node whose row counts
  const failed: string[] = [];
  for (const node of nodes) {
    for (const line of lines(path.join(node.folder, FAILED_ITEMS_FILE))) {
      const id = parse<{ mini_batch_id: string }>(line)?.mini_batch_id;
      if (id !== undefined && processed.get(id)?.folder === node.folder) failed.push(line);
    }
  }
  writeAtomic(path.join(stepFolder, FAILED_ITEMS_FILE), failed.length ? `${failed.join('\n')}\n` : '');
  if (manifest.length > 0) writeAtomic(path.join(stepFolder, FILES.manifest), `${manifest.join('\n')}\n`);

  const result = jobResult({ stepFolder, nodes, fates, totals, output, rows, options });
  writeAtomic(path.join(stepFolder, FILES.result), `${JSON.stringify(result, null, 2)}\n`);
  return { folder: stepFolder, output, rows, nodes: nodes.length, status: result.status };
}

/** The job's output file: the counted rows, in mini-batch order. */
function mergeOutput(nodes: readonly NodeFolder[], counted: Map<number, { node: NodeFolder; e: JournalEntry }>): { output?: string; rows: number } {
  const anyOutput = nodes.flatMap((n) => [...n.outputs.values()])[0];
  if (!anyOutput) return { rows: 0 };
  const dir = path.dirname(anyOutput);
  const base = path.basename(anyOutput).replace(/\.node-\d+(\.[^.]*)?$/, '$1');
  const own = nodes.some((n) => [...n.outputs.values()].includes(path.join(dir, base)));
  const output = path.join(dir, own ? base.replace(/(\.[^.]*)?$/, '.merged$1') : base);
  const fds = new Map<string, number>();
  const tmp = `${output}.${process.pid}.tmp`;
  const out = fs.openSync(tmp, 'w');
  let rows = 0;
  try {
    for (const i of [...counted.keys()].sort((a, b) => a - b)) {
      const { node, e } = counted.get(i)!;
      const file = node.outputs.get(e.w);
      if (e.n === 0 || !file) continue;
      let fd = fds.get(file);
      if (fd === undefined) fds.set(file, (fd = fs.openSync(file, 'r')));
      const buf = Buffer.allocUnsafe(e.n);
      const got = fs.readSync(fd, buf, 0, e.n, e.o);
      fs.writeSync(out, buf, 0, got);
      rows += e.r;
    }
  } finally {
    fs.closeSync(out);
    for (const fd of fds.values()) fs.closeSync(fd);
  }
  fs.renameSync(tmp, output);
  return { output, rows };
}

/** The latest time a node folder was written to (for a node that never wrote its end). */
function lastWrite(folder: string): number {
  let t = 0;
  for (const n of fs.readdirSync(folder)) {
    try {
      t = Math.max(t, fs.statSync(path.join(folder, n)).mtimeMs);
    } catch {
      // gone meanwhile
    }
  }
  return t;
}

const endedAt = (n: NodeFolder): number => (n.result ? Date.parse(n.result.ended) : lastWrite(n.folder));

/**
 * The job's result.json. Counts come from each mini-batch's fate (its counted journal entry, its
 * record, its final processed row) and the manifests (the totals); the status and the cause from
 * the nodes' results: with a queue, the last node to end that speaks for the job (succeeded, or
 * with the job's verdict: a resumed job's nodes end after the verdict they cleared); in a static
 * split, a node's threshold first, succeeded when every node succeeded and every mini-batch has
 * its final status; else the first node that failed or was terminated, or (nodes lost with work
 * left) a WorkerCrash of type NodeLost.
 */
function jobResult(m: {
  stepFolder: string;
  nodes: readonly NodeFolder[];
  fates: ReadonlyMap<string, Fate>;
  totals: ReadonlyMap<string, number>;
  output: string | undefined;
  rows: number;
  options: MergeOptions;
}): { status: ParallelRunStatus } & Record<string, unknown> {
  const { nodes, fates, totals } = m;
  const ended = nodes.filter((n) => n.result).map((n) => ({ node: n, r: n.result! }));
  const any = ended[0]?.r;
  const queue = any?.queue ?? m.options.queue;
  let mbOk = 0;
  let itemsOk = 0;
  let itemsFailed = 0;
  for (const f of fates.values()) {
    if (f.ok) mbOk++;
    itemsOk += f.succeeded;
    itemsFailed += f.failed;
  }
  const mbFailed = fates.size - mbOk;
  let mbTotal = totals.size;
  let itemsTotal = [...totals.values()].reduce((a, b) => a + b, 0);
  if (mbTotal === 0 && any) {
    // no manifest: the nodes' totals (a queue's are the job's)
    mbTotal = queue ? any.mini_batches.total : ended.reduce((s, e) => s + e.r.mini_batches.total, 0);
    itemsTotal = queue ? any.items.total : ended.reduce((s, e) => s + e.r.items.total, 0);
  }
  const notProcessed = Math.max(0, mbTotal - fates.size);
  const failedNodes = ended.filter((e) => e.r.status !== 'succeeded');
  const jobWide = (r: ParallelRunResult): boolean => r.cause !== undefined && JOB_WIDE.has(r.cause.category);
  let decided: ParallelRunResult | undefined;
  if (queue) {
    // a queue's nodes speak for the job when they end succeeded or with its verdict; the last to end saw the most
    const speaking = ended.filter((e) => e.r.status === 'succeeded' || jobWide(e.r)).sort((a, b) => endedAt(a.node) - endedAt(b.node));
    const latest = speaking.at(-1)?.r;
    if (latest && (latest.status !== 'succeeded' || notProcessed === 0)) decided = latest;
  } else {
    decided = failedNodes.find((e) => jobWide(e.r))?.r ?? (any && notProcessed === 0 && failedNodes.length === 0 && ended.length === nodes.length ? any : undefined);
  }
  decided ??= failedNodes[0]?.r;
  const lost = nodes.filter((n) => !n.result).map((n) => path.basename(n.folder));
  const status: ParallelRunStatus = decided?.status ?? 'failed';
  const cause: ParallelRunErrorInfo | undefined = decided
    ? decided.cause
    : { category: 'WorkerCrash', type: 'NodeLost', message: `${lost.join(', ') || 'no node'} never ended (killed or lost), and ${notProcessed} of ${mbTotal} mini-batches were not processed` };
  const reason =
    status === 'succeeded'
      ? itemsFailed === 0
        ? `all ${itemsOk} items succeeded`
        : `${itemsOk} of ${itemsTotal} items succeeded, ${itemsFailed} failed within the thresholds`
      : (cause?.message ?? status);
  // retries, timeouts, restarts: a queue's results hold the job's (the last to end saw the most), a static split's their own
  const sum = (k: 'retries' | 'timeouts' | 'worker_restarts'): number => (queue ? Math.max(0, ...ended.map((e) => e.r[k] ?? 0)) : ended.reduce((s, e) => s + (e.r[k] ?? 0), 0));
  const starts = nodes.map((n) => (n.result ? Date.parse(n.result.started) : (n.started ?? NaN))).filter(Number.isFinite);
  const started = starts.length > 0 ? Math.min(...starts) : Date.now();
  const end = Math.max(started, ...nodes.map(endedAt));
  const last = ended.sort((a, b) => endedAt(a.node) - endedAt(b.node)).at(-1)?.r;
  return {
    status,
    exit_code: decided?.exit_code ?? 1,
    reason,
    cause,
    node_count: any?.node_count ?? nodes.length,
    started: new Date(started).toISOString(),
    ended: new Date(end).toISOString(),
    duration_seconds: round3((end - started) / 1000),
    mini_batches: { total: mbTotal, succeeded: mbOk, failed: mbFailed, not_processed: notProcessed },
    items: { total: itemsTotal, succeeded: itemsOk, failed: itemsFailed, not_processed: Math.max(0, itemsTotal - itemsOk - itemsFailed) },
    retries: sum('retries'),
    timeouts: sum('timeouts'),
    worker_restarts: sum('worker_restarts'),
    ...(last ? { thresholds: last.thresholds } : {}),
    ...(queue ? { queue } : {}),
    merged: {
      rows: m.rows,
      // which run of a mini-batch counts: the queue's records (exact), or the first node that journalled it
      counted_by: m.options.records ? 'queue' : 'journals',
      nodes: nodes.map((n) => ({ folder: n.folder, node_rank: n.rank, status: n.result?.status ?? 'lost', ...(n.result ? { node: n.result.node ?? pickCounts(n.result) } : {}) })),
    },
    run_folder: m.stepFolder,
    output_file: m.output,
    files: { result: path.join(m.stepFolder, FILES.result), processed: path.join(m.stepFolder, FILES.processed), failed_items: path.join(m.stepFolder, FAILED_ITEMS_FILE), manifest: path.join(m.stepFolder, FILES.manifest) },
    ...(last ? { config: { ...last.config, node_rank: undefined } } : {}),
  };
}

function pickCounts(r: ParallelRunResult): Pick<ParallelRunResult, 'mini_batches' | 'items' | 'retries' | 'timeouts' | 'worker_restarts'> {
  return { mini_batches: r.mini_batches, items: r.items, retries: r.retries, timeouts: r.timeouts, worker_restarts: r.worker_restarts };
}
