// Scheduling: the worker processes of this node (one per slot, replaced when they end), what each
// has been sent (a lane per worker, see lane.ts), and the attempts' ends as the workers see them:
// results, run_invocation_timeout, a crash. It takes mini-batches from a MiniBatchSource and tells
// the job (SchedulerEvents) what became of each attempt; what that means for the counts, the
// thresholds, the telemetry and the reports is the job's (job.ts).
//
// Short mini-batches go to a worker in chunks and their results come back together (see lane.ts),
// so this process wakes up once per chunk, not once per mini-batch.
//
// The parts, one job each: chunk-packing.ts (a chunk's attempts and run message), result-booking.ts
// (results booked on the next turn), worker-loss.ts (a worker killed at its timeout, crashed or
// ended: its attempts), start-failures.ts (ParallelRunStep's budget of failed starts),
// worker-status.ts (what the workers do, in words: the overview and the watchdogs' messages).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { packChunk } from './chunk-packing.js';
import type { ResolvedRunConfig } from './config.js';
import { Lane, CHUNK_BELOW_MS, chunkSize, type LaneAttempt } from './lane.js';
import { WorkerProcess, forkEnvironment, workerGraceMs, type WorkerEndReason } from './pool.js';
import type { AttemptResult, ResultsMessage, WorkerMessage } from './protocol.js';
import { round3 } from './reports.js';
import { ResultBooking } from './result-booking.js';
import type { MiniBatchSource, MiniBatchState } from './source.js';
import { StartFailures } from './start-failures.js';
import type { ParallelRunErrorInfo } from './types.js';
import { WorkerLoss } from './worker-loss.js';
import { describeWorkers, firstTaskLateText, stalledText } from './worker-status.js';

/** An attempt sent to a worker; it is on the worker's lane until its outcome is known. */
export interface Attempt extends LaneAttempt {
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

/** The trace context of the attempts sent (AttemptTelemetry, or early-start.ts's before the step is up). */
export interface AttemptIds {
  /** `00-<trace id>-` and `-<flags>` of the step's trace. */
  readonly trace: readonly [string, string];
  newSpanId(): string;
  /** The export rate policy's decision for an attempt being sent: its probability of export, 0 for left out. */
  sampleForExport(): number;
}

/** What the scheduler records through: the step's logger, or one that holds records until the step is up. */
export interface SchedulerLog {
  info(message: string, meta: Record<string, unknown>): unknown;
  warn(message: string, meta: Record<string, unknown>): unknown;
}

/** What the scheduler takes from the runner's step (known before it starts: see step-plan.ts). */
export interface SchedulerLink {
  readonly logger: SchedulerLog;
  /** The step's part of a worker's environment (stepEnvironment in pool.ts). */
  readonly stepEnv: Readonly<Record<string, string>>;
  /** This process serves Prometheus: the workers send it their run.log scalars. */
  readonly forwardMetrics: boolean;
}

/** What the scheduler tells the job. Times are epoch ms. */
export interface SchedulerEvents {
  /** An attempt's result came back (booked in batches: see flush()). */
  result(w: WorkerProcess, a: Attempt, r: AttemptResult, nowEpoch: number): void;
  /** A worker ran past run_invocation_timeout and is being killed (once per kill, whatever it ran). */
  timeout(): void;
  /** The attempt that ran on a worker killed at its timeout, or that died, failed from `start` to `end`. */
  attemptLost(a: Attempt, how: 'timeout' | 'crash', start: number, end: number, message: string, crashType?: 'OutOfMemory' | 'WorkerCrash'): void;
  /** An attempt cut short by the end of the job; `maybeRan`: one of a chunk whose results the worker held. */
  abandoned(a: Attempt, start: number, maybeRan: boolean): void;
  /** Worker starts failed ParallelRunStep's number of times in a row and no worker is left, or the entry script has no run(): the job cannot run. */
  initFailed(cause: ParallelRunErrorInfo): void;
  /** A worker was started in a slot that had one before. */
  restarted(): void;
  /** Something the user should see (a line for the console's failure lines). */
  notice(text: string): void;
  /** The latest run.log scalars of a worker (only when the runner serves Prometheus). */
  workerMetrics(scalars: readonly (readonly [string, number])[]): void;
  /** A line a worker wrote to its stdout (console.log in init() or run()) or stderr. */
  workerOutput(w: WorkerProcess, line: string, stream: 'stdout' | 'stderr'): void;
}

export class Scheduler {
  private readonly slots: (WorkerProcess | undefined)[];
  private readonly slotUsed: boolean[];
  /** What each live worker has been sent and not reported. */
  private readonly lanes = new Map<WorkerProcess, Lane<Attempt>>();
  /** Attempts on all lanes. */
  private outstanding = 0;
  /** Results taken off the lanes and not booked yet (see onResults). */
  private readonly booking: ResultBooking;
  /** Book the results received (SchedulerEvents.result): anything that reads the outcomes calls this first. */
  readonly flush: () => void;
  /** Every worker process started, in order. */
  readonly workers: WorkerProcess[] = [];
  private nextProcessIndex = 1;
  /** performance.now() when an attempt last ended (or a worker became ready): the progress watchdog's clock. */
  lastProgress = performance.now();
  /** The job is ending: nothing more is handed out, and nothing goes back to the source. */
  private halted = false;
  /** Worker starts that failed (ParallelRunStep's budget). */
  private readonly starts: StartFailures;
  /** Worker starts that failed, in all. */
  get initFailures(): number {
    return this.starts.total;
  }
  /** What becomes of the attempts of a worker lost (timeout, crash, failed start). */
  private readonly loss: WorkerLoss;
  /** performance.now() when the first attempt was sent to a worker (first_task_creation_timeout). */
  private firstDispatchAt: number | undefined;
  /** The environment workers are forked with, and what their steps take from this one's. */
  private readonly forkEnv: NodeJS.ProcessEnv;
  private readonly stepEnv: Readonly<Record<string, string>>;
  private readonly logger: SchedulerLog;
  readonly graceMs: number;
  /** This process serves Prometheus: the workers send it their run.log scalars. */
  private readonly forwardMetrics: boolean;
  /** Each worker gets its first chunk only (before the runner's step is up: see early-start.ts); those served. */
  firstOnly = false;
  private readonly served = new Set<WorkerProcess>();

  constructor(
    private readonly config: ResolvedRunConfig,
    link: SchedulerLink,
    private readonly source: MiniBatchSource,
    private readonly telemetry: AttemptIds,
    private readonly events: SchedulerEvents,
    private readonly runFolder: string | undefined,
    /** Workers forked while this process started (slots 0.., see forkWorkers in pool.ts): the first of each slot. */
    private readonly preforked: readonly WorkerProcess[] = [],
  ) {
    this.slots = new Array<WorkerProcess | undefined>(config.processCountPerNode).fill(undefined);
    this.nextProcessIndex = preforked.length + 1;
    this.slotUsed = new Array<boolean>(config.processCountPerNode).fill(false);
    this.logger = link.logger;
    this.graceMs = workerGraceMs(process.env);
    this.forkEnv = forkEnvironment(config);
    this.stepEnv = link.stepEnv;
    this.forwardMetrics = link.forwardMetrics;
    this.booking = new ResultBooking(events);
    this.flush = this.booking.flush;
    this.starts = new StartFailures(config.processCountPerNode, this.logger, events);
    this.loss = new WorkerLoss(
      config,
      {
        halted: () => this.halted,
        takeLane: (w) => this.takeLane(w),
        vacate: (w) => {
          if (this.slots[w.slot] === w) this.slots[w.slot] = undefined;
        },
        dropLane: (w) => this.lanes.delete(w),
        giveBack: (attempts) => this.giveBack(attempts),
        progressed: (now) => (this.lastProgress = now),
        workerCount: () => this.workerCount(),
        ensureWorkers: () => this.ensureWorkers(),
      },
      this.starts,
      this.logger,
      events,
      runFolder,
      this.stepEnv,
    );
    // a source that fills up later (a shared queue) says so: idle workers get the new work
    source.onAvailable = () => this.wake();
  }

  // ---------------------------------------------------------------------------------------------
  // what the job asks

  /** Mini-batches not handed out: waiting for a retry, or not started. */
  unassigned(): number {
    return this.source.waitingRetry + this.source.notStarted;
  }

  private remainingWork(): number {
    return this.unassigned() + this.outstanding;
  }

  /** Mini-batches sent to workers and not reported. */
  get inFlight(): number {
    return this.outstanding;
  }

  /** Workers with attempts on their lane. */
  busyWorkers(): number {
    let n = 0;
    for (const lane of this.lanes.values()) if (lane.busy) n++;
    return n;
  }

  /** Start the workers the work needs, and give the idle ones work (after a retry was queued). */
  wake(): void {
    this.ensureWorkers();
    for (const w of this.slots) if (w && w.state === 'idle') this.dispatch(w);
  }

  /** Attempts past run_invocation_timeout: their workers are killed. */
  checkDeadlines(): void {
    const now = performance.now();
    const limit = this.config.runInvocationTimeout * 1000;
    for (const [w, lane] of this.lanes) {
      if (lane.busy && now - lane.since >= limit + lane.deadlineSlack()) {
        this.flush();
        this.loss.timedOut(w);
      }
    }
  }

  /** What holds the job up when nothing finished for progress_update_timeout; undefined while it moves. */
  stalled(): string | undefined {
    return stalledText(this.lanes, this.workers, this.lastProgress, this.config.progressUpdateTimeout);
  }

  /**
   * No mini-batch started within first_task_creation_timeout of the job's start (`since`,
   * performance.now(), before the input was listed): what holds it up; undefined otherwise.
   */
  firstTaskLate(since: number): string | undefined {
    if (this.firstDispatchAt !== undefined || this.remainingWork() === 0) return undefined;
    const limit = this.config.firstTaskCreationTimeout;
    if ((performance.now() - since) / 1000 <= limit) return undefined;
    return firstTaskLateText(this.workers, limit);
  }

  /** One line per slot's latest worker: what it does now (the progress overview). */
  describeWorkers(): string[] {
    return describeWorkers(this.lanes, this.workers);
  }

  /**
   * The job ends: nothing more is handed out; the attempt each worker runs is abandoned (with the
   * rest of its chunk, whose results the worker may hold); the chunks it never began are not
   * processed; the workers are told to end.
   */
  halt(reason: WorkerEndReason): void {
    this.halted = true;
    for (const w of [...this.lanes.keys()]) {
      const { all, head, since } = this.takeLane(w);
      for (const a of head) this.events.abandoned(a, performance.timeOrigin + since, head.length > 1);
      this.giveBack(all.slice(head.length));
    }
    for (const w of this.workers) if (w.alive) void w.terminate(this.graceMs, reason);
  }

  /** The end: stop the workers that are still there, within the bound (`terminate` after a halt). */
  async stopAll(terminate: WorkerEndReason | undefined): Promise<void> {
    this.letGoUnused();
    await Promise.all(this.workers.filter((w) => w.alive).map((w) => (terminate ? w.terminate(this.graceMs, terminate) : w.stop(this.graceMs, 'stopped'))));
  }

  /** Last resort on a second signal: kill everything now. */
  killAll(): void {
    for (const w of [...this.workers, ...this.unused()]) if (w.alive) w.kill();
  }

  private unused(): WorkerProcess[] {
    return this.preforked.filter((w, slot) => !this.slotUsed[slot] && w.alive);
  }

  /** Workers forked early and never needed (the job ended, or has work for fewer): they have no step to end. */
  private letGoUnused(): void {
    for (const w of this.unused()) w.kill();
  }

  // ---------------------------------------------------------------------------------------------
  // workers

  ensureWorkers(): void {
    if (this.halted) return;
    let live = this.workerCount();
    if (this.starts.spent) {
      if (live === 0 && this.remainingWork() > 0) this.events.initFailed(this.starts.spent);
      return;
    }
    const wanted = Math.min(this.config.processCountPerNode, this.remainingWork());
    for (let slot = 0; slot < this.slots.length && live < wanted; slot++) {
      const w = this.slots[slot];
      if (w !== undefined && w.alive && !w.expectingExit) continue;
      this.spawn(slot);
      live++;
    }
    // the totals are final and the workers there cover the work left (it only shrinks now): the
    // workers forked for a share the cut did not give (unreadable inputs, a resume's skipped ones) go now
    if (this.source.final && live >= wanted) this.letGoUnused();
  }

  private spawn(slot: number): void {
    const restart = this.slotUsed[slot]!;
    this.slotUsed[slot] = true;
    if (restart) this.events.restarted();
    // the slot's worker forked early, unless it was let go (letGoUnused)
    const forked = restart ? undefined : this.preforked[slot];
    const early = forked?.alive && !forked.expectingExit ? forked : undefined;
    const processIndex = early?.processIndex ?? this.nextProcessIndex++;
    const worker = `worker-${slot}`;
    const w = early ?? new WorkerProcess({ slot, processIndex, entryScript: this.config.entryScript, args: this.config.arguments, env: this.forkEnv });
    w.begin({
      consoleFile: this.runFolder ? path.join(this.runFolder, `console.process-${processIndex}.log`) : undefined,
      handlers: {
        onMessage: (w, m) => this.onMessage(w, m),
        onExit: (w, code, signal) => {
          this.flush();
          this.loss.exited(w, code, signal);
        },
        onOutputLine: (w, line, stream) => this.events.workerOutput(w, line, stream),
      },
      start: {
        type: 'start',
        entryScript: this.config.entryScript,
        args: this.config.arguments,
        worker,
        processIndex,
        inputType: this.config.inputType,
        outputAction: this.config.outputAction,
        forwardMetrics: this.forwardMetrics,
        shutdownTimeoutMs: this.config.shutdownTimeout * 1000,
        quickStart: !restart,
        env: { ...this.stepEnv, STEP_TELEMETRY_PROCESS_INDEX: String(processIndex), STEP_TELEMETRY_WORKER: worker },
      },
    });
    this.lanes.set(w, new Lane<Attempt>());
    this.slots[slot] = w;
    this.workers.push(w);
    this.logger.info(`${restart ? 'restarted' : 'started'} ${w.name}`, { worker: w.name, pid: w.pid, process_index: processIndex });
  }

  private workerCount(): number {
    let n = 0;
    for (const w of this.slots) if (w !== undefined && w.alive && !w.expectingExit) n++;
    return n;
  }

  private onMessage(w: WorkerProcess, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        w.readyAt = Date.now();
        w.initMs = m.initMs;
        w.hasShutdown = m.shutdown;
        this.starts.ready();
        if (w.state === 'starting') w.state = 'idle';
        this.logger.info(`${w.name} ready`, { worker: w.name, pid: w.pid, init_seconds: round3(m.initMs / 1000) });
        this.lastProgress = performance.now();
        this.dispatch(w);
        break;
      case 'init-error':
        // the worker exits now: its exit counts the failed start (onExit); no run() is for good
        w.endReason = 'init-failed';
        w.initError = { phase: m.phase, error: m.error };
        if (m.phase === 'exports') this.events.initFailed({ category: 'InitFailure', type: m.error.type, message: `${m.error.message} (${w.name}, pid ${w.pid})`, stack: m.error.stack, worker: w.name });
        break;
      case 'shutdown': {
        w.shutdown = { outcome: m.outcome, ms: m.ms, error: m.error };
        const took = `${round3(m.ms / 1000)} s`;
        if (m.outcome === 'ok') this.logger.info(`${w.name} shutdown() done in ${took}`, { worker: w.name, pid: w.pid, shutdown_seconds: round3(m.ms / 1000) });
        else {
          const text = `${w.name} (pid ${w.pid}) shutdown() ${m.outcome === 'failed' ? `failed: ${m.error?.type}: ${m.error?.message}` : `did not return within ${this.config.shutdownTimeout} s (shutdown_timeout)`}; the job's result does not change`;
          this.logger.warn(text, { worker: w.name, pid: w.pid, shutdown: m.outcome, ...(m.error?.stack ? { stack: m.error.stack } : {}) });
          this.events.notice(text);
        }
        break;
      }
      case 'results':
        this.onResults(w, m);
        break;
      case 'metrics':
        this.events.workerMetrics(m.scalars);
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // handing out work

  /**
   * Give `w` work: a chunk to run now when it is idle, and, while its attempts are short, the next
   * chunk in advance, so that it never waits for a round trip through this process. A chunk is one
   * mini-batch while attempts are long or not yet measured (see chunkSize in lane.ts): an idle
   * worker then never waits behind a long one queued elsewhere.
   */
  private dispatch(w: WorkerProcess): void {
    if (this.halted || !w.alive || w.expectingExit || w.readyAt === undefined) return;
    const lane = this.lanes.get(w);
    if (!lane || lane.chunks >= 2 || (lane.chunks === 1 && !this.mayPrefetch(w)) || (this.firstOnly && this.served.has(w))) return;
    const size = chunkSize(w.recentAttemptMs, this.unassigned(), this.workerCount());
    const ahead = lane.busy;
    const picked: MiniBatchState[] = [];
    while (picked.length < size) {
      const st = this.source.take();
      if (st === undefined) break;
      if (st.suspect && picked.length > 0) {
        this.source.putBack(st);
        break;
      }
      picked.push(st);
      if (st.suspect) break;
    }
    if (picked.length === 0) {
      if (!ahead) w.state = 'idle';
      return;
    }
    const { attempts, message } = packChunk(picked, w, this.telemetry, ahead);
    if (this.firstOnly) this.served.add(w);
    lane.add(attempts, performance.now());
    this.firstDispatchAt ??= performance.now();
    this.outstanding += attempts.length;
    w.state = 'busy';
    // the channel closed under us: the exit handler sees the worker end
    if (!w.send(message)) w.kill();
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

  /**
   * Attempts of a worker that ended before reporting them go back to the front of the source,
   * uncounted (in their order): those it never began, and those it finished whose results it still
   * held. After a halt they are not processed.
   */
  private giveBack(attempts: readonly Attempt[]): void {
    if (attempts.length === 0) return;
    for (let i = attempts.length - 1; i >= 0; i--) {
      const st = attempts[i]!.st;
      st.attempts--;
      if (!this.halted) this.source.putBack(st);
    }
    if (this.halted) return;
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

  // ---------------------------------------------------------------------------------------------
  // how attempts end, as the workers see it

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
    // the bookkeeping waits for the next turn, unless one failed (see result-booking.ts)
    this.booking.add(w, done, results, performance.timeOrigin + now);
  }
}
