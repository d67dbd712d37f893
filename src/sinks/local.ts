// The embedded default: a run folder of plain files, readable with `jq` and `less`.
//   <dir>/<pipeline_run_id>/<step_name>[/node-<rank>]/
//     step.json      identity, runtime, backends, outcome and export summary (rewritten at the end)
//     driver.log     human-readable log lines and telemetry diagnostics
//     logs.jsonl     one log record a line (the step dimensions on the first record of each start)
//     metrics.jsonl  the run.log history: one value (or list, row, table) a line
//     spans.jsonl    every finished span
//     step.lock      held while the process writes (folder-lock.ts); files of process index n carry
//                    `.process-<n>` in their names
//     resources.jsonl  CPU, memory, event loop, GC and GPU samples (written by src/resources/)
// Records are buffered in memory and written in batches (a timer, a size bound, and every exit path),
// never one synchronous write per call. A write that fails (a full disk, a folder gone read-only)
// stops that file at its last whole batch, so every line of it still parses; the failure is in
// step.json (`local.complete: false`) and said again when the step ends.
import fs from 'node:fs';
import path from 'node:path';
import { closeQuietly } from '../util/fd.js';
import { isoFromMillis } from '../util/iso-time.js';
import { errorText } from '../util/safe-read.js';
import type { StepIdentity } from '../types.js';
import type { Diagnostics } from '../diagnostics.js';
import { FolderLock, processFileName, RESERVE_BYTES, TOUCH_EVERY_MS } from './folder-lock.js';

const FLUSH_INTERVAL_MS = 200;
const MAX_PENDING_ITEMS = 1024;

const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
const MIN_BATCH_BYTES = 16 * 1024;
const MAX_BATCH_HINT_BYTES = 4 * 1024 * 1024;
const NO_BYTES: Buffer = Buffer.alloc(0);

/**
 * An append-only file of lines, each encoded as it is appended straight into the bytes of the
 * current batch (a line dies young; one string of a thousand lines, flattened and encoded at once,
 * costs several times as much), with the file's constant `tail` copied after it as bytes. Batches
 * are written with positional writes off the main thread, one at a time. `flushSync()` (exit
 * paths) rewrites the batch in flight at its own offset, which is idempotent, and then writes the
 * rest: so whatever was appended is on disk when it returns, whether or not the async write got
 * there first.
 */
export class BatchedFile {
  private fd: number | undefined;
  /** The batch being filled, its bytes used and its lines. */
  private batch = NO_BYTES;
  private used = 0;
  private lines = 0;
  /** The size of the next batch's buffer: a quarter more than the last one took. */
  private batchBytes = MIN_BATCH_BYTES;
  private readonly tail: Buffer;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  /** The batch being written off the main thread; `rewritten` once flushSync() has written it itself. */
  private inflight: { buf: Buffer; pos: number; rewritten: boolean } | undefined;
  private position = 0;
  private closeWhenIdle = false;
  private failed = false;
  /** Where a failed file is cut once the write in flight has settled (cutting under it let its rest land past the end, a hole of zeros). */
  private cutAt: number | undefined;

  constructor(
    readonly filePath: string,
    /** Called once, at the first failed write: the file stops there. */
    private readonly onError: (error: unknown, file: string) => void,
    /** Written after the text of every `append()` (the line's end). */
    tail = '',
  ) {
    this.tail = Buffer.from(tail);
    try {
      // no O_APPEND: positional writes need their offsets honoured
      this.fd = fs.openSync(filePath, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      this.position = fs.fstatSync(this.fd).size;
    } catch (error) {
      this.fail(error);
    }
  }

  /** A line: `head` (bytes encoded once for many lines), `text`, then the tail. */
  append(text: string, head: Buffer = NO_BYTES): void {
    if (this.fd !== undefined && !this.failed) this.put(head, text, this.tail);
  }

  /** A whole line of its own (without the tail). */
  appendLine(line: string): void {
    if (this.fd !== undefined && !this.failed) this.put(NO_BYTES, line, NO_BYTES);
  }

  private put(head: Buffer, text: string, tail: Buffer): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit
    const room = head.length + 3 * text.length + tail.length;
    if (this.batch.length - this.used < room) this.grow(room);
    if (head.length > 0) {
      this.batch.set(head, this.used);
      this.used += head.length;
    }
    this.used += this.batch.write(text, this.used);
    if (tail.length > 0) {
      this.batch.set(tail, this.used);
      this.used += tail.length;
    }
    if (++this.lines >= MAX_PENDING_ITEMS) this.flush();
  }

  private grow(room: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.batchBytes, 2 * this.batch.length, this.used + room));
    if (this.used > 0) this.batch.copy(bigger, 0, 0, this.used);
    this.batch = bigger;
  }

  /** Hand everything pending to the writer (asynchronous). */
  flush(): void {
    const buf = this.take();
    if (buf === undefined) return;
    if (this.inflight === undefined) this.write(buf);
    else {
      this.queued.push(buf);
      this.queuedBytes += buf.length;
      // the disk is slower than the step: apply back-pressure rather than grow without bound
      if (this.queuedBytes > MAX_QUEUED_BYTES) this.flushSync();
    }
  }

  /** Write everything appended so far before returning. Safe from exit handlers. */
  flushSync(): void {
    if (this.fd === undefined || this.failed) return;
    const rest = this.take();
    const bufs = this.queued;
    if (rest) bufs.push(rest);
    this.queued = [];
    this.queuedBytes = 0;
    let at = this.inflight?.pos ?? this.position;
    try {
      if (this.inflight) {
        writeAllSync(this.fd, this.inflight.buf, this.inflight.pos);
        this.inflight.rewritten = true;
      }
      for (const buf of bufs) {
        at = this.position;
        writeAllSync(this.fd, buf, at);
        this.position += buf.length;
      }
    } catch (error) {
      this.fail(error, at);
    }
  }

  close(): void {
    this.flushSync();
    if (this.inflight) this.closeWhenIdle = true; // the fd must outlive the write that uses it
    else this.closeFd();
  }

  /** The batch filled so far, taken out of the file's hands. */
  private take(): Buffer | undefined {
    if (this.fd === undefined || this.used === 0) return undefined;
    const buf = this.batch.subarray(0, this.used);
    this.batchBytes = Math.max(MIN_BATCH_BYTES, Math.min(MAX_BATCH_HINT_BYTES, Math.ceil(this.used * 1.25)));
    this.batch = NO_BYTES;
    this.used = 0;
    this.lines = 0;
    return buf;
  }

  private write(buf: Buffer): void {
    const fd = this.fd;
    if (fd === undefined) return;
    const job = { buf, pos: this.position, rewritten: false };
    this.position += buf.length;
    this.inflight = job;
    const from = (offset: number): void =>
      fs.write(fd, buf, offset, buf.length - offset, job.pos + offset, (error, written) => {
        if (!error && written > 0 && offset + written < buf.length) {
          // a short write (the disk is filling up): the rest, or its error; not once the file has failed meanwhile (it is cut)
          if (this.failed) this.written(job, job.rewritten ? null : new Error('the file failed during the write'));
          else from(offset + written);
          return;
        }
        this.written(job, error ?? (offset + written < buf.length ? new Error('nothing written (the disk is full)') : null));
      });
    from(0);
  }

  private written(job: { buf: Buffer; pos: number; rewritten: boolean }, error: Error | null): void {
    if (this.inflight === job) this.inflight = undefined;
    if (error && !job.rewritten) {
      this.fail(error, job.pos);
      return;
    }
    if (this.closeWhenIdle) {
      this.cut();
      this.closeFd();
      return;
    }
    if (this.inflight === undefined && this.queued.length > 0) {
      const next = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued);
      this.queued = [];
      this.queuedBytes = 0;
      this.write(next);
    }
  }

  private closeFd(): void {
    this.fd = closeQuietly(this.fd);
  }

  /**
   * Stop the file; `cutAt`: the offset of the batch that failed, so that no half of it stays. With
   * a write in flight, the cut waits for it to settle (a write's rest landing after the cut would
   * leave zeros between the cut and itself); should the process end first, a half-written last
   * line may stay, which the reader notes.
   */
  private fail(error: unknown, cutAt?: number): void {
    if (cutAt !== undefined) this.cutAt = Math.min(cutAt, this.cutAt ?? cutAt);
    if (!this.failed) this.onError(error, this.filePath);
    this.failed = true;
    this.batch = NO_BYTES;
    this.used = 0;
    this.lines = 0;
    this.queued = [];
    this.queuedBytes = 0;
    if (this.inflight === undefined) {
      this.cut();
      this.closeFd();
    } else this.closeWhenIdle = true;
  }

  private cut(): void {
    if (this.cutAt === undefined || this.fd === undefined) return;
    try {
      fs.ftruncateSync(this.fd, this.cutAt);
    } catch {
      // the half batch stays; the reader notes a half-written last line
    }
    this.cutAt = undefined;
  }
}

function writeAllSync(fd: number, buf: Buffer, pos: number): void {
  for (let offset = 0; offset < buf.length; ) {
    const n = fs.writeSync(fd, buf, offset, buf.length - offset, pos + offset);
    if (n <= 0) throw new Error('nothing written (the disk is full)');
    offset += n;
  }
}

function segment(value: string): string {
  const s = value.replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_');
  return s === '.' || s === '..' || s === '' ? '_' : s;
}

export function runFolderPath(dir: string, id: StepIdentity): string {
  const parts = [dir, segment(id.pipelineRunId), segment(id.stepName)];
  if (id.nodeCount > 1) parts.push(`node-${id.nodeRank}`);
  return path.join(...parts);
}

/** `","kind":"<kind>","name":<name as JSON>,"value":`: the middle of a metrics.jsonl line, the same for every value of a name. */
export function metricPrefix(kind: 'scalar' | 'list' | 'row' | 'table' | 'tags' | 'otel', name: string): string {
  return `","kind":"${kind}","name":${JSON.stringify(name)},"value":`;
}

/** The start of a metrics.jsonl line up to its value: the time (the ISO text of the last millisecond is reused) and the `metricPrefix()`. */
export function metricHead(time: number, prefix: string): string {
  return `{"time":"${isoFromMillis(time)}${prefix}`;
}

/**
 * The rest of a metrics.jsonl line up to its end (the file's tail): the value (a
 * finite number needs no JSON.stringify), then what else it has: the step index, a description,
 * and for `otel` lines (the program's own OpenTelemetry instruments) the point's attributes, unit,
 * instrument type and scope.
 */
export function metricRest(
  value: unknown,
  step?: number,
  description?: string,
  otel?: { readonly attributes: Readonly<Record<string, unknown>>; readonly unit?: string; readonly type: string; readonly scope: string },
): string {
  let rest = Number.isFinite(value) ? String(value) : JSON.stringify(value);
  if (step !== undefined) rest += `,"step":${step}`;
  if (description !== undefined) rest += `,"description":${JSON.stringify(description)}`;
  if (otel !== undefined) rest += `,"attributes":${JSON.stringify(otel.attributes)},"type":"${otel.type}",${otel.unit ? `"unit":${JSON.stringify(otel.unit)},` : ''}"scope":${JSON.stringify(otel.scope)}`;
  return rest;
}

/** A file of the run folder that stopped being written. */
export interface LocalFailure {
  readonly file: string;
  readonly error: string;
  readonly time: string;
}

export class LocalRunFolder {
  readonly logs: BatchedFile;
  readonly driver: BatchedFile;
  /** Lines of `metricHead()` and `metricRest()`. */
  readonly metrics: BatchedFile;
  readonly spans: BatchedFile;
  /** Where src/resources/ appends this process's samples (it writes the file itself, a line per interval). */
  readonly resourcesFile: string;
  private readonly timer: NodeJS.Timeout;
  private readonly stepJsonPath: string;
  private readonly failures: LocalFailure[] = [];
  /** The last step.json written, to record a failure in it as soon as it happens. */
  private lastStepJson: Record<string, unknown> | undefined;

  private constructor(
    readonly folder: string,
    id: StepIdentity,
    private readonly diagnostics: Diagnostics,
    private readonly lock: FolderLock | undefined,
    suffix: string,
  ) {
    const onError = (error: unknown, file: string): void => this.failed(path.basename(file), error);
    const p = id.processIndex;
    const file = (base: string, ext: string): string => path.join(folder, processFileName(base, ext, p, suffix));
    // the identity is in step.json (and on the first log record of each start): the lines just end
    const tail = '}\n';
    this.logs = new BatchedFile(file('logs', '.jsonl'), onError, tail);
    this.driver = new BatchedFile(file('driver', '.log'), onError);
    this.metrics = new BatchedFile(file('metrics', '.jsonl'), onError, tail);
    this.spans = new BatchedFile(file('spans', '.jsonl'), onError);
    this.stepJsonPath = file('step', '.json');
    this.resourcesFile = file('resources', '.jsonl');
    let ticks = 0;
    this.timer = setInterval(() => {
      this.flush();
      if (++ticks % (TOUCH_EVERY_MS / FLUSH_INTERVAL_MS) === 0) this.lock?.touch();
    }, FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Create the run folder and take its lock for this process index (another process holding it:
   * files of this process's own, with one diagnostic); undefined (with one diagnostic) when the
   * folder cannot be written.
   */
  static open(dir: string, id: StepIdentity, diagnostics: Diagnostics): LocalRunFolder | undefined {
    const folder = runFolderPath(dir, id);
    const problem = folderProblem(folder);
    if (problem !== undefined) {
      diagnostics.warn('local.unwritable', `STEP_TELEMETRY_DIR: expected a writable folder; cannot create ${folder} (${problem}); local files are off, other sinks go on`);
      return undefined;
    }
    const { lock, suffix, holder } = FolderLock.acquire(folder, id.processIndex, id.runId);
    if (suffix !== '') {
      const by = holder ? `process ${holder.pid} on ${holder.host}${holder.run_id ? ` (run ${holder.run_id}, since ${holder.started ?? '?'})` : ''}` : 'another process';
      diagnostics.warn(
        'local.folder-in-use',
        `${folder} is being written by ${by} with the same process index ${id.processIndex}: this process writes files of its own beside them (${processFileName('logs', '.jsonl', id.processIndex, suffix)}, ...). ` +
          'Give each process its own STEP_TELEMETRY_PROCESS_INDEX, or each run its own STEP_TELEMETRY_PIPELINE_RUN_ID',
      );
    }
    return new LocalRunFolder(folder, id, diagnostics, lock, suffix);
  }

  /** True while every file has been written as asked. */
  get complete(): boolean {
    return this.failures.length === 0;
  }

  /**
   * Write step.json (atomically: a temporary file, then a rename). When that fails (a full disk),
   * with the lock's reserve given back, then in place; only then is it given up, with a diagnostic.
   * A failed local file is recorded in it as `local: { complete: false, failures }`.
   */
  writeStepJson(value: Record<string, unknown>): void {
    this.lastStepJson = value;
    const local = this.complete ? value.local : { ...(value.local as object | undefined), complete: false, failures: this.failures };
    const text = `${JSON.stringify(this.complete ? value : { ...value, local }, null, 2)}\n`;
    const tmp = `${this.stepJsonPath}.tmp`;
    const atomic = (): void => {
      try {
        fs.writeFileSync(tmp, text);
        fs.renameSync(tmp, this.stepJsonPath);
      } catch (error) {
        try {
          fs.rmSync(tmp, { force: true });
        } catch {
          // a read-only folder: nothing was written either
        }
        throw error;
      }
    };
    try {
      atomic();
      return;
    } catch {
      // below: the reserve, then in place
    }
    try {
      // half the reserve at a time: a failure mid-run takes one half, the end of the step the other
      if (this.lock?.giveBack(RESERVE_BYTES / 2)) {
        atomic();
        return;
      }
    } catch {
      // in place, below
    }
    try {
      fs.writeFileSync(this.stepJsonPath, text, { flag: 'r+' });
      fs.truncateSync(this.stepJsonPath, Buffer.byteLength(text));
    } catch (error) {
      this.diagnostics.warn('local.write:step.json', `cannot write ${this.stepJsonPath} (${errorText(error)}); it may still say "running"`);
    }
  }

  private failed(file: string, error: unknown): void {
    const text = typeof (error as NodeJS.ErrnoException)?.code === 'string' ? (error as Error).message : errorText(error);
    this.failures.push({ file, error: text, time: new Date().toISOString() });
    this.diagnostics.warn(`local.write:${file}`, `cannot write ${file} (${text}); local files for it stop here`);
    // said in step.json at once: a step killed later is not taken for one killed with whole files
    if (this.lastStepJson) this.writeStepJson(this.lastStepJson);
  }

  flush(): void {
    this.driver.flush();
    this.logs.flush();
    this.metrics.flush();
    this.spans.flush();
  }

  /** Everything appended so far is on disk when this returns. */
  flushSync(): void {
    this.driver.flushSync();
    this.logs.flushSync();
    this.metrics.flushSync();
    this.spans.flushSync();
  }

  /** Close the files and give up the lock; when files failed, say so (the outcome is the program's, not the files'). */
  close(): void {
    clearInterval(this.timer);
    this.driver.close();
    this.logs.close();
    this.metrics.close();
    this.spans.close();
    this.lock?.release();
    if (!this.complete) {
      const files = [...new Set(this.failures.map((f) => f.file))].join(', ');
      this.diagnostics.notice(
        `the run folder ${this.folder} is incomplete: writing ${files} failed from ${this.failures[0]!.time} on (${this.failures[0]!.error}). ` +
          'step.json says so, and `step-telemetry doctor` reports it; give STEP_TELEMETRY_DIR a folder with space.',
      );
    }
  }
}

/** Why `folder` cannot hold a run folder (created if missing), or undefined when it can. */
export function folderProblem(folder: string): string | undefined {
  try {
    fs.mkdirSync(folder, { recursive: true });
    fs.accessSync(folder, fs.constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? errorText(error);
  }
}
