// The runner's files in the run folder, in the spirit of ParallelRunStep's logs:
//   processed-mini-batches.csv  one line per finished mini-batch (times picked, worker, items, status, error)
//   worker-summary.csv          one line per worker process
//   mini-batches.jsonl          which inputs each mini-batch holds (to map output rows back)
//   progress-overview.txt       rewritten while the job runs
//   result.json                 the outcome, counts and thresholds (what runParallel() returns)
//   error-summary.txt           the cause first, then errors by category and the failed items
// Every file is written atomically (rename) or appended line by line, so a stopped run leaves
// consistent files.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { closeQuietly } from '../util/fd.js';
import type { MiniBatchList } from './mini-batch-list.js';
import type { MiniBatch, Partition } from './partition.js';
import type { WorkerProcess } from './pool.js';
import { formatDuration, progressLine, rateAndEta, type ProgressSnapshot } from './progress.js';
import type { ParallelRunErrorCategory, ParallelRunErrorInfo, ParallelRunResult } from './types.js';

export const FILES = {
  processed: 'processed-mini-batches.csv',
  workers: 'worker-summary.csv',
  manifest: 'mini-batches.jsonl',
  overview: 'progress-overview.txt',
  result: 'result.json',
  errors: 'error-summary.txt',
} as const;

/** Final status of a mini-batch in the processed report. */
export type MiniBatchStatus = 'RUN_DONE' | 'RUN_EXCEPTION' | 'RUN_TIMEOUT' | 'PROCESS_CRASH' | 'INPUT_ERROR' | 'ABORTED';

export const PROCESSED_COLUMNS = [
  'mini_batch_id',
  'times_picked',
  'worker',
  'pid',
  'start_time',
  'end_time',
  'total_items',
  'succeeded_items',
  'failed_items',
  'elapsed_seconds',
  'run_method_seconds',
  'status',
  'error_category',
  'error_message',
  'partition_keys',
  'cpu_seconds',
  'rss_bytes',
  'heap_growth_bytes',
] as const;

export interface ProcessedRow {
  readonly mini_batch_id: string;
  readonly times_picked: number;
  readonly worker: string;
  readonly pid: number | string;
  /** Epoch ms (written as ISO 8601). */
  readonly start_time: number;
  readonly end_time: number;
  readonly total_items: number;
  readonly succeeded_items: number;
  readonly failed_items: number;
  readonly elapsed_seconds: number;
  readonly run_method_seconds: number;
  readonly status: MiniBatchStatus;
  readonly error_category: string;
  readonly error_message: string;
  /** With partition_keys: the key values of the mini-batch, as JSON. */
  readonly partition_keys?: string;
  /** What run() used in its last attempt, when its worker said: CPU seconds (user + system), RSS at the end and heap growth, bytes. */
  readonly cpu_seconds?: number;
  readonly rss_bytes?: number;
  readonly heap_growth_bytes?: number;
}

export function csvCell(value: unknown): string {
  const s = value === undefined || value === null ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Write a file whole: to a temporary name, then rename. Never throws; returns the error text. */
export function writeAtomic(file: string, text: string): string | undefined {
  const tmp = `${file}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Lines appended in batches (a timer and the end), each batch with one write. */
export class LineFile {
  private fd: number | undefined;
  private pending: string[] = [];

  constructor(readonly file: string, header?: string) {
    try {
      this.fd = fs.openSync(file, 'w');
      if (header !== undefined) fs.writeSync(this.fd, `${header}\n`);
    } catch {
      this.fd = undefined;
    }
  }

  append(line: string): void {
    if (this.fd === undefined) return;
    this.pending.push(line);
    if (this.pending.length >= 1024) this.flush();
  }

  flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    try {
      fs.writeSync(this.fd, text);
    } catch {
      // a full disk: the result file says so through the output error, the rest goes on
    }
  }

  close(): void {
    this.flush();
    this.fd = closeQuietly(this.fd);
  }
}

/** Rows are kept as objects and turned into CSV lines when written (a timer and the end), off the hot path. */
export class ProcessedReport {
  private readonly out: LineFile;
  private rows: ProcessedRow[] = [];
  private readonly startTime = new IsoCache();
  private readonly endTime = new IsoCache();

  /** `keep`: rows of an earlier run of this folder that still hold (a resumed run). */
  constructor(folder: string, keep: readonly string[] = []) {
    this.out = new LineFile(path.join(folder, FILES.processed), [PROCESSED_COLUMNS.join(','), ...keep].join('\n'));
  }

  add(row: ProcessedRow): void {
    this.rows.push(row);
    if (this.rows.length >= 4096) this.flush();
  }

  flush(): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    this.rows = [];
    for (const r of rows) {
      // PROCESSED_COLUMNS, in order; numbers need no quoting
      this.out.append(
        `${csvCell(r.mini_batch_id)},${r.times_picked},${csvCell(r.worker)},${csvCell(r.pid)},${this.startTime.iso(r.start_time)},${this.endTime.iso(r.end_time)},` +
          `${r.total_items},${r.succeeded_items},${r.failed_items},${r.elapsed_seconds},${r.run_method_seconds},${r.status},${csvCell(r.error_category)},${csvCell(r.error_message)},${csvCell(r.partition_keys)},` +
          `${r.cpu_seconds ?? ''},${r.rss_bytes ?? ''},${r.heap_growth_bytes ?? ''}`,
      );
    }
    this.out.flush();
  }

  close(): void {
    this.flush();
    this.out.close();
  }
}

/** ISO 8601 text of epoch ms, the last one remembered: rows finished in the same millisecond share it. */
class IsoCache {
  private ms = Number.NaN;
  private text = '';

  iso(epochMs: number): string {
    const ms = Math.trunc(epochMs);
    if (ms !== this.ms) {
      this.ms = ms;
      this.text = new Date(ms).toISOString();
    }
    return this.text;
  }
}

/** Mini-batches written to the manifest per slice, and the time a slice may take. */
const MANIFEST_SLICE = 512;
const MANIFEST_SLICE_MS = 4;

/**
 * mini-batches.jsonl: the inputs of every mini-batch of this node. Written a slice at a time
 * between the job's events (start()), so that a million mini-batches never hold up the first one
 * nor the workers; finish() writes what is left, at the end of the job.
 */
export class ManifestWriter {
  private readonly out: LineFile;
  private next = 0;
  private timer: NodeJS.Immediate | undefined;
  /** The last tabular file and its JSON text: its mini-batches follow one another. */
  private file = '';
  private fileJson = '""';

  private readonly list: MiniBatchList;

  /** `part`: the partition, maybe still being cut (start() again when it has cut more: its `ready` ones are written). */
  constructor(
    folder: string,
    private readonly part: Partition,
  ) {
    this.list = part.miniBatches;
    this.out = new LineFile(path.join(folder, FILES.manifest));
  }

  start(): void {
    this.timer ??= setImmediate(this.slice);
  }

  private readonly slice = (): void => {
    this.timer = undefined;
    const until = performance.now() + MANIFEST_SLICE_MS;
    do this.write(MANIFEST_SLICE);
    while (this.next < this.part.ready && performance.now() < until);
    if (this.next < this.part.ready) this.timer = setImmediate(this.slice);
    else this.out.flush();
  };

  /** The rest, now (the cut has ended); the file is complete and closed. */
  finish(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    this.write(this.part.ready - this.next);
    this.out.close();
  }

  private write(count: number): void {
    const end = Math.min(this.part.ready, this.next + count);
    for (; this.next < end; this.next++) this.out.append(this.line(this.list.at(this.next)));
  }

  private line(mb: MiniBatch): string {
    if (mb.kind === 'tabular') {
      if (mb.file !== this.file) {
        this.file = mb.file;
        this.fileJson = JSON.stringify(mb.file);
      }
      return `{"mini_batch_id":"${mb.id}","items":${mb.items},"file":${this.fileJson},"format":"${mb.format}","first_row":${mb.firstRow},"first_line":${mb.firstLine},"bytes":[${mb.start},${mb.end}]}`;
    }
    if (mb.kind === 'files') return JSON.stringify({ mini_batch_id: mb.id, items: mb.items, files: mb.files });
    if (mb.kind === 'keyed') return JSON.stringify({ mini_batch_id: mb.id, items: mb.items, partition_keys: mb.keys, files: mb.parts.map((p) => p.file) });
    return JSON.stringify({ mini_batch_id: mb.id, items: mb.items, file: mb.file, unreadable: mb.reason });
  }
}

export const WORKER_COLUMNS = [
  'worker',
  'process_index',
  'pid',
  'started',
  'ended',
  'end_reason',
  'exit',
  'init_seconds',
  'attempts',
  'failed_attempts',
  'items_succeeded',
  'items_failed',
  'busy_seconds',
  'utilization',
  'shutdown',
  'shutdown_seconds',
  'error',
] as const;

export function writeWorkerSummary(folder: string, workers: readonly WorkerProcess[], now: number): string | undefined {
  const lines = [WORKER_COLUMNS.join(',')];
  for (const w of workers) {
    const end = w.exitedAt ?? now;
    const life = Math.max(1, end - w.startedAt);
    const exit = w.exitedAt === undefined ? 'running' : w.exitSignal ? w.exitSignal : String(w.exitCode);
    lines.push(
      [
        w.name,
        w.processIndex,
        w.pid ?? '',
        new Date(w.startedAt).toISOString(),
        w.exitedAt === undefined ? '' : new Date(w.exitedAt).toISOString(),
        w.endReason ?? (w.exitedAt === undefined ? '' : 'exited'),
        exit,
        w.initMs === undefined ? '' : round3(w.initMs / 1000),
        w.attempts,
        w.failedAttempts,
        w.itemsSucceeded,
        w.itemsFailed,
        round3(w.busyMs / 1000),
        round3(w.busyMs / life),
        w.shutdown?.outcome ?? '',
        w.shutdown ? round3(w.shutdown.ms / 1000) : '',
        workerError(w),
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return writeAtomic(path.join(folder, FILES.workers), `${lines.join('\n')}\n`);
}

/** Why a worker's init() or shutdown() failed, in one line (the worker summary's `error`). */
function workerError(w: WorkerProcess): string {
  const e = w.initError?.error ?? w.shutdown?.error;
  return e ? oneLine(`${e.type}: ${e.message}`, 300) : '';
}

/** Errors seen during the run, by category, with the first example of each. */
export class ErrorLedger {
  readonly categories = new Map<ParallelRunErrorCategory, { attempts: number; items: number; first: ParallelRunErrorInfo }>();
  readonly failedItems: { item: string; mini_batch_id: string; category: ParallelRunErrorCategory; reason: string }[] = [];
  failedItemsDropped = 0;
  static readonly ITEM_LIMIT = 1000;

  /** A failed attempt (or an input problem) of a category. */
  attempt(info: ParallelRunErrorInfo): void {
    const entry = this.categories.get(info.category);
    if (entry) entry.attempts++;
    else this.categories.set(info.category, { attempts: 1, items: 0, first: info });
  }

  /** `count` failed items (one line in the list: a path, a row, or a description of several). */
  item(item: string, miniBatchId: string, category: ParallelRunErrorCategory, reason: string, count = 1): void {
    let entry = this.categories.get(category);
    if (!entry) {
      entry = { attempts: 0, items: 0, first: { category, message: `${item}: ${reason}`, mini_batch_id: miniBatchId } };
      this.categories.set(category, entry);
    }
    entry.items += count;
    if (this.failedItems.length < ErrorLedger.ITEM_LIMIT) this.failedItems.push({ item, mini_batch_id: miniBatchId, category, reason });
    else this.failedItemsDropped++;
  }

  /** `InputError × 6 (first: ...)`, most frequent first. */
  digest(limit = 3): string {
    const rows = [...this.categories.entries()].sort((a, b) => b[1].items + b[1].attempts - (a[1].items + a[1].attempts));
    return rows
      .slice(0, limit)
      .map(([cat, e]) => `${cat} × ${e.items > 0 ? `${e.items} item${e.items === 1 ? '' : 's'}` : `${e.attempts} attempt${e.attempts === 1 ? '' : 's'}`} (first: ${oneLine(e.first.message, 160)})`)
      .join('; ');
  }
}

export function oneLine(text: string, max = 300): string {
  const s = text.replace(/\s*\n\s*/g, ' | ');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function errorSummaryText(result: ParallelRunResult, ledger: ErrorLedger, header: string): string {
  const out: string[] = [];
  out.push(`${header}`);
  out.push('');
  out.push(`Result: ${result.status} (exit code ${result.exit_code})`);
  out.push(`Reason: ${result.reason}`);
  if (result.cause) {
    out.push('');
    out.push(`Cause: ${result.cause.category}${result.cause.worker ? ` on ${result.cause.worker}` : ''}${result.cause.mini_batch_id ? ` (${result.cause.mini_batch_id})` : ''}`);
    out.push(indent(result.cause.message));
    const f = frames(result.cause.stack);
    if (f) out.push(indent(f, 6));
  }
  out.push('');
  out.push(`Mini-batches: ${result.mini_batches.succeeded} succeeded, ${result.mini_batches.failed} failed, ${result.mini_batches.not_processed} not processed, of ${result.mini_batches.total}`);
  out.push(`Items: ${result.items.succeeded} succeeded, ${result.items.failed} failed, ${result.items.not_processed} not processed, of ${result.items.total}`);
  out.push(`Retries: ${result.retries}, timeouts: ${result.timeouts}, worker restarts: ${result.worker_restarts}${result.init_failures > 0 ? `, failed worker starts: ${result.init_failures}` : ''}`);
  const t = result.thresholds;
  out.push(
    `Thresholds: error_threshold ${t.error_threshold}${t.error_threshold >= 0 ? ` (${result.items.failed} failed items)` : ' (ignored)'}, allowed_failed_count ${t.allowed_failed_count}${t.allowed_failed_count >= 0 ? ` (${result.mini_batches.failed} failed mini-batches)` : ' (ignored)'}, allowed_failed_percent ${t.allowed_failed_percent}`,
  );
  out.push('');
  if (ledger.categories.size === 0) {
    out.push('No errors.');
  } else {
    out.push('Errors by category:');
    for (const [cat, e] of ledger.categories) {
      const counts = [e.attempts > 0 ? `${e.attempts} failed attempt${e.attempts === 1 ? '' : 's'}` : '', e.items > 0 ? `${e.items} failed item${e.items === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ');
      out.push(`  ${cat}: ${counts}`);
      const where = [e.first.mini_batch_id, e.first.worker].filter(Boolean).join(' on ');
      out.push(`    first${where ? ` (${where})` : ''}: ${e.first.type ? `${e.first.type}: ` : ''}${e.first.message}`);
      const f = frames(e.first.stack);
      if (f) out.push(indent(f, 6));
    }
  }
  if (ledger.failedItems.length > 0) {
    out.push('');
    out.push(`Failed items${ledger.failedItemsDropped > 0 ? ` (first ${ledger.failedItems.length}; ${ledger.failedItemsDropped} more not listed)` : ''}:`);
    for (const f of ledger.failedItems) out.push(`  ${f.item}\t${f.mini_batch_id}\t${f.category}\t${oneLine(f.reason)}`);
  }
  out.push('');
  out.push(`Per mini-batch detail: ${FILES.processed}; per worker: ${FILES.workers}; worker logs: logs.process-<n>.jsonl, driver.process-<n>.log, console.process-<n>.log`);
  return `${out.join('\n')}\n`;
}

/** The `at ...` lines of a stack (the message is printed on its own). */
function frames(stack: string | undefined): string {
  if (!stack) return '';
  return stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, 12)
    .join('\n');
}

function indent(text: string, n = 4): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => pad + l.trimStart())
    .join('\n');
}

export interface OverviewInput {
  readonly stepName: string;
  readonly nodeRank: number;
  readonly nodeCount: number;
  readonly status: string;
  /** Epoch ms. */
  readonly started: number;
  readonly progress: ProgressSnapshot;
  readonly miniBatchesSucceeded: number;
  /** Mini-batches sent to workers and not reported. */
  readonly inFlight: number;
  readonly waitingRetry: number;
  readonly notStarted: number;
  readonly errorThreshold: number;
  readonly allowedFailedCount: number;
  /** One line per worker (Scheduler.describeWorkers). */
  readonly workers: readonly string[];
}

/** progress-overview.txt: where the job stands, rewritten while it runs and once at its end. */
export function overviewText(o: OverviewInput): string {
  const p = o.progress;
  const { rate, eta } = rateAndEta(p);
  const over = o.status !== 'running';
  // while the input is still being cut, the totals so far
  const more = p.totalsPartial ? '+ (the input still being cut)' : '';
  // the mini-batches add up: done + on workers + waiting + not started, or done + not processed at the end
  const where = over
    ? `${p.miniBatchesTotal - p.miniBatchesDone} not processed`
    : `${o.inFlight} running on ${p.running} worker(s), ${o.waitingRetry} waiting for a retry, ${o.notStarted} not started`;
  return [
    `step: ${o.stepName} (node ${o.nodeRank} of ${o.nodeCount})`,
    `status: ${o.status}`,
    `updated: ${new Date().toISOString()}`,
    `started: ${new Date(o.started).toISOString()}`,
    `elapsed: ${formatDuration(p.elapsedMs / 1000)}`,
    `mini-batches: ${p.miniBatchesDone} of ${p.miniBatchesTotal}${more} done (${o.miniBatchesSucceeded} succeeded, ${p.miniBatchesFailed} failed), ${where}`,
    `items: ${p.itemsSucceeded + p.itemsFailed} of ${p.itemsTotal}${more} done (${p.itemsSucceeded} succeeded, ${p.itemsFailed} failed)` +
      `${over && p.itemsSucceeded + p.itemsFailed < p.itemsTotal ? `, ${p.itemsTotal - p.itemsSucceeded - p.itemsFailed} not processed` : ''}`,
    // an ETA only while the job runs
    `rate: ${rate.toFixed(2)} items/s${over ? '' : `, ETA ${formatDuration(eta)}`}`,
    `retries: ${p.retries}, timeouts: ${p.timeouts}, worker restarts: ${p.workerRestarts}`,
    `error budget: ${o.errorThreshold >= 0 ? `${p.itemsFailed} of error_threshold ${o.errorThreshold} failed items` : 'error_threshold -1 (failures ignored)'}` +
      `${o.allowedFailedCount >= 0 ? `; ${p.miniBatchesFailed} of allowed_failed_count ${o.allowedFailedCount} failed mini-batches` : ''}`,
    `workers:\n  ${o.workers.join('\n  ')}`,
    `progress: ${progressLine(p, !over)}`,
    '',
  ].join('\n');
}
