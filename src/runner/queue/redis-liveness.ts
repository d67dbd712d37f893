// Whether Redis still answers this node. Every reply resets the watch, every poll that goes out
// counts one more without an answer, and Redis counts as gone after a lock duration of silence
// over SILENT_POLLS polls in a row: a timer that fires after the event loop was blocked (a loaded
// machine, the step's imports) runs before the replies that arrived meanwhile are read, so elapsed
// time alone would fail a node whose Redis answered. The node then stops with a QueueError.
import type { ParallelRunErrorInfo } from '../types.js';
import { errorText } from './connection.js';

/** Polls in a row without a reply (besides a lock duration of silence) before Redis counts as gone. */
const SILENT_POLLS = 3;

export class RedisLiveness {
  /** The last error Redis or BullMQ reported (the cause the QueueError names). */
  lastError = '';
  private lastReply = Date.now();
  /** Polls since the last reply from Redis. */
  private unanswered = 0;

  constructor(private readonly lockMs: number) {}

  /** Redis answered. */
  replied(): void {
    this.lastReply = Date.now();
    this.unanswered = 0;
  }

  noteError(error: unknown): void {
    this.lastError = errorText(error);
  }

  /** A poll is due: true when Redis has been silent too long (the poll does not go); else it goes, unanswered so far. */
  gone(): boolean {
    if (Date.now() - this.lastReply > this.lockMs && this.unanswered >= SILENT_POLLS) return true;
    this.unanswered++;
    return false;
  }

  /** The cause this node stops with when the queue at `display` is unreachable. */
  failure(display: string, error: unknown): ParallelRunErrorInfo {
    return {
      category: 'QueueError',
      message: `the queue at ${display} is unreachable (${this.lastError || errorText(error)}); this node stopped. Its finished mini-batches are in its output journal; the others go back to the queue when their leases expire`,
    };
  }
}
