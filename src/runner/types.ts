// Public types of the mini-batch runner: the configuration (Azure ML ParallelRunConfig's names),
// the result, and what an entry script's init() and run() receive.
import type winston from 'winston';
import type { Step } from '../step.js';

export type OutputAction = 'append_row' | 'summary_only';
export type InputType = 'files' | 'tabular';

/**
 * Configuration of a parallel run. The names are ParallelRunConfig's (snake_case), so a YAML file,
 * the CLI flags (the same names in kebab-case) and this object all say the same thing.
 * Precedence: CLI flags > fields of this object > the file named by `config` > defaults.
 */
export interface ParallelRunConfig {
  /** JS or TS module exporting `run(miniBatch, context)` and optionally `init(context)`. Required. */
  entry_script?: string;
  /** Input files and folders (folders are walked recursively, sorted). Required. */
  input?: string | readonly string[];
  /** Output folder (created). Default: `output/` inside the run folder. */
  output?: string;
  /** A YAML or JSON file with any of these fields; relative paths in it are relative to the file. */
  config?: string;
  /** `files` (a mini-batch is a list of paths; the default) or `tabular` (rows of .csv/.tsv/.jsonl/.ndjson files). */
  input_type?: InputType;
  /** Only input files matching this glob (`*`, `**`, `?`, `{a,b}`); matched against the base name when it has no `/`. */
  input_pattern?: string;
  /** Files: a count (default 10). Tabular: a size such as `1MB`, `256KB`, `1048576` (default 1MB); never crosses a file. */
  mini_batch_size?: number | string;
  /**
   * Tabular: column names; the rows with equal values in them form one mini-batch (one per distinct
   * combination, across the input files), whatever its size: as in Azure ML, mini_batch_size is then
   * not used. The values reach run() as `context.partition_keys`. A list, or names separated by commas.
   */
  partition_keys?: string | readonly string[];
  /** Failed items that are tolerated; the job aborts once failed items exceed it. -1 (default) ignores all failures. */
  error_threshold?: number;
  /** Failed mini-batches that are tolerated; -1 (default) ignores them. */
  allowed_failed_count?: number;
  /** Percent of this node's mini-batches that may fail, 0-100 (default 100: no limit). */
  allowed_failed_percent?: number;
  /** Seconds without any mini-batch attempt finishing before the job aborts. Default 3 × run_invocation_timeout × run_max_try. */
  progress_update_timeout?: number;
  /** Seconds from the job's start (listing the input included) to the first mini-batch started on a worker, else the job fails. Default 600. */
  first_task_creation_timeout?: number;
  /** `append_row` (default): every returned row goes to one file in `output`; `summary_only`: rows are only counted. */
  output_action?: OutputAction;
  /** Default `parallel_run_step.txt` (`parallel_run_step.node-<rank>.txt` when node_count > 1). */
  append_row_file_name?: string;
  /** Worker processes on this node. Default 1. */
  process_count_per_node?: number;
  /** Nodes sharing the input. Default: STEP_TELEMETRY_NODE_COUNT, AZ_BATCHAI_NODE_COUNT, ... else 1. */
  node_count?: number;
  /** This node's rank. Default: STEP_TELEMETRY_NODE_RANK, JOB_COMPLETION_INDEX, AZ_BATCHAI_TASK_INDEX, NODE_RANK, else 0. */
  node_rank?: number;
  /** Seconds one run() call may take before its worker is killed and the mini-batch retried. Default 60. */
  run_invocation_timeout?: number;
  /** Tries per mini-batch (first try included). Default 3. */
  run_max_try?: number;
  /** Seconds a worker's `shutdown()` may take before the worker ends without waiting for it. Default 10. */
  shutdown_timeout?: number;
  /** DEBUG, INFO (default), WARNING, ERROR, CRITICAL (winston names work too). */
  logging_level?: string;
  /** Extra arguments for the entry script: in `context.args` and in the worker's `process.argv`. */
  arguments?: readonly string[];
  /** Extra environment variables for the worker processes. */
  environment_variables?: Readonly<Record<string, string>>;
  /** Step name. Default: STEP_TELEMETRY_STEP_NAME, else `parallel-run`. */
  step_name?: string;
  /** Seconds between plain progress lines when the output is not a terminal. Default 10. */
  progress_interval?: number;
  /**
   * A shared queue for many nodes: `redis://[user:password@]host:port/db` (BullMQ on Redis). Default
   * STEP_TELEMETRY_QUEUE_URL; unset: this node runs its share of the static split (node_count).
   */
  queue?: string;
  /** Seconds a node's lease on a mini-batch of the queue lasts unrenewed (a dead or hung node loses it after this). Default 30. */
  queue_lock_duration?: number;
  /** Skip the mini-batches that succeeded in this run folder (`true`: the folder this run writes to) and run the rest. */
  resume?: boolean | string;
  /** Run exactly the failed items listed in this run folder's failed-items.jsonl. */
  input_failed?: string;
}

/** Options of `runParallel()` that are not part of the job's configuration. */
export interface RunParallelOptions {
  /** Record into this step instead of starting one (the runner then neither ends it nor owns signals). */
  step?: Step;
  /** Aborting it stops the run as SIGTERM does (status `terminated`). */
  signal?: AbortSignal;
  /** `auto` (default): a live bar on a terminal, plain lines otherwise; `plain`; `silent`. */
  progress?: 'auto' | 'plain' | 'silent';
  /** Handle SIGTERM/SIGINT while running (stop workers, write reports, end the step). Default true unless `step` is given. */
  handleSignals?: boolean;
}

export type ParallelRunStatus = 'succeeded' | 'failed' | 'terminated';

/** Why a mini-batch attempt, an item or the job failed. */
export type ParallelRunErrorCategory =
  | 'RunException'
  | 'RunTimeout'
  | 'WorkerCrash'
  | 'MissingResults'
  | 'ItemError'
  | 'InputError'
  | 'InitFailure'
  | 'ProgressTimeout'
  | 'FirstTaskTimeout'
  | 'ThresholdExceeded'
  | 'Terminated'
  | 'QueueError'
  | 'InternalError';

export interface ParallelRunErrorInfo {
  readonly category: ParallelRunErrorCategory;
  readonly message: string;
  readonly type?: string;
  readonly stack?: string;
  readonly worker?: string;
  readonly mini_batch_id?: string;
}

/** What `runParallel()` returns; the same object is written to `result.json` in the run folder. */
export interface ParallelRunResult {
  readonly status: ParallelRunStatus;
  readonly exit_code: number;
  /** One line: what happened and why. */
  readonly reason: string;
  /** The error that decided the outcome, for `failed` and `terminated`. */
  readonly cause?: ParallelRunErrorInfo;
  readonly node_rank: number;
  readonly node_count: number;
  readonly started: string;
  readonly ended: string;
  readonly duration_seconds: number;
  readonly mini_batches: { readonly total: number; readonly succeeded: number; readonly failed: number; readonly not_processed: number };
  readonly items: { readonly total: number; readonly succeeded: number; readonly failed: number; readonly not_processed: number };
  readonly retries: number;
  readonly timeouts: number;
  readonly worker_restarts: number;
  /** Worker starts that failed before the worker was ready (init() threw or exited, the process was killed). */
  readonly init_failures: number;
  readonly thresholds: {
    readonly error_threshold: number;
    readonly allowed_failed_count: number;
    readonly allowed_failed_percent: number;
    /** Failed items / error_threshold (0 when the threshold is -1). */
    readonly error_budget_used: number;
  };
  /** With a shared queue: its address (never its credentials); the counts above are the job's, `node` this node's. */
  readonly queue?: string;
  readonly node?: Pick<ParallelRunResult, 'mini_batches' | 'items' | 'retries' | 'timeouts' | 'worker_restarts'>;
  readonly run_folder?: string;
  readonly output_file?: string;
  /** The runner's files in the run folder, by role (result, errors, processed, workers, manifest, overview). */
  readonly files: Readonly<Record<string, string>>;
  /** The resolved configuration under ParallelRunConfig's names (mini_batch_size in files or bytes); the values of `arguments` and `environment_variables` are left out. */
  readonly config: Readonly<Record<string, unknown>>;
}

/** What a tabular mini-batch came from: rows `first_row`..`first_row + rows - 1` (0-based, header excluded) of `file`. */
export interface TabularSource {
  readonly file: string;
  readonly format: 'csv' | 'tsv' | 'jsonl';
  readonly first_row: number;
  readonly rows: number;
}

/** The second argument of `init()`. */
export interface InitContext {
  /** The step logger (winston): records land in the run folder with the step's dimensions. */
  readonly logger: winston.Logger;
  /** The worker's Step (spans, `log()`, ...). */
  readonly step: Step;
  /** Extra arguments (`arguments` / everything after `--` on the command line). */
  readonly args: readonly string[];
  /** `worker-<n>`. */
  readonly worker: string;
  readonly input_type: InputType;
}

/** The second argument of `run()`. */
export interface RunContext extends InitContext {
  readonly mini_batch_id: string;
  /** 1 for the first try. */
  readonly attempt: number;
  /** For a tabular mini-batch: where its rows come from (row i of the mini-batch is `first_row + i`). */
  readonly source?: TabularSource;
  /** With partition_keys: the values of the key columns that all rows of this mini-batch share (`{ store: '1001' }`). */
  readonly partition_keys?: Readonly<Record<string, unknown>>;
  /**
   * Mark one item failed with a reason, for the error summary and the report. `item` is a path,
   * a row object of the mini-batch, or its index. Counting still follows the returned rows:
   * every returned element is one succeeded item.
   */
  failItem(item: unknown, reason: unknown): void;
}

/** The shape of an entry script's module. */
export interface EntryScript {
  init?(context: InitContext): unknown;
  run(miniBatch: unknown[], context: RunContext): unknown;
  /** Once per worker at its end (the job's end, an abort, SIGTERM), after a successful init(), within shutdown_timeout. */
  shutdown?(context: InitContext): unknown;
}
