// The shared reader of run folders: finds the step folders under a path (a step folder, a
// multi-node step, a pipeline run folder, or a telemetry root holding one pipeline run), and reads
// each step's files into a StepRun. Runner files are optional: a plain step has none.
import fs from 'node:fs';
import path from 'node:path';
import { FILES, PROCESSED_COLUMNS } from '../runner/reports.js';
import { RunFolderError, readCsvFile, readJsonFile, readJsonLines, readTail, readText, type ReadNote } from './files.js';
import type { Attempt, ErrorSpan, ExportRecord, JobRun, LogRecord, MetricRecord, MiniBatchRow, ResourceSample, RunData, Runtime, StepProcess, StepRun } from './model.js';

/** Files that only a step folder holds. */
const STEP_FILE = /^(?:step(?:\.process-\d+)?\.json|(?:logs|metrics|spans|resources)(?:\.process-\d+)?\.jsonl|driver(?:\.process-\d+)?\.log|processed-mini-batches\.csv)$/;
const NODE_DIR = /^node-(\d+)$/;
const MAX_LOGS = 300_000;
const MAX_METRICS = 500_000;
const MAX_ERROR_SPANS = 10_000;
const MAX_RESOURCE_SAMPLES = 200_000;

export interface ReadOptions {
  /** Keep only the error and warning log records and no metric records (the files are still read and checked). */
  readonly light?: boolean;
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
    // a multi-node step folder may hold the job's merged files too: its node folders are the steps
    if (isStepFolder(sub) && !entries(sub).some((n) => n.isDirectory() && NODE_DIR.test(n.name))) {
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
  // a multi-node step: <run>/<step>/node-<rank>/ (its own files, if any, are the job's merged ones)
  const base = path.basename(folder);
  const nodes = entries(folder)
    .filter((e) => e.isDirectory() && NODE_DIR.test(e.name) && isStepFolder(path.join(folder, e.name)))
    .map((e) => ({ folder: path.join(folder, e.name), label: `${base}/${e.name}`, nodeRank: Number(NODE_DIR.exec(e.name)![1]) }))
    .sort((a, b) => a.nodeRank - b.nodeRank);
  if (nodes.length > 0) return { kind: 'step', folder, steps: nodes };
  if (isStepFolder(folder)) return { kind: 'step', folder, steps: [{ folder, label: path.basename(folder) }] };
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
  const runRoot = located.kind === 'pipeline' ? located.folder : path.dirname(located.folder);
  const jobs = mergedJobs(located.steps, runRoot);
  const steps = located.steps.map((s) => {
    const step = readStep(s.folder, s.label, s.nodeRank, notes, options, runRoot);
    const job = s.nodeRank !== undefined ? jobs.get(path.dirname(s.folder)) : undefined;
    return job ? { ...step, job } : step;
  });
  // in the order they ran (then by name): prepare, train, score, not alphabetically
  steps.sort((a, b) => (a.started ?? Infinity) - (b.started ?? Infinity) || a.label.localeCompare(b.label, 'en', { numeric: true }));
  const first = steps.find((s) => typeof s.identity.pipelineRunId === 'string');
  return {
    kind: located.kind,
    folder: located.folder,
    pipelineRunId: (first?.identity.pipelineRunId as string | undefined) ?? path.basename(located.kind === 'pipeline' ? located.folder : path.dirname(located.folder)),
    pipelineName: first?.identity.pipelineName as string | undefined,
    steps,
    jobs: [...jobs.values()],
    notes,
  };
}

/** The merged job of each multi-node step (its step folder's own result.json), by step folder. */
function mergedJobs(steps: readonly { folder: string; label: string; nodeRank?: number }[], runRoot: string): Map<string, JobRun> {
  const jobs = new Map<string, JobRun>();
  for (const s of steps) {
    if (s.nodeRank === undefined) continue;
    const folder = path.dirname(s.folder);
    const had = jobs.get(folder);
    if (had) {
      (had.nodes as string[]).push(s.label);
      continue;
    }
    const file = path.join(folder, FILES.result);
    if (!fs.existsSync(file)) continue;
    const result = readJsonFile(file, path.relative(runRoot, file) || FILES.result);
    jobs.set(folder, { folder, label: path.basename(folder), result, nodes: [s.label] });
  }
  return jobs;
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
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
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
  const attempts: Attempt[] = [];
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
          attempts.push({
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
  attempts.sort((a, b) => a.start - b.start || a.attempt - b.attempt);

  // the runner's files
  let miniBatches: MiniBatchRow[] = [];
  if (names.has(FILES.processed)) {
    const csv = readCsvFile(path.join(folder, FILES.processed), rel(FILES.processed), notes, ['mini_batch_id', 'status']);
    const col = (c: (typeof PROCESSED_COLUMNS)[number]): number => csv.header.indexOf(c);
    const idx = Object.fromEntries(PROCESSED_COLUMNS.map((c) => [c, col(c)])) as Record<(typeof PROCESSED_COLUMNS)[number], number>;
    const cell = (cells: readonly string[], c: (typeof PROCESSED_COLUMNS)[number]): string => (idx[c] >= 0 ? (cells[idx[c]] ?? '') : '');
    const n = (cells: readonly string[], c: (typeof PROCESSED_COLUMNS)[number]): number => {
      const v = Number(cell(cells, c));
      return Number.isFinite(v) ? v : 0;
    };
    const maybe = (cells: readonly string[], c: (typeof PROCESSED_COLUMNS)[number]): number | undefined => {
      const t = cell(cells, c);
      return t === '' ? undefined : num(Number(t));
    };
    miniBatches = csv.rows.map(({ line, cells }) => ({
      id: cell(cells, 'mini_batch_id'),
      timesPicked: n(cells, 'times_picked'),
      worker: cell(cells, 'worker'),
      start: time(cell(cells, 'start_time')) ?? 0,
      end: time(cell(cells, 'end_time')) ?? 0,
      totalItems: n(cells, 'total_items'),
      succeededItems: n(cells, 'succeeded_items'),
      failedItems: n(cells, 'failed_items'),
      elapsedSeconds: n(cells, 'elapsed_seconds'),
      runMethodSeconds: n(cells, 'run_method_seconds'),
      status: cell(cells, 'status'),
      errorCategory: cell(cells, 'error_category'),
      errorMessage: cell(cells, 'error_message'),
      cpuSeconds: maybe(cells, 'cpu_seconds'),
      rssBytes: maybe(cells, 'rss_bytes'),
      heapGrowthBytes: maybe(cells, 'heap_growth_bytes'),
      line,
    }));
  }
  let attemptsSource: StepRun['attemptsSource'] = attempts.length > 0 ? 'spans' : 'none';
  if (attempts.length === 0 && miniBatches.length > 0) {
    attemptsSource = 'processed-report';
    for (const m of miniBatches) {
      attempts.push({
        id: m.id,
        attempt: Math.max(1, m.timesPicked),
        items: m.totalItems,
        worker: m.worker || 'main',
        start: m.start,
        durationMs: Math.max(0, m.end - m.start) || m.elapsedSeconds * 1000,
        outcome: STATUS_OUTCOME[m.status] ?? 'error',
        errorType: m.errorCategory || undefined,
        errorMessage: m.errorMessage || undefined,
        itemsFailed: m.failedItems,
        runMs: m.runMethodSeconds * 1000,
        cpuMs: m.cpuSeconds === undefined ? undefined : m.cpuSeconds * 1000,
        rssBytes: m.rssBytes,
        heapGrowthBytes: m.heapGrowthBytes,
      });
    }
    attempts.sort((a, b) => a.start - b.start);
  }
  let workers: Record<string, string>[] = [];
  if (names.has(FILES.workers)) {
    const csv = readCsvFile(path.join(folder, FILES.workers), rel(FILES.workers), notes, ['worker']);
    workers = csv.rows.map(({ cells }) => Object.fromEntries(csv.header.map((h, i) => [h, cells[i] ?? ''])));
  }
  const result = names.has(FILES.result) ? readJsonFile(path.join(folder, FILES.result), rel(FILES.result)) : undefined;
  const progressOverview = names.has(FILES.overview) ? readText(path.join(folder, FILES.overview)) : undefined;
  const errorSummary = names.has(FILES.errors) ? readText(path.join(folder, FILES.errors)) : undefined;
  const consoleTails = files
    .filter((f) => /^console(?:\.process-\d+)?\.log$/.test(f.name) && f.bytes > 0)
    .map((f) => ({ file: f.name, tail: readTail(path.join(folder, f.name), 4096) }));

  // logs
  const logs: LogRecord[] = [];
  const logCounts: Record<string, number> = {};
  const runIds = new Map<string, { runId: string; first: number; records: number }>();
  const starts: number[] = [];
  for (const name of matching('logs', '.jsonl')) {
    const proc = processOf(name);
    let lastTime = 0;
    readJsonLines(
      path.join(folder, name),
      rel(name),
      (rec) => {
        const level = str(rec.level) ?? 'info';
        logCounts[level] = (logCounts[level] ?? 0) + 1;
        const t = time(rec.timestamp) ?? lastTime;
        lastTime = t;
        const runId = str(rec.run_id);
        if (runId !== undefined) {
          const r = runIds.get(runId);
          if (r) {
            r.records++;
            if (t < r.first) r.first = t;
          } else runIds.set(runId, { runId, first: t, records: 1 });
        }
        if (proc === 0 && typeof rec.message === 'string' && rec.message.startsWith('step ') && rec.message.endsWith(' started') && rec.span_id !== undefined) starts.push(t);
        if (options.light && level !== 'error' && level !== 'warn') return;
        if (logs.length >= MAX_LOGS) return;
        const err = obj(rec.error);
        let error: string | undefined;
        let stack = str(rec.stack);
        if (err) {
          error = `${str(err.name) ?? 'Error'}: ${str(err.message) ?? ''}`;
          stack = str(err.stack) ?? stack;
        } else if (typeof rec.error === 'string') error = rec.error;
        const message = typeof rec.message === 'string' ? rec.message : JSON.stringify(rec.message ?? '');
        logs.push({ time: t, level, message, process: proc, miniBatch: str(rec.mini_batch_id), runId, error, stack });
      },
      notes,
    );
  }
  logs.sort((a, b) => a.time - b.time);

  // metrics
  const metrics: MetricRecord[] = [];
  {
    // read (and checked) even when light, kept only when not
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
          if (options.light || metrics.length >= MAX_METRICS) return;
          metrics.push({ time: time(rec.time) ?? 0, kind, name: metricName, value: rec.value, step: num(rec.step), process: proc });
        },
        notes,
      );
    }
  }

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

  const stepName = str(identity.stepName) ?? (nodeRank !== undefined ? path.basename(path.dirname(folder)) : path.basename(folder));
  let outcome = main?.outcome ?? 'unknown';
  if (outcome === 'unknown' && str(result?.status)) outcome = result!.status === 'succeeded' ? 'success' : result!.status === 'terminated' ? 'terminated' : 'failure';
  const firstSeen = Math.min(attempts[0]?.start ?? Infinity, logs[0]?.time ?? Infinity, stepSpanStart ?? Infinity);
  const lastAttempt = attempts.length > 0 ? Math.max(...attempts.slice(-200).map((a) => a.start + a.durationMs)) : -Infinity;
  const lastSeen = Math.max(lastAttempt, logs[logs.length - 1]?.time ?? -Infinity, stepSpanEnd ?? -Infinity);
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
    attempts,
    attemptsSource,
    miniBatches,
    workers,
    result,
    progressOverview,
    errorSummary,
    logs,
    logCounts,
    metrics,
    errorSpans,
    spanCount,
    runIds: [...runIds.values()].sort((a, b) => a.first - b.first),
    starts: starts.sort((a, b) => a - b),
    consoleTails,
    resources,
    files,
  };
}
