// The job before the runner's step is up. With a step plan (step-plan.ts) the workers are started,
// and each sent its first mini-batch, while this process loads its step's modules (winston and
// OpenTelemetry are most of its start-up); meanwhile what the scheduler says waits here, in order,
// with the time it said it: its log records and its events (results, failed starts, crashes,
// output lines). Once the step and the job exist (attach), all of it is booked as it would have
// been at once: the log records and report rows with their own times (util/recorded-at.ts), the
// attempt spans with their workers' times, the counts and the thresholds in the same order.
// Without a plan the job is attached as soon as it is made, and this only passes things on.
import type { SpanIdPool } from '../otel/span-ids.js';
import { atTime } from '../util/recorded-at.js';
import type { Job } from './job.js';
import type { WorkerProcess } from './pool.js';
import type { AttemptResult } from './protocol.js';
import type { Attempt, AttemptIds, SchedulerEvents, SchedulerLog } from './scheduler.js';
import type { ParallelRunErrorInfo } from './types.js';

export class EarlyStart implements SchedulerEvents, AttemptIds {
  readonly trace: readonly [string, string];
  /** The scheduler's logger: the step's once attached. */
  readonly log: SchedulerLog;
  private job: Job | undefined;
  private logger: SchedulerLog | undefined;
  private telemetry: AttemptIds | undefined;
  private held: (() => void)[] = [];
  private wake: (() => void) | undefined;
  /** Attempt outcomes still awaited before the step loads (see due()). */
  private awaited = 0;

  /** `traceparent`: of the step span (announced before it exists); `ids`: the span ids drawn until then. */
  constructor(
    traceparent: string,
    private readonly ids: SpanIdPool,
  ) {
    // 00-<trace id>-<span id>-<flags>
    this.trace = [traceparent.slice(0, 36), traceparent.slice(52)];
    this.log = {
      info: (message, meta) => this.hold(() => this.logger!.info(message, meta)),
      warn: (message, meta) => this.hold(() => this.logger!.warn(message, meta)),
    };
  }

  /**
   * Resolves when the step should load: once `outcomes` attempts have one (the first attempt of each
   * worker: their start-up had the cores until then) or the job cannot go on, after `ms` at the
   * latest, or at `soon()`.
   */
  due(outcomes: number, ms: number): Promise<void> {
    this.awaited = outcomes;
    return new Promise<void>((resolve) => {
      if (outcomes <= 0) {
        resolve();
        return;
      }
      const timer = setTimeout(() => this.soon(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Load the step now (a signal came, or there is nothing to wait for). */
  soon(): void {
    this.wake?.();
  }

  /** The job exists: what was held is booked now, in order, and everything after goes straight to it. */
  attach(job: Job, logger: SchedulerLog): void {
    this.logger = logger;
    this.telemetry = job.telemetry;
    this.job = job;
    this.soon();
    const held = this.held;
    this.held = [];
    for (const f of held) f();
  }

  /** `outcomes`: attempts whose end this is (see due()). */
  private hold(f: () => void, outcomes = 0): void {
    if (this.job !== undefined) {
      f();
      return;
    }
    const time = Date.now();
    this.held.push(() => atTime(time, f));
    this.awaited -= outcomes;
    if (outcomes > 0 && this.awaited <= 0) this.soon();
  }

  // ---- AttemptIds: the job's telemetry once attached

  newSpanId(): string {
    return this.telemetry ? this.telemetry.newSpanId() : this.ids.next();
  }

  /** Before the step, every attempt is kept for export: at most one per worker is sent then. */
  sampleForExport(): number {
    return this.telemetry ? this.telemetry.sampleForExport() : 1;
  }

  // ---- SchedulerEvents: the job's, held until it exists

  result(w: WorkerProcess, a: Attempt, r: AttemptResult, nowEpoch: number): void {
    this.hold(() => this.job!.result(w, a, r, nowEpoch), 1);
  }

  timeout(): void {
    this.hold(() => this.job!.timeout());
  }

  attemptLost(a: Attempt, how: 'timeout' | 'crash', start: number, end: number, message: string, crashType?: 'OutOfMemory' | 'WorkerCrash'): void {
    this.hold(() => this.job!.attemptLost(a, how, start, end, message, crashType), 1);
  }

  abandoned(a: Attempt, start: number, maybeRan: boolean): void {
    this.hold(() => this.job!.abandoned(a, start, maybeRan), 1);
  }

  initFailed(cause: ParallelRunErrorInfo): void {
    this.hold(() => this.job!.initFailed(cause), Infinity);
  }

  restarted(): void {
    this.hold(() => this.job!.restarted());
  }

  notice(text: string): void {
    this.hold(() => this.job!.notice(text));
  }

  workerMetrics(scalars: readonly (readonly [string, number])[]): void {
    this.hold(() => this.job!.workerMetrics(scalars));
  }

  workerOutput(w: WorkerProcess, line: string, stream: 'stdout' | 'stderr'): void {
    this.hold(() => this.job!.workerOutput(w, line, stream));
  }
}
