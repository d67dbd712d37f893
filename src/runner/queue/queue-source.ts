// A shared queue as a MiniBatchSource: the mini-batches of one job are BullMQ jobs on Redis, and
// every node's runner pulls from the same queue until the job is over, so fast nodes take more and
// a node may join late. This process is a BullMQ worker processing jobs manually
// (getNextJob / moveToCompleted / moveToFailed / extendJobLocks, BullMQ's stalled-job checker):
//   - a job is leased for queue_lock_duration and its lease renewed every half of it while this
//     node holds it; a node that dies or hangs stops renewing, and BullMQ's stalled-job checker
//     (run by every node) puts the job back, so another node runs it: BullMQ counts that start, and
//     so the lost run counts as an attempt, like a worker crash;
//   - a failed attempt with tries left goes back on the queue (moveToFailed: BullMQ's retry), so
//     its next try may run on any node; run_max_try bounds the starts (attemptsStarted);
//   - a mini-batch's end is counted job-wide by JobState (one Lua script), then acknowledged
//     (moveToCompleted; removed from Redis);
//   - the job-wide counts and the verdict come back with every commit and a poll (twice a second).
// What this process keeps per mini-batch is only what it holds now (buffered, running, releasing):
// it does not grow with the work done.
//
// QueueSource is the composition the Job sees; each job of it has a room of its own:
//   enqueue.ts         joining the job: the leader cuts and enqueues it once, a node takes over a
//                      lost leader's enqueueing, `--resume` puts the failed mini-batches back
//   fetcher.ts         pulling mini-batches into the buffer ahead of take(), admitting each
//   leases.ts          what this node holds: renewing its leases, retries, giving back at its end
//   job-tally.ts       commits of settled mini-batches, the node's counters, the job's counts and verdict
//   redis-liveness.ts  whether Redis still answers (a QueueError when it does not)
//   merge-lock.ts      the job's merge lock, and `merge --queue`'s reading of the records
//   job-state.ts       the job's state in Redis beside BullMQ's (counts, verdict, records; Lua)
//   connection.ts, names.ts, url.ts   reaching Redis; the job's names on it; the queue's URL
import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import type { Redis as RedisClient } from 'ioredis';
import type { ResolvedRunConfig } from '../config.js';
import type { Partition, UnreadableMiniBatch } from '../partition.js';
import type { MiniBatchStatus } from '../reports.js';
import type { MiniBatchSource, MiniBatchState, SettledInfo, SharedJob } from '../source.js';
import type { ParallelRunErrorInfo } from '../types.js';
import { connectRedis, withTimeout } from './connection.js';
import { Enqueuer } from './enqueue.js';
import { Fetcher } from './fetcher.js';
import { JobState, type JobCounts, type Verdict } from './job-state.js';
import { JobTally } from './job-tally.js';
import { Leases } from './leases.js';
import { exclusive } from './merge-lock.js';
import { QUEUE_PREFIX } from './names.js';
import { RedisLiveness } from './redis-liveness.js';
import { redisOptions, type QueueAddress } from './url.js';

export interface QueueSourceOptions {
  readonly config: ResolvedRunConfig;
  readonly address: QueueAddress;
  readonly name: string;
  /** Cut the input (only the node that enqueues does); `files`: the listing its identity was made of (input-identity.ts), not listed again. */
  readonly partition: (files: readonly string[]) => Promise<Partition>;
  /** The leader's partition is ready (to write the manifest). */
  readonly onPartition?: (part: Partition) => void;
  /** Something the user should see. */
  readonly notice: (text: string) => void;
}

export class QueueSource implements MiniBatchSource, SharedJob {
  readonly unreadable: readonly UnreadableMiniBatch[] = [];
  readonly nodeId = randomUUID();
  failure: ParallelRunErrorInfo | undefined;
  /** This node joined the job, nothing refused it (so it waits for its pulls and lease releases when it closes). */
  private joined = false;
  onAvailable?: () => void;
  onChange?: () => void;
  onUnreadable?: (mb: UnreadableMiniBatch) => void;
  onLost?: (st: MiniBatchState, message: string) => void;
  /** Flushes the output journal: its entries are on disk before a commit names them. */
  beforeCommit: () => void = () => {};
  readonly waitingRetry = 0;

  private readonly state: JobState;
  private readonly enqueuer: Enqueuer;
  private readonly leases: Leases;
  private readonly tally: JobTally;
  private readonly fetcher: Fetcher;
  private readonly lockMs: number;
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  /** A retry is on the queue: pull again. */
  private readonly afterRetry = (): void => this.fetcher.pump();

  private constructor(
    private readonly o: QueueSourceOptions,
    private readonly liveness: RedisLiveness,
    private readonly client: RedisClient,
    private readonly worker: Worker,
  ) {
    this.lockMs = o.config.queueLockDuration * 1000;
    this.state = new JobState(client, o.name);
    this.enqueuer = new Enqueuer(o, this.state, this.nodeId);
    this.leases = new Leases(worker, this.state, this.lockMs, liveness, o.notice);
    this.tally = new JobTally({ state: this.state, liveness, hooks: this, notice: o.notice, refill: () => this.fetcher.refill(), failed: (error) => this.redisFailed(error) });
    this.fetcher = new Fetcher({ config: o.config, nodeId: this.nodeId, worker, state: this.state, leases: this.leases, tally: this.tally, liveness, hooks: this });
  }

  /** Connect, join the job (enqueue it when no node has), and learn its totals. Throws a clear error when Redis cannot be reached. */
  static async open(o: QueueSourceOptions): Promise<QueueSource> {
    const lockMs = o.config.queueLockDuration * 1000;
    const liveness = new RedisLiveness(lockMs);
    const onError = (message: string): void => {
      liveness.lastError = message;
    };
    const [{ Worker }, client] = await Promise.all([import('bullmq'), connectRedis(o.address, { maxRetriesPerRequest: 2, seconds: o.config.queueLockDuration, onError })]);
    const worker = new Worker(o.name, null, {
      connection: redisOptions(o.address),
      prefix: QUEUE_PREFIX,
      autorun: false,
      lockDuration: lockMs,
      stalledInterval: Math.max(250, lockMs / 2),
      // a lost run counts as an attempt (attemptsStarted); run_max_try decides, not BullMQ
      maxStalledCount: o.config.runMaxTry + 1,
      drainDelay: 1,
    });
    worker.on('error', (e: Error) => onError(e.message));
    const s = new QueueSource(o, liveness, client, worker);
    try {
      await s.join();
    } catch (e) {
      // refused (another input, a --resume that cannot be done) or Redis gone: nothing may stay open
      await s.close().catch(() => {});
      throw e;
    }
    return s;
  }

  /** This node joins the job: its writer id, the totals (enqueued first if no node did), then the poll and the lease renewal. */
  private async join(): Promise<void> {
    const lockMs = this.lockMs;
    const tally = this.tally;
    tally.writer = await this.state.newWriter();
    // whatever can refuse this node (another input, a --resume that cannot be done, Redis gone) comes first
    const totals = await this.enqueuer.join();
    this.joined = true;
    tally.miniBatches = totals.miniBatches;
    tally.items = totals.items;
    if (totals.verdict) tally.verdict = totals.verdict;
    void this.worker.startStalledCheckTimer();
    this.timers.push(setInterval(() => void this.poll(), Math.max(100, Math.min(500, lockMs / 4))));
    this.timers.push(
      setInterval(() => {
        if (!this.closed) void this.leases.renew();
      }, Math.max(100, lockMs / 2)),
    );
    for (const t of this.timers) t.unref();
  }

  /** This source is its own shared side (MiniBatchSource.shared). */
  get shared(): SharedJob {
    return this;
  }

  get display(): string {
    return this.o.address.display;
  }

  /** The job's totals, as its leader enqueued it whole. */
  readonly final = true;

  get miniBatches(): number {
    return this.tally.miniBatches;
  }

  get items(): number {
    return this.tally.items;
  }

  get writer(): number {
    return this.tally.writer;
  }

  get isLeader(): boolean {
    return this.enqueuer.isLeader;
  }

  get counts(): JobCounts {
    return this.tally.counts;
  }

  get verdict(): Verdict | undefined {
    return this.tally.verdict;
  }

  /** This node's retries, timeouts and restarts (added to the job's by each poll). */
  get local(): { retries: number; timeouts: number; restarts: number } {
    return this.tally.local;
  }

  /** `--resume`: ids of the mini-batches not finished on the queue when this node resumed (their old rows in this node's folder go). */
  get resumed(): ReadonlySet<string> {
    return this.enqueuer.resumed;
  }

  // ---------------------------------------------------------------------------------------------
  // MiniBatchSource

  take(): MiniBatchState | undefined {
    return this.fetcher.take();
  }

  putBack(st: MiniBatchState): void {
    this.leases.putBack(st);
  }

  retry(st: MiniBatchState): void {
    this.leases.retry(st, this.afterRetry);
  }

  get notStarted(): number {
    return this.leases.buffer.length;
  }

  waiting(): readonly MiniBatchState[] {
    return [];
  }

  settled(st: MiniBatchState, status: MiniBatchStatus, info: SettledInfo): void {
    this.tally.commit(st.mb.index, st.mb.id, status, info, this.leases.end(st));
  }

  // ---------------------------------------------------------------------------------------------
  // SharedJob

  /** An unreadable input the Job failed at once (onUnreadable). */
  settledUnreadable(mb: UnreadableMiniBatch, info: SettledInfo): void {
    this.tally.commit(mb.index, mb.id, 'INPUT_ERROR', info, this.leases.endUnreadable(mb.id));
  }

  /** Set the job's verdict (the first one proposed holds on every node). */
  propose(v: Verdict): void {
    this.tally.propose(v);
  }

  /** The job is ending here: nothing more is pulled; what this node holds and did not finish goes back to the queue (at once: its leases are no longer renewed). */
  halt(): void {
    this.fetcher.halt();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (!this.failure) void this.leases.release();
  }

  /** Release what is held (the pulls in flight settled first), leave the queue. */
  async close(): Promise<void> {
    this.halt();
    if (this.closed) return;
    this.closed = true;
    if (!this.failure && this.joined) {
      try {
        await withTimeout(this.fetcher.inFlight(), 5000, 'pulls').catch(() => {});
        await this.leases.releasing;
      } catch {
        // Redis went away at the end
      }
    }
    await withTimeout(
      Promise.allSettled([this.worker.close(this.failure !== undefined), this.enqueuer.close()]).then(() => undefined),
      5000,
      'close',
    ).catch(() => {
      void this.worker.disconnect().catch(() => {});
    });
    this.client.disconnect();
  }

  /** The job's records (for the merge), while the connection is open. */
  records(): Promise<Buffer> {
    return this.state.records();
  }

  /** Run `fn` while no other node of the job does (the merge: one at a time, each later one sees more). */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T | undefined> {
    return exclusive(this.client, this.state.keys.meta, this.nodeId, fn);
  }

  /** Twice a second: this node's counters up, the job's counts and verdict down; a Redis that stays silent fails the job here. */
  private async poll(): Promise<void> {
    if (this.closed || this.failure) return;
    if (this.liveness.gone()) {
      this.redisFailed(new Error(this.liveness.lastError || 'no answer'));
      return;
    }
    try {
      const r = await this.tally.poll();
      if (!this.enqueuer.done && !this.enqueuer.isLeader) await this.enqueuer.takeOver();
      this.tally.apply(r.counts, r.verdict);
    } catch (error) {
      this.liveness.noteError(error);
    }
  }

  private redisFailed(error: unknown): void {
    if (this.failure || this.closed) return;
    this.failure = this.liveness.failure(this.display, error);
    this.halt();
    this.onChange?.();
  }
}
