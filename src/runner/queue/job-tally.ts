// The job-wide tally as this node keeps it: each mini-batch it settles is committed to the job's
// counts in Redis (job-state.ts: one Lua script, so a mini-batch run twice counts once) and then
// acknowledged on the queue; its retries, timeouts and restarts go up with each poll; and the
// job's counts and verdict come back with every reply (counts only move forward, the first verdict
// holds on every node). A reply that changes what the Job sees tells it (onChange).
import type { MiniBatchStatus } from '../reports.js';
import type { SettledInfo, SharedJob } from '../source.js';
import { ZERO_COUNTS, type JobCounts, type JobState, type Verdict } from './job-state.js';
import type { Lease } from './leases.js';
import type { RedisLiveness } from './redis-liveness.js';

/** Retries, timeouts and worker restarts. */
type NodeCounters = { retries: number; timeouts: number; restarts: number };

/** Who hears of what the replies bring (the Job sets these on the source after it opened). */
export type TallyHooks = Pick<SharedJob, 'onChange' | 'beforeCommit'>;

export interface TallyParts {
  readonly state: JobState;
  readonly liveness: RedisLiveness;
  readonly hooks: TallyHooks;
  readonly notice: (text: string) => void;
  /** The counts moved: pull more if the buffer is short. */
  readonly refill: () => void;
  /** Redis failed a call that cannot be retried here. */
  readonly failed: (error: unknown) => void;
}

export class JobTally {
  /** The job's totals (set once this node joined it). */
  miniBatches = 0;
  items = 0;
  /** This node process's id among the job's writers (its commits and journal entries carry it). */
  writer = 0;
  counts: JobCounts = ZERO_COUNTS;
  verdict: Verdict | undefined;
  /** This node's retries, timeouts and restarts (added to the job's by each poll). */
  readonly local: NodeCounters = { retries: 0, timeouts: 0, restarts: 0 };
  private sent: NodeCounters = { retries: 0, timeouts: 0, restarts: 0 };

  constructor(private readonly p: TallyParts) {}

  /** Every mini-batch of the job has its final status. */
  complete(): boolean {
    return this.miniBatches > 0 && this.counts.mbDone >= this.miniBatches;
  }

  /** Count a mini-batch's end job-wide (its output-journal entry is on disk first), then acknowledge its lease. */
  commit(index: number, id: string, status: MiniBatchStatus, info: SettledInfo, lease: Lease | undefined): void {
    const ok = status === 'RUN_DONE';
    this.p.hooks.beforeCommit();
    this.p.state.commit(index, { writer: this.writer, seq: info.seq ?? 0, failed: !ok }, ok, info.succeeded, info.failed).then(
      ({ fresh, counts }) => {
        this.p.liveness.replied();
        if (!fresh) this.p.notice(`${id} had already finished on the queue (a node that lost its lease finished it too): this run's result does not count`);
        this.apply(counts, this.verdict);
        if (lease) lease.job.moveToCompleted(null, lease.token, false).catch(() => {}); // a lease lost meanwhile: the record decides
      },
      (error: unknown) => this.p.failed(error),
    );
  }

  /** Set the job's verdict (the first one proposed holds on every node). */
  propose(v: Verdict): void {
    this.p.state.proposeVerdict(v).then(
      (held) => {
        this.p.liveness.replied();
        this.apply(this.counts, held);
      },
      (error: unknown) => this.p.failed(error),
    );
  }

  /** This node's counters since the last poll up, the job's counts and verdict down (for apply()). */
  async poll(): Promise<{ counts: JobCounts; verdict: Verdict | undefined }> {
    // what is counted while the reply is on its way goes up with the next poll, not lost
    const now = { ...this.local };
    const sent = this.sent;
    const r = await this.p.state.poll(now.retries - sent.retries, now.timeouts - sent.timeouts, now.restarts - sent.restarts);
    this.sent = now;
    this.p.liveness.replied();
    return r;
  }

  /** Take in the job's counts and verdict from a reply. */
  apply(counts: JobCounts, verdict: Verdict | undefined): void {
    const changed = counts.mbDone !== this.counts.mbDone || counts.itemsFailed !== this.counts.itemsFailed || (verdict !== undefined && this.verdict === undefined);
    if (counts.mbDone >= this.counts.mbDone) this.counts = counts;
    if (verdict && !this.verdict) this.verdict = verdict;
    if (changed) this.p.hooks.onChange?.();
    this.p.refill();
  }
}
