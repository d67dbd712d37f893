// The shared reader of run folders: finds the step folders under a path (a step folder, a
// multi-node step, a pipeline run folder, or a telemetry root holding one pipeline run), and reads
// each step's files into a StepRun. Runner files are optional: a plain step has none.
import fs from 'node:fs';
import path from 'node:path';
import { FILES, PROCESSED_COLUMNS } from '../runner/reports.js';
import { AttemptCollector } from './attempts.js';
import { RunFolderError, isoMillis, readCsvRecords, readJsonFile, readJsonLines, readTail, readText, type ReadNote } from './files.js';
import { IdTable } from './id-table.js';
import { LogCollector } from './log-summary.js';
import { MetricCollector } from './metric-series.js';
import { MiniBatchRowCollector } from './mini-batch-rows.js';
import type { ErrorSpan, ExportRecord, LogRecord, MiniBatchRow, ResourceSample, RunData, Runtime, StepProcess, StepRun } from './model.js';

/** Files that only a step folder holds. */
const STEP_FILE = /^(?:step(?:\.process-\d+)?\.json|(?:logs|metrics|spans|resources)(?:\.process-\d+)?\.jsonl|driver(?:\.process-\d+)?\.log|processed-mini-batches\.csv)$/;
const NODE_DIR = /^node-(\d+)$/;
/** Log records kept of each kind (the report's default --max-logs). */
const LOG_SAMPLE = 5000;
const MAX_ERROR_SPANS = 10_000;
const MAX_RESOURCE_SAMPLES = 200_000;

export interface ReadOptions {
  /** Keep only the error log records and no metric records (the files are still read and checked): the doctor. */
  readonly light?: boolean;
  /** Log records kept of each kind: the report's sample size (default 5,000). */
  readonly logSample?: number;
  /** Successful first attempts kept before they are sampled (default 200,000). */
  readonly attemptSample?: number;
}

function entries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function isStepFolder(dir: string): boolean {
  return entries(dir).some((e) => e.isFile() && STEP_FILE.test(e.name));
}

/** Step folders directly in `dir` or as its node-<rank> sub-folders. */
function stepFoldersIn(dir: string): { folder: string; label: string; nodeRank?: number }[] {
  const out: { folder: string; label: string; nodeRank?: number }[] = [];
  for (const e of entries(dir)) {
    if (!e.isDirectory()) continue;
    const sub = path.join(dir, e.name);
    if (isStepFolder(sub)) {
      out.push({ folder: sub, label: e.name });
      continue;
    }
    for (const n of entries(sub)) {
      const m = NODE_DIR.exec(n.name);
      if (n.isDirectory() && m && isStepFolder(path.join(sub, n.name))) out.push({ folder: path.join(sub, n.name), label: `${e.name}/${n.name}`, nodeRank: Number(m[1]) });
    }
  }
  return out.sort((a, b) => a.label.localeCompare(b.label, 'en', { numeric: true }));
}

interface Located {
  readonly kind: 'step' | 'pipeline';
  readonly folder: string;
  readonly steps: { folder: string; label: string; nodeRank?: number }[];
  readonly note?: string;
}

/** Find the steps under a path; throws a RunFolderError naming what was expected. */
export function locateRunFolder(target: string): Located {
  const folder = path.resolve(target);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(folder);
  } catch {
    throw new RunFolderError(`${target}: no such folder`);
  }
  if (!stat.isDirectory()) {
    throw new RunFolderError(`${target} is a file; give the run folder that holds it (${path.dirname(target)})`);
  }
  if (isStepFolder(folder)) return { kind: 'step', folder, steps: [{ folder, label: path.basename(folder) }] };
  // a multi-node step: <run>/<step>/node-<rank>/
  const base = path.basename(folder);
  const nodes = entries(folder)
    .filter((e) => e.isDirectory() && NODE_DIR.test(e.name) && isStepFolder(path.join(folder, e.name)))
    .map((e) => ({ folder: path.join(folder, e.name), label: `${base}/${e.name}`, nodeRank: Number(NODE_DIR.exec(e.name)![1]) }))
    .sort((a, b) => a.nodeRank - b.nodeRank);
  if (nodes.length > 0) return { kind: 'step', folder, steps: nodes };
  const inside = stepFoldersIn(folder);
  if (inside.length > 0) return { kind: 'pipeline', folder, steps: inside };
  // a telemetry root (STEP_TELEMETRY_DIR): accept it when it holds exactly one pipeline run
  const runs = entries(folder)
    .filter((e) => e.isDirectory())
    .map((e) => path.join(folder, e.name))
    .filter((d) => stepFoldersIn(d).length > 0);
  if (runs.length === 1) {
    return { kind: 'pipeline', folder: runs[0]!, steps: stepFoldersIn(runs[0]!), note: `${target} holds one pipeline run; reading ${runs[0]}` };
  }
  if (runs.length > 1) {
    throw new RunFolderError(
      `${target} holds ${runs.length} pipeline runs; give one of them:\n${runs
        .slice(0, 20)
        .map((r) => `  ${r}`)
        .join('\n')}${runs.length > 20 ? `\n  … ${runs.length - 20} more` : ''}`,
    );
  }
  throw new RunFolderError(
    `${target} is not a run folder: expected step.json, logs.jsonl, metrics.jsonl or spans.jsonl in it (a step folder), ` +
      `or step folders inside it (a pipeline run folder <dir>/<pipeline_run_id>)`,
  );
}

/** Read a run folder (a step or a pipeline run). Throws RunFolderError for what is not one, or is corrupt. */
export function readRunFolder(target: string, options: ReadOptions = {}): RunData {
  const located = locateRunFolder(target);
  const notes: ReadNote[] = [];
  if (located.note) notes.push({ file: '', line: 0, message: located.note });
  const steps = located.steps.map((s) => readStep(s.folder, s.label, s.nodeRank, notes, options, located.kind === 'pipeline' ? located.folder : path.dirname(located.folder)));
  // in the order they ran (then by name): prepare, train, score, not alphabetically
  steps.sort((a, b) => (a.started ?? Infinity) - (b.started ?? Infinity) || a.label.localeCompare(b.label, 'en', { numeric: true }));
  const first = steps.find((s) => typeof s.identity.pipelineRunId === 'string');
  return {
    kind: located.kind,
    folder: located.folder,
    pipelineRunId: (first?.identity.pipelineRunId as string | undefined) ?? path.basename(located.kind === 'pipeline' ? located.folder : path.dirname(located.folder)),
    pipelineName: first?.identity.pipelineName as string | undefined,
    steps,
    notes,
  };
}

const PROCESS_SUFFIX = /\.process-(\d+)\./;
function processOf(name: string): number {
  const m = PROCESS_SUFFIX.exec(name);
  return m ? Number(m[1]) : 0;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function time(v: unknown): number | undefined {
  return typeof v === 'string' ? isoMillis(v) : undefined;
}
function obj(v: unknown): Record<string, unknown> | undefined {
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

function readStep(folder: string, label: string, nodeRank: number | undefined, notes: ReadNote[], options: ReadOptions, runRoot: string): StepRun {
  const rel = (name: string): string => path.relative(runRoot, path.join(folder, name)) || name;
  const files = entries(folder)
    .filter((e) => e.isFile())
    .map((e) => {
      let bytes = 0;
      try {
        bytes = fs.statSync(path.join(folder, e.name)).size;
      } catch {
        // gone meanwhile
      }
      return { name: e.name, bytes };
    })
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const names = new Set(files.map((f) => f.name));
  const matching = (base: string, ext: string): string[] =>
    files.map((f) => f.name).filter((n) => n === `${base}${ext}` || (n.startsWith(`${base}.process-`) && n.endsWith(ext) && PROCESS_SUFFIX.test(n)));

  // step.json of each process
  const processes: StepProcess[] = [];
  for (const name of matching('step', '.json')) {
    const json = readJsonFile(path.join(folder, name), rel(name));
    processes.push({
      index: processOf(name),
      file: name,
      json,
      outcome: str(json.outcome) ?? 'unknown',
      started: time(json.started),
      ended: time(json.ended),
    });
  }
  processes.sort((a, b) => a.index - b.index);
  const main = processes[0];
  const identity = obj(main?.json.identity) ?? {};
  const rt = obj(main?.json.runtime);
  const runtime: Runtime | undefined = rt
    ? {
        node: str(rt.node),
        platform: str(rt.platform),
        arch: str(rt.arch),
        cpus: num(rt.cpus),
        memoryBytes: num(rt.memoryBytes),
        packageJson: str(rt.packageJson),
        dependencies: (obj(rt.dependencies) as Record<string, string | null> | undefined) ?? {},
      }
    : undefined;
  const exports: ExportRecord[] = [];
  const diagnostics: { kind?: string; message: string; count?: number }[] = [];
  for (const p of processes) {
    for (const e of Array.isArray(p.json.exports) ? p.json.exports : []) {
      const x = obj(e);
      if (!x) continue;
      exports.push({
        backend: str(x.backend) ?? 'backend',
        signal: str(x.signal) ?? '',
        target: str(x.target),
        batches: num(x.batches) ?? 0,
        failedBatches: num(x.failedBatches) ?? 0,
        droppedItems: num(x.droppedItems) ?? 0,
        lastError: str(x.lastError),
        hint: str(x.hint),
        process: p.index,
      });
    }
    for (const d of Array.isArray(p.json.diagnostics) ? p.json.diagnostics : []) {
      const x = obj(d);
      if (x) diagnostics.push({ kind: str(x.kind), message: str(x.message) ?? JSON.stringify(x), count: num(x.count) });
      else if (typeof d === 'string') diagnostics.push({ message: d });
    }
  }
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(main?.json.tags) ?? {})) tags[k] = String(v);

  // spans
  const ids = new IdTable();
  const attempts = new AttemptCollector(ids, options.attemptSample);
  const errorSpans: ErrorSpan[] = [];
  let stepSpanAttributes: Record<string, unknown> = {};
  let spanCount = 0;
  let stepSpanStart: number | undefined;
  let stepSpanEnd: number | undefined;
  for (const name of matching('spans', '.jsonl')) {
    const proc = processOf(name);
    const label = rel(name);
    spanCount += readJsonLines(
      path.join(folder, name),
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
            weight: 1,
          });
          return;
        }
        if (kind === 'SERVER' && attrs['step.kind'] === 'step') {
          if (proc === 0) {
            stepSpanAttributes = attrs;
            stepSpanStart = start;
            stepSpanEnd = start + duration;
          }
          return;
        }
        if (status?.code === 'ERROR' && mb === undefined && errorSpans.length < MAX_ERROR_SPANS) {
          const message = str(exception?.['exception.message']) ?? str(status.message) ?? 'error';
          errorSpans.push({ name: spanName, start, durationMs: duration, message, type: str(exception?.['exception.type']), stack: str(exception?.['exception.stacktrace']), process: proc });
        }
      },
      notes,
    );
  }

  // the runner's files; the processed report gives the attempts when there are no spans
  const rows = new MiniBatchRowCollector(ids);
  const fromSpans = attempts.size > 0;
  if (names.has(FILES.processed)) {
    let col: Record<(typeof PROCESSED_COLUMNS)[number], number> | undefined;
    readCsvRecords(
      path.join(folder, FILES.processed),
      rel(FILES.processed),
      notes,
      ['mini_batch_id', 'status'],
      (cells, line) => {
        const at = col!;
        const cell = (c: (typeof PROCESSED_COLUMNS)[number]): string => cells.field(at[c]);
        const n = (c: (typeof PROCESSED_COLUMNS)[number]): number => {
          const v = Number(cell(c));
          return Number.isFinite(v) ? v : 0;
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
          line,
        });
        // most rows only count: a whole row is made for those shown (failed items) or when they are the attempts
        if (fromSpans) {
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
          weight: 1,
        });
      },
      (columns) => {
        col = Object.fromEntries(PROCESSED_COLUMNS.map((c) => [c, columns.indexOf(c)])) as Record<(typeof PROCESSED_COLUMNS)[number], number>;
      },
    );
  }
  const attemptSet = attempts.finish(fromSpans ? 'spans' : attempts.size > 0 ? 'processed-report' : 'none');
  let workers: Record<string, string>[] = [];
  if (names.has(FILES.workers)) {
    let header: readonly string[] = [];
    readCsvRecords(path.join(folder, FILES.workers), rel(FILES.workers), notes, ['worker'], (cells) => workers.push(Object.fromEntries(header.map((h, i) => [h, cells.field(i)]))), (columns) => (header = columns));
  }
  const result = names.has(FILES.result) ? readJsonFile(path.join(folder, FILES.result), rel(FILES.result)) : undefined;
  const progressOverview = names.has(FILES.overview) ? readText(path.join(folder, FILES.overview)) : undefined;
  const errorSummary = names.has(FILES.errors) ? readText(path.join(folder, FILES.errors)) : undefined;
  const consoleTails = files
    .filter((f) => /^console(?:\.process-\d+)?\.log$/.test(f.name) && f.bytes > 0)
    .map((f) => ({ file: f.name, tail: readTail(path.join(folder, f.name), 4096) }));

  // logs
  const logs = new LogCollector(options.logSample ?? LOG_SAMPLE, options.light === true);
  const runIds = new Map<string, { runId: string; first: number; records: number }>();
  const starts: number[] = [];
  for (const name of matching('logs', '.jsonl')) {
    const proc = processOf(name);
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
    /** The run writing this file: named on the first record of each start (on every record in folders written before 0.2). */
    let run: { runId: string; first: number; records: number } | undefined;
    readJsonLines(
      path.join(folder, name),
      rel(name),
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
    logs.endFile(path.join(folder, name), (text, t) => {
      try {
        const rec = JSON.parse(text) as unknown;
        return obj(rec) ? record(rec as Record<string, unknown>, t) : undefined;
      } catch {
        return undefined;
      }
    });
  }

  // metrics: read (and checked) even when light, kept only when not
  const metrics = new MetricCollector();
  for (const name of matching('metrics', '.jsonl')) {
    const proc = processOf(name);
    const label = rel(name);
    readJsonLines(
      path.join(folder, name),
      label,
      (rec, line) => {
        const metricName = rec.name;
        const kind = rec.kind;
        if (typeof metricName !== 'string' || typeof kind !== 'string') {
          throw new RunFolderError(`${label}:${line}: not a metric record (expected "kind" and "name")`, label, line);
        }
        if (options.light) return;
        metrics.add({ time: time(rec.time) ?? 0, kind, name: metricName, value: rec.value, step: num(rec.step), process: proc });
      },
      notes,
    );
  }
  if (metrics.dropped > 0) notes.push({ file: rel('metrics.jsonl'), line: 0, message: `${rel('metrics.jsonl')}: more than 10,000 metric names: ${metrics.dropped} records of the others are not shown` });

  // resources (src/resources/)
  const resources: ResourceSample[] = [];
  for (const name of matching('resources', '.jsonl')) {
    const proc = processOf(name);
    readJsonLines(
      path.join(folder, name),
      rel(name),
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

  const stepName = str(identity.stepName) ?? (nodeRank !== undefined ? path.basename(path.dirname(folder)) : path.basename(folder));
  let outcome = main?.outcome ?? 'unknown';
  if (outcome === 'unknown' && str(result?.status)) outcome = result!.status === 'succeeded' ? 'success' : result!.status === 'terminated' ? 'terminated' : 'failure';
  const logSummary = logs.finish();
  const firstSeen = Math.min(attemptSet.firstStart ?? Infinity, logSummary.firstTime ?? Infinity, stepSpanStart ?? Infinity);
  const lastSeen = Math.max(attemptSet.lastEnd ?? -Infinity, logSummary.last?.time ?? -Infinity, stepSpanEnd ?? -Infinity);
  return {
    folder,
    label,
    name: stepName,
    nodeRank: nodeRank ?? (num(identity.nodeCount) !== undefined && (identity.nodeCount as number) > 1 ? num(identity.nodeRank) : undefined),
    outcome,
    started: main?.started ?? (Number.isFinite(firstSeen) ? firstSeen : undefined),
    ended: main?.ended ?? stepSpanEnd ?? (Number.isFinite(lastSeen) && outcome !== 'running' ? lastSeen : undefined),
    identity,
    runtime,
    tags,
    processes,
    exports,
    diagnostics,
    stepSpanAttributes,
    attempts: attemptSet,
    miniBatches: rows.finish(),
    workers,
    result,
    progressOverview,
    errorSummary,
    logs: logSummary,
    metrics: metrics.finish(),
    errorSpans,
    spanCount,
    runIds: [...runIds.values()].sort((a, b) => a.first - b.first),
    starts: starts.sort((a, b) => a - b),
    consoleTails,
    resources,
    files,
  };
}
