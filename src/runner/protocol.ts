// Messages between the runner (parent) and its worker processes. Kept small: a task names files or
// a byte range, never file contents; a result carries a count, the output lines (append_row only)
// and item-level reasons.
import type { ResourceUsage } from '../resources/sampler.js';
import type { InputType, OutputAction } from './types.js';
import type { TabularFormat } from './tabular.js';

export interface SerializedError {
  readonly type: string;
  readonly message: string;
  readonly stack?: string;
}

/** Parent → worker, once, right after the fork. */
export interface StartMessage {
  readonly type: 'start';
  readonly entryScript: string;
  readonly args: readonly string[];
  readonly worker: string;
  readonly processIndex: number;
  readonly inputType: InputType;
  readonly outputAction: OutputAction;
  /** The runner serves Prometheus (endpoint or Pushgateway): send it the run.log scalars (see MetricsMessage). */
  readonly forwardMetrics: boolean;
  /** How long the entry script's shutdown() may take at the worker's end (shutdown_timeout). */
  readonly shutdownTimeoutMs: number;
}

export interface FilesTask {
  readonly kind: 'files';
  readonly files: readonly string[];
}

export interface TabularTask {
  readonly kind: 'tabular';
  readonly file: string;
  readonly format: TabularFormat;
  readonly start: number;
  readonly end: number;
  readonly firstRow: number;
  readonly firstLine: number;
  readonly header?: readonly string[];
}

/** The rows of one file that belong to a keyed mini-batch (partition_keys). */
export interface KeyedPart {
  readonly file: string;
  readonly format: TabularFormat;
  readonly header?: readonly string[];
  /** Flat triples, in file order: start and end (bytes) and first line of each run of the group's records. */
  readonly ranges: readonly number[];
}

/** A mini-batch of the rows that share the values of the partition_keys columns, from any input file. */
export interface KeyedTask {
  readonly kind: 'keyed';
  readonly keys: Readonly<Record<string, unknown>>;
  readonly parts: readonly KeyedPart[];
}

/** One mini-batch attempt for a worker to run. */
export interface AttemptTask {
  readonly id: string;
  readonly attempt: number;
  /** W3C traceparent of the attempt span: the worker's `run` span is its child. */
  readonly traceparent: string;
  readonly items: number;
  readonly task: FilesTask | TabularTask | KeyedTask;
}

/**
 * Parent → worker: run these attempts, one at a time and in order (a chunk). Short mini-batches go
 * several to a message and their results come back together; a long one goes alone.
 */
export interface RunMessage {
  readonly type: 'run';
  readonly attempts: readonly AttemptTask[];
}

/**
 * Parent → worker: end the step and exit (step.json says `"stopped_by": "runner"`). At the job's
 * normal end the outcome is `success` and the exit code 0; `terminated` (an abort, a timeout, a
 * signal: SIGTERM follows the message) ends it as `terminated` with exit code 143.
 */
export interface StopMessage {
  readonly type: 'stop';
  readonly terminated?: boolean;
}

export type ParentMessage = StartMessage | RunMessage | StopMessage;

/** An item that failed inside a mini-batch, with the reason. */
export interface ItemFailure {
  /** A path, or `file:line` for a row. */
  readonly item: string;
  readonly reason: string;
  /** An input that could not be read (rather than a failure inside run()). */
  readonly input?: boolean;
  /** Items this entry stands for (a whole unreadable byte range); default 1. */
  readonly count?: number;
}

/** Worker → parent: init() finished (or there is none). */
export interface ReadyMessage {
  readonly type: 'ready';
  readonly pid: number;
  readonly initMs: number;
  /** The entry script exports shutdown(): the runner waits up to shutdown_timeout longer for this worker's end. */
  readonly shutdown: boolean;
}

/**
 * Worker → parent: loading the entry script or init() failed, and the worker exits (its exit
 * tells the runner to start another, see Scheduler.startFailed). `exports`: the module has no run()
 * function, which no fresh worker can mend: the job fails at once.
 */
export interface InitErrorMessage {
  readonly type: 'init-error';
  readonly phase: 'load' | 'init' | 'exports';
  readonly error: SerializedError;
}

/** Worker → parent: how the entry script's shutdown() ended (sent before the worker ends its step). */
export interface ShutdownMessage {
  readonly type: 'shutdown';
  readonly outcome: 'ok' | 'failed' | 'timed out';
  readonly ms: number;
  readonly error?: SerializedError;
}

/** How one attempt ended. */
export interface AttemptResult {
  readonly id: string;
  readonly attempt: number;
  readonly ok: boolean;
  /** Items of the mini-batch that succeeded (returned elements, at most the items given to run()). */
  readonly succeeded: number;
  /** Elements run() returned. */
  readonly returned: number;
  /** run() was called (false when no item of the mini-batch could be read). */
  readonly ran: boolean;
  /** Output lines, `\n`-terminated (append_row only). */
  readonly lines?: string;
  readonly failures?: readonly ItemFailure[];
  /** When the worker began and ended the attempt: epoch ms with a fraction (its performance clock). */
  readonly start: number;
  readonly end: number;
  /** Time inside run(), ms. */
  readonly runMs: number;
  /**
   * What the worker process used while run() ran (CPU, RSS at the end, heap growth: see
   * ResourceUsage). Absent when run() was not called or resources are not sampled.
   */
  readonly usage?: ResourceUsage;
  readonly error?: SerializedError;
}

/**
 * Worker → parent: attempts that finished, in the order they were sent. A worker sends them at
 * the end of a chunk, after a failed attempt, when it has held some for HOLD_MS, or when an
 * attempt has awaited for HOLD_MS (then with `running`).
 */
export interface ResultsMessage {
  readonly type: 'results';
  readonly results: readonly AttemptResult[];
  /** The attempt the worker runs now (sent when it has awaited for HOLD_MS), with its start (epoch ms). */
  readonly running?: { readonly id: string; readonly attempt: number; readonly start: number };
}

/**
 * Worker → parent: the latest value of each run.log scalar logged since the last such message
 * (at most one a second, and at the end). Prometheus has one endpoint per job, the runner's: a
 * worker serves none (STEP_TELEMETRY_PROMETHEUS_PORT and _PUSHGATEWAY_URL are not passed on).
 */
export interface MetricsMessage {
  readonly type: 'metrics';
  readonly scalars: readonly (readonly [string, number])[];
}

export type WorkerMessage = ReadyMessage | InitErrorMessage | ShutdownMessage | ResultsMessage | MetricsMessage;

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    return { type: error.name || 'Error', message: error.message, stack: error.stack };
  }
  let message: string;
  try {
    message = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  } catch {
    message = String(error);
  }
  return { type: 'NonErrorThrown', message: `a non-Error value was thrown: ${message}` };
}
