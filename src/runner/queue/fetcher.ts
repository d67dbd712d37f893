// Pulling mini-batches from the queue ahead of the scheduler's take(), into the buffer of what this
// node holds (leases.ts): up to PARALLEL_FETCHES pulls at once (each one round trip to Redis) until
// the buffer holds `target`, two per worker to start with (the scheduler sends the next one in
// advance while one runs), doubled up to MAX_BUFFER when take() finds it empty while the queue is
// not (short mini-batches). What a node holds beyond what it runs is what another node cannot take
// at the end of the job (see docs/benchmarks.md). A queue found empty is watched by one blocking
// pull at a time. A pulled job is admitted: an unreadable input goes to the Job at once, one that a
// node finished before dying is acknowledged, a lost run is counted (onLost), the rest is buffered.
import type { Job as BullJob, Worker } from 'bullmq';
import type { ResolvedRunConfig } from '../config.js';
import type { MiniBatch, UnreadableMiniBatch } from '../partition.js';
import type { MiniBatchSource, MiniBatchState, SharedJob } from '../source.js';
import type { ParallelRunErrorInfo } from '../types.js';
import { errorText } from './connection.js';
import type { JobState } from './job-state.js';
import type { JobTally } from './job-tally.js';
import type { Leases } from './leases.js';
import type { RedisLiveness } from './redis-liveness.js';

/** Mini-batches pulled in parallel at most (each is one round trip to Redis). */
const PARALLEL_FETCHES = 16;
const MAX_BUFFER = 512;

function isUnreadable(mb: MiniBatch): mb is UnreadableMiniBatch {
  return mb.kind === 'unreadable';
}

/** Who hears of what a pull brings (the Job, the scheduler: set on the source after it opened). */
export type FetchHooks = Pick<MiniBatchSource, 'onAvailable'> & Pick<SharedJob, 'onUnreadable' | 'onLost'>;

export interface FetcherParts {
  readonly config: ResolvedRunConfig;
  readonly nodeId: string;
  readonly worker: Worker;
  readonly state: JobState;
  readonly leases: Leases;
  readonly tally: JobTally;
  readonly liveness: RedisLiveness;
  readonly hooks: FetchHooks;
}

export class Fetcher {
  private readonly config: ResolvedRunConfig;
  private readonly nodeId: string;
  private readonly worker: Worker;
  private readonly state: JobState;
  private readonly leases: Leases;
  private readonly tally: JobTally;
  private readonly liveness: RedisLiveness;
  private readonly hooks: FetchHooks;
  private target: number;
  private fetching = 0;
  private blocking = false;
  private drained = false;
  private halted = false;
  private tokens = 0;
  /** Pulls in flight: a job they bring after the halt goes back before the connection closes. */
  private readonly pulls = new Set<Promise<void>>();

  constructor(p: FetcherParts) {
    this.config = p.config;
    this.nodeId = p.nodeId;
    this.worker = p.worker;
    this.state = p.state;
    this.leases = p.leases;
    this.tally = p.tally;
    this.liveness = p.liveness;
    this.hooks = p.hooks;
    this.target = Math.max(2, 2 * p.config.processCountPerNode);
  }

  /** The next buffered mini-batch; an empty buffer while the queue is not grows the target. */
  take(): MiniBatchState | undefined {
    const buffer = this.leases.buffer;
    const st = buffer.shift();
    if (buffer.length === 0 && st === undefined && !this.drained) this.target = Math.min(MAX_BUFFER, this.target * 2);
    this.pump();
    return st;
  }

  /** Pull more when the buffer is short (after a commit or a poll). */
  refill(): void {
    if (this.leases.buffer.length < this.target) this.pump();
  }

  /** Nothing more is pulled; what pulls in flight bring goes back. */
  halt(): void {
    this.halted = true;
  }

  /** The pulls in flight, settled. */
  inFlight(): Promise<unknown> {
    return Promise.allSettled([...this.pulls]);
  }

  pump(): void {
    if (this.halted || this.tally.verdict || this.tally.complete()) return;
    while (!this.drained && this.fetching < PARALLEL_FETCHES && this.leases.buffer.length + this.fetching < this.target) void this.fetch(false);
    if (this.drained && this.fetching === 0 && !this.blocking && this.leases.buffer.length < this.target) {
      this.blocking = true;
      void this.fetch(true).finally(() => {
        this.blocking = false;
        // the blocking wait ends after at most drainDelay: look again
        if (!this.halted) setTimeout(() => this.pump(), this.drained ? 50 : 0).unref();
      });
    }
  }

  private fetch(block: boolean): Promise<void> {
    const p = this.pull(block).finally(() => this.pulls.delete(p));
    this.pulls.add(p);
    return p;
  }

  private async pull(block: boolean): Promise<void> {
    this.fetching++;
    const token = `${this.nodeId}:${++this.tokens}`;
    try {
      const job = (await this.worker.getNextJob(token, { block })) as BullJob | undefined;
      this.liveness.replied();
      if (!job) {
        this.drained = true;
        return;
      }
      this.drained = false;
      await this.admit(job, token);
    } catch (error) {
      if (!this.halted) this.liveness.noteError(error);
    } finally {
      this.fetching--;
    }
    if (!block) this.pump();
  }

  /** A job pulled from the queue: to the buffer, or finished at once (an unreadable input, a lost last try, already finished). */
  private async admit(job: BullJob, token: string): Promise<void> {
    const mb = job.data as MiniBatch;
    const started = job.attemptsStarted;
    if (this.halted) {
      await this.leases.releaseLate(mb.id, job, token);
      return;
    }
    if (started > 1 && (await this.state.record(mb.index)) !== undefined) {
      // its end was counted by a node that died before acknowledging it
      await job.moveToCompleted(null, token, false).catch(() => {});
      return;
    }
    // halted while Redis answered: the release of what this node holds went by without this job, so
    // it goes back here (regression: it stayed leased to a node that had ended, and counted as a lost
    // run when the lease expired)
    if (this.halted) return this.leases.releaseLate(mb.id, job, token);
    if (isUnreadable(mb)) {
      this.leases.holdUnreadable(mb.id, { job, token });
      this.hooks.onUnreadable?.(mb);
      return;
    }
    // BullMQ counts every start: those that ended in a retry (attemptsMade) and those a node gave back are not lost runs
    let lostRuns = started - 1 - job.attemptsMade;
    const released = lostRuns > 0 ? await this.state.released(mb.id) : 0;
    if (this.halted) return this.leases.releaseLate(mb.id, job, token);
    lostRuns = Math.max(0, lostRuns - released);
    const failed = job.failedReason ? /^(\w+): ([\s\S]*)$/.exec(job.failedReason) : null;
    const st: MiniBatchState = {
      mb,
      task: undefined,
      attempts: Math.max(0, started - 1 - released),
      firstStart: job.processedOn && started > 1 ? job.timestamp : 0,
      lastError: failed ? { category: failed[1] as ParallelRunErrorInfo['category'], message: failed[2]!, mini_batch_id: mb.id } : undefined,
      lastRunMs: 0,
      done: false,
      suspect: false,
    };
    this.leases.hold(st, { job, token });
    if (lostRuns > 0) {
      this.hooks.onLost?.(st, `${mb.id}: the node running attempt ${st.attempts} was lost (its lease of ${this.config.queueLockDuration} s expired: it died, hung or lost the queue); counted as a failed attempt`);
      if (st.attempts >= this.config.runMaxTry) return; // its last try: the job fails it (onLost)
    }
    const buffer = this.leases.buffer;
    const wasEmpty = buffer.length === 0;
    buffer.push(st);
    if (wasEmpty) this.hooks.onAvailable?.();
  }
}
