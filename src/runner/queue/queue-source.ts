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
import { randomUUID } from 'node:crypto';
import type { Job as BullJob, Queue, Worker } from 'bullmq';
import type { Redis as RedisClient } from 'ioredis';
import type { ResolvedRunConfig } from '../config.js';
import type { MiniBatch, Partition, UnreadableMiniBatch } from '../partition.js';
import type { MiniBatchStatus } from '../reports.js';
import type { MiniBatchSource, MiniBatchState, SettledInfo, SharedJob } from '../source.js';
import type { ParallelRunErrorInfo } from '../types.js';
import { JobState, ZERO_COUNTS, decodeRecord, type JobCounts, type Verdict } from './job-state.js';
import { redisOptions, type QueueAddress } from './url.js';

/** Mini-batches pulled in parallel at most (each is one round trip to Redis). */
const PARALLEL_FETCHES = 16;
const MAX_BUFFER = 512;
const ENQUEUE_BATCH = 500;
/** Polls in a row without a reply (besides a lock duration of silence) before Redis counts as gone. */
const SILENT_POLLS = 3;

/** `<pipeline run id>.<step id>` with what BullMQ does not allow in a queue name (`:`) replaced. */
export function queueName(pipelineRunId: string, stepId: string): string {
  return `${pipelineRunId}.${stepId}`.replace(/[:\s]/g, '_');
}
export const QUEUE_PREFIX = 'step-telemetry';

export interface QueueSourceOptions {
  readonly config: ResolvedRunConfig;
  readonly address: QueueAddress;
  readonly name: string;
  /** Cut the input (only the node that enqueues does). */
  readonly partition: () => Promise<Partition>;
  /** The leader's partition is ready (to write the manifest). */
  readonly onPartition?: (part: Partition) => void;
  /** Something the user should see. */
  readonly notice: (text: string) => void;
}

interface Held {
  readonly job: BullJob;
  readonly token: string;
}

/** The mini-batches that `keep` holds, ENQUEUE_BATCH at a time (a list of a million is never one array). */
function* batches(list: Iterable<MiniBatch>, keep: (mb: MiniBatch) => boolean): Generator<MiniBatch[]> {
  let batch: MiniBatch[] = [];
  for (const mb of list) {
    if (!keep(mb)) continue;
    batch.push(mb);
    if (batch.length === ENQUEUE_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** A mini-batch as a BullMQ job: its id is the mini-batch id (adding it twice adds it once); BullMQ's own retry limit is out of reach (run_max_try decides). */
function bullJob(mb: MiniBatch): { name: string; data: MiniBatch; opts: { jobId: string; attempts: number; removeOnComplete: boolean; removeOnFail: boolean } } {
  return { name: 'mini-batch', data: mb, opts: { jobId: mb.id, attempts: 1_000_000, removeOnComplete: true, removeOnFail: true } };
}

function isUnreadable(mb: MiniBatch): mb is UnreadableMiniBatch {
  return mb.kind === 'unreadable';
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A short fingerprint of the cut input: a second enqueuer on a different input is refused. */
function fingerprint(part: Partition): string {
  let h = 0x811c9dc5;
  const add = (s: string): void => {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  };
  for (const mb of part.miniBatches) add(`${mb.id}:${mb.items}:${mb.kind === 'files' ? mb.files[0] : mb.kind === 'keyed' ? mb.keysText : mb.file};`);
  return `${part.miniBatches.length}:${part.items}:${h.toString(16)}`;
}

export class QueueSource implements MiniBatchSource, SharedJob {
  miniBatches = 0;
  items = 0;
  readonly unreadable: readonly UnreadableMiniBatch[] = [];
  readonly nodeId = randomUUID();
  writer = 0;
  isLeader = false;
  counts: JobCounts = ZERO_COUNTS;
  verdict: Verdict | undefined;
  failure: ParallelRunErrorInfo | undefined;
  /** `--resume`: ids of the mini-batches not finished on the queue when this node resumed (their old rows in this node's folder go). */
  readonly resumed = new Set<string>();
  onAvailable?: () => void;
  onChange?: () => void;
  onUnreadable?: (mb: UnreadableMiniBatch) => void;
  onLost?: (st: MiniBatchState, message: string) => void;
  /** Flushes the output journal: its entries are on disk before a commit names them. */
  beforeCommit: () => void = () => {};
  /** This node's retries, timeouts and restarts (added to the job's by each poll). */
  local = { retries: 0, timeouts: 0, restarts: 0 };
  private sent = { retries: 0, timeouts: 0, restarts: 0 };

  private readonly config: ResolvedRunConfig;
  private readonly lockMs: number;
  private worker!: Worker;
  private queue: Queue | undefined;
  private client!: RedisClient;
  private state!: JobState;
  private readonly held = new Map<MiniBatchState, Held>();
  private readonly heldUnreadable = new Map<string, Held>();
  private buffer: MiniBatchState[] = [];
  private target: number;
  private fetching = 0;
  private blocking = false;
  private drained = false;
  private halted = false;
  private closed = false;
  private tokens = 0;
  private lastReply = Date.now();
  /** Polls since the last reply from Redis (see poll()). */
  private unanswered = 0;
  private lastError = '';
  private timers: NodeJS.Timeout[] = [];
  private enqueued = false;
  private releasing: Promise<void> | undefined;
  /** Pulls in flight: a job they bring after the halt goes back before the connection closes. */
  private readonly pulls = new Set<Promise<void>>();

  private constructor(private readonly o: QueueSourceOptions) {
    this.config = o.config;
    this.lockMs = o.config.queueLockDuration * 1000;
    // two waiting per worker (the scheduler sends the next one in advance while one runs); more when
    // a worker finds none (short mini-batches). What a node holds beyond what it runs is what another
    // node cannot take at the end of the job (see docs/benchmarks.md)
    this.target = Math.max(2, 2 * o.config.processCountPerNode);
  }

  /** Connect, join the job (enqueue it when no node has), and learn its totals. Throws a clear error when Redis cannot be reached. */
  static async open(o: QueueSourceOptions): Promise<QueueSource> {
    const s = new QueueSource(o);
    await s.connect();
    return s;
  }

  /** This source is its own shared side (MiniBatchSource.shared). */
  get shared(): SharedJob {
    return this;
  }

  get display(): string {
    return this.o.address.display;
  }

  private async connect(): Promise<void> {
    const [{ Worker }, { Redis }] = await Promise.all([import('bullmq'), import('ioredis')]);
    const opts = redisOptions(this.o.address);
    this.client = new Redis({ ...opts, maxRetriesPerRequest: 2, lazyConnect: true });
    this.client.on('error', (e: Error) => {
      this.lastError = e.message;
    });
    try {
      await withTimeout(this.client.connect(), this.lockMs, `no answer within ${this.config.queueLockDuration} s`);
    } catch (error) {
      this.client.disconnect();
      throw new Error(`cannot reach the queue at ${this.display}: ${this.lastError || errorText(error)}`);
    }
    this.state = new JobState(this.client, `${QUEUE_PREFIX}:${this.o.name}:st`);
    this.worker = new Worker(this.o.name, null, {
      connection: opts,
      prefix: QUEUE_PREFIX,
      autorun: false,
      lockDuration: this.lockMs,
      stalledInterval: Math.max(250, this.lockMs / 2),
      // a lost run counts as an attempt (attemptsStarted); run_max_try decides, not BullMQ
      maxStalledCount: this.config.runMaxTry + 1,
      drainDelay: 1,
    });
    this.worker.on('error', (e: Error) => {
      this.lastError = e.message;
    });
    this.writer = await this.state.newWriter();
    await this.state.addToField('nodes_joined', 1);
    await this.learnTotals();
    void this.worker.startStalledCheckTimer();
    this.timers.push(setInterval(() => void this.poll(), Math.max(100, Math.min(500, this.lockMs / 4))));
    this.timers.push(setInterval(() => void this.extendLocks(), Math.max(100, this.lockMs / 2)));
    for (const t of this.timers) t.unref();
  }

  /** Wait for the totals of the job; the first node to claim it cuts the input and enqueues. */
  private async learnTotals(): Promise<void> {
    const deadline = Date.now() + Math.max(60_000, 4 * this.lockMs);
    for (;;) {
      const m = await this.state.meta();
      if (this.config.resume && m.total_mb === undefined) {
        throw new Error(`--resume: the queue at ${this.display} does not hold job ${this.o.name} (nothing to resume there; without --resume the job starts again)`);
      }
      if (m.total_mb !== undefined && m.enqueue_done !== undefined) break;
      if (await this.state.claimLeader(this.nodeId, this.lockMs)) {
        await this.lead();
        break;
      }
      if (m.total_mb !== undefined) break;
      if (Date.now() > deadline) throw new Error(`the queue at ${this.display} holds no totals for job ${this.o.name} and another node holds the lead without setting them`);
      await sleep(100);
    }
    if (this.config.resume) await this.resume();
    const m = await this.state.meta();
    this.miniBatches = Number(m.total_mb);
    this.items = Number(m.total_items);
    if (m.verdict_category) this.verdict = { category: m.verdict_category as Verdict['category'], message: m.verdict_message ?? '' };
  }

  /** This node enqueues: cut the input, set the totals once, add the mini-batches not finished (idempotent: job ids are the mini-batch ids). */
  private async lead(): Promise<void> {
    this.isLeader = true;
    const refresh = setInterval(() => void this.state.refreshLeader(this.nodeId, this.lockMs).catch(() => {}), Math.max(100, this.lockMs / 3));
    refresh.unref();
    try {
      const part = await this.o.partition();
      this.o.onPartition?.(part);
      const fp = fingerprint(part);
      const totals = await this.state.setTotals(part.miniBatches.length, part.items, fp);
      if (totals.fingerprint !== fp) {
        throw new Error(`the job ${this.o.name} on the queue was cut from a different input (${totals.fingerprint}, here ${fp}): the input changed, or two jobs share a pipeline run id and step id`);
      }
      const { Queue } = await import('bullmq');
      this.queue = new Queue(this.o.name, { connection: redisOptions(this.o.address), prefix: QUEUE_PREFIX });
      const rec = await this.state.records();
      const finished = (i: number): boolean => i * 8 + 8 <= rec.length && rec.readUInt32BE(i * 8) !== 0;
      let enqueued = 0;
      for (const batch of batches(part.miniBatches, (mb) => !finished(mb.index))) {
        await this.queue.addBulk(batch.map(bullJob));
        await this.state.setField('enqueued', (enqueued += batch.length));
      }
      await this.state.setField('enqueue_done', Date.now());
      this.enqueued = true;
    } finally {
      clearInterval(refresh);
    }
  }

  /** `--resume` on a job the queue holds: its failed mini-batches and its verdict are cleared, and those mini-batches go on the queue again. */
  private async resume(): Promise<void> {
    const part = await this.o.partition();
    const fp = fingerprint(part);
    const held = (await this.state.meta()).fingerprint ?? '';
    if (held !== fp) throw new Error(`--resume: the job ${this.o.name} on the queue was cut from a different input (${held}, here ${fp})`);
    const again: MiniBatch[] = [];
    for (const batch of batches(part.miniBatches, () => true)) {
      const cleared = await this.state.resetFailed(batch);
      for (const mb of batch) if (cleared.has(mb.index)) again.push(mb);
    }
    await this.state.forgetReleased(again.map((mb) => mb.id)); // they go on the queue as new jobs
    if (again.length > 0) {
      const { Queue } = await import('bullmq');
      this.queue ??= new Queue(this.o.name, { connection: redisOptions(this.o.address), prefix: QUEUE_PREFIX });
      for (const batch of batches(again, () => true)) await this.queue.addBulk(batch.map(bullJob));
    }
    // what is not finished now runs again (cleared here or by another resuming node): this node's old rows of it go
    const rec = await this.state.records();
    for (const mb of part.miniBatches) if (decodeRecord(rec, mb.index) === undefined) this.resumed.add(mb.id);
    this.o.notice(`--resume: job ${this.o.name} on the queue: ${again.length} failed mini-batch(es) run again, the job's verdict (if any) was cleared; the mini-batches that succeeded stay done`);
  }

  // ---------------------------------------------------------------------------------------------
  // MiniBatchSource

  take(): MiniBatchState | undefined {
    const st = this.buffer.shift();
    if (this.buffer.length === 0 && st === undefined && !this.drained) this.target = Math.min(MAX_BUFFER, this.target * 2);
    this.pump();
    return st;
  }

  putBack(st: MiniBatchState): void {
    if (this.held.has(st)) this.buffer.unshift(st);
  }

  retry(st: MiniBatchState): void {
    const h = this.held.get(st);
    this.held.delete(st);
    if (!h) return;
    const e = st.lastError;
    const error = new Error(e ? `${e.category}: ${e.message}` : 'attempt failed');
    h.job.moveToFailed(error, h.token, false).then(
      () => this.pump(),
      (err: unknown) => this.lostLease(st.mb.id, err),
    );
  }

  readonly waitingRetry = 0;

  get notStarted(): number {
    return this.buffer.length;
  }

  waiting(): readonly MiniBatchState[] {
    return [];
  }

  settled(st: MiniBatchState, status: MiniBatchStatus, info: SettledInfo): void {
    const h = this.held.get(st);
    this.held.delete(st);
    this.commit(st.mb.index, st.mb.id, status, info, h);
  }

  /** An unreadable input the Job failed at once (onUnreadable). */
  settledUnreadable(mb: UnreadableMiniBatch, info: SettledInfo): void {
    const h = this.heldUnreadable.get(mb.id);
    this.heldUnreadable.delete(mb.id);
    this.commit(mb.index, mb.id, 'INPUT_ERROR', info, h);
  }

  private commit(index: number, id: string, status: MiniBatchStatus, info: SettledInfo, h: Held | undefined): void {
    const ok = status === 'RUN_DONE';
    this.beforeCommit();
    this.state.commit(index, { writer: this.writer, seq: info.seq ?? 0, failed: !ok }, ok, info.succeeded, info.failed).then(
      ({ fresh, counts }) => {
        this.replied();
        if (!fresh) this.o.notice(`${id} had already finished on the queue (a node that lost its lease finished it too): this run's result does not count`);
        this.apply(counts, this.verdict);
        if (h) h.job.moveToCompleted(null, h.token, false).catch(() => {}); // a lease lost meanwhile: the record decides
      },
      (error: unknown) => this.redisFailed(error),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // SharedJob

  /** Set the job's verdict (the first one proposed holds on every node). */
  propose(v: Verdict): void {
    this.state.proposeVerdict(v).then(
      (held) => {
        this.replied();
        this.apply(this.counts, held);
      },
      (error: unknown) => this.redisFailed(error),
    );
  }

  /** The job is ending here: nothing more is pulled; what this node holds and did not finish goes back to the queue (at once: its leases are no longer renewed). */
  halt(): void {
    this.halted = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (!this.failure) void this.release();
  }

  /** Give back what this node holds, noted as released (not lost) first; bounded, never rejects. */
  private release(): Promise<void> {
    if (this.releasing) return this.releasing;
    const hs = [...this.held.values(), ...this.heldUnreadable.values()];
    this.held.clear();
    this.heldUnreadable.clear();
    this.buffer = [];
    const back = async (): Promise<void> => {
      await this.state.noteReleased(hs.map((h) => h.job.id!));
      await Promise.all(hs.map((h) => h.job.moveToWait(h.token).catch(() => {})));
    };
    this.releasing = hs.length === 0 ? Promise.resolve() : withTimeout(back(), 5000, 'release').catch(() => {}); // Redis gone: the leases expire by themselves
    return this.releasing;
  }

  /** Release what is held, leave the queue; true when this node is the last to end a finished job. */
  async close(): Promise<{ last: boolean }> {
    this.halt();
    if (this.closed) return { last: false };
    this.closed = true;
    let last = false;
    if (!this.failure) {
      try {
        await withTimeout(Promise.allSettled([...this.pulls]), 5000, 'pulls').catch(() => {});
        await this.releasing;
        const ended = await this.state.addToField('nodes_ended', 1);
        const joined = Number((await this.state.meta()).nodes_joined ?? 0);
        last = ended >= joined;
      } catch {
        // Redis went away at the end
      }
    }
    await withTimeout(
      Promise.allSettled([this.worker.close(this.failure !== undefined), this.queue?.close()]).then(() => undefined),
      5000,
      'close',
    ).catch(() => {
      void this.worker.disconnect().catch(() => {});
    });
    this.client.disconnect();
    return { last };
  }

  /** The job's records (for the merge), while the connection is open. */
  records(): Promise<Buffer> {
    return this.state.records();
  }

  /** Run `fn` while no other node of the job does (the merge: one at a time, each later one sees more). */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T | undefined> {
    return exclusive(this.client, this.state.keys.meta, this.nodeId, fn);
  }

  // ---------------------------------------------------------------------------------------------
  // pulling

  private pump(): void {
    if (this.halted || this.closed || this.verdict || this.complete()) return;
    while (!this.drained && this.fetching < PARALLEL_FETCHES && this.buffer.length + this.fetching < this.target) void this.fetch(false);
    if (this.drained && this.fetching === 0 && !this.blocking && this.buffer.length < this.target) {
      this.blocking = true;
      void this.fetch(true).finally(() => {
        this.blocking = false;
        // the blocking wait ends after at most drainDelay: look again
        if (!this.halted) setTimeout(() => this.pump(), this.drained ? 50 : 0).unref();
      });
    }
  }

  private complete(): boolean {
    return this.miniBatches > 0 && this.counts.mbDone >= this.miniBatches;
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
      this.replied();
      if (!job) {
        this.drained = true;
        return;
      }
      this.drained = false;
      await this.admit(job, token);
    } catch (error) {
      if (!this.halted) this.lastError = errorText(error);
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
      await this.state.noteReleased([mb.id]).catch(() => {});
      await job.moveToWait(token).catch(() => {});
      return;
    }
    if (started > 1 && (await this.state.record(mb.index)) !== undefined) {
      // its end was counted by a node that died before acknowledging it
      await job.moveToCompleted(null, token, false).catch(() => {});
      return;
    }
    if (isUnreadable(mb)) {
      this.heldUnreadable.set(mb.id, { job, token });
      this.onUnreadable?.(mb);
      return;
    }
    // BullMQ counts every start: those that ended in a retry (attemptsMade) and those a node gave back are not lost runs
    let lostRuns = started - 1 - job.attemptsMade;
    const released = lostRuns > 0 ? await this.state.released(mb.id) : 0;
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
    this.held.set(st, { job, token });
    if (lostRuns > 0) {
      this.onLost?.(st, `${mb.id}: the node running attempt ${st.attempts} was lost (its lease of ${this.config.queueLockDuration} s expired: it died, hung or lost the queue); counted as a failed attempt`);
      if (st.attempts >= this.config.runMaxTry) return; // its last try: the job fails it (onLost)
    }
    const wasEmpty = this.buffer.length === 0;
    this.buffer.push(st);
    if (wasEmpty) this.onAvailable?.();
  }

  private async extendLocks(): Promise<void> {
    const held = [...this.held.entries(), ...[...this.heldUnreadable.values()].map((h) => [undefined, h] as const)];
    if (held.length === 0 || this.closed) return;
    try {
      const failed = await this.worker.extendJobLocks(
        held.map(([, h]) => h.job.id!),
        held.map(([, h]) => h.token),
        this.lockMs,
      );
      this.replied();
      for (const id of failed) {
        const i = this.buffer.findIndex((s) => s.mb.id === id);
        if (i >= 0) {
          const [st] = this.buffer.splice(i, 1);
          this.held.delete(st!);
        }
        this.o.notice(`${id}: this node's lease on it expired (it was too slow to renew it); another node runs it, and only one run counts`);
      }
    } catch (error) {
      this.lastError = errorText(error);
    }
  }

  private lostLease(id: string, error: unknown): void {
    this.o.notice(`${id}: cannot send it back for its retry: ${errorText(error)}; its lease expires and another node retries it`);
  }

  /** Twice a second: this node's counters up, the job's counts and verdict down; a Redis that stays silent fails the job here. */
  private async poll(): Promise<void> {
    if (this.closed || this.failure) return;
    // silent for a lock duration, and over several polls: a timer that fires after the event loop
    // was blocked (a loaded machine, the step's imports) runs before the replies that arrived
    // meanwhile are read, so elapsed time alone would fail a node whose Redis answered
    if (Date.now() - this.lastReply > this.lockMs && this.unanswered >= SILENT_POLLS) {
      this.redisFailed(new Error(this.lastError || 'no answer'));
      return;
    }
    this.unanswered++;
    const d = { retries: this.local.retries - this.sent.retries, timeouts: this.local.timeouts - this.sent.timeouts, restarts: this.local.restarts - this.sent.restarts };
    try {
      const r = await this.state.poll(d.retries, d.timeouts, d.restarts);
      this.sent = { ...this.local };
      this.replied();
      if (!this.enqueued && !this.isLeader) await this.takeOverEnqueue();
      this.apply(r.counts, r.verdict);
    } catch (error) {
      this.lastError = errorText(error);
    }
  }

  /** The node that enqueued died before it finished: another takes over (idempotently). */
  private async takeOverEnqueue(): Promise<void> {
    const m = await this.state.meta();
    if (m.enqueue_done !== undefined) {
      this.enqueued = true;
      return;
    }
    if (await this.state.claimLeader(this.nodeId, this.lockMs)) {
      this.o.notice(`the node that enqueued job ${this.o.name} stopped before it finished; this node enqueues the rest`);
      await this.lead();
    }
  }

  private replied(): void {
    this.lastReply = Date.now();
    this.unanswered = 0;
  }

  private apply(counts: JobCounts, verdict: Verdict | undefined): void {
    const changed = counts.mbDone !== this.counts.mbDone || counts.itemsFailed !== this.counts.itemsFailed || (verdict !== undefined && this.verdict === undefined);
    if (counts.mbDone >= this.counts.mbDone) this.counts = counts;
    if (verdict && !this.verdict) this.verdict = verdict;
    if (changed) this.onChange?.();
    if (this.buffer.length < this.target) this.pump();
  }

  private redisFailed(error: unknown): void {
    if (this.failure || this.closed) return;
    this.failure = {
      category: 'QueueError',
      message: `the queue at ${this.display} is unreachable (${this.lastError || errorText(error)}); this node stopped. Its finished mini-batches are in its output journal; the others go back to the queue when their leases expire`,
    };
    this.halt();
    this.onChange?.();
  }
}

/** `fn` under the job's merge lock (a key with a lease); undefined when another holds it for 10 s. */
async function exclusive<T>(client: RedisClient, meta: string, owner: string, fn: () => Promise<T> | T): Promise<T | undefined> {
  const key = `${meta}:merge-lock`;
  for (let i = 0; i < 100; i++) {
    if ((await client.set(key, owner, 'PX', 30_000, 'NX')) === 'OK') {
      try {
        return await fn();
      } finally {
        await client.del(key).catch(() => 0);
      }
    }
    await sleep(100);
  }
  return undefined;
}

/**
 * `step-telemetry merge --queue`: run `fn` with the records of job `name` (read under the merge
 * lock, so that no node merges meanwhile); undefined when the queue does not hold the job.
 */
export async function withJobRecords<T>(address: QueueAddress, name: string, fn: (records: Buffer) => T): Promise<T | undefined> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...redisOptions(address), maxRetriesPerRequest: 1, lazyConnect: true });
  let lastError = '';
  client.on('error', (e: Error) => {
    lastError = e.message;
  });
  try {
    await withTimeout(client.connect(), 10_000, 'no answer within 10 s').catch((error: unknown) => {
      throw new Error(`cannot reach the queue at ${address.display}: ${lastError || errorText(error)}`);
    });
    const state = new JobState(client, `${QUEUE_PREFIX}:${name}:st`);
    if ((await state.meta()).total_mb === undefined) return undefined;
    const done = await exclusive(client, state.keys.meta, `merge-${randomUUID()}`, async () => ({ value: fn(await state.records()) }));
    if (!done) throw new Error(`another merge of job ${name} holds its lock (for 10 s now)`);
    return done.value;
  } finally {
    client.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(what)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
