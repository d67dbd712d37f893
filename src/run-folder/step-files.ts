// The record files of one step folder, each read line by line into what keeps it in bounds
// (attempts.ts, mini-batch-rows.ts, log-summary.ts, metric-series.ts): spans, the runner's
// processed-mini-batches.csv, logs, metrics and resources. read.ts finds the folders and their
// files and puts a StepRun together.
import { PROCESSED_COLUMNS } from '../runner/reports.js';
import type { AttemptCollector } from './attempts.js';
import { RunFolderError, isoMillis, readCsvRecords, readJsonLines, type ReadNote } from './files.js';
import type { LogCollector } from './log-summary.js';
import { MetricCollector } from './metric-series.js';
import type { MiniBatchRowCollector } from './mini-batch-rows.js';
import type { ErrorSpan, LogRecord, MetricSeries, MiniBatchRow, ResourceSample } from './model.js';

const MAX_ERROR_SPANS = 10_000;
const MAX_RESOURCE_SAMPLES = 200_000;

/** A file of the step folder: where it is, how messages name it, the process that wrote it. */
export interface StepFile {
  readonly path: string;
  readonly label: string;
  readonly process: number;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
export function time(v: unknown): number | undefined {
  return typeof v === 'string' ? isoMillis(v) : undefined;
}
export function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const STATUS_OUTCOME: Record<string, string> = {
  RUN_DONE: 'success',
  RUN_EXCEPTION: 'error',
  RUN_TIMEOUT: 'timeout',
  PROCESS_CRASH: 'crash',
  INPUT_ERROR: 'error',
  ABORTED: 'aborted',
};

export interface Spans {
  count: number;
  /** Spans that ended in error and are not attempts (up to 10,000). */
  readonly errorSpans: ErrorSpan[];
  /** Process 0's step span. */
  stepSpanAttributes: Record<string, unknown>;
  stepSpanStart?: number;
  stepSpanEnd?: number;
}

/** spans*.jsonl: the runner's CONSUMER spans are the attempts; the step span; the failed spans. */
export function readSpans(files: readonly StepFile[], attempts: AttemptCollector, notes: ReadNote[]): Spans {
  const out: Spans = { count: 0, errorSpans: [], stepSpanAttributes: {} };
  for (const { path: file, label, process: proc } of files) {
    out.count += readJsonLines(
      file,
      label,
      (rec, line) => {
        const spanName = rec.name;
        const start = time(rec.start);
        const duration = num(rec.duration_ms);
        if (typeof spanName !== 'string' || start === undefined || duration === undefined) {
          throw new RunFolderError(`${label}:${line}: not a span record (expected "name", "start" and "duration_ms")`, label, line);
        }
        const attrs = obj(rec.attributes) ?? {};
        const status = obj(rec.status);
        const kind = rec.kind;
        const mb = attrs['mini_batch.id'];
        const exception = Array.isArray(rec.events) ? obj((rec.events as unknown[]).map(obj).find((e) => e?.name === 'exception')?.attributes) : undefined;
        if (kind === 'CONSUMER' && typeof mb === 'string') {
          const outcome = str(attrs['mini_batch.outcome']) ?? (status?.code === 'ERROR' ? 'error' : 'success');
          const statusMessage = str(status?.message);
          attempts.add({
            id: mb,
            attempt: num(attrs['mini_batch.attempt']) ?? 1,
            items: num(attrs['mini_batch.items']) ?? 0,
            worker: str(attrs['worker.id']) ?? (proc > 0 ? `process-${proc}` : 'main'),
            start,
            durationMs: duration,
            outcome,
            errorType: str(attrs['error.type']) ?? str(exception?.['exception.type']),
            errorMessage: str(exception?.['exception.message']) ?? (outcome === 'success' ? undefined : statusMessage),
            stack: str(exception?.['exception.stacktrace']),
            itemsFailed: num(attrs['mini_batch.items_failed']),
            runMs: num(attrs['mini_batch.run_ms']),
            cpuMs: num(attrs['mini_batch.cpu_ms']),
            rssBytes: num(attrs['mini_batch.rss_bytes']),
            heapGrowthBytes: num(attrs['mini_batch.heap_growth_bytes']),
            weight: 1,
          });
          return;
        }
        if (kind === 'SERVER' && attrs['step.kind'] === 'step') {
          if (proc === 0) {
            out.stepSpanAttributes = attrs;
            out.stepSpanStart = start;
            out.stepSpanEnd = start + duration;
          }
          return;
        }
        if (status?.code === 'ERROR' && mb === undefined && out.errorSpans.length < MAX_ERROR_SPANS) {
          const message = str(exception?.['exception.message']) ?? str(status.message) ?? 'error';
          out.errorSpans.push({ name: spanName, start, durationMs: duration, message, type: str(exception?.['exception.type']), stack: str(exception?.['exception.stacktrace']), process: proc });
        }
      },
      notes,
    );
  }

  return out;
}

/** processed-mini-batches.csv, into its rows' figures; `asAttempts`: the rows are the attempts too (there were no spans). */
export function readProcessed(file: StepFile, rows: MiniBatchRowCollector, attempts: AttemptCollector, asAttempts: boolean, notes: ReadNote[]): void {
  let col: Record<(typeof PROCESSED_COLUMNS)[number], number> | undefined;
  readCsvRecords(
    file.path,
    file.label,
    notes,
    ['mini_batch_id', 'status'],
    (cells, line) => {
      const at = col!;
      const cell = (c: (typeof PROCESSED_COLUMNS)[number]): string => cells.field(at[c]);
      const n = (c: (typeof PROCESSED_COLUMNS)[number]): number => {
        const v = Number(cell(c));
        return Number.isFinite(v) ? v : 0;
      };
      /** An empty cell (or a file from before the column) is no figure. */
      const maybe = (c: (typeof PROCESSED_COLUMNS)[number]): number | undefined => {
        const t = cell(c);
        return t === '' ? undefined : num(Number(t));
      };
      const row = (): MiniBatchRow => ({
        id: cell('mini_batch_id'),
        timesPicked: n('times_picked'),
        worker: cell('worker'),
        start: time(cell('start_time')) ?? 0,
        end: time(cell('end_time')) ?? 0,
        totalItems: n('total_items'),
        succeededItems: n('succeeded_items'),
        failedItems: n('failed_items'),
        elapsedSeconds: n('elapsed_seconds'),
        runMethodSeconds: n('run_method_seconds'),
        status: cell('status'),
        errorCategory: cell('error_category'),
        errorMessage: cell('error_message'),
        cpuSeconds: maybe('cpu_seconds'),
        rssBytes: maybe('rss_bytes'),
        heapGrowthBytes: maybe('heap_growth_bytes'),
        line,
      });
      // most rows only count: a whole row is made for those shown (failed items) or when they are the attempts
      if (!asAttempts) {
        rows.add(cell('mini_batch_id'), n('failed_items'), cell('error_message'), row);
        return;
      }
      const m = row();
      rows.add(m.id, m.failedItems, m.errorMessage, () => m);
      attempts.add({
        id: m.id,
        attempt: Math.max(1, m.timesPicked),
        items: m.totalItems,
        worker: m.worker || 'main',
        start: m.start,
        durationMs: Math.max(0, m.end - m.start) || m.elapsedSeconds * 1000,
        outcome: STATUS_OUTCOME[m.status] ?? 'error',
        errorType: m.errorCategory || undefined,
        errorMessage: m.errorMessage || undefined,
        stack: undefined,
        itemsFailed: m.failedItems,
        runMs: m.runMethodSeconds * 1000,
        cpuMs: m.cpuSeconds === undefined ? undefined : m.cpuSeconds * 1000,
        rssBytes: m.rssBytes,
        heapGrowthBytes: m.heapGrowthBytes,
        weight: 1,
      });
    },
    (columns) => {
      col = Object.fromEntries(PROCESSED_COLUMNS.map((c) => [c, columns.indexOf(c)])) as Record<(typeof PROCESSED_COLUMNS)[number], number>;
    },
  );
}

/** logs*.jsonl, into the step's log summary; the run ids and the starts of process 0. */
export function readLogs(files: readonly StepFile[], logs: LogCollector, notes: ReadNote[]): { runIds: { runId: string; first: number; records: number }[]; starts: number[] } {
  const runIds = new Map<string, { runId: string; first: number; records: number }>();
  const starts: number[] = [];
  for (const { path: file, label, process: proc } of files) {
    const record = (rec: Record<string, unknown>, t: number): LogRecord => {
      const err = obj(rec.error);
      let error: string | undefined;
      let stack = str(rec.stack);
      if (err) {
        error = `${str(err.name) ?? 'Error'}: ${str(err.message) ?? ''}`;
        stack = str(err.stack) ?? stack;
      } else if (typeof rec.error === 'string') error = rec.error;
      const message = typeof rec.message === 'string' ? rec.message : JSON.stringify(rec.message ?? '');
      return { time: t, level: str(rec.level) ?? 'info', message, process: proc, miniBatch: str(rec.mini_batch_id), error, stack };
    };
    let lastTime = 0;
    /** The run writing this file: named on the first record of each start (on every record in the formats of before). */
    let run: { runId: string; first: number; records: number } | undefined;
    readJsonLines(
      file,
      label,
      (rec, line, offset) => {
        const level = str(rec.level) ?? 'info';
        const t = time(rec.timestamp) ?? lastTime;
        lastTime = t;
        const runId = str(rec.run_id);
        // a record that carries the identity (a field of the program's own named run_id does not)
        if (runId !== undefined && rec.step_name !== undefined && rec.pipeline_run_id !== undefined && runId !== run?.runId) {
          run = runIds.get(runId);
          if (!run) runIds.set(runId, (run = { runId, first: t, records: 0 }));
        }
        if (run) {
          run.records++;
          if (t < run.first) run.first = t;
        }
        if (proc === 0 && typeof rec.message === 'string' && rec.message.startsWith('step ') && rec.message.endsWith(' started') && rec.mini_batch_id === undefined) starts.push(t);
        if (logs.take(level, t, line, offset) === 'record') logs.add(record(rec, t), line);
      },
      notes,
    );
    logs.endFile(file, (text, t) => {
      try {
        const rec = JSON.parse(text) as unknown;
        return obj(rec) ? record(rec as Record<string, unknown>, t) : undefined;
      } catch {
        return undefined;
      }
    });
  }

  return { runIds: [...runIds.values()].sort((a, b) => a.first - b.first), starts: starts.sort((a, b) => a - b) };
}

/** metrics*.jsonl: read and checked; kept unless `light`. */
export function readMetrics(files: readonly StepFile[], light: boolean, notes: ReadNote[]): MetricSeries[] {
  const metrics = new MetricCollector();
  for (const { path: file, label, process: proc } of files) {
    readJsonLines(
      file,
      label,
      (rec, line) => {
        const metricName = rec.name;
        const kind = rec.kind;
        if (typeof metricName !== 'string' || typeof kind !== 'string') {
          throw new RunFolderError(`${label}:${line}: not a metric record (expected "kind" and "name")`, label, line);
        }
        if (light) return;
        metrics.add({ time: time(rec.time) ?? 0, kind, name: metricName, value: rec.value, step: num(rec.step), process: proc });
      },
      notes,
    );
  }
  const first = files[0]?.label ?? 'metrics.jsonl';
  if (metrics.dropped > 0) notes.push({ file: first, line: 0, message: `${first}: more than 10,000 metric names: ${metrics.dropped} records of the others are not shown` });
  return metrics.finish();

}

/** resources*.jsonl (src/resources/), in time order per process. */
export function readResources(files: readonly StepFile[], notes: ReadNote[]): ResourceSample[] {
  const resources: ResourceSample[] = [];
  for (const { path: file, label, process: proc } of files) {
    readJsonLines(
      file,
      label,
      (rec) => {
        const t = time(rec.time);
        if (t === undefined || resources.length >= MAX_RESOURCE_SAMPLES) return;
        const gc = obj(rec.gc_s);
        const node = obj(rec.node);
        resources.push({
          process: proc,
          time: t,
          periodS: num(rec.period_s) ?? 0,
          worker: str(rec.worker) ?? (proc > 0 ? `process-${proc}` : 'main'),
          pid: num(rec.pid),
          cpuS: (num(rec.cpu_user_s) ?? 0) + (num(rec.cpu_system_s) ?? 0),
          cpuWaitS: num(rec.cpu_wait_s),
          rss: num(rec.rss_bytes) ?? 0,
          rssMax: num(rec.rss_max_bytes) ?? num(rec.rss_bytes) ?? 0,
          heapUsed: num(rec.heap_used_bytes) ?? 0,
          heapUsedMax: num(rec.heap_used_max_bytes) ?? num(rec.heap_used_bytes) ?? 0,
          heapAfterGc: num(rec.heap_after_gc_bytes),
          heapLimit: num(rec.heap_limit_bytes),
          memoryLimit: num(rec.memory_limit_bytes),
          eventLoopDelayP99S: num(rec.eventloop_delay_p99_s) ?? 0,
          eventLoopDelayMaxS: num(rec.eventloop_delay_max_s) ?? 0,
          eventLoopUtilization: num(rec.eventloop_utilization),
          gcS: gc ? Object.values(gc).reduce<number>((sum, v) => sum + (num(v) ?? 0), 0) : 0,
          diskReadBytes: num(rec.disk_read_bytes),
          readChars: num(rec.read_chars),
          final: rec.final === true,
          node: node
            ? {
                cpus: num(node.cpus),
                cpuUtilization: num(node.cpu_utilization),
                iowait: num(node.cpu_iowait),
                load1m: num(node.load_1m),
                memoryAvailable: num(node.memory_available_bytes),
                memoryTotal: num(node.memory_total_bytes),
              }
            : undefined,
        });
      },
      notes,
    );
  }
  resources.sort((a, b) => a.process - b.process || a.time - b.time);
  return resources;
}
