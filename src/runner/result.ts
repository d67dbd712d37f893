// The job's result: what runParallel() returns and result.json holds, and the summary the user
// reads on the console at the end.
import path from 'node:path';
import type { Counts } from './accounting.js';
import type { ResolvedRunConfig } from './config.js';
import type { Outcome } from './job.js';
import { formatDuration, type ProgressPrinter } from './progress.js';
import { FILES, oneLine, round3 } from './reports.js';
import type { ParallelRunResult } from './types.js';

/** The resolved configuration under its ParallelRunConfig names (arguments and environment values left out: they may hold secrets). */
function publicConfig(c: ResolvedRunConfig, output: string | undefined): Readonly<Record<string, unknown>> {
  return {
    entry_script: c.entryScript,
    input: c.inputs,
    output,
    input_type: c.inputType,
    input_pattern: c.inputPattern,
    mini_batch_size: c.miniBatchSize,
    partition_keys: c.partitionKeys.length > 0 ? c.partitionKeys : undefined,
    error_threshold: c.errorThreshold,
    allowed_failed_count: c.allowedFailedCount,
    allowed_failed_percent: c.allowedFailedPercent,
    progress_update_timeout: c.progressUpdateTimeout,
    first_task_creation_timeout: c.firstTaskCreationTimeout,
    output_action: c.outputAction,
    append_row_file_name: c.appendRowFileName,
    process_count_per_node: c.processCountPerNode,
    node_count: c.nodeCount,
    node_rank: c.nodeRank,
    run_invocation_timeout: c.runInvocationTimeout,
    run_max_try: c.runMaxTry,
    shutdown_timeout: c.shutdownTimeout,
    logging_level: c.loggingLevel,
    step_name: c.stepName,
    ...(c.queue ? { queue: c.queue.display, queue_lock_duration: c.queueLockDuration } : {}),
    ...(c.resume ? { resume: c.resume } : {}),
    ...(c.inputFailed ? { input_failed: c.inputFailed } : {}),
    arguments_count: c.arguments.length,
    environment_variables: Object.keys(c.environmentVariables),
  };
}

export interface ResultInput {
  readonly config: ResolvedRunConfig;
  readonly outcome: Outcome;
  readonly counts: Counts;
  /** Epoch ms. */
  readonly started: number;
  readonly ended: number;
  readonly runFolder: string | undefined;
  readonly outputFile: string | undefined;
  /** With a shared queue: what this node did (the counts are the job's), and the queue's address without credentials. */
  readonly node?: Counts;
  readonly queue?: string;
  readonly failedItems?: string;
  /** Worker starts that failed before the worker was ready. */
  readonly initFailures: number;
}

export function jobResult(r: ResultInput): ParallelRunResult {
  const { config, outcome, counts } = r;
  let reason: string;
  if (outcome.status === 'succeeded') {
    reason =
      counts.items.failed === 0
        ? `all ${counts.items.succeeded} items succeeded`
        : `${counts.items.succeeded} of ${counts.items.total} items succeeded, ${counts.items.failed} failed within the thresholds (error_threshold ${config.errorThreshold})`;
  } else {
    reason = oneLine(outcome.cause?.message ?? outcome.status, 600);
  }
  const files: Record<string, string> = {};
  if (r.runFolder) for (const [k, f] of Object.entries(FILES)) files[k] = path.join(r.runFolder, f);
  if (r.failedItems) files.failed_items = r.failedItems;
  return {
    status: outcome.status,
    exit_code: outcome.exitCode,
    reason,
    cause: outcome.cause,
    node_rank: config.nodeRank,
    node_count: config.nodeCount,
    started: new Date(r.started).toISOString(),
    ended: new Date(r.ended).toISOString(),
    duration_seconds: round3((r.ended - r.started) / 1000),
    ...counts,
    init_failures: r.initFailures,
    thresholds: {
      error_threshold: config.errorThreshold,
      allowed_failed_count: config.allowedFailedCount,
      allowed_failed_percent: config.allowedFailedPercent,
      error_budget_used: config.errorThreshold >= 0 ? round3(counts.items.failed / Math.max(1, config.errorThreshold)) : 0,
    },
    ...(r.queue ? { queue: r.queue, node: r.node } : {}),
    run_folder: r.runFolder,
    output_file: r.outputFile,
    files,
    config: publicConfig(config, r.outputFile ? path.dirname(r.outputFile) : config.output),
  };
}

/** The end on the console: the counts, where the output and the reports are, and the cause of a failure. */
export function printSummary(printer: ProgressPrinter, label: string, result: ParallelRunResult, outputRows: number | undefined): void {
  const { items, mini_batches: mbs } = result;
  printer.print(
    `[${label}] ${result.status}: ${items.succeeded} of ${items.total} items succeeded, ${items.failed} failed` +
      `${items.not_processed > 0 ? `, ${items.not_processed} not processed` : ''}; ` +
      `${mbs.total} mini-batches (${mbs.failed} failed), ${result.retries} retries, ${result.timeouts} timeouts, ${result.worker_restarts} worker restarts, ${formatDuration(result.duration_seconds)}`,
  );
  if (result.output_file) printer.print(`[${label}] output: ${result.output_file} (${outputRows} rows)`);
  if (result.run_folder) printer.print(`[${label}] reports: ${result.run_folder} (${FILES.result}, ${FILES.errors}, ${FILES.processed})`);
  const c = result.cause;
  if (result.status !== 'succeeded' && c) {
    const frames = c.stack ? `\n${c.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 8).join('\n')}` : '';
    printer.print(`[${label}] ${result.status === 'terminated' ? 'TERMINATED' : 'FAILED'}: ${c.category}: ${c.message}${frames}`, 'err');
    if (result.run_folder) printer.print(`[${label}] details: ${result.files.errors}`, 'err');
  } else if (items.failed > 0 && result.run_folder) {
    printer.print(`[${label}] failed items and their reasons: ${result.files.errors}`);
  }
}
