// parallel-run: resolve the configuration, cut the input, start the step, run the job (job.ts)
// under the signal handlers, then write the result and the reports and end the step. The room of
// each part of a job: source.ts (where mini-batches come from), scheduler.ts (workers, chunks,
// timeouts, crashes), job.ts (what becomes of each attempt, the job's end), accounting.ts (counts
// and thresholds), attempt-telemetry.ts (spans and metrics), failed-items.ts, reports.ts and
// result.ts (the files and the console summary).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Step } from '../step.js';
import { RunnerConfigError, resolveRunConfig } from './config.js';
import { Job, type Outcome } from './job.js';
import { AppendRowOutput } from './output.js';
import { partition as cutInput, type Partition } from './partition.js';
import { forkWorkers } from './pool.js';
import { ProgressPrinter, type ProgressMode } from './progress.js';
import { ManifestWriter, ProcessedReport, errorSummaryText, writeAtomic, writeWorkerSummary } from './reports.js';
import { jobResult, printSummary } from './result.js';
import { LocalSource } from './source.js';
import type { ParallelRunErrorInfo, ParallelRunConfig, ParallelRunResult, RunParallelOptions } from './types.js';

function progressMode(requested: RunParallelOptions['progress']): ProgressMode {
  if (requested === 'silent') return 'silent';
  if (requested === 'plain') return 'plain';
  return process.stderr.isTTY && process.env.CI === undefined ? 'tty' : 'plain';
}

/**
 * Run the entry script over the input in mini-batches, with ParallelRunStep semantics. Resolves
 * with the result (also written to result.json in the run folder); rejects only with a
 * RunnerConfigError, before any work, when the configuration cannot run.
 */
export async function runParallel(config: ParallelRunConfig, options: RunParallelOptions = {}): Promise<ParallelRunResult> {
  return runWith(config, {}, options);
}

/** runParallel() with CLI flag values on top (see cli.ts). */
export async function runWith(api: ParallelRunConfig, flags: Readonly<Record<string, unknown>>, options: RunParallelOptions): Promise<ParallelRunResult> {
  const config = resolveRunConfig(api, flags);
  // first_task_creation_timeout counts from here: listing and cutting the input included
  const jobStart = performance.now();
  const partStarted = Date.now();
  let part: Partition;
  try {
    part = await cutInput(config);
  } catch (error) {
    if (error instanceof RunnerConfigError) throw error;
    throw new RunnerConfigError([{ field: 'input', source: 'input', expected: 'readable input files and folders', got: (error as Error).message }]);
  }
  const partEnded = Date.now();
  // the first workers start while this process's step does (they get its identity with their start message)
  const runnable = part.miniBatches.length - part.miniBatches.unreadable.length;
  const preforked = forkWorkers(config, Math.min(config.processCountPerNode, runnable));

  const owned = options.step === undefined;
  let step: Step;
  try {
    // the step's modules load after the fork: the workers' start-up overlaps this process's
    step =
      options.step ??
      (await (await import('../step.js')).startStep({
        name: config.stepName,
        nodeRank: config.nodeRank,
        nodeCount: config.nodeCount,
        logLevel: config.loggingLevel,
        console: process.env.STEP_TELEMETRY_CONSOLE?.trim() ? undefined : false,
        handleProcessEvents: false,
        mainScript: config.entryScript,
      }));
  } catch (error) {
    for (const w of preforked) w.kill();
    throw error;
  }
  const runFolder = step.runFolder;
  const label = step.identity.stepName;
  const mode = progressMode(options.progress);

  step.startSpan('partition', { startTime: partStarted, attributes: { 'input.files': part.totalFiles, 'mini_batches.total': part.totalMiniBatches, 'mini_batches.node': part.miniBatches.length, 'items.node': part.items } }).end(partEnded);
  step.rootSpan.setAttributes({
    'parallel_run.entry_script': config.entryScript,
    'parallel_run.input_type': config.inputType,
    'parallel_run.mini_batch_size': config.miniBatchSize,
    'parallel_run.process_count_per_node': config.processCountPerNode,
    'parallel_run.node_count': config.nodeCount,
    'parallel_run.node_rank': config.nodeRank,
    'parallel_run.error_threshold': config.errorThreshold,
    'parallel_run.allowed_failed_count': config.allowedFailedCount,
    'parallel_run.allowed_failed_percent': config.allowedFailedPercent,
    'parallel_run.run_invocation_timeout': config.runInvocationTimeout,
    'parallel_run.run_max_try': config.runMaxTry,
    'parallel_run.progress_update_timeout': config.progressUpdateTimeout,
    'parallel_run.first_task_creation_timeout': config.firstTaskCreationTimeout,
    ...(config.partitionKeys.length > 0 ? { 'parallel_run.partition_keys': [...config.partitionKeys] } : {}),
    'parallel_run.output_action': config.outputAction,
    'parallel_run.mini_batches': part.miniBatches.length,
    'parallel_run.items': part.items,
  });

  let output: AppendRowOutput | undefined;
  let setupError: ParallelRunErrorInfo | undefined;
  const outputFolder = config.output ?? (runFolder ? path.join(runFolder, 'output') : path.resolve('parallel-run-output'));
  if (config.outputAction === 'append_row') {
    try {
      output = new AppendRowOutput(outputFolder, config.appendRowFileName);
    } catch (error) {
      setupError = { category: 'InternalError', message: `cannot create the output file in ${outputFolder}: ${(error as Error).message}` };
    }
  }
  const processed = runFolder ? new ProcessedReport(runFolder) : undefined;
  // written between the job's events: a long partition never holds up the first mini-batch
  const manifest = runFolder ? new ManifestWriter(runFolder, part.miniBatches) : undefined;
  manifest?.start();

  let job: Job | undefined;
  const printer = new ProgressPrinter(mode, label, config.progressInterval * 1000, () =>
    job ? job.snapshot() : { elapsedMs: 0, itemsTotal: part.items, itemsSucceeded: 0, itemsFailed: 0, miniBatchesTotal: part.miniBatches.length, miniBatchesDone: 0, miniBatchesFailed: 0, running: 0, retries: 0, timeouts: 0, workerRestarts: 0 },
  );
  job = new Job(config, step, new LocalSource(part), printer, output, processed, runFolder, jobStart, preforked);
  const j = job;

  step.logger.info(`parallel run: ${part.items} items in ${part.miniBatches.length} mini-batches on node ${config.nodeRank} of ${config.nodeCount}, ${config.processCountPerNode} worker process(es)`, {
    entry_script: config.entryScript,
    input_type: config.inputType,
    mini_batch_size: config.miniBatchSize,
    items: part.items,
    mini_batches: part.miniBatches.length,
    mini_batches_all_nodes: part.totalMiniBatches,
    output: output?.file,
  });
  printer.print(
    `[${label}] ${part.items} items in ${part.miniBatches.length} mini-batches` +
      `${config.partitionKeys.length > 0 ? ` (one per value of partition_keys ${config.partitionKeys.join(', ')})` : ''}` +
      `${config.nodeCount > 1 ? ` (node ${config.nodeRank} of ${config.nodeCount}; ${part.totalMiniBatches} mini-batches on all nodes)` : ''}` +
      `, up to ${config.processCountPerNode} worker process(es)${runFolder ? `; run folder ${runFolder}` : ''}`,
  );

  // signals: stop the workers first, then write the reports and end the step
  const handleSignals = options.handleSignals ?? owned;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (j.terminating) {
      // a second signal: no more waiting
      j.killAll();
      if (owned) step.flushLocalSync('terminated', `second ${signal}`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    j.terminate(signal);
  };
  const onUncaught = (error: unknown): void => {
    const e = error instanceof Error ? error : new Error(String(error));
    process.stderr.write(`${e.stack ?? e.message}\n`);
    if (j.terminating) {
      j.killAll();
      if (owned) step.flushLocalSync('crashed', e.message);
      process.exit(1);
    }
    j.abort({ category: 'InternalError', type: e.name, message: `uncaught in the runner: ${e.name}: ${e.message}`, stack: e.stack });
  };
  const onAbort = (): void => j.terminate('abort');
  if (handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('uncaughtException', onUncaught);
  }
  options.signal?.addEventListener('abort', onAbort);

  printer.start();
  let outcome: Outcome;
  if (setupError) {
    j.abort(setupError);
    outcome = await j.run();
  } else if (options.signal?.aborted) {
    j.terminate('abort');
    outcome = await j.run();
  } else {
    outcome = await j.run();
  }
  printer.stop();
  options.signal?.removeEventListener('abort', onAbort);

  // ---- the result, the files, the step
  const counts = j.counts();
  const result = jobResult({ config, outcome, counts, started: j.startedAt, ended: Date.now(), runFolder, outputFile: output?.file, initFailures: j.scheduler.initFailures });
  const reason = result.reason;
  output?.close();
  processed?.close();
  manifest?.finish();
  if (runFolder) {
    j.writeOverview(outcome.status);
    writeWorkerSummary(runFolder, j.workers, Date.parse(result.ended));
    writeAtomic(result.files.result!, `${JSON.stringify(result, null, 2)}\n`);
    const header = `parallel-run error summary: step ${step.identity.stepName}, pipeline run ${step.identity.pipelineRunId}, node ${config.nodeRank} of ${config.nodeCount}`;
    writeAtomic(result.files.errors!, errorSummaryText(result, j.ledger, header));
  }
  step.rootSpan.setAttributes({
    'parallel_run.status': result.status,
    'parallel_run.items_succeeded': counts.items.succeeded,
    'parallel_run.items_failed': counts.items.failed,
    'parallel_run.mini_batches_failed': counts.mini_batches.failed,
  });
  j.printUnprinted();
  printSummary(printer, label, result, output?.rows);

  if (handleSignals) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onUncaught);
    // a signal during the final flush still ends the process with the right code
    if (outcome.status === 'terminated') {
      const again = (): void => process.exit(outcome.exitCode);
      process.once('SIGTERM', again);
      process.once('SIGINT', again);
    }
  }
  if (owned) {
    if (outcome.status === 'succeeded') {
      step.logger.info(`parallel run succeeded: ${reason}`);
      await step.end({ outcome: 'success' });
    } else {
      const error = new Error(reason);
      error.name = outcome.cause?.category ?? 'ParallelRunError';
      if (outcome.cause?.stack) error.stack = `${error.name}: ${reason}\n${outcome.cause.stack.split('\n').filter((l) => /^\s+at /.test(l)).join('\n')}`;
      await step.end({ outcome: outcome.status === 'terminated' ? 'terminated' : 'failure', error });
    }
  }
  return result;
}
