// The job's accounting: mini-batches and items by outcome, retries, timeouts and worker restarts,
// and the thresholds (error_threshold, allowed_failed_count, allowed_failed_percent) that decide
// whether the job goes on. Counts are this process's; with a shared queue the same questions are
// asked of job-wide counts (the totals come from the source, the verdict from `exceeded()`).
import type { ResolvedRunConfig } from './config.js';
import type { JobCounts } from './queue/job-state.js';
import type { ParallelRunResult } from './types.js';

export type Counts = Pick<ParallelRunResult, 'mini_batches' | 'items' | 'retries' | 'timeouts' | 'worker_restarts'>;

export class Accounting {
  mbDone = 0;
  mbSucceeded = 0;
  mbFailed = 0;
  itemsSucceeded = 0;
  itemsFailed = 0;
  retries = 0;
  timeouts = 0;
  restarts = 0;
  /** Epoch ms when the last mini-batch finished; 0 before. */
  lastFinish = 0;

  constructor(
    private readonly config: ResolvedRunConfig,
    /** Mini-batches and items of the job; while `final` is false (a partition still being cut), so far. */
    readonly totals: { readonly miniBatches: number; readonly items: number; readonly final?: boolean },
  ) {}

  /** A mini-batch reached its final status with `succeeded` and `failed` items. */
  miniBatchFinished(ok: boolean, succeeded: number, failed: number): void {
    this.mbDone++;
    if (ok) this.mbSucceeded++;
    else this.mbFailed++;
    this.itemsSucceeded += succeeded;
    this.itemsFailed += failed;
    this.lastFinish = Date.now();
  }

  /** The job-wide counts of a shared queue (this object is then the job's view; the node's is another). */
  setJobWide(c: JobCounts): void {
    if (c.mbDone !== this.mbDone) this.lastFinish = Date.now();
    this.mbDone = c.mbDone;
    this.mbSucceeded = c.mbSucceeded;
    this.mbFailed = c.mbFailed;
    this.itemsSucceeded = c.itemsSucceeded;
    this.itemsFailed = c.itemsFailed;
    this.retries = c.retries;
    this.timeouts = c.timeouts;
    this.restarts = c.restarts;
  }

  /** Every mini-batch of the job has its final status. */
  get complete(): boolean {
    return this.totals.final !== false && this.mbDone === this.totals.miniBatches;
  }

  /** The threshold that the counts exceed, as one sentence; undefined while they hold. */
  exceeded(): string | undefined {
    const c = this.config;
    const total = this.totals.miniBatches;
    if (c.errorThreshold >= 0 && this.itemsFailed > c.errorThreshold) {
      return `error_threshold exceeded: ${this.itemsFailed} failed items > error_threshold ${c.errorThreshold}`;
    }
    if (c.allowedFailedCount >= 0 && this.mbFailed > c.allowedFailedCount) {
      return `allowed_failed_count exceeded: ${this.mbFailed} failed mini-batches > allowed_failed_count ${c.allowedFailedCount}`;
    }
    // a percentage of the whole job: not asked of a denominator that is still growing (the job asks again at the end of the cut)
    if (c.allowedFailedPercent < 100 && this.totals.final !== false && (this.mbFailed * 100) / total > c.allowedFailedPercent) {
      const pct = (this.mbFailed * 100) / total;
      return `allowed_failed_percent exceeded: ${this.mbFailed} of ${total} mini-batches failed (${pct.toFixed(1)}%) > allowed_failed_percent ${c.allowedFailedPercent}`;
    }
    return undefined;
  }

  /** Failed items / error_threshold (0 when the threshold is -1). */
  errorBudgetUsed(): number {
    return this.config.errorThreshold >= 0 ? this.itemsFailed / Math.max(1, this.config.errorThreshold) : 0;
  }

  counts(): Counts {
    const { miniBatches: total, items } = this.totals;
    return {
      mini_batches: { total, succeeded: this.mbSucceeded, failed: this.mbFailed, not_processed: total - this.mbDone },
      items: { total: items, succeeded: this.itemsSucceeded, failed: this.itemsFailed, not_processed: items - this.itemsSucceeded - this.itemsFailed },
      retries: this.retries,
      timeouts: this.timeouts,
      worker_restarts: this.restarts,
    };
  }
}
