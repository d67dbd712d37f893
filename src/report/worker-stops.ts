// The runner's worker processes are parts of the job, not steps of their own: a worker that the
// runner stopped (at the normal end, on an abort, or after a hung run() timed out) must not read as
// a failed step, and what its step recorded on the way out ("step score failed", Terminated:
// received SIGTERM) is not an error of the run.
//
// How a stop by the runner is known, most certain first:
//   1. the worker's step.process-<n>.json says `"stopped_by": "runner"`;
//   2. the runner's worker-summary.csv says how it ended that process (end_reason stopped, aborted,
//      terminated or killed-timeout: the runner's own decisions; crashed is not one);
//   3. in folders written before either existed: the worker's step ended `terminated` and the job
//      ended on its own (result.json status succeeded or failed, not terminated from outside).
import type { ErrorSpan, LogRecord, StepRun } from '../run-folder/model.js';

export interface WorkerStop {
  readonly process: number;
  /** The worker's own step outcome (success, terminated, running when it was killed). */
  readonly outcome: string;
  /** Why the runner stopped it, for people: "at the end of the job", "when the job was aborted", ... */
  readonly why: string;
}

export interface WorkerStops {
  /** Stopped workers by process index. */
  readonly byProcess: ReadonlyMap<number, WorkerStop>;
  /** A log record that a stopped worker's step wrote because it was stopped (not an error of the run). */
  isStopRecord(rec: LogRecord): boolean;
  /** The root span of a stopped worker's step, ended in error by the stop. */
  isStopSpan(span: ErrorSpan): boolean;
  /** Error log records of the step, without the stop records. */
  readonly errors: number;
  readonly stopRecords: number;
}

const RUNNER_ENDS: Record<string, string> = {
  stopped: 'at the end of the job',
  aborted: 'when the job was aborted',
  terminated: 'when the job was terminated',
  'killed-timeout': 'after its run() went past run_invocation_timeout',
};

/** Why, when only the job's own end says it. */
function whyFromStatus(status: string | undefined): string {
  return status === 'terminated' ? RUNNER_ENDS.terminated! : status === 'failed' ? RUNNER_ENDS.aborted! : RUNNER_ENDS.stopped!;
}

export function workerStops(step: StepRun): WorkerStops {
  const status = typeof step.result?.status === 'string' ? step.result.status : undefined;
  const endReasons = new Map<number, string>();
  for (const w of step.workers) {
    const index = Number(w.process_index);
    if (Number.isInteger(index) && w.end_reason) endReasons.set(index, w.end_reason);
  }
  const byProcess = new Map<number, WorkerStop>();
  const outcomes = new Map(step.processes.map((p) => [p.index, p]));
  // a worker the runner stopped before its step wrote anything is in the worker summary only
  const indexes = new Set([...outcomes.keys(), ...endReasons.keys()].filter((k) => k > 0));
  for (const index of indexes) {
    const p = outcomes.get(index);
    const outcome = p?.outcome ?? 'unknown';
    const reason = endReasons.get(index);
    let why: string | undefined;
    if (p?.json.stopped_by === 'runner') why = (reason && RUNNER_ENDS[reason]) || whyFromStatus(status);
    else if (reason !== undefined) why = RUNNER_ENDS[reason];
    else if (outcome === 'terminated' && (status === 'succeeded' || status === 'failed')) why = whyFromStatus(status);
    if (why) byProcess.set(index, { process: index, outcome, why });
  }
  const stopped = (process: number): boolean => byProcess.has(process);
  const endMessage = `step ${step.name} failed`;
  const isStopRecord = (rec: LogRecord): boolean =>
    rec.level === 'error' && stopped(rec.process) && rec.message === endMessage && (rec.error === undefined || /^Terminated\b/.test(rec.error));
  const isStopSpan = (span: ErrorSpan): boolean => stopped(span.process) && span.name === step.name && (span.type === undefined || span.type === 'Terminated');
  let stopRecords = 0;
  if (byProcess.size > 0) for (const rec of step.logs.records) if (isStopRecord(rec)) stopRecords++;
  return {
    byProcess,
    isStopRecord,
    isStopSpan,
    errors: Math.max(0, (step.logs.counts.error ?? 0) - stopRecords),
    stopRecords,
  };
}
