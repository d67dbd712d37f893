// What a run folder holds, as the report and the doctor see it: read in one pass, and kept in a
// size that does not grow with the mini-batches (exact counts and sums, bounded samples; see
// docs/report-and-doctor.md). Times are Unix milliseconds.
import type { ReadNote } from './files.js';

/** One mini-batch attempt: a CONSUMER span of the runner (or a row of its processed report). */
export interface Attempt {
  readonly id: string;
  readonly attempt: number;
  readonly items: number;
  readonly worker: string;
  readonly start: number;
  readonly durationMs: number;
  /** `success`, `error`, `timeout`, `crash`, `aborted` (the runner's `mini_batch.outcome`). */
  readonly outcome: string;
  readonly errorType?: string;
  readonly errorMessage?: string;
  /** Kept on the earliest failed attempt of each cause of failure only (the report and the doctor show one). */
  readonly stack?: string;
  readonly itemsFailed?: number;
  /** Time inside run(), and what the worker used meanwhile (when it said): CPU ms, RSS at the end, heap growth. */
  readonly runMs?: number;
  readonly cpuMs?: number;
  readonly rssBytes?: number;
  readonly heapGrowthBytes?: number;
  /**
   * How many attempts this one stands for: 1, or more for a successful first attempt kept as a
   * uniform sample of a large run (AttemptSet.sampled).
   */
  readonly weight: number;
}

/** Exact figures of the attempts of one outcome. */
export interface DurationStats {
  readonly n: number;
  readonly sumMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** The shortest duration above zero (Infinity when none is). */
  readonly minPositiveMs: number;
}

export interface WorkerAttempts {
  readonly attempts: number;
  /** Attempts that failed (error, timeout, crash). */
  readonly failed: number;
  readonly busyMs: number;
}

/** The fate of a mini-batch: its attempts in order and how it ended. */
export interface MiniBatchFate {
  readonly id: string;
  readonly attempts: readonly Attempt[];
  /** The last attempt's outcome. */
  readonly final: string;
}

export interface Fates {
  /** Mini-batches with at least one attempt. */
  readonly total: number;
  /** Those whose last attempt succeeded. */
  readonly succeeded: number;
  /**
   * Every mini-batch that had a failed attempt, or more than one attempt, with all its attempts, in
   * the order of their first attempt (up to 100,000 of them: `complete`). The others succeeded at
   * their first attempt.
   */
  readonly troubled: ReadonlyMap<string, MiniBatchFate>;
  readonly complete: boolean;
}

/** What one worker's attempts used, as it measured them around run() (the attempts that have the figures). */
export interface WorkerUsage {
  /** Attempts with CPU and run() figures. */
  readonly attempts: number;
  /** Those with run() above zero, and their time in run() and CPU time: the sums below are over them. */
  readonly busyAttempts: number;
  readonly runMs: number;
  readonly cpuMs: number;
  /** The highest RSS at the end of an attempt (0: none said). */
  readonly rssMaxBytes: number;
}

/** What run() used, over all the attempts that have the figures (exact). */
export interface RunUsage {
  readonly byWorker: ReadonlyMap<string, WorkerUsage>;
  /**
   * Attempts whose run() was on a CPU under WAITED_CPU_SHARE of its time: how many, and the 20 that
   * spent the longest off CPU (run() less CPU), longest first.
   */
  readonly waited: { readonly count: number; readonly longest: readonly Attempt[] };
}

/** A step's mini-batch attempts: exact figures, and the attempts themselves within a bound. */
export interface AttemptSet {
  /** Where they came from: the runner's spans, processed-mini-batches.csv (no spans), or nowhere. */
  readonly source: 'spans' | 'processed-report' | 'none';
  /** Every attempt read. */
  readonly count: number;
  /** Per outcome (`success`, `error`, `timeout`, `crash`, `aborted`). */
  readonly byOutcome: Readonly<Record<string, DurationStats>>;
  /** Attempts after the first of their mini-batch. */
  readonly retries: number;
  readonly firstStart?: number;
  /** The latest end of an attempt. */
  readonly lastEnd?: number;
  readonly byWorker: ReadonlyMap<string, WorkerAttempts>;
  /**
   * The attempts, in start order: all of them up to 200,000 successful first attempts; beyond that,
   * every other attempt and a uniform sample of 200,000 of those (each with its weight).
   */
  readonly kept: readonly Attempt[];
  /** Set when `kept` samples the successful first attempts: how many there were, how many are kept. */
  readonly sampled?: { readonly of: number; readonly kept: number };
  /** The failed attempts (error, timeout, crash), in start order: all of them (see Fates.complete). */
  readonly failed: readonly Attempt[];
  readonly fates: Fates;
  readonly usage: RunUsage;
}

/** One line of processed-mini-batches.csv: the final state of a mini-batch. */
export interface MiniBatchRow {
  readonly id: string;
  readonly timesPicked: number;
  readonly worker: string;
  readonly start: number;
  readonly end: number;
  readonly totalItems: number;
  readonly succeededItems: number;
  readonly failedItems: number;
  readonly elapsedSeconds: number;
  readonly runMethodSeconds: number;
  readonly status: string;
  readonly errorCategory: string;
  readonly errorMessage: string;
  /** What run() used in the last attempt (empty cells, or a file from before the columns: undefined). */
  readonly cpuSeconds?: number;
  readonly rssBytes?: number;
  readonly heapGrowthBytes?: number;
  readonly line: number;
}

/** processed-mini-batches.csv in figures. */
export interface MiniBatchRows {
  readonly count: number;
  /** Mini-batches with more than one row (the step ran again into the folder): how many, the first six. */
  readonly repeated: { readonly count: number; readonly examples: readonly string[] };
  /** Rows of mini-batches that ran with failed items (context.failItem, unreadable inputs): all of them up to 50,000. */
  readonly itemFailures: readonly MiniBatchRow[];
  readonly itemFailuresComplete: boolean;
  /** The first row with failed items, whatever its status. */
  readonly firstWithFailedItems?: MiniBatchRow;
  /** The first error message that names run_invocation_timeout. */
  readonly timeoutMessage?: string;
}

export interface LogRecord {
  readonly time: number;
  readonly level: string;
  readonly message: string;
  readonly process: number;
  readonly miniBatch?: string;
  /** `Type: message` of an error carried by the record. */
  readonly error?: string;
  readonly stack?: string;
}

/** The log records of a step: exact counts, and the records within a bound. */
export interface LogSummary {
  /** Records per level. */
  readonly counts: Readonly<Record<string, number>>;
  readonly total: number;
  /** The time of the earliest record. */
  readonly firstTime?: number;
  /**
   * Records in time order: all of them when there are at most `ReadOptions.logSample` (the
   * report's `--max-logs`); beyond, the first 10,000 errors, the first `logSample` warnings, and
   * the first and the last `logSample` of the others (what the report's sample is drawn from).
   */
  readonly records: readonly LogRecord[];
  /** `records` holds every error record. */
  readonly errorsComplete: boolean;
  /** The last record, and the last error record, by time. */
  readonly last?: LogRecord;
  readonly lastError?: LogRecord;
  /** The last error record of each process. */
  readonly lastErrorOf: ReadonlyMap<number, LogRecord>;
}

export interface MetricRecord {
  readonly time: number;
  readonly kind: string;
  readonly name: string;
  readonly value: unknown;
  readonly step?: number;
  readonly process: number;
}

/** A scalar with more finite values than its records hold: figures over all its values, and buckets of them. */
export interface ScalarBuckets {
  /** Finite values. */
  readonly n: number;
  /** Every value had a step index (the x axis), else x is the position of the value. */
  readonly withStep: boolean;
  /** Every x is a whole number. */
  readonly integer: boolean;
  readonly last: number;
  readonly min: number;
  readonly max: number;
  /** At most 1,000 buckets of x, in x order: mean x, mean value, min and max. */
  readonly buckets: readonly { readonly x: number; readonly mean: number; readonly min: number; readonly max: number }[];
}

/** The records of one metric (kind and name), in the order written. */
export interface MetricSeries {
  readonly kind: string;
  readonly name: string;
  /** Records of this kind and name. */
  readonly count: number;
  /**
   * Scalars: the finite values, all of them up to 1,000 (beyond: `buckets`); rows: up to 10,000,
   * then the rows of the last step; lists and tables: the last one; tags: one, all tags merged.
   */
  readonly records: readonly MetricRecord[];
  readonly buckets?: ScalarBuckets;
}

/** A span that ended in error and is not a mini-batch attempt (a `step.span()` block, say). */
export interface ErrorSpan {
  readonly name: string;
  readonly start: number;
  readonly durationMs: number;
  readonly message: string;
  readonly type?: string;
  readonly stack?: string;
  readonly process: number;
}

export interface ExportRecord {
  readonly backend: string;
  readonly signal: string;
  readonly target?: string;
  readonly batches: number;
  readonly failedBatches: number;
  readonly droppedItems: number;
  readonly lastError?: string;
  readonly hint?: string;
  readonly process: number;
}

export interface Runtime {
  readonly node?: string;
  readonly platform?: string;
  readonly arch?: string;
  readonly cpus?: number;
  readonly memoryBytes?: number;
  readonly packageJson?: string;
  readonly dependencies: Readonly<Record<string, string | null>>;
}

export interface StepProcess {
  readonly index: number;
  readonly file: string;
  readonly json: Record<string, unknown>;
  readonly outcome: string;
  readonly started?: number;
  readonly ended?: number;
}

/** One line of resources*.jsonl: a process's resources at `time` (docs/resources.md). Bytes, seconds. */
export interface ResourceSample {
  readonly process: number;
  readonly time: number;
  /** Seconds the line stands for (several samples on a decimated line). */
  readonly periodS: number;
  readonly worker: string;
  readonly pid?: number;
  /** Cumulative CPU seconds of the process (user + system). */
  readonly cpuS: number;
  /** Cumulative seconds its main thread waited for a core (Linux), when known. */
  readonly cpuWaitS?: number;
  readonly rss: number;
  readonly rssMax: number;
  readonly heapUsed: number;
  readonly heapUsedMax: number;
  readonly heapAfterGc?: number;
  /** V8's heap size limit. */
  readonly heapLimit?: number;
  /** The cgroup memory limit of the process, when it has one. */
  readonly memoryLimit?: number;
  readonly eventLoopDelayP99S: number;
  readonly eventLoopDelayMaxS: number;
  readonly eventLoopUtilization?: number;
  /** Cumulative GC pause seconds, all kinds. */
  readonly gcS: number;
  readonly diskReadBytes?: number;
  readonly readChars?: number;
  /** Written on an exit path (end, SIGTERM, uncaught exception, process.exit). */
  readonly final: boolean;
  /** The node, in process index 0's lines. */
  readonly node?: {
    readonly cpus?: number;
    readonly cpuUtilization?: number;
    readonly iowait?: number;
    readonly load1m?: number;
    readonly memoryAvailable?: number;
    readonly memoryTotal?: number;
  };
}

/**
 * A multi-node step's merged job (result.json and the merged files in the step folder that holds
 * the node-<rank> folders: written by the nodes of a shared queue, or `step-telemetry merge`): what
 * the job as a whole did, which the report and the doctor show as the step's verdict.
 */
export interface JobRun {
  readonly folder: string;
  /** The step's name (the folder's). */
  readonly label: string;
  readonly result: Record<string, unknown>;
  /** Labels of its node steps (`score/node-0`, ...). */
  readonly nodes: readonly string[];
}

/** One step (or one node of a multi-node step) of a run. */
export interface StepRun {
  readonly folder: string;
  /** `score`, or `score/node-1`. */
  readonly label: string;
  readonly name: string;
  readonly nodeRank?: number;
  /** `success`, `failure`, `terminated`, `crashed`, `running` (never ended: killed), `unknown` (no step.json). */
  readonly outcome: string;
  readonly started?: number;
  readonly ended?: number;
  readonly identity: Record<string, unknown>;
  readonly runtime?: Runtime;
  readonly tags: Readonly<Record<string, string>>;
  readonly processes: readonly StepProcess[];
  readonly exports: readonly ExportRecord[];
  readonly diagnostics: readonly { readonly kind?: string; readonly message: string; readonly count?: number }[];
  /** Attributes of the step's SERVER span (e.g. `parallel_run.*` of the runner). */
  readonly stepSpanAttributes: Readonly<Record<string, unknown>>;
  readonly attempts: AttemptSet;
  readonly miniBatches: MiniBatchRows;
  readonly workers: readonly Readonly<Record<string, string>>[];
  readonly result?: Record<string, unknown>;
  readonly progressOverview?: string;
  readonly errorSummary?: string;
  readonly logs: LogSummary;
  /** In the order first written; at most 10,000 names. */
  readonly metrics: readonly MetricSeries[];
  readonly errorSpans: readonly ErrorSpan[];
  readonly spanCount: number;
  /** Run ids seen in the logs, with the first time each appears (more than one: the step ran again into this folder). */
  readonly runIds: readonly { readonly runId: string; readonly first: number; readonly records: number }[];
  /** Times of the "step <name> started" records of process 0 (more than one: started again into this folder). */
  readonly starts: readonly number[];
  /** Tails of the workers' console files (`console.process-N.log`), for crash evidence. */
  readonly consoleTails: readonly { readonly file: string; readonly tail: string }[];
  /** resources*.jsonl of every process, in time order per process (up to 200,000 samples). */
  readonly resources: readonly ResourceSample[];
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
  /** For a node of a multi-node step whose job was merged: the job. */
  readonly job?: JobRun;
}

export interface RunData {
  /** `step`: a step folder (or a multi-node step); `pipeline`: a pipeline run folder holding step folders. */
  readonly kind: 'step' | 'pipeline';
  readonly folder: string;
  readonly pipelineRunId: string;
  readonly pipelineName?: string;
  readonly steps: readonly StepRun[];
  /** The merged jobs of its multi-node steps. */
  readonly jobs: readonly JobRun[];
  readonly notes: readonly ReadNote[];
}
