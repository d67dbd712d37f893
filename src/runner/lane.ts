// What one worker has been given and not yet reported: its attempts in order (the first may be
// running, or finished with its result held by the worker), its chunks in flight, and when the
// first attempt began. The runner's scheduling core (run.ts) keeps one lane per worker.

/** A worker whose recent attempts took less than this gets short mini-batches in chunks, and its next chunk in advance. */
export const CHUNK_BELOW_MS = 250;
/** A chunk of short mini-batches lasts about this long on its worker. */
export const CHUNK_TARGET_MS = 200;
/** A worker sends the results it holds at the latest once the first has waited this long (see worker-results.ts). */
export const HOLD_MS = 250;
/** At most this many mini-batches in one chunk. */
export const MAX_CHUNK = 64;

/**
 * How many mini-batches the next chunk for a worker holds: one while its attempts are long (or not
 * yet measured); else about CHUNK_TARGET_MS of them, and at most half of a fair share of the work
 * not yet handed out, so that the workers finish together.
 */
export function chunkSize(recentAttemptMs: number | undefined, unassigned: number, workers: number): number {
  if (recentAttemptMs === undefined || recentAttemptMs >= CHUNK_BELOW_MS) return 1;
  const byTime = Math.floor(CHUNK_TARGET_MS / Math.max(recentAttemptMs, 0.001));
  const fair = Math.floor(unassigned / (2 * Math.max(1, workers)));
  return Math.max(1, Math.min(MAX_CHUNK, byTime, fair));
}

export interface LaneAttempt {
  readonly id: string;
  readonly no: number;
  /** The last of its chunk. */
  readonly last: boolean;
}

export class Lane<A extends LaneAttempt> {
  /** Sent and not reported, in the order sent. */
  readonly attempts: A[] = [];
  /** Chunks sent and not finished. */
  chunks = 0;
  /** performance.now() when the first attempt began, as far as the parent knows (see `head`). */
  since = 0;
  /** The worker said that the first attempt is the one it runs (see `confirm`). */
  private known = false;

  get busy(): boolean {
    return this.attempts.length > 0;
  }

  add(attempts: readonly A[], now: number): void {
    if (this.attempts.length === 0) this.since = now;
    for (const a of attempts) this.attempts.push(a);
    this.chunks++;
  }

  /** The first attempt, reported; undefined when `id`/`no` are not the first (an answer to attempts already given up). */
  shift(id: string, no: number): A | undefined {
    const a = this.attempts[0];
    if (a === undefined || a.id !== id || a.no !== no) return undefined;
    this.attempts.shift();
    if (a.last) this.chunks--;
    this.known = false;
    return a;
  }

  /** Results came back (the worker sends all it holds): the first attempt left began at `at` (performance.now()). */
  reported(at: number): void {
    this.since = at;
  }

  /**
   * The worker says it runs attempt `id`/`no`, since `at` (performance.now()), having sent all it
   * held: when that is the first attempt, it is the one running. False for an attempt already reported.
   */
  confirm(id: string, no: number, at: number): boolean {
    const a = this.attempts[0];
    if (a === undefined || a.id !== id || a.no !== no) return false;
    this.known = true;
    this.since = Math.max(this.since, at);
    return true;
  }

  /**
   * The attempts that may be running: the first one and the rest of its chunk. The worker sends
   * what it holds at the end of each chunk, so a later chunk has not begun; within this one, the
   * first attempts may have finished with their results held. One attempt: it is the one running.
   */
  head(): A[] {
    if (this.known) return this.attempts.slice(0, 1);
    const end = this.attempts.findIndex((a) => a.last);
    return this.attempts.slice(0, end < 0 ? this.attempts.length : end + 1);
  }

  /**
   * When the chunk at the head has several attempts, the one running may have begun after `since`:
   * the attempts before it finished and their results are held, for at most HOLD_MS after the
   * first of them (itself short). The deadline waits that much more, so no attempt is cut short.
   */
  deadlineSlack(): number {
    return !this.known && this.attempts.length > 1 && !this.attempts[0]!.last ? HOLD_MS + CHUNK_BELOW_MS : 0;
  }

  /** All attempts, taken off the lane. */
  clear(): A[] {
    this.chunks = 0;
    this.known = false;
    return this.attempts.splice(0);
  }
}
