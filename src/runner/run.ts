// parallel-run: resolve the configuration, cut the input, start the step, run the job (job.ts)
// under the signal handlers, then write the result and the reports and end the step. With a step
// plan (step-plan.ts), the workers and their first mini-batches start before this process's step
// does, and what they do waits for it (early-start.ts). The room of
// each part of a job: source.ts (where mini-batches come from), scheduler.ts (workers, chunks,
// timeouts, crashes), job.ts (what becomes of each attempt, the job's end), accounting.ts (counts
// and thresholds), attempt-telemetry.ts (spans and metrics), failed-items.ts, reports.ts and
// result.ts (the files and the console summary).
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EnvReader } from '../config.js';
import { resolveIdentity } from '../identity.js';
import { SpanIdPool } from '../otel/span-ids.js';
import type { Step } from '../step.js';
import type { StepOptions } from '../types.js';
import { RunnerConfigError, flagName, resolveRunConfig, type ResolvedRunConfig } from './config.js';
import { FailedItemsFile, failedItemsPath } from './failed-items-file.js';
import { Job, type Outcome } from './job.js';
import { mergeJob } from './merge.js';
import { OutputJournal, journalPath } from './output-journal.js';
import { AppendRowOutput } from './output.js';
import { PartitionCut, startPartition, type Partition } from './partition.js';
import { EarlyStart } from './early-start.js';
import { forkWorkers, stepEnvironment, type WorkerProcess } from './pool.js';
import { ProgressPrinter, type ProgressMode } from './progress.js';
import { ManifestWriter, ProcessedReport, errorSummaryText, writeAtomic, writeWorkerSummary } from './reports.js';
import { jobResult, printSummary } from './result.js';
import { queueName } from './queue/names.js';
import { QueueSource } from './queue/queue-source.js';
import { failedInput, readResume, type ResumeState } from './resume.js';
import { Scheduler } from './scheduler.js';
import { LocalSource } from './source.js';
import { planStep } from './step-plan.js';
import type { ParallelRunErrorInfo, ParallelRunConfig, ParallelRunResult, RunParallelOptions } from './types.js';

/**
 * With a step plan, this process loads its step once each worker's first attempt has an outcome
 * (the workers' start-up has the cores until then), or this long after the fork at the latest.
 */
const LOAD_STEP_AFTER_MS = 500;

/** The identity of the run folder a `--resume FOLDER` writes to again: from its step.json. */
function resumeTarget(folder: string): { pipelineRunId: string; stepName: string; dir: string } {
  let json: { identity?: { pipelineRunId?: string; stepName?: string; nodeCount?: number } } = {};
  try {
    json = JSON.parse(fs.readFileSync(path.join(folder, 'step.json'), 'utf8')) as typeof json;
  } catch (error) {
    throw new RunnerConfigError([{ field: 'resume', source: flagName('resume'), expected: 'a run folder with step.json', got: `${folder} (${(error as Error).message})` }]);
  }
  const id = json.identity ?? {};
  if (typeof id.pipelineRunId !== 'string' || typeof id.stepName !== 'string') {
    throw new RunnerConfigError([{ field: 'resume', source: flagName('resume'), expected: 'a run folder whose step.json names its pipeline run and step', got: folder }]);
  }
  const up = (id.nodeCount ?? 1) > 1 ? 3 : 2;
  let dir = folder;
  for (let i = 0; i < up; i++) dir = path.dirname(dir);
  return { pipelineRunId: id.pipelineRunId, stepName: id.stepName, dir };
}

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

/** runParallel() with CLI flag values on top (see cli.ts, which resolves the configuration, forks the workers and begins the cut first: `begun`). */
export async function runWith(
  api: ParallelRunConfig,
  flags: Readonly<Record<string, unknown>>,
  options: RunParallelOptions,
  begun?: { readonly config: ResolvedRunConfig; readonly preforked: WorkerProcess[]; readonly cut?: PartitionCut },
): Promise<ParallelRunResult> {
  const config = begun?.config ?? resolveRunConfig(api, flags);
  // first_task_creation_timeout counts from here: listing and cutting the input included
  const jobStart = performance.now();
  const notices: string[] = [];
  let partStarted = Date.now();
  let partEnded = partStarted;
  let part: Partition | undefined;
  /** The local partition while it is being cut: its first mini-batches run meanwhile (partition.ts). */
  let cutting: PartitionCut | undefined;
  /** The cut failed after its first slice (not a configuration error: a bug). */
  let cutFailure: ParallelRunErrorInfo | undefined;
  let unidentified = 0;
  /** `whole`: wait for the end of the cut (a queue's leader enqueues it whole); else for its first slice. `files`: the input listed already. */
  const cut = async (whole: boolean, files?: readonly string[]): Promise<Partition> => {
    partStarted = Date.now();
    try {
      if (config.inputFailed) {
        const f = await failedInput(config.inputFailed, config);
        if (f.files.length === 0) throw new RunnerConfigError([{ field: 'input_failed', source: flagName('input_failed'), expected: 'a run folder with failed-items.jsonl (its own, or in its node-<rank> folders)', got: config.inputFailed }]);
        unidentified = f.unidentified;
        part = f.part;
      } else {
        const c = begun?.cut ?? startPartition(config.queue ? { ...config, nodeCount: 1, nodeRank: 0 } : config, files); // a queue: the whole input, whichever node cuts it
        partStarted = c.startedAt;
        part = c;
        await (whole ? c.done : c.first);
        if (!c.final) {
          cutting = c;
          c.done.then(
            () => (partEnded = c.endedAt),
            (error: unknown) => {
              cutFailure = { category: 'InternalError', message: `cannot cut the input: ${(error as Error).message}` };
              job?.abort(cutFailure);
            },
          );
          return part;
        }
        partEnded = c.endedAt;
        return part;
      }
    } catch (error) {
      if (error instanceof RunnerConfigError) throw error;
      throw new RunnerConfigError([{ field: 'input', source: 'input', expected: 'readable input files and folders', got: (error as Error).message }]);
    }
    partEnded = Date.now();
    return part;
  };
  // this node's share of the input: the workers start while it is cut (those it has no work for end then)
  let preforked = config.queue ? [] : (begun?.preforked ?? forkWorkers(config, config.processCountPerNode));
  // a resumed run folder given by path: the step writes to it again (its pipeline run id, step name and root)
  const resumeFolder = typeof config.resume === 'string' ? config.resume : undefined;
  let resumed: ReturnType<typeof resumeTarget> | undefined;
  try {
    resumed = resumeFolder ? resumeTarget(resumeFolder) : undefined;
    if (!config.queue) await cut(false);
  } catch (error) {
    for (const w of preforked) w.kill();
    throw error;
  }

  // a shared queue: joined before the step starts (a Redis that cannot be reached is reported before any work)
  let queue: QueueSource | undefined;
  let job: Job | undefined;
  if (config.queue) {
    const env = new EnvReader(process.env);
    if (!options.step && resumed === undefined && env.first(['STEP_TELEMETRY_PIPELINE_RUN_ID', 'AZUREML_ROOT_RUN_ID']) === undefined) {
      throw new RunnerConfigError([{ field: 'queue', source: flagName('queue'), expected: 'the pipeline run id the nodes share, in STEP_TELEMETRY_PIPELINE_RUN_ID (or AZUREML_ROOT_RUN_ID): it names the job on the queue' }]);
    }
    const id = options.step?.identity ?? resolveIdentity({ name: resumed?.stepName ?? config.stepName, pipelineRunId: resumed?.pipelineRunId, nodeRank: config.nodeRank, nodeCount: config.nodeCount }, process.env, env);
    try {
      queue = await QueueSource.open({
        config,
        address: config.queue,
        name: queueName(id.pipelineRunId, id.stepId),
        partition: (files) => cut(true, files),
        notice: (text) => (job ? job.notice(text) : notices.push(text)),
      });
    } catch (error) {
      if (error instanceof RunnerConfigError) throw error;
      throw new RunnerConfigError([{ field: 'queue', source: flagName('queue'), expected: 'a Redis that answers', got: (error as Error).message }]);
    }
  }
  const owned = options.step === undefined;
  const handleSignals = options.handleSignals ?? owned;
  const stepOptions: StepOptions = {
    name: resumed?.stepName ?? config.stepName,
    ...(resumed ? { pipelineRunId: resumed.pipelineRunId, dir: resumed.dir } : {}),
    nodeRank: config.nodeRank,
    nodeCount: config.nodeCount,
    logLevel: config.loggingLevel,
    console: process.env.STEP_TELEMETRY_CONSOLE?.trim() ? undefined : false,
    handleProcessEvents: false,
    mainScript: config.entryScript,
  };
  // this node's partition, not resumed: the workers start (and run their first mini-batches) before this process's step does
  const spanIds = new SpanIdPool();
  const plan = owned && !queue && !config.resume ? planStep(stepOptions, process.env, spanIds, Date.now()) : undefined;
  // the first workers start before this process's step (they get its identity with their start message)
  if (queue) preforked = forkWorkers(config, Math.min(config.processCountPerNode, queue.miniBatches));
  else if (part!.final) for (const w of preforked.splice(part!.miniBatches.length - part!.miniBatches.unreadable.length)) w.kill();
  const startedAt = performance.now();
  let early: EarlyStart | undefined;
  let scheduler: Scheduler | undefined;
  let earlySource: LocalSource | undefined;
  let earlySignal: NodeJS.Signals | undefined;
  // a signal before the job exists: it is terminated as soon as it does (a second one: at once)
  const onEarlySignal = (signal: NodeJS.Signals): void => {
    if (earlySignal !== undefined) {
      scheduler?.killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    earlySignal = signal;
    early?.soon();
  };
  const offEarlySignals = (): void => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.off(sig, onEarlySignal);
  };
  // what the cut publishes next is handed out, and written to the manifest
  let local: LocalSource | undefined;
  let manifest: ManifestWriter | undefined;
  if (cutting) {
    cutting.onGrow = () => {
      local?.grew();
      manifest?.start();
    };
  }
  if (plan) {
    earlySource = local = new LocalSource(part!);
    early = new EarlyStart(plan.traceparent, spanIds);
    const link = { logger: early.log, stepEnv: stepEnvironment(config, plan.identity, plan.traceparent, plan.runFolder), forwardMetrics: plan.prometheus };
    scheduler = new Scheduler(config, link, earlySource, early, early, plan.runFolder, preforked);
    // one chunk (one mini-batch) per worker until the step is up: the job's steady state starts with everything loaded
    scheduler.firstOnly = true;
    if (handleSignals) for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, onEarlySignal);
    const due = early.due(preforked.length, LOAD_STEP_AFTER_MS);
    // the rest of the cut waits for the same: the workers' start-up and first mini-batches have the cores
    cutting?.holdUntil(due);
    scheduler.ensureWorkers();
    await due;
  }

  let step: Step;
  try {
    // the step's modules load after the fork: the workers' start-up overlaps this process's
    step = options.step ?? (await (await import('../step.js')).startStep(plan?.options ?? stepOptions));
  } catch (error) {
    offEarlySignals();
    if (scheduler) scheduler.killAll();
    else for (const w of preforked) w.kill();
    await queue?.close();
    throw error;
  }
  if (plan && step.traceparent() !== plan.traceparent) {
    step.logger.warn(`the step span's context ${step.traceparent()} is not the one announced to the workers (${plan.traceparent}): the first mini-batches' worker spans may be in another trace`);
  }
  const runFolder = step.runFolder;
  const label = step.identity.stepName;
  const mode = progressMode(options.progress);

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
    ...(queue ? { 'parallel_run.queue': queue.display, 'parallel_run.queue_writer': queue.writer } : {}),
  });

  let output: AppendRowOutput | undefined;
  let setupError: ParallelRunErrorInfo | undefined;
  const outputFolder = config.output ?? (runFolder ? path.join(runFolder, 'output') : path.resolve('parallel-run-output'));
  // --resume: the mini-batches that succeeded are skipped, the output cut back to their rows; a node
  // of a queue that restarts keeps what its folder holds (the queue's records say what counts)
  const stateFolder = resumeFolder ?? runFolder;
  let resume: ResumeState | undefined;
  if (stateFolder && (config.resume || queue)) resume = readResume(stateFolder, config.resume && !queue ? path.join(outputFolder, config.appendRowFileName) : undefined, queue !== undefined, queue?.resumed);
  if (config.outputAction === 'append_row') {
    try {
      output = new AppendRowOutput(outputFolder, config.appendRowFileName, resume !== undefined);
    } catch (error) {
      setupError = { category: 'InternalError', message: `cannot create the output file in ${outputFolder}: ${(error as Error).message}` };
    }
  }
  const processed = runFolder ? new ProcessedReport(runFolder, resume?.processed) : undefined;
  // the manifest: of this node's share, or (a queue) of the whole job by the node that cut it;
  // written between the job's events: a long partition never holds up the first mini-batch
  manifest = runFolder && part ? new ManifestWriter(runFolder, part) : undefined;
  manifest?.start();
  const journal = runFolder ? new OutputJournal(journalPath(runFolder), queue ? queue.writer : 1, output?.file) : undefined;
  const failedItems = runFolder ? new FailedItemsFile(failedItemsPath(runFolder), resume?.failedItems) : undefined;

  const printer = new ProgressPrinter(mode, label, config.progressInterval * 1000, () =>
    job ? job.snapshot() : { elapsedMs: 0, itemsTotal: source.items, itemsSucceeded: 0, itemsFailed: 0, miniBatchesTotal: source.miniBatches, miniBatchesDone: 0, miniBatchesFailed: 0, running: 0, retries: 0, timeouts: 0, workerRestarts: 0, totalsPartial: !source.final },
  );
  const source = queue ?? earlySource ?? (local = new LocalSource(part!, config.resume ? resume?.skip : undefined));
  if (!scheduler) {
    early = new EarlyStart(step.traceparent(), spanIds);
    const link = { logger: step.logger, stepEnv: stepEnvironment(config, step.identity, step.traceparent(), runFolder), forwardMetrics: step.prometheusExport !== undefined };
    scheduler = new Scheduler(config, link, source, early, early, runFolder, preforked);
  }
  job = new Job(config, step, source, printer, output, processed, runFolder, jobStart, scheduler, startedAt, { journal, failedItems, resumed: config.resume && !queue ? resume?.counts : undefined });
  const j = job;
  // what the scheduler said while the step loaded is booked now; then the job hands out work freely
  early!.attach(j, step.logger);
  scheduler.firstOnly = false;
  for (const text of notices) j.notice(text);
  if (unidentified > 0) j.notice(`${unidentified} failed item(s) of ${config.inputFailed} cannot be named (run() returned fewer rows without context.failItem()): they are not run again`);
  if (config.resume && resume && !queue) printer.print(`[${label}] resuming ${stateFolder}: ${resume.skip.size} mini-batches succeeded before and are skipped`);

  // the totals, once the cut has ended (at once unless it is still cutting: its first mini-batches run meanwhile)
  const announce = (): void => {
    const totalItems = source.items;
    const totalMiniBatches = source.miniBatches;
    if (part) {
      const busy = part instanceof PartitionCut ? { 'partition.busy_ms': Math.round(part.busyMs) } : {};
      step.startSpan('partition', { startTime: partStarted, attributes: { 'input.files': part.totalFiles, 'mini_batches.total': part.totalMiniBatches, 'mini_batches.node': part.miniBatches.length, 'items.node': part.items, ...busy } }).end(partEnded);
    }
    step.rootSpan.setAttributes({ 'parallel_run.mini_batches': totalMiniBatches, 'parallel_run.items': totalItems });
    step.logger.info(`parallel run: ${totalItems} items in ${totalMiniBatches} mini-batches on node ${config.nodeRank} of ${config.nodeCount}${queue ? ` from the queue ${queue.display}` : ''}, ${config.processCountPerNode} worker process(es)`, {
      entry_script: config.entryScript,
      input_type: config.inputType,
      mini_batch_size: config.miniBatchSize,
      items: totalItems,
      mini_batches: totalMiniBatches,
      mini_batches_all_nodes: part?.totalMiniBatches ?? totalMiniBatches,
      output: output?.file,
    });
    printer.print(
      `[${label}] ${totalItems} items in ${totalMiniBatches} mini-batches` +
        `${config.partitionKeys.length > 0 ? ` (one per value of partition_keys ${config.partitionKeys.join(', ')})` : ''}` +
        (queue
          ? ` on the queue ${queue.display} (node ${config.nodeRank}${queue.isLeader ? ', which enqueued them' : ''})`
          : `${config.nodeCount > 1 ? ` (node ${config.nodeRank} of ${config.nodeCount}; ${part!.totalMiniBatches} mini-batches on all nodes)` : ''}`) +
        `, up to ${config.processCountPerNode} worker process(es)${runFolder ? `; run folder ${runFolder}` : ''}`,
    );
  };
  if (cutting && !cutting.final) cutting.done.then(announce, () => {});
  else announce();

  // signals: stop the workers first, then write the reports and end the step
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
  offEarlySignals();
  options.signal?.addEventListener('abort', onAbort);

  printer.start();
  let outcome: Outcome;
  if (cutFailure) j.abort(cutFailure);
  if (earlySignal !== undefined) j.terminate(earlySignal);
  if (setupError) {
    j.abort(setupError);
    outcome = await j.run();
  } else if (options.signal?.aborted) {
    j.terminate('abort');
    outcome = await j.run();
  } else {
    outcome = await j.run();
  }
  // the job ended before the cut did (a signal, a threshold): its files are written with the final totals
  if (cutting && !cutting.final) await cutting.finish().catch(() => {});
  printer.stop();
  options.signal?.removeEventListener('abort', onAbort);

  // ---- the result, the files, the step
  const counts = j.counts();
  const result = jobResult({ config, outcome, counts, started: j.startedAt, ended: Date.now(), runFolder, outputFile: output?.file, initFailures: j.scheduler.initFailures, node: j.nodeCounts(), queue: queue?.display, failedItems: failedItems?.file });
  const reason = result.reason;
  output?.close();
  processed?.close();
  manifest?.finish();
  journal?.close();
  failedItems?.close();
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
  // a queue: leave it; once the job is over, a node that ends writes the job's merged files (the last one last)
  if (queue) {
    const over = outcome.status !== 'terminated' && !queue.failure && (queue.verdict !== undefined || counts.mini_batches.not_processed === 0);
    if (over && runFolder && config.nodeCount > 1) {
      const merged = await queue
        .exclusive(async () => mergeJob(path.dirname(runFolder), { records: await queue!.records(), queue: queue!.display }))
        .catch((error: unknown) => ({ error: (error as Error).message, rows: 0, output: undefined, folder: '' }));
      if (merged?.error) printer.print(`[${label}] cannot merge the job's files: ${merged.error}`, 'err');
      else if (merged) printer.print(`[${label}] job merged: ${merged.rows} rows in ${merged.output ?? '(no output)'}; ${merged.folder}`);
      else printer.print(`[${label}] the job's files were not merged here: another node held the merge lock for 10 s (it merges them; else run step-telemetry merge ${path.dirname(runFolder)} --queue <url>)`, 'err');
    }
    await queue.close();
  }
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
