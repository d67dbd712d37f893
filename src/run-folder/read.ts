// The shared reader of run folders: finds the step folders under a path (a step folder, a
// multi-node step, a pipeline run folder, or a telemetry root holding one pipeline run), and reads
// each step's files into a StepRun, in one pass (step-files.ts) and bounded memory. Runner files
// are optional: a plain step has none.
import fs from 'node:fs';
import path from 'node:path';
import { FILES } from '../runner/reports.js';
import { AttemptCollector } from './attempts.js';
import { RunFolderError, readCsvRecords, readJsonFile, readTail, readText, type ReadNote } from './files.js';
import { IdTable } from './id-table.js';
import { LogCollector } from './log-summary.js';
import { MiniBatchRowCollector } from './mini-batch-rows.js';
import type { ExportRecord, JobRun, RunData, Runtime, StepProcess, StepRun } from './model.js';
import { num, obj, readLogs, readMetrics, readProcessed, readResources, readSpans, str, time, type StepFile } from './step-files.js';

/** Files that only a step folder holds. */
const STEP_FILE = /^(?:step(?:\.process-\d+)?\.json|(?:logs|metrics|spans|resources)(?:\.process-\d+)?\.jsonl|driver(?:\.process-\d+)?\.log|processed-mini-batches\.csv)$/;
const NODE_DIR = /^node-(\d+)$/;
/** Log records kept of each kind (the report's default --max-logs). */
const LOG_SAMPLE = 5000;

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

  const of = (base: string, ext: string): StepFile[] => matching(base, ext).map((name) => ({ path: path.join(folder, name), label: rel(name), process: processOf(name) }));
  const ids = new IdTable();
  const attempts = new AttemptCollector(ids, options.attemptSample);
  const spans = readSpans(of('spans', '.jsonl'), attempts, notes);
  // the runner's files; the processed report gives the attempts when there are no spans
  const rows = new MiniBatchRowCollector(ids);
  const fromSpans = attempts.size > 0;
  if (names.has(FILES.processed)) readProcessed({ path: path.join(folder, FILES.processed), label: rel(FILES.processed), process: 0 }, rows, attempts, !fromSpans, notes);
  const attemptSet = attempts.finish(fromSpans ? 'spans' : attempts.size > 0 ? 'processed-report' : 'none');
  const workers: Record<string, string>[] = [];
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

  const logs = new LogCollector(options.logSample ?? LOG_SAMPLE, options.light === true);
  const { runIds, starts } = readLogs(of('logs', '.jsonl'), logs, notes);
  const metrics = readMetrics(of('metrics', '.jsonl'), options.light === true, notes);
  const resources = readResources(of('resources', '.jsonl'), notes);

  const stepName = str(identity.stepName) ?? (nodeRank !== undefined ? path.basename(path.dirname(folder)) : path.basename(folder));
  let outcome = main?.outcome ?? 'unknown';
  if (outcome === 'unknown' && str(result?.status)) outcome = result!.status === 'succeeded' ? 'success' : result!.status === 'terminated' ? 'terminated' : 'failure';
  const logSummary = logs.finish();
  const firstSeen = Math.min(attemptSet.firstStart ?? Infinity, logSummary.firstTime ?? Infinity, spans.stepSpanStart ?? Infinity);
  const lastSeen = Math.max(attemptSet.lastEnd ?? -Infinity, logSummary.last?.time ?? -Infinity, spans.stepSpanEnd ?? -Infinity);
  return {
    folder,
    label,
    name: stepName,
    nodeRank: nodeRank ?? (num(identity.nodeCount) !== undefined && (identity.nodeCount as number) > 1 ? num(identity.nodeRank) : undefined),
    outcome,
    started: main?.started ?? (Number.isFinite(firstSeen) ? firstSeen : undefined),
    ended: main?.ended ?? spans.stepSpanEnd ?? (Number.isFinite(lastSeen) && outcome !== 'running' ? lastSeen : undefined),
    identity,
    runtime,
    tags,
    processes,
    exports,
    diagnostics,
    stepSpanAttributes: spans.stepSpanAttributes,
    attempts: attemptSet,
    miniBatches: rows.finish(),
    workers,
    result,
    progressOverview,
    errorSummary,
    logs: logSummary,
    metrics,
    errorSpans: spans.errorSpans,
    spanCount: spans.count,
    runIds,
    starts,
    consoleTails,
    resources,
    files,
  };
}
