// What a run folder holds, as the report and the doctor see it. Times are Unix milliseconds.
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
  readonly stack?: string;
  readonly itemsFailed?: number;
  /** Time inside run(), and what the worker used meanwhile (when it said): CPU ms, RSS at the end, heap growth. */
  readonly runMs?: number;
  readonly cpuMs?: number;
  readonly rssBytes?: number;
  readonly heapGrowthBytes?: number;
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

export interface LogRecord {
  readonly time: number;
  readonly level: string;
  readonly message: string;
  readonly process: number;
  readonly miniBatch?: string;
  readonly runId?: string;
  /** `Type: message` of an error carried by the record. */
  readonly error?: string;
  readonly stack?: string;
}

export interface MetricRecord {
  readonly time: number;
  readonly kind: string;
  readonly name: string;
  readonly value: unknown;
  readonly step?: number;
  readonly process: number;
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
  readonly attempts: readonly Attempt[];
  /** Where the attempts came from. */
  readonly attemptsSource: 'spans' | 'processed-report' | 'none';
  readonly miniBatches: readonly MiniBatchRow[];
  readonly workers: readonly Readonly<Record<string, string>>[];
  readonly result?: Record<string, unknown>;
  readonly progressOverview?: string;
  readonly errorSummary?: string;
  readonly logs: readonly LogRecord[];
  readonly logCounts: Readonly<Record<string, number>>;
  readonly metrics: readonly MetricRecord[];
  readonly errorSpans: readonly ErrorSpan[];
  readonly spanCount: number;
  /** Run ids seen in the logs, with the first time each appears (more than one: the step ran again into this folder). */
  readonly runIds: readonly { readonly runId: string; readonly first: number; readonly records: number }[];
  /** Times of the "step <name> started" records of process 0 (more than one: started again into this folder). */
  readonly starts: readonly number[];
  /** Tails of the workers' console files (`console.process-N.log`), for crash evidence. */
  readonly consoleTails: readonly { readonly file: string; readonly tail: string }[];
  /** resources*.jsonl of every process, in time order per process. */
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
