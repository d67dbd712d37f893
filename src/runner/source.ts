// Where the mini-batches of a job come from. The scheduler takes them one by one from a
// MiniBatchSource, and gives back those it could not run (a retry, a worker that ended holding
// them). Today's source is this node's share of the local partition (LocalSource); a shared queue
// (many nodes pulling from one job) is a second implementation of the same interface, not a
// second runner: it buffers what it pulled so that take() stays synchronous, calls `onAvailable`
// when more arrives, and learns the end of each mini-batch through `settled` (to acknowledge it).
import type { MiniBatch, Partition, UnreadableMiniBatch } from './partition.js';
import type { AttemptTask } from './protocol.js';
import type { MiniBatchStatus } from './reports.js';
import type { ParallelRunErrorInfo } from './types.js';

/** A mini-batch that a worker can run, and what is known about it so far. */
export interface MiniBatchState {
  readonly mb: Exclude<MiniBatch, { kind: 'unreadable' }>;
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

export interface MiniBatchSource {
  /** Mini-batches and items of the job this source serves (job-wide when the source is shared). */
  readonly miniBatches: number;
  readonly items: number;
  /** Inputs that could not be read while listing them: failed without a worker, at the start. */
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
  settled(st: MiniBatchState, status: MiniBatchStatus): void;
  /** Set by the scheduler: the source calls it when mini-batches arrive after take() found none (a shared queue; never locally). */
  onAvailable?: () => void;
}

/** This node's share of the local partition, in order; retries go before mini-batches not started. */
export class LocalSource implements MiniBatchSource {
  readonly miniBatches: number;
  readonly items: number;
  readonly unreadable: UnreadableMiniBatch[] = [];
  private readonly states: MiniBatchState[] = [];
  private next = 0;
  private readonly retries: MiniBatchState[] = [];

  constructor(part: Partition) {
    this.miniBatches = part.miniBatches.length;
    this.items = part.items;
    for (const mb of part.miniBatches) {
      if (mb.kind === 'unreadable') this.unreadable.push(mb);
      else this.states.push({ mb, task: undefined, attempts: 0, firstStart: 0, lastError: undefined, lastRunMs: 0, done: false, suspect: false });
    }
  }

  take(): MiniBatchState | undefined {
    return this.retries.shift() ?? (this.next < this.states.length ? this.states[this.next++] : undefined);
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
    return this.states.length - this.next;
  }

  settled(): void {}
}
