// One job on this node: the scheduler runs the attempts; what becomes of each (a retry, a finished
// mini-batch, the counts and the thresholds, the span and the metrics, the report rows) is decided
// here, and so is the job's end (all done, a threshold, an init() failure, a signal). What the job
// does per mini-batch is a handful of counter and map writes, one span and one histogram sample.
// Its rooms: report-rows.ts (the processed report's rows), failure-lines.ts (the console's failure
// lines), accounting.ts (counts, thresholds), attempt-telemetry.ts (spans, metrics).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ResourceUsage } from '../resources/sampler.js';
import type { Step } from '../step.js';
import { recordedAt } from '../util/recorded-at.js';
import { Accounting, type Counts } from './accounting.js';
import { AttemptTelemetry } from './attempt-telemetry.js';
import type { ResolvedRunConfig } from './config.js';
import { FailureLines } from './failure-lines.js';
import { explainFailedItems } from './failed-items.js';
import type { AppendRowOutput } from './output.js';
import type { FailedItemsFile } from './failed-items-file.js';
import type { OutputJournal } from './output-journal.js';
import type { MiniBatch, UnreadableMiniBatch } from './partition.js';
import type { JobCounts } from './queue/job-state.js';
import type { WorkerProcess } from './pool.js';
import { type ProgressPrinter, type ProgressSnapshot } from './progress.js';
import type { AttemptResult, ItemFailure } from './protocol.js';
import { abortedRow, finishedRow, notRetriedRow, type AttemptsInfo } from './report-rows.js';
import { ErrorLedger, FILES, oneLine, overviewText, writeAtomic, type MiniBatchStatus, type ProcessedReport } from './reports.js';
import type { Attempt, Scheduler, SchedulerEvents } from './scheduler.js';
import type { MiniBatchSource, MiniBatchState, SharedJob } from './source.js';
import type { ParallelRunErrorInfo, ParallelRunStatus } from './types.js';

const OVERVIEW_INTERVAL_MS = 1000;

export interface Outcome {
  readonly status: ParallelRunStatus;
  readonly exitCode: number;
  readonly cause?: ParallelRunErrorInfo;
}

/** What a job writes beside the reports, and what a resumed run found done before. */
export interface JobExtras {
  readonly journal?: OutputJournal;
  readonly failedItems?: FailedItemsFile;
  /** Counts of the mini-batches a resumed run skips (they succeeded before). */
  readonly resumed?: JobCounts;
}

/** Causes that end the job on every node of a shared queue (the first one proposed holds). */
const JOB_WIDE = new Set(['ThresholdExceeded', 'InitFailure', 'ProgressTimeout']);

export class Job implements SchedulerEvents {
  /** The job's counts: job-wide with a shared queue, where `node` holds this node's. */
  readonly acc: Accounting;
  readonly node: Accounting;
  private readonly shared: SharedJob | undefined;
  readonly ledger = new ErrorLedger();
  readonly scheduler: Scheduler;
  readonly telemetry: AttemptTelemetry;
  private readonly started: number;
  private readonly t0: number;
  /** The failure lines on the console (the first ones; the others are counted). */
  private readonly failureLines: FailureLines;
  private outcome: Outcome | undefined;
  private settle!: () => void;
  private readonly settled = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly debug: boolean;
  /** Unreadable inputs of the source failed so far (the cut may find more). */
  private unreadableFailed = 0;

  constructor(
    private readonly config: ResolvedRunConfig,
    private readonly step: Step,
    private readonly source: MiniBatchSource,
    private readonly printer: ProgressPrinter,
    private readonly output: AppendRowOutput | undefined,
    private readonly processed: ProcessedReport | undefined,
    private readonly runFolder: string | undefined,
    /** performance.now() when the job began, before its input was listed (first_task_creation_timeout). */
    private readonly jobStart: number,
    /** Made before the job (its first attempts may have been sent before the step was up: early-start.ts); its events come here. */
    scheduler: Scheduler,
    /** performance.now() when the workers were started: the job's start (result.json, the progress's elapsed time). */
    startedAt: number,
    private readonly extras: JobExtras = {},
  ) {
    this.t0 = startedAt;
    this.started = Math.round(performance.timeOrigin + startedAt);
    this.debug = step.logger.isDebugEnabled();
    // the source's totals, live: they grow while the partition is being cut (final then)
    this.acc = new Accounting(config, source);
    this.shared = source.shared;
    this.node = this.shared ? new Accounting(config, { miniBatches: 0, items: 0 }) : this.acc;
    if (extras.resumed) this.acc.setJobWide(extras.resumed);
    this.telemetry = new AttemptTelemetry(step);
    this.scheduler = scheduler;
    this.failureLines = new FailureLines(printer, step, runFolder);
  }

  get terminating(): boolean {
    return this.outcome !== undefined;
  }

  get workers(): readonly WorkerProcess[] {
    return this.scheduler.workers;
  }

  snapshot = (): ProgressSnapshot => ({
    elapsedMs: performance.now() - this.t0,
    itemsTotal: this.acc.totals.items,
    itemsSucceeded: this.acc.itemsSucceeded,
    itemsFailed: this.acc.itemsFailed,
    miniBatchesTotal: this.acc.totals.miniBatches,
    totalsPartial: !this.source.final,
    miniBatchesDone: this.acc.mbDone,
    miniBatchesFailed: this.acc.mbFailed,
    running: this.scheduler.busyWorkers(),
    retries: this.acc.retries,
    timeouts: this.acc.timeouts,
    workerRestarts: this.acc.restarts,
  });

  async run(): Promise<Outcome> {
    this.telemetry.start(this.source.final ? this.itemsExpected() : undefined);
    if (this.shared) {
      const sh = this.shared;
      sh.onChange = () => this.onShared();
      sh.onUnreadable = (mb) => this.failUnreadable(mb);
      sh.onLost = (st, message) => this.lost(st, message);
      sh.beforeCommit = () => this.extras.journal?.flush();
    } else this.source.onGrow = () => this.grew();
    this.failNewUnreadable();
    // one timer for the run_invocation_timeout deadlines and the progress watchdog, instead of a
    // timer per attempt: a deadline is seen at most a tenth of the timeout (≤ 250 ms) late
    const c = this.config;
    const tick = Math.max(10, Math.min(250, (c.runInvocationTimeout * 1000) / 10, (c.progressUpdateTimeout * 1000) / 4, (c.firstTaskCreationTimeout * 1000) / 4));
    this.timers.push(setInterval(() => this.tick(), tick));
    if (this.runFolder) this.timers.push(setInterval(() => this.writeOverview('running'), OVERVIEW_INTERVAL_MS));
    for (const t of this.timers) t.unref();
    if (!this.outcome) {
      if (this.shared) this.onShared();
      else if (this.acc.complete) this.finish();
      if (!this.outcome) this.scheduler.wake();
    }
    await this.settled;
    for (const t of this.timers) clearInterval(t);
    this.scheduler.flush();
    this.telemetry.counts(this.node);
    this.shared?.halt();
    await this.scheduler.stopAll(this.outcome ? 'aborted' : undefined);
    return this.outcome ?? { status: 'succeeded', exitCode: 0 };
  }

  /** The dashboards sum step.items.expected over the nodes: with a queue, the node that enqueued says it. */
  private itemsExpected(): number {
    const before = this.extras.resumed;
    return this.shared && !this.shared.isLeader ? 0 : this.acc.totals.items - (before ? before.itemsSucceeded + before.itemsFailed : 0);
  }

  /** Inputs that could not be read while partitioning fail as soon as they are found, without a worker. */
  private failNewUnreadable(): void {
    const found = this.source.unreadable;
    while (this.unreadableFailed < found.length && !this.outcome) this.failUnreadable(found[this.unreadableFailed++]!);
  }

  /** The partition cut more of the input, or ended: its totals are final then (the items expected, the percentage threshold, the end). */
  private grew(): void {
    if (this.outcome) return;
    this.failNewUnreadable();
    if (this.outcome || !this.source.final) return;
    this.telemetry.expect(this.itemsExpected());
    this.checkThresholds();
    if (!this.outcome && this.acc.complete) this.finish();
  }

  private tick(): void {
    this.scheduler.flush();
    this.telemetry.counts(this.node);
    this.scheduler.checkDeadlines();
    if (this.outcome) return;
    const late = this.scheduler.firstTaskLate(this.jobStart);
    if (late) return this.abort({ category: 'FirstTaskTimeout', message: late });
    const stalled = this.scheduler.stalled();
    if (stalled) this.abort({ category: 'ProgressTimeout', message: stalled });
  }

  // ---------------------------------------------------------------------------------------------
  // what the scheduler tells

  result(w: WorkerProcess, a: Attempt, r: AttemptResult, nowEpoch: number): void {
    const st = a.st;
    const end = Math.min(r.end, nowEpoch);
    const start = Math.min(r.start, end);
    w.busyMs += end - start;
    w.attempts++;
    st.lastRunMs = r.runMs;
    this.attemptEnded(a, start);
    const seconds = (end - start) / 1000;
    const runMs = Math.round(r.runMs * 1000) / 1000;
    // the rows are on disk before the mini-batch counts as done (and its journal entry before a queue hears of it)
    const offset = this.output?.offset ?? 0;
    if (r.ok && r.lines !== undefined && this.output && !this.output.write(r.lines, r.succeeded)) {
      const message = this.output.error ?? 'cannot write the output file';
      this.telemetry.span(a, start, end, { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'error', 'error.type': 'OutputError' }, { code: SpanStatusCode.ERROR, message });
      this.abort({ category: 'InternalError', message, mini_batch_id: st.mb.id });
      return;
    }
    if (r.ok) {
      const failed = st.mb.items - r.succeeded;
      const sc = this.telemetry.span(
        a,
        start,
        end,
        { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'success', 'mini_batch.items_succeeded': r.succeeded, 'mini_batch.items_failed': failed, 'mini_batch.returned': r.returned },
        { code: SpanStatusCode.OK },
        undefined,
        r.usage,
      );
      this.telemetry.duration(seconds, 'success', sc);
      st.done = true;
      const status = r.ran ? 'RUN_DONE' : 'INPUT_ERROR';
      const failedItems = st.mb.items - r.succeeded;
      const seq =
        status === 'RUN_DONE' && this.extras.journal
          ? this.extras.journal.add({ i: st.mb.index, mb: st.mb.id, o: offset, n: (this.output?.offset ?? 0) - offset, r: r.lines !== undefined ? r.succeeded : 0, ok: r.succeeded, f: failedItems })
          : undefined;
      this.finishMiniBatch(st.mb, status, r.succeeded, r.failures ?? [], st.lastError, {
        attempts: st.attempts,
        start: st.firstStart,
        worker: w,
        runMs: r.runMs,
        returned: r.returned,
        usage: r.usage,
      });
      this.source.settled(st, status, { succeeded: r.succeeded, failed: failedItems, seq });
    } else {
      const e = r.error!;
      const sc = this.telemetry.span(
        a,
        start,
        end,
        { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'error', 'error.type': e.type },
        { code: SpanStatusCode.ERROR, message: `${e.type}: ${e.message}` },
        e,
        r.usage,
      );
      this.telemetry.duration(seconds, 'error', sc);
      w.failedAttempts++;
      this.attemptFailed(a, { category: 'RunException', type: e.type, message: e.message, stack: e.stack, worker: w.name, mini_batch_id: st.mb.id }, 'RUN_EXCEPTION', r.failures ?? [], r.usage);
    }
  }

  timeout(): void {
    this.node.timeouts++;
    if (this.shared) this.shared.local.timeouts++;
    this.telemetry.timeout();
  }

  /** `type`: what killed a crashed worker (`OutOfMemory` for V8's heap limit), `WorkerCrash` by default. */
  attemptLost(a: Attempt, how: 'timeout' | 'crash', start: number, end: number, message: string, crashType: 'OutOfMemory' | 'WorkerCrash' = 'WorkerCrash'): void {
    const timeout = how === 'timeout';
    const type = timeout ? 'RunTimeout' : crashType;
    // run() ran until its worker was killed or died (run_method_seconds of its report row)
    a.st.lastRunMs = end - start;
    this.attemptEnded(a, start);
    const sc = this.telemetry.span(a, start, end, { 'mini_batch.outcome': how, 'error.type': type }, { code: SpanStatusCode.ERROR, message: timeout ? message : oneLine(message, 500) });
    this.telemetry.duration((end - start) / 1000, how, sc);
    this.attemptFailed(a, { category: timeout ? 'RunTimeout' : 'WorkerCrash', type, message, worker: a.worker.name, mini_batch_id: a.st.mb.id }, timeout ? 'RUN_TIMEOUT' : 'PROCESS_CRASH', []);
  }

  /**
   * An attempt cut short by the end of the job (abort, SIGTERM): neither success nor failure.
   * `maybeRan`: one of a chunk whose results the worker held; it may have finished.
   */
  abandoned(a: Attempt, start: number, maybeRan: boolean): void {
    const now = Date.now();
    this.attemptEnded(a, start);
    const message = maybeRan ? 'no result: the job stopped before it reached the runner' : 'not finished: the job stopped';
    this.telemetry.span(a, start, Math.max(start, now), { 'mini_batch.outcome': 'aborted' }, { code: SpanStatusCode.ERROR, message: `aborted: ${message}` });
    this.processed?.add(abortedRow(a.st, a.worker, now, this.outcome?.cause?.category ?? '', message));
  }

  initFailed(cause: ParallelRunErrorInfo): void {
    this.abort(cause);
  }

  restarted(): void {
    this.node.restarts++;
    if (this.shared) this.shared.local.restarts++;
    this.telemetry.workerRestart();
  }

  notice(text: string): void {
    this.failureLines.print(oneLine(text, 400));
  }

  workerMetrics(scalars: readonly (readonly [string, number])[]): void {
    this.telemetry.workerScalars(scalars);
  }

  workerOutput(w: WorkerProcess, line: string, stream: 'stdout' | 'stderr'): void {
    if (line.trim() !== '') this.printer.print(`[${w.name}] ${line}`, stream === 'stderr' ? 'err' : 'out');
  }

  // ---------------------------------------------------------------------------------------------
  // outcomes of attempts and mini-batches

  /** At the end: how many failure lines were not printed. */
  printUnprinted(): void {
    this.failureLines.printUnprinted();
  }

  /** An attempt's outcome is known: it counts as a retry or sets its mini-batch's first start (epoch ms). */
  private attemptEnded(a: Attempt, start: number): void {
    a.st.suspect = false;
    if (a.no > 1) {
      this.node.retries++;
      if (this.shared) this.shared.local.retries++;
      this.telemetry.retry();
    } else if (a.st.firstStart === 0) a.st.firstStart = start;
  }

  /** `usage`: what run() used in this attempt, when the worker said (a row's figures are its last attempt's). */
  private attemptFailed(a: Attempt, error: ParallelRunErrorInfo, status: MiniBatchStatus, failures: readonly ItemFailure[], usage?: ResourceUsage): void {
    const st = a.st;
    st.lastError = error;
    this.ledger.attempt(error);
    const last = st.attempts >= this.config.runMaxTry || this.outcome !== undefined;
    const what = `${st.mb.id} attempt ${a.no}/${this.config.runMaxTry} failed on ${a.worker.name}: ${error.category}: ${error.type && error.category === 'RunException' ? `${error.type}: ` : ''}${error.message}`;
    this.step.withMiniBatch(st.mb.id, () =>
      this.step.logger.warn(last ? `${what}; no tries left` : `${what}; retrying`, {
        attempt: a.no,
        worker: a.worker.name,
        error_category: error.category,
        ...(error.stack ? { stack: error.stack } : {}),
      }),
    );
    this.failureLines.print(`${oneLine(what, 400)}${last ? '; no tries left' : '; retrying'}`);
    if (!last) {
      this.source.retry(st);
      this.scheduler.wake();
      return;
    }
    st.done = true;
    this.finishMiniBatch(st.mb, status, 0, failures, error, { attempts: st.attempts, start: st.firstStart, worker: a.worker, runMs: st.lastRunMs, usage });
    this.source.settled(st, status, { succeeded: 0, failed: st.mb.items });
  }

  /** An input that could not be read while partitioning: failed at once, without a worker. */
  private failUnreadable(mb: UnreadableMiniBatch): void {
    const error: ParallelRunErrorInfo = { category: 'InputError', message: `${mb.file}: ${mb.reason}`, mini_batch_id: mb.id };
    this.ledger.attempt(error);
    this.finishMiniBatch(mb, 'INPUT_ERROR', 0, [{ item: mb.file, reason: mb.reason, input: true }], error, { attempts: 0, start: Date.now(), worker: undefined, runMs: 0 });
    this.shared?.settledUnreadable(mb, { succeeded: 0, failed: mb.items });
  }

  /** A shared queue: the node that ran an attempt of `st` was lost (counted as a crash); without tries left it fails here. */
  private lost(st: MiniBatchState, message: string): void {
    const error: ParallelRunErrorInfo = { category: 'WorkerCrash', type: 'NodeLost', message, mini_batch_id: st.mb.id };
    st.lastError = error;
    this.ledger.attempt(error);
    const last = st.attempts >= this.config.runMaxTry;
    this.failureLines.print(`${oneLine(message, 400)}${last ? '; no tries left' : '; retrying'}`);
    if (!last || this.outcome) return;
    st.done = true;
    this.finishMiniBatch(st.mb, 'PROCESS_CRASH', 0, [], error, { attempts: st.attempts, start: st.firstStart || Date.now(), worker: undefined, runMs: 0 });
    this.source.settled(st, 'PROCESS_CRASH', { succeeded: 0, failed: st.mb.items });
  }

  /** A shared queue's counts, verdict or failure changed. */
  private onShared(): void {
    const sh = this.shared!;
    if (sh.failure) {
      this.abort(sh.failure);
      return;
    }
    const before = this.acc.mbDone;
    this.acc.setJobWide(sh.counts);
    // the job moves when any node finishes a mini-batch: the watchdog of an idle node knows it
    if (this.acc.mbDone > before) this.scheduler.lastProgress = performance.now();
    if (this.outcome) return;
    if (sh.verdict) {
      this.abort({ category: sh.verdict.category, message: sh.verdict.message }, undefined, true);
      return;
    }
    const message = this.acc.exceeded();
    if (message) sh.propose({ category: 'ThresholdExceeded', message: `${message}. Causes: ${this.ledger.digest()}` });
    else if (this.acc.complete) this.finish();
  }

  private finishMiniBatch(
    mb: MiniBatch,
    status: MiniBatchStatus,
    succeeded: number,
    failures: readonly ItemFailure[],
    error: ParallelRunErrorInfo | undefined,
    info: AttemptsInfo,
  ): void {
    const { id, items } = mb;
    const failed = items - succeeded;
    this.node.miniBatchFinished(status === 'RUN_DONE', succeeded, failed);
    // the items of a mini-batch count for the worker of its last attempt, succeeded or failed
    if (info.worker) {
      info.worker.itemsSucceeded += succeeded;
      info.worker.itemsFailed += failed;
    }
    const { category, message } = explainFailedItems({ mb, status, succeeded, failures, error, attempts: info.attempts, returned: info.returned }, this.ledger, this.extras.failedItems);
    this.processed?.add(finishedRow(mb, status, succeeded, info, recordedAt(), category, message));
    if (failed > 0) {
      this.step.withMiniBatch(id, () =>
        this.step.logger.warn(`${id}: ${failed} of ${items} items failed (${status}${category ? `, ${category}` : ''})`, {
          status,
          items,
          items_failed: failed,
          error_category: category,
          error_message: message,
        }),
      );
      if (status === 'RUN_DONE') this.failureLines.print(`${id}: ${oneLine(message, 300)}`);
    } else if (this.debug) {
      this.step.withMiniBatch(id, () => this.step.logger.debug(`${id} done`, { status, items, attempts: info.attempts }));
    }
    this.checkThresholds();
    if (!this.outcome && !this.shared && this.acc.complete) this.finish();
  }

  private checkThresholds(): void {
    // the error budget gauge is summed over the nodes by the dashboards: each node gives its share
    this.telemetry.budget(this.node, this.config.errorThreshold);
    // with a shared queue, the job-wide counts decide (onShared)
    if (this.outcome || this.shared) return;
    const message = this.acc.exceeded();
    if (message) this.abort({ category: 'ThresholdExceeded', message: `${message}. Causes: ${this.ledger.digest()}` });
  }

  // ---------------------------------------------------------------------------------------------
  // the end

  /** Stop the job with a cause: the attempts in flight are abandoned, the workers end. */
  abort(cause: ParallelRunErrorInfo, outcome: Omit<Outcome, 'cause'> = { status: 'failed', exitCode: 1 }, fromVerdict = false): void {
    if (this.outcome) return;
    if (this.shared && !fromVerdict && JOB_WIDE.has(cause.category) && !this.shared.failure) {
      // every node ends with the same cause: the first proposed holds, and comes back through onShared
      this.shared.propose({ category: cause.category as 'ThresholdExceeded', message: cause.message });
      return;
    }
    // what finished before counts (an outcome set while booking stops here: the rest of the batch follows)
    this.scheduler.flush();
    if (this.outcome) return;
    this.outcome = { ...outcome, cause };
    this.step.logger.error(`parallel run ${outcome.status === 'terminated' ? 'terminated' : 'aborted'}: ${cause.category}: ${cause.message}`, {
      error_category: cause.category,
      ...(cause.stack ? { stack: cause.stack } : {}),
    });
    this.scheduler.halt(outcome.status === 'terminated' ? 'terminated' : 'aborted');
    // mini-batches waiting for a retry had failed attempts: each gets its report row
    for (const st of this.source.waiting()) if (st.attempts > 0) this.processed?.add(notRetriedRow(st, Date.now()));
    this.finish();
  }

  terminate(signal: string): void {
    const code = signal === 'SIGINT' ? 130 : 143;
    this.abort({ category: 'Terminated', message: `received ${signal}; stopped the workers and wrote the reports` }, { status: 'terminated', exitCode: code });
  }

  /** Last resort on a second signal: kill everything now. */
  killAll(): void {
    this.scheduler.killAll();
    this.processed?.flush();
  }

  private finish(): void {
    this.settle();
  }

  writeOverview(status: string): void {
    this.scheduler.flush();
    if (!this.runFolder) return;
    this.processed?.flush();
    const c = this.config;
    const text = overviewText({
      stepName: this.step.identity.stepName,
      nodeRank: c.nodeRank,
      nodeCount: c.nodeCount,
      status,
      started: this.started,
      progress: this.snapshot(),
      miniBatchesSucceeded: this.acc.mbSucceeded,
      inFlight: this.scheduler.inFlight,
      waitingRetry: this.source.waitingRetry,
      notStarted: this.source.notStarted,
      errorThreshold: c.errorThreshold,
      allowedFailedCount: c.allowedFailedCount,
      workers: this.scheduler.describeWorkers(),
    });
    writeAtomic(path.join(this.runFolder, FILES.overview), text);
  }

  counts(): Counts {
    return this.acc.counts();
  }

  /** What this node did (with a shared queue; the job's counts are `counts()`): its totals are what it finished. */
  nodeCounts(): Counts | undefined {
    if (!this.shared) return undefined;
    const c = this.node.counts();
    return {
      ...c,
      mini_batches: { ...c.mini_batches, total: c.mini_batches.succeeded + c.mini_batches.failed, not_processed: 0 },
      items: { ...c.items, total: c.items.succeeded + c.items.failed, not_processed: 0 },
    };
  }

  get startedAt(): number {
    return this.started;
  }
}
