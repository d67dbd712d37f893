// The embedded default: a run folder of plain files, readable with `jq` and `less`.
//   <dir>/<pipeline_run_id>/<step_name>[/node-<rank>]/
//     step.json      identity, runtime, backends, outcome and export summary (rewritten at the end)
//     driver.log     human-readable log lines and telemetry diagnostics
//     logs.jsonl     one log record a line, with the step dimensions and trace/span ids
//     metrics.jsonl  the run.log history: one value (or list, row, table) a line
//     spans.jsonl    every finished span
// Records are buffered in memory and written in batches (a timer, a size bound, and every exit path),
// never one synchronous write per call.
import fs from 'node:fs';
import path from 'node:path';
import type { StepIdentity } from '../types.js';
import type { Diagnostics } from '../diagnostics.js';

const FLUSH_INTERVAL_MS = 200;
const MAX_PENDING_ITEMS = 4096;

/** An append-only file whose items are serialised lazily, when the batch is written. */
export class BatchedFile<T> {
  private fd: number | undefined;
  private pending: T[] = [];
  private failed = false;

  constructor(
    readonly filePath: string,
    private readonly serialize: (item: T) => string,
    private readonly onError: (error: unknown, file: string) => void,
  ) {
    try {
      this.fd = fs.openSync(filePath, 'a');
    } catch (error) {
      this.fail(error);
    }
  }

  append(item: T): void {
    if (this.fd === undefined) return;
    this.pending.push(item);
    if (this.pending.length >= MAX_PENDING_ITEMS) this.flush();
  }

  /** Write everything pending, in one write. Safe to call from exit handlers. */
  flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
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
    try {
      fs.writeSync(this.fd, text);
    } catch (error) {
      this.fail(error);
    }
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = undefined;
    }
  }

  private fail(error: unknown): void {
    if (!this.failed) this.onError(error, this.filePath);
    this.failed = true;
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
    }
    this.fd = undefined;
    this.pending = [];
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

export class LocalRunFolder {
  readonly logs: BatchedFile<string>;
  readonly driver: BatchedFile<string>;
  readonly metrics: BatchedFile<MetricLine>;
  readonly spans: BatchedFile<string | (() => string)>;
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
    const dimsTail = dimsJson.length > 2 ? `,${dimsJson.slice(1, -1)}` : '';
    this.metrics = new BatchedFile(
      path.join(folder, fileName('metrics', '.jsonl', p)),
      (m: MetricLine) => {
        let line = `{"time":"${new Date(m.time).toISOString()}","kind":"${m.kind}","name":${JSON.stringify(m.name)}`;
        line += `,"value":${JSON.stringify(m.value)}`;
        if (m.step !== undefined) line += `,"step":${m.step}`;
        if (m.description !== undefined) line += `,"description":${JSON.stringify(m.description)}`;
        return `${line}${dimsTail}}\n`;
      },
      onError,
    );
    this.spans = new BatchedFile(
      path.join(folder, fileName('spans', '.jsonl', p)),
      (s: string | (() => string)) => (typeof s === 'string' ? s : s()),
      onError,
    );
    this.stepJsonPath = path.join(folder, fileName('step', '.json', p));
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

  close(): void {
    clearInterval(this.timer);
    this.driver.close();
    this.logs.close();
    this.metrics.close();
    this.spans.close();
  }
}
