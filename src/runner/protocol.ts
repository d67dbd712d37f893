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
  /**
   * A slot's first worker, of the job's start: its first mini-batch may run before its step starts
   * when the entry script does not use it (worker-start.ts). A replacement starts its step first, so that
   * one dying on its first mini-batch (the one its predecessor died on, say) leaves its samples.
   */
  readonly quickStart?: boolean;
  /**
   * Set in the worker's environment before its step starts: the runner's step identity, trace and
   * run folder (the process was forked before the runner's step existed, see pool.ts).
   */
  readonly env: Readonly<Record<string, string>>;
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
 * several to a message and their results come back together; a long one goes alone. Packed as
 * arrays (RunPacker, unpackRun): what every attempt of a chunk shares goes once, so a tabular
 * attempt costs about 50 bytes of JSON rather than 250.
 */
export interface RunMessage {
  readonly type: 'run';
  /** `00-<trace id>-` and `-<flags>`: an attempt's traceparent is these around its span id. */
  readonly trace: readonly [string, string];
  /** The tabular files the attempts read: file, format, header (null: none). */
  readonly tables: readonly (readonly [string, TabularFormat, readonly string[] | null])[];
  readonly attempts: readonly PackedAttempt[];
  /** Indexes in `attempts` of those the export rate policy left out: their traceparent says not sampled. */
  readonly unsampled?: readonly number[];
}

/**
 * id, attempt, span id, items, then the paths of a files mini-batch, the task of a keyed one (as
 * it is), or the table (its index in `tables`), start, end, first row and first line of a tabular one.
 */
export type PackedAttempt =
  | readonly [string, number, string, number, readonly string[] | KeyedTask]
  | readonly [string, number, string, number, number, number, number, number, number];

/** Builds RunMessages (the parent's side). */
export class RunPacker {
  private tables: [string, TabularFormat, readonly string[] | null][] = [];
  private attempts: PackedAttempt[] = [];
  private unsampled: number[] | undefined;

  constructor(private readonly trace: readonly [string, string]) {}

  /** `sampled` false: the attempt's traceparent says not sampled (its spans are not exported). */
  add(id: string, attempt: number, spanId: string, items: number, task: AttemptTask['task'], sampled = true): void {
    if (!sampled) (this.unsampled ??= []).push(this.attempts.length);
    if (task.kind !== 'tabular') {
      this.attempts.push([id, attempt, spanId, items, task.kind === 'files' ? task.files : task]);
      return;
    }
    let t = this.tables.length - 1;
    if (t < 0 || this.tables[t]![0] !== task.file) {
      this.tables.push([task.file, task.format, task.header ?? null]);
      t++;
    }
    this.attempts.push([id, attempt, spanId, items, t, task.start, task.end, task.firstRow, task.firstLine]);
  }

  /** The message of the attempts added since the last take(). */
  take(): RunMessage {
    const m: RunMessage = this.unsampled ? { type: 'run', trace: this.trace, tables: this.tables, attempts: this.attempts, unsampled: this.unsampled } : { type: 'run', trace: this.trace, tables: this.tables, attempts: this.attempts };
    this.tables = [];
    this.attempts = [];
    this.unsampled = undefined;
    return m;
  }
}

/** The attempts of a RunMessage (the worker's side). */
export function unpackRun(m: RunMessage): AttemptTask[] {
  const [prefix, flags] = m.trace;
  const unsampled = m.unsampled ? new Set(m.unsampled) : undefined;
  return m.attempts.map((a, i): AttemptTask => {
    const traceparent = `${prefix}${a[2]}${unsampled?.has(i) ? '-00' : flags}`;
    if (a.length === 5) return { id: a[0], attempt: a[1], traceparent, items: a[3], task: Array.isArray(a[4]) ? { kind: 'files', files: a[4] } : (a[4] as KeyedTask) };
    const [file, format, header] = m.tables[a[4]]!;
    return { id: a[0], attempt: a[1], traceparent, items: a[3], task: { kind: 'tabular', file, format, start: a[5], end: a[6], firstRow: a[7], firstLine: a[8], header: header ?? undefined } };
  });
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

/**
 * Worker → parent, first: its message handler is installed, the start message can come (one sent
 * sooner might reach only a listener of a module preloaded with --import, and be lost to the worker).
 */
export interface ListeningMessage {
  readonly type: 'listening';
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

export type WorkerMessage = ListeningMessage | ReadyMessage | InitErrorMessage | ShutdownMessage | ResultsMessage | MetricsMessage;

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
