// The runner: one parent process owns the step, the partition, the queue, retries, timeouts,
// thresholds, the per-attempt spans and metrics, and the reports; worker processes run the entry
// script. Short mini-batches go to a worker in chunks and their results come back together (see
// lane.ts), so the parent wakes up once per chunk, not once per mini-batch; what it does per
// mini-batch is a handful of array and map writes, one span and one histogram sample.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import { startStep, type Step } from '../step.js';
import { RunnerConfigError, resolveRunConfig, type ResolvedRunConfig } from './config.js';
import { Lane, CHUNK_BELOW_MS, chunkSize, type LaneAttempt } from './lane.js';
import { AppendRowOutput } from './output.js';
import { partition as cutInput, type MiniBatch, type Partition } from './partition.js';
import { WorkerProcess, type WorkerHandlers } from './pool.js';
import { ProgressPrinter, formatDuration, progressLine, rateAndEta, type ProgressMode, type ProgressSnapshot } from './progress.js';
import type { AttemptResult, AttemptTask, ItemFailure, ResultsMessage, SerializedError, WorkerMessage } from './protocol.js';
import {
  ErrorLedger,
  FILES,
  ProcessedReport,
  errorSummaryText,
  oneLine,
  round3,
  writeAtomic,
  writeManifest,
  writeWorkerSummary,
  type MiniBatchStatus,
} from './reports.js';
import type { ParallelRunErrorCategory, ParallelRunErrorInfo, ParallelRunConfig, ParallelRunResult, ParallelRunStatus, RunParallelOptions } from './types.js';

/** A timed-out worker gets this long to die on SIGTERM before SIGKILL. */
const TIMEOUT_KILL_GRACE_MS = 1000;
/** Failure lines printed on the console before the rest only go to the files. */
const PRINTED_FAILURES = 20;
const OVERVIEW_INTERVAL_MS = 1000;

interface MiniBatchState {
  readonly mb: Exclude<MiniBatch, { kind: 'unreadable' }>;
  /** What a worker is sent to run it (the same for every attempt). */
  task: AttemptTask['task'] | undefined;
  attempts: number;
  /** Epoch ms when its first attempt began; 0 until one ended. */
  firstStart: number;
  lastError: ParallelRunErrorInfo | undefined;
  lastRunMs: number;
  done: boolean;
  /**
   * It was in the chunk of a worker that hung or crashed before reporting which of the chunk ran:
   * it runs alone next, so that the culprit is known.
   */
  suspect: boolean;
}

/** An attempt sent to a worker; it is on the worker's lane until its outcome is known. */
interface Attempt extends LaneAttempt {
  readonly st: MiniBatchState;
  readonly worker: WorkerProcess;
  /** The attempt span's id, drawn when the attempt is sent; the span is created when its outcome is known. */
  readonly spanId: string;
  /** What the export rate policy decided when it was sent (`step.sampleForExport()`); 0: its traceparent says not sampled. */
  readonly exportProbability: number;
  /** Sent while its worker still had attempts to run: in a chunk, or a chunk sent in advance. */
  readonly prefetched: boolean;
  readonly chunk: number;
}

interface Outcome {
  readonly status: ParallelRunStatus;
  readonly exitCode: number;
  readonly cause?: ParallelRunErrorInfo;
}

function flushTimeoutMs(env: NodeJS.ProcessEnv): number {
  const n = Number(env.STEP_TELEMETRY_FLUSH_TIMEOUT_MS);
  return Number.isInteger(n) && n >= 0 ? n : 5000;
}

/** The run folder's root (`STEP_TELEMETRY_DIR`), from the run folder and the identity. */
function telemetryDir(runFolder: string, nodeCount: number): string {
  let dir = path.dirname(path.dirname(runFolder));
  if (nodeCount > 1) dir = path.dirname(dir);
  return dir;
}

class Job {
  private readonly states: MiniBatchState[] = [];
  private next = 0;
  private readonly retryQueue: MiniBatchState[] = [];
  private readonly slots: (WorkerProcess | undefined)[];
  private readonly slotUsed: boolean[];
  /** What each live worker has been sent and not reported. */
  private readonly lanes = new Map<WorkerProcess, Lane<Attempt>>();
  /** Attempts on all lanes. */
  private outstanding = 0;
  /** Results taken off the lanes and not booked yet (see onResults), and the timer that books them. */
  private unbooked: Array<{ w: WorkerProcess; a: Attempt; r: AttemptResult; nowEpoch: number }> = [];
  private bookTimer: NodeJS.Timeout | undefined;
  readonly workers: WorkerProcess[] = [];
  private nextProcessIndex = 1;
  readonly ledger = new ErrorLedger();
  private readonly started = Date.now();
  private readonly t0 = performance.now();
  private lastProgress = performance.now();
  private printedFailures = 0;
  private outcome: Outcome | undefined;
  private settle!: () => void;
  private readonly settled = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly debug: boolean;
  private readonly workerEnv: NodeJS.ProcessEnv;
  private readonly graceMs: number;
  private readonly stepSpanContext: SpanContext;
  /** `00-<trace id>-` and `-<flags>` of the step's trace: a traceparent is these around a span id. */
  private readonly traceparentPrefix: string;
  private readonly traceparentFlags: string;

  // counters
  private mbDone = 0;
  private mbSucceeded = 0;
  private mbFailed = 0;
  private itemsSucceeded = 0;
  private itemsFailed = 0;
  private retries = 0;
  private timeouts = 0;
  private restarts = 0;
  private lastFinish = 0;
  /** What recordCounts() last gave the instruments. */
  private recorded = { mbSucceeded: 0, mbFailed: 0, itemsSucceeded: 0, itemsFailed: 0, lastFinish: 0 };
  private budgetRecorded = 0;

  constructor(
    private readonly config: ResolvedRunConfig,
    private readonly step: Step,
    private readonly part: Partition,
    private readonly printer: ProgressPrinter,
    private readonly output: AppendRowOutput | undefined,
    private readonly processed: ProcessedReport | undefined,
    private readonly runFolder: string | undefined,
  ) {
    this.slots = new Array<WorkerProcess | undefined>(config.processCountPerNode).fill(undefined);
    this.slotUsed = new Array<boolean>(config.processCountPerNode).fill(false);
    this.debug = step.logger.isDebugEnabled();
    const sc = step.rootSpan.spanContext();
    this.stepSpanContext = sc;
    this.traceparentPrefix = `00-${sc.traceId}-`;
    this.traceparentFlags = `-0${sc.traceFlags & 1}`;
    const id = step.identity;
    this.graceMs = flushTimeoutMs(process.env) + 1000;
    this.workerEnv = {
      ...process.env,
      ...config.environmentVariables,
      STEP_TELEMETRY_STEP_NAME: id.stepName,
      STEP_TELEMETRY_STEP_ID: id.stepId,
      STEP_TELEMETRY_RUN_ID: id.runId,
      STEP_TELEMETRY_PIPELINE_RUN_ID: id.pipelineRunId,
      STEP_TELEMETRY_PIPELINE_NAME: id.pipelineName,
      STEP_TELEMETRY_NODE_RANK: String(config.nodeRank),
      STEP_TELEMETRY_NODE_COUNT: String(config.nodeCount),
      STEP_TELEMETRY_LOG_LEVEL: config.loggingLevel,
      STEP_TELEMETRY_CONSOLE: 'false',
      STEP_TELEMETRY_HANDLE_PROCESS_EVENTS: 'true',
      TRACEPARENT: step.traceparent(),
    };
    if (runFolder) this.workerEnv.STEP_TELEMETRY_DIR = telemetryDir(runFolder, id.nodeCount);
    else this.workerEnv.STEP_TELEMETRY_LOCAL = 'false';
    delete this.workerEnv.STEP_TELEMETRY_PROCESS_INDEX;
  }

  get terminating(): boolean {
    return this.outcome !== undefined;
  }

  snapshot = (): ProgressSnapshot => ({
    elapsedMs: performance.now() - this.t0,
    itemsTotal: this.part.items,
    itemsSucceeded: this.itemsSucceeded,
    itemsFailed: this.itemsFailed,
    miniBatchesTotal: this.part.miniBatches.length,
    miniBatchesDone: this.mbDone,
    miniBatchesFailed: this.mbFailed,
    running: this.busyWorkers(),
    retries: this.retries,
    timeouts: this.timeouts,
    workerRestarts: this.restarts,
  });

  async run(): Promise<Outcome> {
    const ins = this.step.instruments;
    ins.record('itemsExpected', this.part.items);
    ins.record('errorBudgetUsed', 0);
    for (const mb of this.part.miniBatches) {
      if (mb.kind === 'unreadable') continue;
      this.states.push({ mb, task: undefined, attempts: 0, firstStart: 0, lastError: undefined, lastRunMs: 0, done: false, suspect: false });
    }
    // inputs that could not be read while partitioning fail right away, without a worker
    for (const mb of this.part.miniBatches) {
      if (mb.kind !== 'unreadable' || this.outcome) continue;
      const now = Date.now();
      const error: ParallelRunErrorInfo = { category: 'InputError', message: `${mb.file}: ${mb.reason}`, mini_batch_id: mb.id };
      this.ledger.attempt(error);
      this.finishMiniBatch(mb, 'INPUT_ERROR', 0, [{ item: mb.file, reason: mb.reason, input: true }], error, { attempts: 0, start: now, worker: undefined, runMs: 0 });
    }
    // one timer for the run_invocation_timeout deadlines and the progress watchdog, instead of a
    // timer per attempt: a deadline is seen at most a tenth of the timeout (≤ 250 ms) late
    const tick = Math.max(10, Math.min(250, (this.config.runInvocationTimeout * 1000) / 10, (this.config.progressUpdateTimeout * 1000) / 4));
    this.timers.push(setInterval(() => this.tick(), tick));
    if (this.runFolder) this.timers.push(setInterval(() => this.writeOverview('running'), OVERVIEW_INTERVAL_MS));
    for (const t of this.timers) t.unref();
    if (!this.outcome) {
      if (this.mbDone === this.part.miniBatches.length) this.finish();
      else this.ensureWorkers();
    }
    await this.settled;
    for (const t of this.timers) clearInterval(t);
    this.bookResults();
    this.recordCounts();
    // the end: stop the workers that are still there, within the bound
    await Promise.all(this.workers.filter((w) => w.alive).map((w) => (this.outcome ? w.terminate(this.graceMs, 'aborted') : w.stop(this.graceMs, 'stopped'))));
    return this.outcome ?? { status: 'succeeded', exitCode: 0 };
  }

  // ---------------------------------------------------------------------------------------------
  // workers

  /** Mini-batches not handed out: waiting for a retry, or not started. */
  private unassigned(): number {
    return this.retryQueue.length + (this.states.length - this.next);
  }

  private remainingWork(): number {
    return this.unassigned() + this.outstanding;
  }

  private busyWorkers(): number {
    let n = 0;
    for (const lane of this.lanes.values()) if (lane.busy) n++;
    return n;
  }

  private ensureWorkers(): void {
    if (this.outcome) return;
    const wanted = Math.min(this.config.processCountPerNode, this.remainingWork());
    let live = this.workerCount();
    for (let slot = 0; slot < this.slots.length && live < wanted; slot++) {
      const w = this.slots[slot];
      if (w !== undefined && w.alive && !w.expectingExit) continue;
      this.spawn(slot);
      live++;
    }
  }

  private spawn(slot: number): void {
    const restart = this.slotUsed[slot]!;
    this.slotUsed[slot] = true;
    if (restart) {
      this.restarts++;
      this.step.instruments.record('workerRestarts', 1);
    }
    const processIndex = this.nextProcessIndex++;
    const handlers: WorkerHandlers = {
      onMessage: (w, m) => this.onMessage(w, m),
      onExit: (w, code, signal) => this.onExit(w, code, signal),
      onStderrLine: (w, line) => {
        if (line.trim() !== '') this.printer.print(`[${w.name}] ${line}`, 'err');
      },
    };
    const w = new WorkerProcess({
      slot,
      processIndex,
      env: { ...this.workerEnv, STEP_TELEMETRY_PROCESS_INDEX: String(processIndex) },
      consoleFile: this.runFolder ? path.join(this.runFolder, `console.process-${processIndex}.log`) : undefined,
      handlers,
      start: {
        type: 'start',
        entryScript: this.config.entryScript,
        args: this.config.arguments,
        worker: `worker-${slot}`,
        processIndex,
        inputType: this.config.inputType,
        outputAction: this.config.outputAction,
      },
    });
    this.lanes.set(w, new Lane<Attempt>());
    this.slots[slot] = w;
    this.workers.push(w);
    this.step.logger.info(`${restart ? 'restarted' : 'started'} ${w.name}`, { worker: w.name, pid: w.pid, process_index: processIndex });
  }

  private onMessage(w: WorkerProcess, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        w.readyAt = Date.now();
        w.initMs = m.initMs;
        if (w.state === 'starting') w.state = 'idle';
        this.step.logger.info(`${w.name} ready`, { worker: w.name, pid: w.pid, init_seconds: round3(m.initMs / 1000) });
        this.lastProgress = performance.now();
        this.dispatch(w);
        break;
      case 'init-error': {
        w.endReason = 'init-failed';
        const what = m.phase === 'load' ? 'loading the entry script' : 'init()';
        this.abort({
          category: 'InitFailure',
          type: m.error.type,
          message: `${what} failed in ${w.name} (pid ${w.pid}): ${m.error.type}: ${m.error.message}`,
          stack: m.error.stack,
          worker: w.name,
        });
        break;
      }
      case 'results':
        this.onResults(w, m);
        break;
    }
  }

  /**
   * Give `w` work: a chunk to run now when it is idle, and, while its attempts are short, the next
   * chunk in advance, so that it never waits for a round trip through this process. A chunk is one
   * mini-batch while attempts are long or not yet measured (see chunkSize in lane.ts): an idle
   * worker then never waits behind a long one queued elsewhere.
   */
  private dispatch(w: WorkerProcess): void {
    if (this.outcome || !w.alive || w.expectingExit || w.readyAt === undefined) return;
    const lane = this.lanes.get(w);
    if (!lane || lane.chunks >= 2 || (lane.chunks === 1 && !this.mayPrefetch(w))) return;
    const size = chunkSize(w.recentAttemptMs, this.unassigned(), this.workerCount());
    const ahead = lane.busy;
    const picked: MiniBatchState[] = [];
    while (picked.length < size) {
      const st = this.retryQueue.shift() ?? (this.next < this.states.length ? this.states[this.next++] : undefined);
      if (st === undefined) break;
      if (st.suspect && picked.length > 0) {
        this.retryQueue.unshift(st);
        break;
      }
      picked.push(st);
      if (st.suspect) break;
    }
    if (picked.length === 0) {
      if (!ahead) w.state = 'idle';
      return;
    }
    const attempts: Attempt[] = [];
    const tasks: AttemptTask[] = [];
    for (let i = 0; i < picked.length; i++) {
      const st = picked[i]!;
      const no = ++st.attempts;
      const mb = st.mb;
      // the span id goes with the task; the span is created when the outcome is known
      const spanId = this.step.newSpanId();
      const exportProbability = this.step.sampleForExport();
      st.task ??=
        mb.kind === 'files'
          ? { kind: 'files', files: mb.files }
          : { kind: 'tabular', file: mb.file, format: mb.format, start: mb.start, end: mb.end, firstRow: mb.firstRow, firstLine: mb.firstLine, header: mb.header };
      attempts.push({ id: mb.id, no, last: i === picked.length - 1, st, worker: w, spanId, exportProbability, prefetched: ahead || i > 0, chunk: picked.length });
      tasks.push({ id: mb.id, attempt: no, traceparent: `${this.traceparentPrefix}${spanId}${exportProbability > 0 ? this.traceparentFlags : '-00'}`, items: mb.items, task: st.task });
    }
    lane.add(attempts, performance.now());
    this.outstanding += attempts.length;
    w.state = 'busy';
    // the channel closed under us: the exit handler sees the worker end
    if (!w.send({ type: 'run', attempts: tasks })) w.kill();
    else if (!ahead) this.dispatch(w);
  }

  /**
   * A worker whose recent attempts were short gets its next chunk while it still runs one, so it
   * goes on without waiting for a round trip through this process. Long mini-batches are not sent
   * in advance: the round trip is noise next to them, and one queued behind a long one would wait
   * while another worker may be idle.
   */
  private mayPrefetch(w: WorkerProcess): boolean {
    return w.recentAttemptMs !== undefined && w.recentAttemptMs < CHUNK_BELOW_MS && this.unassigned() > 0 && this.remainingWork() > this.workerCount();
  }

  private workerCount(): number {
    let n = 0;
    for (const w of this.slots) if (w !== undefined && w.alive && !w.expectingExit) n++;
    return n;
  }

  /**
   * Attempts of a worker that ended before reporting them go back to the front of the queue,
   * uncounted (in their order): those it never began, and those it finished whose results it still
   * held. After an abort they are not processed.
   */
  private giveBack(attempts: readonly Attempt[]): void {
    if (attempts.length === 0) return;
    for (let i = attempts.length - 1; i >= 0; i--) {
      const st = attempts[i]!.st;
      st.attempts--;
      if (!this.outcome) this.retryQueue.unshift(st);
    }
    if (this.outcome) return;
    for (const other of this.slots) if (other && other.state === 'idle') this.dispatch(other);
  }

  /**
   * Take all attempts off `w`'s lane. `head`: those that may be running (see Lane.head); when it
   * is one attempt, that one runs (or ran last), since `since` (performance.now()).
   */
  private takeLane(w: WorkerProcess): { all: Attempt[]; head: Attempt[]; since: number } {
    const lane = this.lanes.get(w);
    if (!lane || !lane.busy) return { all: [], head: [], since: 0 };
    const head = lane.head();
    const since = lane.since;
    const all = lane.clear();
    this.outstanding -= all.length;
    return { all, head, since };
  }

  /**
   * `w` hung or crashed while its chunk's results were held: which attempt of the chunk ran is not
   * known. None is charged; all go back, and the chunk's mini-batches run alone next, so that the
   * culprit is found and charged then (its others ran, but their results died with the worker).
   */
  private unknownCulprit(w: WorkerProcess, all: readonly Attempt[], head: readonly Attempt[], what: string): void {
    for (const a of head) a.st.suspect = true;
    const ids = head.map((a) => a.st.mb.id);
    const text = `${w.name} (pid ${w.pid}) ${what} during one of ${ids.length} mini-batches sent together (${ids[0]} … ${ids[ids.length - 1]}); they run again one at a time, uncounted, to find which`;
    this.step.logger.warn(text, { worker: w.name, pid: w.pid, mini_batches: ids });
    if (this.printedFailures < PRINTED_FAILURES) {
      this.printedFailures++;
      this.printer.print(`[${this.step.identity.stepName}] ${oneLine(text, 400)}`, 'err');
    }
    this.giveBack(all);
  }

  /**
   * The mini-batch and item counters and the progress gauge go to the instruments once per tick
   * and at the end, not per mini-batch: a scrape or an export sees them at most one tick late.
   */
  private recordCounts(): void {
    const ins = this.step.instruments;
    const r = this.recorded;
    if (this.mbSucceeded > r.mbSucceeded) ins.record('minibatches', this.mbSucceeded - r.mbSucceeded, { outcome: 'success' });
    if (this.mbFailed > r.mbFailed) ins.record('minibatches', this.mbFailed - r.mbFailed, { outcome: 'failure' });
    if (this.itemsSucceeded > r.itemsSucceeded) ins.record('items', this.itemsSucceeded - r.itemsSucceeded, { outcome: 'success' });
    if (this.itemsFailed > r.itemsFailed) ins.record('items', this.itemsFailed - r.itemsFailed, { outcome: 'failure' });
    if (this.lastFinish !== r.lastFinish && this.lastFinish > 0) ins.record('progressTimestamp', this.lastFinish / 1000);
    this.recorded = { mbSucceeded: this.mbSucceeded, mbFailed: this.mbFailed, itemsSucceeded: this.itemsSucceeded, itemsFailed: this.itemsFailed, lastFinish: this.lastFinish };
  }

  private tick(): void {
    this.bookResults();
    this.recordCounts();
    const now = performance.now();
    const limit = this.config.runInvocationTimeout * 1000;
    for (const [w, lane] of this.lanes) if (lane.busy && now - lane.since >= limit + lane.deadlineSlack()) this.onTimeout(w);
    this.watchdog();
  }

  /** Attempts finished on `w`: first the lane and the worker's next chunk, then the bookkeeping. */
  private onResults(w: WorkerProcess, m: ResultsMessage): void {
    const lane = this.lanes.get(w);
    if (!lane) return;
    const now = performance.now();
    const done: Attempt[] = [];
    const results: AttemptResult[] = [];
    let lastEnd = 0;
    for (const r of m.results) {
      const a = lane.shift(r.id, r.attempt);
      if (!a) break; // an answer for attempts already given up (a timeout raced it)
      done.push(a);
      results.push(r);
      const ms = Math.max(0, r.end - r.start);
      w.recentAttemptMs = w.recentAttemptMs === undefined ? ms : 0.7 * w.recentAttemptMs + 0.3 * ms;
      lastEnd = r.end;
    }
    if (done.length > 0) {
      this.outstanding -= done.length;
      // the worker began its next attempt when it sent these
      lane.reported(Math.min(now, lastEnd - performance.timeOrigin));
      this.lastProgress = now;
    }
    // ... or it says which one it runs (one that awaits)
    if (m.running) lane.confirm(m.running.id, m.running.attempt, Math.min(now, m.running.start - performance.timeOrigin));
    if (done.length === 0) return;
    if (!lane.busy) w.state = 'idle';
    this.dispatch(w);
    // the bookkeeping of successes waits for the next turn: woken by the worker, this process may
    // be running on the worker's core, which the worker gets back sooner this way (a timer wakes it
    // on an idle core when there is one); anything that reads the outcomes books them first, and a
    // failure is booked at once (its retry, the thresholds)
    const nowEpoch = performance.timeOrigin + now;
    let failed = false;
    for (let i = 0; i < done.length; i++) {
      this.unbooked.push({ w, a: done[i]!, r: results[i]!, nowEpoch });
      if (!results[i]!.ok) failed = true;
    }
    if (failed) this.bookResults();
    else this.bookTimer ??= setTimeout(this.bookResults, 1);
  }

  /** Book the results received: spans, metrics, counts, reports, retries, thresholds. */
  private readonly bookResults = (): void => {
    if (this.bookTimer !== undefined) clearTimeout(this.bookTimer);
    this.bookTimer = undefined;
    const batch = this.unbooked;
    if (batch.length === 0) return;
    this.unbooked = [];
    for (const { w, a, r, nowEpoch } of batch) this.onResult(w, a, r, nowEpoch);
  };

  private onResult(w: WorkerProcess, a: Attempt, r: AttemptResult, nowEpoch: number): void {
    const st = a.st;
    const end = Math.min(r.end, nowEpoch);
    const start = Math.min(r.start, end);
    w.busyMs += end - start;
    w.attempts++;
    st.lastRunMs = r.runMs;
    this.attemptEnded(a, start);
    const seconds = (end - start) / 1000;
    const runMs = Math.round(r.runMs * 1000) / 1000;
    // the rows are on disk before the mini-batch counts as done
    if (r.ok && r.lines !== undefined && this.output && !this.output.write(r.lines, r.returned)) {
      const message = this.output.error ?? 'cannot write the output file';
      this.attemptSpan(a, start, end, { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'error', 'error.type': 'OutputError' }, { code: SpanStatusCode.ERROR, message });
      this.abort({ category: 'InternalError', message, mini_batch_id: st.mb.id });
      return;
    }
    if (r.ok) {
      const failed = st.mb.items - r.succeeded;
      const sc = this.attemptSpan(
        a,
        start,
        end,
        { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'success', 'mini_batch.items_succeeded': r.succeeded, 'mini_batch.items_failed': failed, 'mini_batch.returned': r.returned },
        { code: SpanStatusCode.OK },
      );
      this.step.instruments.record('minibatchDuration', seconds, { outcome: 'success' }, sc);
      w.itemsSucceeded += r.succeeded;
      w.itemsFailed += failed;
      st.done = true;
      this.finishMiniBatch(st.mb, r.ran ? 'RUN_DONE' : 'INPUT_ERROR', r.succeeded, r.failures ?? [], st.lastError, {
        attempts: st.attempts,
        start: st.firstStart,
        worker: w,
        runMs: r.runMs,
        returned: r.returned,
      });
    } else {
      const e = r.error!;
      const sc = this.attemptSpan(
        a,
        start,
        end,
        { 'mini_batch.run_ms': runMs, 'mini_batch.outcome': 'error', 'error.type': e.type },
        { code: SpanStatusCode.ERROR, message: `${e.type}: ${e.message}` },
        e,
      );
      this.step.instruments.record('minibatchDuration', seconds, { outcome: 'error' }, sc);
      w.failedAttempts++;
      this.attemptFailed(a, { category: 'RunException', type: e.type, message: e.message, stack: e.stack, worker: w.name, mini_batch_id: st.mb.id }, 'RUN_EXCEPTION', r.failures ?? []);
    }
  }

  /** An attempt's outcome is known: it counts as a retry or sets its mini-batch's first start (epoch ms). */
  private attemptEnded(a: Attempt, start: number): void {
    a.st.suspect = false;
    if (a.no > 1) {
      this.retries++;
      this.step.instruments.record('retries', 1);
    } else if (a.st.firstStart === 0) a.st.firstStart = start;
  }

  /**
   * The attempt's span, recorded when its outcome is known, from its start and end (epoch ms);
   * returns its context (an exemplar).
   */
  private attemptSpan(a: Attempt, start: number, end: number, attributes: Attributes, status: SpanStatus, exception?: SerializedError): SpanContext {
    const mb = a.st.mb;
    const w = a.worker;
    const attrs: Attributes = {
      'mini_batch.id': mb.id,
      'mini_batch.items': mb.items,
      'mini_batch.attempt': a.no,
      'mini_batch.prefetched': a.prefetched,
      'mini_batch.chunk': a.chunk,
      'worker.id': w.name,
      'worker.pid': w.pid ?? -1,
    };
    for (const k in attributes) attrs[k] = attributes[k];
    // a retry and failed items are always exported (errors and the slowest are, by the policy)
    const keep = a.no > 1 || (attributes['mini_batch.items_failed'] as number) > 0;
    const sc = this.step.recordSpan({ name: 'mini-batch', kind: SpanKind.CONSUMER, spanId: a.spanId, parent: this.stepSpanContext, startTime: start, endTime: end, attributes: attrs, status, exception, exportProbability: a.exportProbability, keep });
    return sc ?? { traceId: this.stepSpanContext.traceId, spanId: a.spanId, traceFlags: TraceFlags.NONE };
  }

  /** The attempt running on `w` is past run_invocation_timeout: the worker is killed, the attempt failed. */
  private onTimeout(w: WorkerProcess): void {
    this.bookResults();
    const { all, head, since } = this.takeLane(w);
    if (head.length === 0) return;
    const now = performance.now();
    this.lastProgress = now;
    this.timeouts++;
    this.step.instruments.record('timeouts', 1);
    const t = this.config.runInvocationTimeout;
    void w.terminate(TIMEOUT_KILL_GRACE_MS, 'killed-timeout');
    if (this.slots[w.slot] === w) this.slots[w.slot] = undefined;
    w.busyMs += now - since;
    if (head.length > 1) {
      this.unknownCulprit(w, all, head, `did not finish within ${t} s (run_invocation_timeout) and was killed`);
      this.ensureWorkers();
      return;
    }
    const a = head[0]!;
    const message = `run() did not return within ${t} s (run_invocation_timeout) on ${w.name} (pid ${w.pid}); the worker was killed and will be replaced`;
    this.attemptEnded(a, performance.timeOrigin + since);
    const sc = this.attemptSpan(a, performance.timeOrigin + since, performance.timeOrigin + now, { 'mini_batch.outcome': 'timeout', 'error.type': 'RunTimeout' }, { code: SpanStatusCode.ERROR, message });
    this.step.instruments.record('minibatchDuration', (now - since) / 1000, { outcome: 'timeout' }, sc);
    w.failedAttempts++;
    w.attempts++;
    this.giveBack(all.slice(1));
    this.attemptFailed(a, { category: 'RunTimeout', type: 'RunTimeout', message, worker: w.name, mini_batch_id: a.st.mb.id }, 'RUN_TIMEOUT', []);
    this.ensureWorkers();
  }

  private onExit(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.bookResults();
    if (this.slots[w.slot] === w) this.slots[w.slot] = undefined;
    const { all, head, since } = this.takeLane(w);
    this.lanes.delete(w);
    if (w.expectingExit) {
      for (const a of head) this.abandon(a, since, head.length > 1);
      this.giveBack(all.slice(head.length));
      return;
    }
    w.endReason ??= 'crashed';
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = w.stderrTail.filter((l) => l.trim() !== '').slice(-15).join('\n');
    const stderr = tail ? `\nlast stderr lines of ${w.name}:\n${tail}` : '';
    if (w.readyAt === undefined && !this.outcome) {
      this.abort({ category: 'InitFailure', message: `${w.name} (pid ${w.pid}) ${how} before init() finished${stderr}`, worker: w.name });
      return;
    }
    this.step.logger.warn(`${w.name} (pid ${w.pid}) ${how}`, { worker: w.name, pid: w.pid, exit_code: code, signal });
    if (head.length > 1) this.unknownCulprit(w, all, head, `${how}${stderr}`);
    else if (head.length === 1) {
      const a = head[0]!;
      this.giveBack(all.slice(1));
      const now = performance.now();
      this.lastProgress = now;
      const message = `${w.name} (pid ${w.pid}) ${how} while running ${a.st.mb.id} (attempt ${a.no})${stderr}`;
      this.attemptEnded(a, performance.timeOrigin + since);
      const sc = this.attemptSpan(a, performance.timeOrigin + since, performance.timeOrigin + now, { 'mini_batch.outcome': 'crash', 'error.type': 'WorkerCrash' }, { code: SpanStatusCode.ERROR, message: oneLine(message, 500) });
      this.step.instruments.record('minibatchDuration', (now - since) / 1000, { outcome: 'crash' }, sc);
      w.busyMs += now - since;
      w.failedAttempts++;
      w.attempts++;
      this.attemptFailed(a, { category: 'WorkerCrash', type: 'WorkerCrash', message, worker: w.name, mini_batch_id: a.st.mb.id }, 'PROCESS_CRASH', []);
    }
    this.ensureWorkers();
  }

  /**
   * An attempt cut short by the end of the job (abort, SIGTERM): neither success nor failure.
   * `maybeRan`: one of a chunk whose results the worker held; it may have finished.
   */
  private abandon(a: Attempt, since: number, maybeRan = false): void {
    const start = performance.timeOrigin + since;
    const now = Date.now();
    this.attemptEnded(a, start);
    const message = maybeRan ? 'no result: the job stopped before it reached the runner' : 'not finished: the job stopped';
    this.attemptSpan(a, start, Math.max(start, now), { 'mini_batch.outcome': 'aborted' }, { code: SpanStatusCode.ERROR, message: `aborted: ${message}` });
    this.processed?.add({
      mini_batch_id: a.st.mb.id,
      times_picked: a.st.attempts,
      worker: a.worker.name,
      pid: a.worker.pid ?? '',
      start_time: a.st.firstStart,
      end_time: now,
      total_items: a.st.mb.items,
      succeeded_items: 0,
      failed_items: 0,
      elapsed_seconds: round3((now - a.st.firstStart) / 1000),
      run_method_seconds: 0,
      status: 'ABORTED',
      error_category: this.outcome?.cause?.category ?? '',
      error_message: message,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // outcomes of attempts and mini-batches

  private attemptFailed(a: Attempt, error: ParallelRunErrorInfo, status: MiniBatchStatus, failures: readonly ItemFailure[]): void {
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
    if (this.printedFailures < PRINTED_FAILURES) {
      this.printedFailures++;
      this.printer.print(`[${this.step.identity.stepName}] ${oneLine(what, 400)}${last ? '; no tries left' : '; retrying'}`, 'err');
    }
    if (!last) {
      this.retryQueue.push(st);
      this.ensureWorkers();
      for (const w of this.slots) if (w && w.state === 'idle') this.dispatch(w);
      return;
    }
    st.done = true;
    this.finishMiniBatch(st.mb, status, 0, failures, error, { attempts: st.attempts, start: st.firstStart, worker: a.worker, runMs: st.lastRunMs });
  }

  private finishMiniBatch(
    mb: MiniBatch,
    status: MiniBatchStatus,
    succeeded: number,
    failures: readonly ItemFailure[],
    error: ParallelRunErrorInfo | undefined,
    info: { attempts: number; start: number; worker: WorkerProcess | undefined; runMs: number; returned?: number },
  ): void {
    const { id, items } = mb;
    const failed = items - succeeded;
    const ok = status === 'RUN_DONE';
    this.mbDone++;
    if (ok) this.mbSucceeded++;
    else this.mbFailed++;
    this.itemsSucceeded += succeeded;
    this.itemsFailed += failed;
    this.lastFinish = Date.now();

    // which items failed, and why: those listed one by one, then the rest under one reason
    const inputError = status === 'INPUT_ERROR';
    const firstInput = failures.find((f) => f.input);
    let restCategory: ParallelRunErrorCategory;
    let restReason: string;
    if (inputError) {
      restCategory = 'InputError';
      restReason = firstInput?.reason ?? 'the input cannot be read';
    } else if (!ok) {
      restCategory = error?.category ?? 'RunException';
      restReason = error ? oneLine(describeError(error), 300) : status;
    } else {
      restCategory = 'MissingResults';
      const passed = items - failures.reduce((n, f) => n + (f.input ? (f.count ?? 1) : 0), 0);
      restReason = `run() returned ${info.returned ?? 0} element(s) for ${passed} item(s)`;
    }
    if (failed > 0) {
      let explained = 0;
      for (const f of failures) {
        if (explained >= failed) break;
        const count = Math.min(f.count ?? 1, failed - explained);
        this.ledger.item(f.item, id, f.input ? 'InputError' : ok ? 'ItemError' : restCategory, f.reason, count);
        explained += count;
      }
      const rest = failed - explained;
      if (rest > 0) {
        const listed = new Set(failures.map((f) => f.item));
        const names = mb.kind === 'files' ? mb.files.filter((f) => !listed.has(f)) : [];
        if (names.length === rest) for (const n of names) this.ledger.item(n, id, restCategory, restReason);
        else if (mb.kind === 'tabular') this.ledger.item(`${rest} of rows ${mb.firstRow}..${mb.firstRow + mb.items - 1} of ${mb.file}`, id, restCategory, restReason, rest);
        else this.ledger.item(`${rest} of the ${mb.items} items of ${id} (see ${FILES.manifest})`, id, restCategory, restReason, rest);
      }
    }
    const first = failures[0];
    let errorCategory = '';
    let errorMessage = '';
    if (inputError) {
      errorCategory = 'InputError';
      errorMessage = first ? `${failed} item(s) cannot be read; first: ${first.item}: ${first.reason}` : restReason;
    } else if (!ok) {
      errorCategory = restCategory;
      errorMessage = restReason;
    } else if (failed > 0) {
      errorCategory = first ? (first.input ? 'InputError' : 'ItemError') : 'MissingResults';
      errorMessage = first ? `${failed} item(s) failed; first: ${first.item}: ${first.reason}` : `${failed} item(s) without a result: ${restReason}`;
    } else if (info.attempts > 1 && error) {
      errorMessage = `succeeded after: ${error.category}: ${describeError(error)}`;
    }
    errorMessage = oneLine(errorMessage, 500);
    const end = Date.now();
    this.processed?.add({
      mini_batch_id: id,
      times_picked: info.attempts,
      worker: info.worker?.name ?? '',
      pid: info.worker?.pid ?? '',
      start_time: info.start,
      end_time: end,
      total_items: items,
      succeeded_items: succeeded,
      failed_items: failed,
      elapsed_seconds: round3((end - info.start) / 1000),
      run_method_seconds: round3(info.runMs / 1000),
      status,
      error_category: errorCategory,
      error_message: errorMessage,
    });
    if (failed > 0) {
      this.step.withMiniBatch(id, () =>
        this.step.logger.warn(`${id}: ${failed} of ${items} items failed (${status}${errorCategory ? `, ${errorCategory}` : ''})`, {
          status,
          items,
          items_failed: failed,
          error_category: errorCategory,
          error_message: errorMessage,
        }),
      );
      if (ok && this.printedFailures < PRINTED_FAILURES) {
        this.printedFailures++;
        this.printer.print(`[${this.step.identity.stepName}] ${id}: ${oneLine(errorMessage, 300)}`, 'err');
      }
    } else if (this.debug) {
      this.step.withMiniBatch(id, () => this.step.logger.debug(`${id} done`, { status, items, attempts: info.attempts }));
    }
    this.checkThresholds();
    if (!this.outcome && this.mbDone === this.part.miniBatches.length) this.finish();
  }

  private checkThresholds(): void {
    const c = this.config;
    if (c.errorThreshold >= 0 && this.itemsFailed !== this.budgetRecorded) {
      this.budgetRecorded = this.itemsFailed;
      this.step.instruments.record('errorBudgetUsed', this.itemsFailed / Math.max(1, c.errorThreshold));
    }
    if (this.outcome) return;
    let message: string | undefined;
    if (c.errorThreshold >= 0 && this.itemsFailed > c.errorThreshold) {
      message = `error_threshold exceeded: ${this.itemsFailed} failed items > error_threshold ${c.errorThreshold}`;
    } else if (c.allowedFailedCount >= 0 && this.mbFailed > c.allowedFailedCount) {
      message = `allowed_failed_count exceeded: ${this.mbFailed} failed mini-batches > allowed_failed_count ${c.allowedFailedCount}`;
    } else if (c.allowedFailedPercent < 100 && (this.mbFailed * 100) / this.part.miniBatches.length > c.allowedFailedPercent) {
      const pct = (this.mbFailed * 100) / this.part.miniBatches.length;
      message = `allowed_failed_percent exceeded: ${this.mbFailed} of ${this.part.miniBatches.length} mini-batches failed (${pct.toFixed(1)}%) > allowed_failed_percent ${c.allowedFailedPercent}`;
    }
    if (message) this.abort({ category: 'ThresholdExceeded', message: `${message}. Causes: ${this.ledger.digest()}` });
  }

  private watchdog(): void {
    if (this.outcome) return;
    const idle = (performance.now() - this.lastProgress) / 1000;
    if (idle <= this.config.progressUpdateTimeout) return;
    const running: string[] = [];
    for (const [w, lane] of this.lanes) {
      const a = lane.attempts[0];
      if (a) running.push(`${a.st.mb.id} on ${w.name} for ${((performance.now() - lane.since) / 1000).toFixed(0)} s`);
    }
    const starting = this.workers.filter((w) => w.alive && w.readyAt === undefined).map((w) => `${w.name} (pid ${w.pid}) still in init() after ${((Date.now() - w.startedAt) / 1000).toFixed(0)} s`);
    this.abort({
      category: 'ProgressTimeout',
      message:
        `no mini-batch attempt finished in the last ${this.config.progressUpdateTimeout} s (progress_update_timeout)` +
        `${running.length ? `; running: ${running.join(', ')}` : ''}${starting.length ? `; ${starting.join(', ')}` : ''}` +
        '. Raise progress_update_timeout if init() or run() legitimately take this long.',
    });
  }

  // ---------------------------------------------------------------------------------------------
  // the end

  /** Stop the job with a cause: the attempts in flight are abandoned, the workers end. */
  abort(cause: ParallelRunErrorInfo, outcome: Omit<Outcome, 'cause'> = { status: 'failed', exitCode: 1 }): void {
    if (this.outcome) return;
    // what finished before counts (an outcome set while booking stops here: the rest of the batch follows)
    this.bookResults();
    if (this.outcome) return;
    this.outcome = { ...outcome, cause };
    this.step.logger.error(`parallel run ${outcome.status === 'terminated' ? 'terminated' : 'aborted'}: ${cause.category}: ${cause.message}`, {
      error_category: cause.category,
      ...(cause.stack ? { stack: cause.stack } : {}),
    });
    // the attempt each worker runs is abandoned (with the rest of its chunk, whose results the
    // worker may hold); the chunks it never began are not processed
    for (const w of [...this.lanes.keys()]) {
      const { all, head, since } = this.takeLane(w);
      for (const a of head) this.abandon(a, since, head.length > 1);
      this.giveBack(all.slice(head.length));
    }
    for (const w of this.workers) if (w.alive) void w.terminate(this.graceMs, outcome.status === 'terminated' ? 'terminated' : 'aborted');
    this.finish();
  }

  terminate(signal: string): void {
    const code = signal === 'SIGINT' ? 130 : 143;
    this.abort({ category: 'Terminated', message: `received ${signal}; stopped the workers and wrote the reports` }, { status: 'terminated', exitCode: code });
  }

  /** Last resort on a second signal: kill everything now. */
  killAll(): void {
    for (const w of this.workers) if (w.alive) w.kill();
    this.processed?.flush();
  }

  private finish(): void {
    this.settle();
  }

  writeOverview(status: string): void {
    this.bookResults();
    if (!this.runFolder) return;
    this.processed?.flush();
    const p = this.snapshot();
    const { rate, eta } = rateAndEta(p);
    const c = this.config;
    const latest = new Map<number, WorkerProcess>();
    for (const w of this.workers) latest.set(w.slot, w);
    const workers = [...latest.values()]
      .map((w) => {
        if (!w.alive) return `${w.name} (pid ${w.pid}): ${w.endReason ?? 'exited'}`;
        const lane = this.lanes.get(w);
        const a = lane?.attempts[0];
        const more = lane ? lane.attempts.length - 1 : 0;
        return `${w.name} (pid ${w.pid}): ${a ? `busy with ${a.st.mb.id} attempt ${a.no} for ${((performance.now() - lane!.since) / 1000).toFixed(1)} s${more > 0 ? `, ${more} more sent to it` : ''}` : w.readyAt === undefined ? 'starting (init)' : w.state}`;
      })
      .join('\n  ');
    const text = [
      `step: ${this.step.identity.stepName} (node ${c.nodeRank} of ${c.nodeCount})`,
      `status: ${status}`,
      `updated: ${new Date().toISOString()}`,
      `started: ${new Date(this.started).toISOString()}`,
      `elapsed: ${formatDuration(p.elapsedMs / 1000)}`,
      `mini-batches: ${p.miniBatchesDone} of ${p.miniBatchesTotal} done (${this.mbSucceeded} succeeded, ${p.miniBatchesFailed} failed), ${p.running} running, ${this.retryQueue.length} waiting for a retry, ${this.states.length - this.next} not started`,
      `items: ${p.itemsSucceeded + p.itemsFailed} of ${p.itemsTotal} done (${p.itemsSucceeded} succeeded, ${p.itemsFailed} failed)`,
      `rate: ${rate.toFixed(2)} items/s, ETA ${formatDuration(eta)}`,
      `retries: ${p.retries}, timeouts: ${p.timeouts}, worker restarts: ${p.workerRestarts}`,
      `error budget: ${c.errorThreshold >= 0 ? `${p.itemsFailed} of error_threshold ${c.errorThreshold} failed items` : 'error_threshold -1 (failures ignored)'}` +
        `${c.allowedFailedCount >= 0 ? `; ${p.miniBatchesFailed} of allowed_failed_count ${c.allowedFailedCount} failed mini-batches` : ''}`,
      `workers:\n  ${workers}`,
      `progress: ${progressLine(p)}`,
      '',
    ].join('\n');
    writeAtomic(path.join(this.runFolder, FILES.overview), text);
  }

  counts(): Pick<ParallelRunResult, 'mini_batches' | 'items' | 'retries' | 'timeouts' | 'worker_restarts'> {
    const total = this.part.miniBatches.length;
    return {
      mini_batches: { total, succeeded: this.mbSucceeded, failed: this.mbFailed, not_processed: total - this.mbDone },
      items: { total: this.part.items, succeeded: this.itemsSucceeded, failed: this.itemsFailed, not_processed: this.part.items - this.itemsSucceeded - this.itemsFailed },
      retries: this.retries,
      timeouts: this.timeouts,
      worker_restarts: this.restarts,
    };
  }

  get startedAt(): number {
    return this.started;
  }
}

/** The resolved configuration under its ParallelRunConfig names (arguments and environment values left out: they may hold secrets). */
function publicConfig(c: ResolvedRunConfig, output: string | undefined): Readonly<Record<string, unknown>> {
  return {
    entry_script: c.entryScript,
    input: c.inputs,
    output,
    input_type: c.inputType,
    input_pattern: c.inputPattern,
    mini_batch_size: c.miniBatchSize,
    error_threshold: c.errorThreshold,
    allowed_failed_count: c.allowedFailedCount,
    allowed_failed_percent: c.allowedFailedPercent,
    progress_update_timeout: c.progressUpdateTimeout,
    output_action: c.outputAction,
    append_row_file_name: c.appendRowFileName,
    process_count_per_node: c.processCountPerNode,
    node_count: c.nodeCount,
    node_rank: c.nodeRank,
    run_invocation_timeout: c.runInvocationTimeout,
    run_max_try: c.runMaxTry,
    logging_level: c.loggingLevel,
    step_name: c.stepName,
    arguments_count: c.arguments.length,
    environment_variables: Object.keys(c.environmentVariables),
  };
}

/** `Type: message` for a run() exception, the message alone for the runner's own categories. */
function describeError(error: ParallelRunErrorInfo): string {
  return error.type && error.category === 'RunException' ? `${error.type}: ${error.message}` : error.message;
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

/** runParallel() with CLI flag values on top (see cli.ts). */
export async function runWith(api: ParallelRunConfig, flags: Readonly<Record<string, unknown>>, options: RunParallelOptions): Promise<ParallelRunResult> {
  const config = resolveRunConfig(api, flags);
  const partStarted = Date.now();
  let part: Partition;
  try {
    part = cutInput(config);
  } catch (error) {
    if (error instanceof RunnerConfigError) throw error;
    throw new RunnerConfigError([{ field: 'input', source: 'input', expected: 'readable input files and folders', got: (error as Error).message }]);
  }
  const partEnded = Date.now();

  const owned = options.step === undefined;
  const step =
    options.step ??
    (await startStep({
      name: config.stepName,
      nodeRank: config.nodeRank,
      nodeCount: config.nodeCount,
      logLevel: config.loggingLevel,
      console: process.env.STEP_TELEMETRY_CONSOLE?.trim() ? undefined : false,
      handleProcessEvents: false,
      mainScript: config.entryScript,
    }));
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
  if (runFolder) writeManifest(runFolder, part.miniBatches);

  let job: Job | undefined;
  const printer = new ProgressPrinter(mode, label, config.progressInterval * 1000, () =>
    job ? job.snapshot() : { elapsedMs: 0, itemsTotal: part.items, itemsSucceeded: 0, itemsFailed: 0, miniBatchesTotal: part.miniBatches.length, miniBatchesDone: 0, miniBatchesFailed: 0, running: 0, retries: 0, timeouts: 0, workerRestarts: 0 },
  );
  job = new Job(config, step, part, printer, output, processed, runFolder);
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
  const ended = Date.now();
  const failedItems = counts.items.failed;
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
  if (runFolder) for (const [k, f] of Object.entries(FILES)) files[k] = path.join(runFolder, f);
  const result: ParallelRunResult = {
    status: outcome.status,
    exit_code: outcome.exitCode,
    reason,
    cause: outcome.cause,
    node_rank: config.nodeRank,
    node_count: config.nodeCount,
    started: new Date(j.startedAt).toISOString(),
    ended: new Date(ended).toISOString(),
    duration_seconds: round3((ended - j.startedAt) / 1000),
    ...counts,
    thresholds: {
      error_threshold: config.errorThreshold,
      allowed_failed_count: config.allowedFailedCount,
      allowed_failed_percent: config.allowedFailedPercent,
      error_budget_used: config.errorThreshold >= 0 ? round3(failedItems / Math.max(1, config.errorThreshold)) : 0,
    },
    run_folder: runFolder,
    output_file: output?.file,
    files,
    config: publicConfig(config, output ? path.dirname(output.file) : config.output),
  };
  output?.close();
  processed?.close();
  if (runFolder) {
    j.writeOverview(outcome.status);
    writeWorkerSummary(runFolder, j.workers, ended);
    writeAtomic(files.result!, `${JSON.stringify(result, null, 2)}\n`);
    const header = `parallel-run error summary: step ${step.identity.stepName}, pipeline run ${step.identity.pipelineRunId}, node ${config.nodeRank} of ${config.nodeCount}`;
    writeAtomic(files.errors!, errorSummaryText(result, j.ledger, header));
  }
  step.rootSpan.setAttributes({
    'parallel_run.status': result.status,
    'parallel_run.items_succeeded': counts.items.succeeded,
    'parallel_run.items_failed': counts.items.failed,
    'parallel_run.mini_batches_failed': counts.mini_batches.failed,
  });

  // ---- tell the user
  const summary =
    `[${label}] ${result.status}: ${counts.items.succeeded} of ${counts.items.total} items succeeded, ${counts.items.failed} failed` +
    `${counts.items.not_processed > 0 ? `, ${counts.items.not_processed} not processed` : ''}; ` +
    `${counts.mini_batches.total} mini-batches (${counts.mini_batches.failed} failed), ${counts.retries} retries, ${counts.timeouts} timeouts, ${counts.worker_restarts} worker restarts, ${formatDuration(result.duration_seconds)}`;
  printer.print(summary);
  if (output) printer.print(`[${label}] output: ${output.file} (${output.rows} rows)`);
  if (runFolder) printer.print(`[${label}] reports: ${runFolder} (${FILES.result}, ${FILES.errors}, ${FILES.processed})`);
  if (outcome.status !== 'succeeded' && outcome.cause) {
    const c = outcome.cause;
    const frames = c.stack ? `\n${c.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 8).join('\n')}` : '';
    printer.print(`[${label}] ${result.status === 'terminated' ? 'TERMINATED' : 'FAILED'}: ${c.category}: ${c.message}${frames}`, 'err');
    if (runFolder) printer.print(`[${label}] details: ${files.errors}`, 'err');
  } else if (counts.items.failed > 0 && runFolder) {
    printer.print(`[${label}] failed items and their reasons: ${files.errors}`);
  }

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
