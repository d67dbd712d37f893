// Where the mini-batches of a job come from. The scheduler takes them one by one from a
// MiniBatchSource, and gives back those it could not run (a retry, a worker that ended holding
// them). Today's source is this node's share of the local partition (LocalSource); a shared queue
// (many nodes pulling from one job) is a second implementation of the same interface, not a
// second runner: it buffers what it pulled so that take() stays synchronous, calls `onAvailable`
// when more arrives, and learns the end of each mini-batch through `settled` (to acknowledge it).
// A source makes a mini-batch's state when it hands it out and keeps nothing of it once settled:
// the job's memory does not grow with the mini-batches it finished.
import type { MiniBatchList } from './mini-batch-list.js';
import { miniBatchId, type MiniBatch, type Partition, type UnreadableMiniBatch } from './partition.js';
import type { AttemptTask } from './protocol.js';
import type { MiniBatchStatus } from './reports.js';
import type { ParallelRunErrorInfo } from './types.js';
import type { JobCounts, Verdict } from './queue/job-state.js';

export type RunnableMiniBatch = Exclude<MiniBatch, { kind: 'unreadable' }>;

/** A mini-batch that a worker can run, and what is known about it so far. */
export interface MiniBatchState {
  readonly mb: RunnableMiniBatch;
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

/** The state of a mini-batch not tried yet (one shape for all). */
export function newState(mb: RunnableMiniBatch): MiniBatchState {
  return { mb, task: undefined, attempts: 0, firstStart: 0, lastError: undefined, lastRunMs: 0, done: false, suspect: false };
}

/** How a mini-batch ended, for the source to count (a shared source counts it job-wide). */
export interface SettledInfo {
  readonly succeeded: number;
  readonly failed: number;
  /** Its output-journal entry (undefined: none, it failed). */
  readonly seq?: number;
}

/**
 * The job-wide side of a shared source (queue/queue-source.ts): counts, verdict and totals are
 * the job's, across every node, and the job ends when they say so.
 */
export interface SharedJob {
  readonly isLeader: boolean;
  /** This node process's id among the job's writers (its output-journal entries carry it). */
  readonly writer: number;
  /** The redacted address of the queue. */
  readonly display: string;
  readonly counts: JobCounts;
  readonly verdict: Verdict | undefined;
  /** The queue cannot be reached: this node stops with this cause. */
  readonly failure: ParallelRunErrorInfo | undefined;
  /** This node's retries, timeouts and worker restarts (the source adds them to the job's). */
  readonly local: { retries: number; timeouts: number; restarts: number };
  /** Set by the job: the counts, the verdict or the failure changed. */
  onChange?: () => void;
  /** Set by the job: an input that could not be read was pulled; the job fails it and calls settledUnreadable(). */
  onUnreadable?: (mb: UnreadableMiniBatch) => void;
  /** Set by the job: a mini-batch whose node was lost during an attempt (counted); when it had no tries left, the job finishes it. */
  onLost?: (st: MiniBatchState, message: string) => void;
  /** Set by the job: called before a commit goes out (the output journal is written first). */
  beforeCommit: () => void;
  settledUnreadable(mb: UnreadableMiniBatch, info: SettledInfo): void;
  /** Set the job's verdict; the first one proposed holds on every node (it comes back through onChange). */
  propose(v: Verdict): void;
  /** Stop pulling: the job ends on this node. */
  halt(): void;
}

export interface MiniBatchSource {
  /** Mini-batches and items of the job this source serves (job-wide when the source is shared); so far, until `final`. */
  readonly miniBatches: number;
  readonly items: number;
  /** The totals are final (false while the local partition is still being cut: they grow). */
  readonly final: boolean;
  /** Inputs that could not be read while listing them: failed without a worker, as they are found (it grows while not `final`). */
  readonly unreadable: readonly UnreadableMiniBatch[];
  /** The next mini-batch to run (a retry first, then one not started); undefined when none waits now. */
  take(): MiniBatchState | undefined;
  /** Back to the front, uncounted: taken and not run (a worker ended holding it, or a chunk was cut). */
  putBack(st: MiniBatchState): void;
  /** A failed attempt with tries left: it runs again after the retries already waiting. */
  retry(st: MiniBatchState): void;
  /** Mini-batches waiting to be handed out: for a retry, and not started. */
  readonly waitingRetry: number;
  readonly notStarted: number;
  /** Those waiting for a retry, in order (at the end of an aborted job: their failed attempts are reported). */
  waiting(): readonly MiniBatchState[];
  /** A mini-batch reached its final status (done, or failed after all tries). */
  settled(st: MiniBatchState, status: MiniBatchStatus, info: SettledInfo): void;
  /** A shared queue: counts and the verdict are job-wide. */
  readonly shared?: SharedJob;
  /** Set by the scheduler: the source calls it when mini-batches arrive after take() found none (a shared queue, a partition still being cut). */
  onAvailable?: () => void;
  /** Set by the job: the partition cut more (maybe unreadable inputs too), or ended (`final`). */
  onGrow?: () => void;
}

/**
 * This node's share of the local partition, in order; retries go before mini-batches not started.
 * A partition still being cut (partition.ts's PartitionCut) calls grew() after each slice: what
 * it cut is handed out from then on, and the totals are final once it ends.
 */
export class LocalSource implements MiniBatchSource {
  readonly unreadable: UnreadableMiniBatch[] = [];
  private readonly list: MiniBatchList;
  /** Mini-batches of `list` that can be handed out (those published by the cut). */
  private visible = 0;
  /** Entries of `list.unreadable` taken into `unreadable`. */
  private unreadableSeen = 0;
  /** The next mini-batch of `list` to look at. */
  private next = 0;
  private left = 0;
  private readonly retries: MiniBatchState[] = [];
  onAvailable?: () => void;
  onGrow?: () => void;

  /** `skip`: ids of mini-batches that succeeded before (a resumed run): counted in the totals, never run. */
  constructor(
    private readonly part: Partition,
    private readonly skip?: ReadonlySet<string>,
  ) {
    this.list = part.miniBatches;
    this.count();
  }

  get miniBatches(): number {
    return this.visible;
  }

  get items(): number {
    return this.part.items;
  }

  get final(): boolean {
    return this.part.final;
  }

  /** The cut published more mini-batches, or ended: they can be handed out, and the job hears of them. */
  grew(): void {
    this.count();
    this.onGrow?.();
    this.onAvailable?.();
  }

  private count(): void {
    const list = this.list;
    const from = this.visible;
    this.visible = this.part.ready;
    let added = this.visible - from;
    for (; this.unreadableSeen < list.unreadable.length && list.unreadable[this.unreadableSeen]! < this.visible; this.unreadableSeen++, added--) this.unreadable.push(list.at(list.unreadable[this.unreadableSeen]!) as UnreadableMiniBatch);
    if (this.skip && this.skip.size > 0) for (let i = from; i < this.visible; i++) if (this.skipped(i)) added--;
    this.left += added;
  }

  take(): MiniBatchState | undefined {
    const retry = this.retries.shift();
    if (retry !== undefined) return retry;
    // a mini-batch's state exists from here to its end: nothing is kept of those not started or finished
    const list = this.list;
    while (this.next < this.visible) {
      const i = this.next++;
      if (!list.runnable(i) || this.skipped(i)) continue;
      this.left--;
      return newState(list.at(i) as RunnableMiniBatch);
    }
    return undefined;
  }

  putBack(st: MiniBatchState): void {
    this.retries.unshift(st);
  }

  retry(st: MiniBatchState): void {
    this.retries.push(st);
  }

  get waitingRetry(): number {
    return this.retries.length;
  }

  waiting(): readonly MiniBatchState[] {
    return this.retries;
  }

  get notStarted(): number {
    return this.left;
  }

  settled(): void {}

  private skipped(i: number): boolean {
    return this.skip !== undefined && this.skip.size > 0 && this.list.runnable(i) && this.skip.has(miniBatchId(this.list.indexOf(i)));
  }
}
