// Scheduling: the worker processes of this node (one per slot, replaced when they end), what each
// has been sent (a lane per worker, see lane.ts), and the attempts' ends as the workers see them:
// results, run_invocation_timeout, a crash. It takes mini-batches from a MiniBatchSource and tells
// the job (SchedulerEvents) what became of each attempt; what that means for the counts, the
// thresholds, the telemetry and the reports is the job's (job.ts).
//
// Short mini-batches go to a worker in chunks and their results come back together (see lane.ts),
// so this process wakes up once per chunk, not once per mini-batch.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ResolvedRunConfig } from './config.js';
import { crashCause } from './crash.js';
import { writeUnstartedWorkerFile } from './unstarted-worker.js';
import { Lane, CHUNK_BELOW_MS, chunkSize, type LaneAttempt } from './lane.js';
import { WorkerProcess, forkEnvironment, workerGraceMs, type WorkerEndReason } from './pool.js';
import { RunPacker, type AttemptResult, type ResultsMessage, type WorkerMessage } from './protocol.js';
import { round3 } from './reports.js';
import type { MiniBatchSource, MiniBatchState } from './source.js';
import type { ParallelRunErrorInfo } from './types.js';

/** A timed-out worker gets this long to die on SIGTERM before SIGKILL. */
const TIMEOUT_KILL_GRACE_MS = 1000;
/**
 * ParallelRunStep's rule for worker starts: once init() failed 3 × process_count_per_node times in
 * a row on a node, no new worker is started there (a start that fails is one whose init() threw,
 * whose process exited or was killed before it was ready: the same budget for all).
 */
const START_FAILURES_PER_PROCESS = 3;

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
  /** Results taken off the lanes and not booked yet (see onResults), and the timer that books them. */
  private unbooked: Array<{ w: WorkerProcess; a: Attempt; r: AttemptResult; nowEpoch: number }> = [];
  private bookTimer: NodeJS.Timeout | undefined;
  /** Every worker process started, in order. */
  readonly workers: WorkerProcess[] = [];
  private nextProcessIndex = 1;
  /** performance.now() when an attempt last ended (or a worker became ready): the progress watchdog's clock. */
  lastProgress = performance.now();
  /** The job is ending: nothing more is handed out, and nothing goes back to the source. */
  private halted = false;
  /** Worker starts that failed since a worker was last ready, and in all (see startFailed). */
  private startFailuresInARow = 0;
  initFailures = 0;
  /** START_FAILURES_PER_PROCESS × process_count_per_node starts failed in a row: no new worker is started; the last one's cause. */
  private startsSpent: ParallelRunErrorInfo | undefined;
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
    for (const [w, lane] of this.lanes) if (lane.busy && now - lane.since >= limit + lane.deadlineSlack()) this.onTimeout(w);
  }

  /** What holds the job up when nothing finished for progress_update_timeout; undefined while it moves. */
  stalled(): string | undefined {
    const idle = (performance.now() - this.lastProgress) / 1000;
    if (idle <= this.config.progressUpdateTimeout) return undefined;
    const running: string[] = [];
    for (const [w, lane] of this.lanes) {
      const a = lane.attempts[0];
      if (a) running.push(`${a.st.mb.id} on ${w.name} for ${((performance.now() - lane.since) / 1000).toFixed(0)} s`);
    }
    const starting = this.starting();
    return (
      `no mini-batch attempt finished in the last ${this.config.progressUpdateTimeout} s (progress_update_timeout)` +
      `${running.length ? `; running: ${running.join(', ')}` : ''}${starting.length ? `; ${starting.join(', ')}` : ''}` +
      '. Raise progress_update_timeout if init() or run() legitimately take this long.'
    );
  }

  /** The workers still in init(), with how long. */
  private starting(): string[] {
    return this.workers.filter((w) => w.alive && w.readyAt === undefined).map((w) => `${w.name} (pid ${w.pid}) still in init() after ${((Date.now() - w.startedAt) / 1000).toFixed(0)} s`);
  }

  /**
   * No mini-batch started within first_task_creation_timeout of the job's start (`since`,
   * performance.now(), before the input was listed): what holds it up; undefined otherwise.
   */
  firstTaskLate(since: number): string | undefined {
    if (this.firstDispatchAt !== undefined || this.remainingWork() === 0) return undefined;
    const limit = this.config.firstTaskCreationTimeout;
    if ((performance.now() - since) / 1000 <= limit) return undefined;
    const starting = this.starting();
    return (
      `no mini-batch started within ${limit} s of the job's start (first_task_creation_timeout)${starting.length ? `; ${starting.join(', ')}` : ''}` +
      '. Raise first_task_creation_timeout if listing the input and init() legitimately take this long.'
    );
  }

  /** One line per slot's latest worker: what it does now (the progress overview). */
  describeWorkers(): string[] {
    const latest = new Map<number, WorkerProcess>();
    for (const w of this.workers) latest.set(w.slot, w);
    return [...latest.values()].map((w) => {
      if (!w.alive) return `${w.name} (pid ${w.pid}): ${w.endReason ?? 'exited'}`;
      const lane = this.lanes.get(w);
      const a = lane?.attempts[0];
      const more = lane ? lane.attempts.length - 1 : 0;
      return `${w.name} (pid ${w.pid}): ${a ? `busy with ${a.st.mb.id} attempt ${a.no} for ${((performance.now() - lane!.since) / 1000).toFixed(1)} s${more > 0 ? `, ${more} more sent to it` : ''}` : w.readyAt === undefined ? 'starting (init)' : w.state}`;
    });
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
    if (this.startsSpent) {
      if (live === 0 && this.remainingWork() > 0) this.events.initFailed(this.startsSpent);
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
        onExit: (w, code, signal) => this.onExit(w, code, signal),
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
        this.startFailuresInARow = 0;
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
    const attempts: Attempt[] = [];
    const t = this.telemetry;
    const packer = new RunPacker(t.trace);
    for (let i = 0; i < picked.length; i++) {
      const st = picked[i]!;
      const no = ++st.attempts;
      const mb = st.mb;
      const spanId = t.newSpanId();
      const exportProbability = t.sampleForExport();
      st.task ??=
        mb.kind === 'files'
          ? { kind: 'files', files: mb.files }
          : mb.kind === 'keyed'
            ? { kind: 'keyed', keys: mb.keys, parts: mb.parts }
            : { kind: 'tabular', file: mb.file, format: mb.format, start: mb.start, end: mb.end, firstRow: mb.firstRow, firstLine: mb.firstLine, header: mb.header };
      attempts.push({ id: mb.id, no, last: i === picked.length - 1, st, worker: w, spanId, exportProbability, prefetched: ahead || i > 0, chunk: picked.length });
      packer.add(mb.id, no, spanId, mb.items, st.task, exportProbability > 0);
    }
    if (this.firstOnly) this.served.add(w);
    lane.add(attempts, performance.now());
    this.firstDispatchAt ??= performance.now();
    this.outstanding += attempts.length;
    w.state = 'busy';
    // the channel closed under us: the exit handler sees the worker end
    if (!w.send(packer.take())) w.kill();
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

  /**
   * `w` hung or crashed while its chunk's results were held: which attempt of the chunk ran is not
   * known. None is charged; all go back, and the chunk's mini-batches run alone next, so that the
   * culprit is found and charged then (its others ran, but their results died with the worker).
   */
  private unknownCulprit(w: WorkerProcess, all: readonly Attempt[], head: readonly Attempt[], what: string): void {
    for (const a of head) a.st.suspect = true;
    const ids = head.map((a) => a.st.mb.id);
    const text = `${w.name} (pid ${w.pid}) ${what} during one of ${ids.length} mini-batches sent together (${ids[0]} … ${ids[ids.length - 1]}); they run again one at a time, uncounted, to find which`;
    this.logger.warn(text, { worker: w.name, pid: w.pid, mini_batches: ids });
    this.events.notice(text);
    this.giveBack(all);
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
    if (failed) this.flush();
    else this.bookTimer ??= setTimeout(this.flush, 1);
  }

  /** Book the results received (SchedulerEvents.result): anything that reads the outcomes calls this first. */
  readonly flush = (): void => {
    if (this.bookTimer !== undefined) clearTimeout(this.bookTimer);
    this.bookTimer = undefined;
    const batch = this.unbooked;
    if (batch.length === 0) return;
    this.unbooked = [];
    for (const { w, a, r, nowEpoch } of batch) this.events.result(w, a, r, nowEpoch);
  };

  /** The attempt running on `w` is past run_invocation_timeout: the worker is killed, the attempt failed. */
  private onTimeout(w: WorkerProcess): void {
    this.flush();
    const { all, head, since } = this.takeLane(w);
    if (head.length === 0) return;
    const now = performance.now();
    this.lastProgress = now;
    this.events.timeout();
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
    const message = `run() did not return within ${t} s (run_invocation_timeout) on ${w.name} (pid ${w.pid}); the worker was killed`;
    w.failedAttempts++;
    w.attempts++;
    this.giveBack(all.slice(1));
    this.events.attemptLost(a, 'timeout', performance.timeOrigin + since, performance.timeOrigin + now, message);
    this.ensureWorkers();
  }

  /**
   * A worker ended before it was ready: init() threw or the module did not load (it said why and
   * exited), or the process exited or was killed (the OOM killer, a node under pressure). A fresh
   * worker takes its place until START_FAILURES_PER_PROCESS × process_count_per_node starts failed in
   * a row; then none is started, and the job fails once no worker is left.
   */
  private startFailed(w: WorkerProcess, how: string, stderr: string, code: number | null, signal: NodeJS.Signals | null): void {
    const e = w.initError;
    const what = e ? `${e.phase === 'load' ? 'loading the entry script' : 'init()'} failed in ${w.name} (pid ${w.pid}): ${e.error.type}: ${e.error.message}` : `${w.name} (pid ${w.pid}) ${how} before init() finished`;
    const n = ++this.startFailuresInARow;
    this.initFailures++;
    const budget = START_FAILURES_PER_PROCESS * this.slots.length;
    const count = `${n} failed start${n === 1 ? '' : 's'} in a row; no new worker after ${budget} = 3 × process_count_per_node`;
    if (n < budget) {
      const text = `${what}; a fresh worker takes its place (${count})`;
      this.logger.warn(text, { worker: w.name, pid: w.pid, exit_code: code, signal, ...(e?.error.stack ? { stack: e.error.stack } : {}) });
      this.events.notice(text);
      this.ensureWorkers();
      return;
    }
    this.startsSpent = {
      category: 'InitFailure',
      type: e?.error.type,
      message: `${what}; ${n} worker starts in a row failed: after ${budget} (ParallelRunStep's limit, 3 × process_count_per_node) no new worker is started, and none is left to run the job${e ? '' : stderr}`,
      stack: e?.error.stack,
      worker: w.name,
    };
    const live = this.workerCount();
    if (live > 0) {
      const text = `${what}; ${n} worker starts in a row failed: after ${budget} (3 × process_count_per_node) no new worker is started; the job goes on with the ${live} worker(s) it has`;
      this.logger.warn(text, { worker: w.name, pid: w.pid, exit_code: code, signal });
      this.events.notice(text);
    }
    this.ensureWorkers();
  }

  private onExit(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.flush();
    if (this.slots[w.slot] === w) this.slots[w.slot] = undefined;
    const { all, head, since } = this.takeLane(w);
    this.lanes.delete(w);
    const { how, type } = crashCause(code, signal, w.fatalError);
    // a worker that died before its step started (in its first mini-batch) has no process file of its own
    if (this.runFolder) writeUnstartedWorkerFile(this.runFolder, w, this.stepEnv, { code, signal, how, byRunner: w.expectingExit });
    if (w.expectingExit) {
      for (const a of head) this.events.abandoned(a, performance.timeOrigin + since, head.length > 1);
      this.giveBack(all.slice(head.length));
      return;
    }
    w.endReason ??= 'crashed';
    const tail = w.stderrTail.filter((l) => l.trim() !== '').slice(-15).join('\n');
    const stderr = tail ? `\nlast stderr lines of ${w.name}:\n${tail}` : '';
    if (w.readyAt === undefined) {
      if (!this.halted && w.initError?.phase !== 'exports') this.startFailed(w, how, stderr, code, signal);
      return;
    }
    this.logger.warn(`${w.name} (pid ${w.pid}) ${how}`, { worker: w.name, pid: w.pid, exit_code: code, signal });
    if (head.length > 1) this.unknownCulprit(w, all, head, `${how}${stderr}`);
    else if (head.length === 1) {
      const a = head[0]!;
      this.giveBack(all.slice(1));
      const now = performance.now();
      this.lastProgress = now;
      w.busyMs += now - since;
      w.failedAttempts++;
      w.attempts++;
      const message = `${w.name} (pid ${w.pid}) ${how} while running ${a.st.mb.id} (attempt ${a.no})${stderr}`;
      this.events.attemptLost(a, 'crash', performance.timeOrigin + since, performance.timeOrigin + now, message, type);
    }
    this.ensureWorkers();
  }
}
