// Putting the job on the queue, once. A node joining the job waits for its totals; the first to
// claim the lead (a Redis key with a lease, refreshed while it enqueues) cuts the input, sets the
// totals once and adds the mini-batches not finished, ENQUEUE_BATCH at a time: each is a BullMQ job
// whose id is the mini-batch id, so a restarted node or a second leader adds nothing twice. A node
// whose poll finds the enqueuing unfinished and the lead free takes over and enqueues the rest.
// `--resume` on a job the queue holds clears its failed mini-batches and puts them on it again.
// Every node that joins compares the identity of its input (input-identity.ts: from the listing,
// without cutting) with the one the leader stored: a node on another input is refused at once.
import type { Queue } from 'bullmq';
import { flagName } from '../config.js';
import { RunnerConfigError } from '../config-error.js';
import type { MiniBatch } from '../partition.js';
import { sleep } from './connection.js';
import { differences, inputIdentity, parseSummary, summaryText, type InputIdentity } from './input-identity.js';
import { isFinished, type JobState, type Verdict } from './job-state.js';
import { QUEUE_PREFIX } from './names.js';
import type { QueueSourceOptions } from './queue-source.js';
import { redisOptions } from './url.js';

const ENQUEUE_BATCH = 500;

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

/** What the queue holds of the job once this node joined it. */
export interface JobTotals {
  readonly miniBatches: number;
  readonly items: number;
  readonly verdict: Verdict | undefined;
}

export class Enqueuer {
  /** This node enqueued the job, or took over its enqueueing. */
  isLeader = false;
  /** Every mini-batch is on the queue (seen by this node: it enqueued them, or a poll found the enqueueing done). */
  done = false;
  /** `--resume`: ids of the mini-batches not finished on the queue when this node resumed (their old rows in this node's folder go). */
  readonly resumed = new Set<string>();
  private readonly lockMs: number;
  private queue: Queue | undefined;
  /** This node's input, as join() listed it (a take-over enqueues what it compared, without listing again). */
  private input: InputIdentity | undefined;

  constructor(
    private readonly o: QueueSourceOptions,
    private readonly state: JobState,
    private readonly nodeId: string,
  ) {
    this.lockMs = o.config.queueLockDuration * 1000;
  }

  /** Wait for the totals of the job; the first node to claim it cuts the input and enqueues. */
  async join(): Promise<JobTotals> {
    const { config, address, name } = this.o;
    const deadline = Date.now() + Math.max(60_000, 4 * this.lockMs);
    const input = (this.input = inputIdentity(config));
    for (;;) {
      const m = await this.state.meta();
      if (config.resume && m.total_mb === undefined) {
        throw new Error(`--resume: the queue at ${address.display} does not hold job ${name} (nothing to resume there; without --resume the job starts again)`);
      }
      if (m.total_mb !== undefined && m.enqueue_done !== undefined) break;
      if (await this.state.claimLeader(this.nodeId, this.lockMs)) {
        await this.lead(input);
        break;
      }
      if (m.total_mb !== undefined) break;
      if (Date.now() > deadline) throw new Error(`the queue at ${address.display} holds no totals for job ${name} and another node holds the lead without setting them`);
      await sleep(100);
    }
    if (!this.isLeader) await this.refuseOtherInput(input, (await this.state.meta()).input);
    if (config.resume) await this.resume(input);
    const m = await this.state.meta();
    const totals: JobTotals = {
      miniBatches: Number(m.total_mb),
      items: Number(m.total_items),
      verdict: m.verdict_category ? { category: m.verdict_category as Verdict['category'], message: m.verdict_message ?? '' } : undefined,
    };
    if (!this.isLeader && !config.resume) {
      const { counts } = await this.state.poll(0, 0, 0);
      if (totals.verdict || counts.mbDone >= totals.miniBatches) {
        const end = totals.verdict ? `stopped by its verdict, ${totals.verdict.category}` : `all ${totals.miniBatches} mini-batches finished, ${counts.mbFailed} failed`;
        this.o.notice(`job ${name} on the queue is already over (${end}): this node runs nothing and reports the job as it ended. A new pipeline run id runs the input again; --resume runs its failed mini-batches again`);
      }
    }
    return totals;
  }

  /** This node's input is not the job's (`held`: the summary the leader stored): refused, saying what differs and what to do. */
  private async refuseOtherInput(ours: InputIdentity, held: string | undefined): Promise<void> {
    const job = parseSummary(held);
    if (job === undefined || job.digest === ours.digest) return; // a job enqueued without an identity is not compared
    const { config, address, name } = this.o;
    const what = differences(ours, job, await this.state.inputListing());
    throw new RunnerConfigError([
      {
        field: config.inputFailed ? 'input_failed' : 'input',
        source: config.inputFailed ? flagName('input_failed') : 'input',
        expected: `${config.resume ? '(--resume) ' : ''}the input that job ${name} on the queue ${address.display} was enqueued with`,
        got: `another input: ${what.join('; ')}. This node runs none of it: to run this input as a new job, give it a new pipeline run id (STEP_TELEMETRY_PIPELINE_RUN_ID); to finish the job on the queue, run it on the input it was enqueued with (--resume runs its failed mini-batches again)`,
      },
    ]);
  }

  /** The node that enqueued died before it finished: another takes over (idempotently). */
  async takeOver(): Promise<void> {
    const m = await this.state.meta();
    if (m.enqueue_done !== undefined) {
      this.done = true;
      return;
    }
    if (await this.state.claimLeader(this.nodeId, this.lockMs)) {
      this.o.notice(`the node that enqueued job ${this.o.name} stopped before it finished; this node enqueues the rest`);
      await this.lead(this.input ?? inputIdentity(this.o.config));
    }
  }

  /** Close the connection of the queue this node added to (if it did). */
  close(): Promise<void> | undefined {
    return this.queue?.close();
  }

  /** This node enqueues: cut the input, set the totals once, add the mini-batches not finished (idempotent: job ids are the mini-batch ids). */
  private async lead(input: InputIdentity): Promise<void> {
    this.isLeader = true;
    const refresh = setInterval(() => void this.state.refreshLeader(this.nodeId, this.lockMs).catch(() => {}), Math.max(100, this.lockMs / 3));
    refresh.unref();
    try {
      // a second leader (the first died before it was done) finds the totals set: on another input it is refused, before it cuts
      await this.refuseOtherInput(input, (await this.state.meta()).input);
      const part = await this.o.partition(input.paths);
      this.o.onPartition?.(part);
      const totals = await this.state.setTotals(part.miniBatches.length, part.items, summaryText(input), input.listing);
      await this.refuseOtherInput(input, totals.input);
      const queue = await this.bullQueue();
      const rec = await this.state.records();
      let enqueued = 0;
      for (const batch of batches(part.miniBatches, (mb) => !isFinished(rec, mb.index))) {
        await queue.addBulk(batch.map(bullJob));
        await this.state.setField('enqueued', (enqueued += batch.length));
      }
      await this.state.setField('enqueue_done', Date.now());
      this.done = true;
    } finally {
      clearInterval(refresh);
    }
  }

  /** `--resume` on a job the queue holds: its failed mini-batches and its verdict are cleared, and those mini-batches go on the queue again. */
  private async resume(input: InputIdentity): Promise<void> {
    const part = await this.o.partition(input.paths); // the input is the job's (join compared them)
    const again: MiniBatch[] = [];
    for (const batch of batches(part.miniBatches, () => true)) {
      const cleared = await this.state.resetFailed(batch);
      for (const mb of batch) if (cleared.has(mb.index)) again.push(mb);
    }
    await this.state.forgetReleased(again.map((mb) => mb.id)); // they go on the queue as new jobs
    if (again.length > 0) {
      const queue = await this.bullQueue();
      for (const batch of batches(again, () => true)) await queue.addBulk(batch.map(bullJob));
    }
    // what is not finished now runs again (cleared here or by another resuming node): this node's old rows of it go
    const rec = await this.state.records();
    for (const mb of part.miniBatches) if (!isFinished(rec, mb.index)) this.resumed.add(mb.id);
    this.o.notice(`--resume: job ${this.o.name} on the queue: ${again.length} failed mini-batch(es) run again, the job's verdict (if any) was cleared; the mini-batches that succeeded stay done`);
  }

  /** BullMQ's queue of the job, to add to (one connection, opened the first time). */
  private async bullQueue(): Promise<Queue> {
    const { Queue } = await import('bullmq');
    this.queue ??= new Queue(this.o.name, { connection: redisOptions(this.o.address), prefix: QUEUE_PREFIX });
    return this.queue;
  }
}
