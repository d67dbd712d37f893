// The embedded default: a run folder of plain files, readable with `jq` and `less`.
//   <dir>/<pipeline_run_id>/<step_name>[/node-<rank>]/
//     step.json      identity, runtime, backends, outcome and export summary (rewritten at the end)
//     driver.log     human-readable log lines and telemetry diagnostics
//     logs.jsonl     one log record a line, with the step dimensions and trace/span ids
//     metrics.jsonl  the run.log history: one value (or list, row, table) a line
//     spans.jsonl    every finished span
//     resources.jsonl  CPU, memory, event loop, GC and GPU samples (written by src/resources/)
// Records are buffered in memory and written in batches (a timer, a size bound, and every exit path),
// never one synchronous write per call.
import fs from 'node:fs';
import path from 'node:path';
import { closeQuietly } from '../util/fd.js';
import type { StepIdentity } from '../types.js';
import type { Diagnostics } from '../diagnostics.js';

const FLUSH_INTERVAL_MS = 200;
const MAX_PENDING_ITEMS = 1024;

const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * An append-only file. Items are serialised when their batch is written; batches are written with
 * positional writes off the main thread, one at a time. `flushSync()` (exit paths) rewrites the
 * batch in flight at its own offset, which is idempotent, and then writes the rest: so whatever
 * was appended is on disk when it returns, whether or not the async write got there first.
 */
export class BatchedFile<T> {
  private fd: number | undefined;
  private pending: T[] = [];
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private inflight: { buf: Buffer; pos: number } | undefined;
  private position = 0;
  private closeWhenIdle = false;
  private failed = false;

  constructor(
    readonly filePath: string,
    private readonly serialize: (item: T) => string,
    private readonly onError: (error: unknown, file: string) => void,
  ) {
    try {
      // no O_APPEND: positional writes need their offsets honoured
      this.fd = fs.openSync(filePath, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644);
      this.position = fs.fstatSync(this.fd).size;
    } catch (error) {
      this.fail(error);
    }
  }

  append(item: T): void {
    if (this.fd === undefined) return;
    this.pending.push(item);
    if (this.pending.length >= MAX_PENDING_ITEMS) this.flush();
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
    if (this.fd === undefined) return;
    const rest = this.take();
    const bufs = this.queued;
    if (rest) bufs.push(rest);
    this.queued = [];
    this.queuedBytes = 0;
    try {
      if (this.inflight) fs.writeSync(this.fd, this.inflight.buf, 0, this.inflight.buf.length, this.inflight.pos);
      for (const buf of bufs) {
        fs.writeSync(this.fd, buf, 0, buf.length, this.position);
        this.position += buf.length;
      }
    } catch (error) {
      this.fail(error);
    }
  }

  close(): void {
    this.flushSync();
    if (this.inflight) this.closeWhenIdle = true; // the fd must outlive the write that uses it
    else this.closeFd();
  }

  private take(): Buffer | undefined {
    if (this.fd === undefined || this.pending.length === 0) return undefined;
    const items = this.pending;
    this.pending = [];
    let text = '';
    for (const item of items) {
      try {
        text += this.serialize(item);
      } catch {
        // a serialiser bug must not lose the rest of the batch
      }
    }
    return Buffer.from(text);
  }

  private write(buf: Buffer): void {
    const fd = this.fd;
    if (fd === undefined) return;
    const job = { buf, pos: this.position };
    this.position += buf.length;
    this.inflight = job;
    fs.write(fd, buf, 0, buf.length, job.pos, (error) => {
      if (this.inflight === job) this.inflight = undefined;
      if (error) {
        this.fail(error);
        return;
      }
      if (this.closeWhenIdle) {
        this.closeFd();
        return;
      }
      if (this.inflight === undefined && this.queued.length > 0) {
        const next = this.queued.length === 1 ? this.queued[0] : Buffer.concat(this.queued);
        this.queued = [];
        this.queuedBytes = 0;
        this.write(next);
      }
    });
  }

  private closeFd(): void {
    this.fd = closeQuietly(this.fd);
  }

  private fail(error: unknown): void {
    if (!this.failed) this.onError(error, this.filePath);
    this.failed = true;
    this.pending = [];
    this.queued = [];
    if (this.inflight === undefined) this.closeFd();
    else this.closeWhenIdle = true;
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

/** The file name for this process: `logs.jsonl`, or `logs.process-2.jsonl` for process index 2. */
function fileName(base: string, ext: string, processIndex: number): string {
  return processIndex > 0 ? `${base}.process-${processIndex}${ext}` : `${base}${ext}`;
}

export interface MetricLine {
  readonly time: number;
  readonly kind: 'scalar' | 'list' | 'row' | 'table' | 'tags';
  readonly name: string;
  readonly value: unknown;
  readonly step?: number;
  readonly description?: string;
}

/**
 * Serialiser of metrics.jsonl lines. Lines are written in bursts, so the ISO time of the last
 * millisecond and the JSON of recent names are reused; a finite number needs no JSON.stringify.
 */
function metricLineSerializer(dimsJson: string): (m: MetricLine) => string {
  const dimsTail = dimsJson.length > 2 ? `,${dimsJson.slice(1, -1)}` : '';
  let lastTime = -1;
  let lastIso = '';
  const names = new Map<string, string>();
  return (m) => {
    if (m.time !== lastTime) {
      lastTime = m.time;
      lastIso = new Date(m.time).toISOString();
    }
    let name = names.get(m.name);
    if (name === undefined) {
      name = JSON.stringify(m.name);
      if (names.size < 1000) names.set(m.name, name);
    }
    const value = typeof m.value === 'number' ? String(m.value) : JSON.stringify(m.value);
    let line = `{"time":"${lastIso}","kind":"${m.kind}","name":${name},"value":${value}`;
    if (m.step !== undefined) line += `,"step":${m.step}`;
    if (m.description !== undefined) line += `,"description":${JSON.stringify(m.description)}`;
    return `${line}${dimsTail}}\n`;
  };
}

export class LocalRunFolder {
  readonly logs: BatchedFile<string>;
  readonly driver: BatchedFile<string>;
  readonly metrics: BatchedFile<MetricLine>;
  readonly spans: BatchedFile<string | (() => string)>;
  /** Where src/resources/ appends this process's samples (it writes the file itself, a line per interval). */
  readonly resourcesFile: string;
  private readonly timer: NodeJS.Timeout;
  private readonly stepJsonPath: string;

  private constructor(
    readonly folder: string,
    id: StepIdentity,
    dimsJson: string,
    diagnostics: Diagnostics,
  ) {
    const onError = (error: unknown, file: string): void =>
      diagnostics.warn(`local.write:${file}`, `cannot write ${file} (${(error as Error)?.message ?? error}); local files for it stop here`);
    const p = id.processIndex;
    this.logs = new BatchedFile(path.join(folder, fileName('logs', '.jsonl', p)), (line: string) => line, onError);
    this.driver = new BatchedFile(path.join(folder, fileName('driver', '.log', p)), (line: string) => line, onError);
    this.metrics = new BatchedFile(path.join(folder, fileName('metrics', '.jsonl', p)), metricLineSerializer(dimsJson), onError);
    this.spans = new BatchedFile(
      path.join(folder, fileName('spans', '.jsonl', p)),
      (s: string | (() => string)) => (typeof s === 'string' ? s : s()),
      onError,
    );
    this.stepJsonPath = path.join(folder, fileName('step', '.json', p));
    this.resourcesFile = path.join(folder, fileName('resources', '.jsonl', p));
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Create the run folder; undefined (with one diagnostic) when it cannot be written. */
  static open(dir: string, id: StepIdentity, dimsJson: string, diagnostics: Diagnostics): LocalRunFolder | undefined {
    const folder = runFolderPath(dir, id);
    try {
      fs.mkdirSync(folder, { recursive: true });
      fs.accessSync(folder, fs.constants.W_OK);
    } catch (error) {
      diagnostics.warn(
        'local.unwritable',
        `STEP_TELEMETRY_DIR: expected a writable folder; cannot create ${folder} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); local files are off, other sinks go on`,
      );
      return undefined;
    }
    return new LocalRunFolder(folder, id, dimsJson, diagnostics);
  }

  writeStepJson(value: unknown): void {
    const tmp = `${this.stepJsonPath}.tmp`;
    try {
      fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
      fs.renameSync(tmp, this.stepJsonPath);
    } catch {
      // the jsonl files are the record; step.json is a convenience
    }
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

  close(): void {
    clearInterval(this.timer);
    this.driver.close();
    this.logs.close();
    this.metrics.close();
    this.spans.close();
  }
}
