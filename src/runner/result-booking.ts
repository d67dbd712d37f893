// The results a scheduler took off its lanes and has not booked yet (SchedulerEvents.result).
// Successes wait for the next turn: woken by the worker, this process may be running on the
// worker's core, which the worker gets back sooner this way (a timer wakes it on an idle core when
// there is one). Anything that reads the outcomes books them first (flush), and a failure is booked
// at once (its retry, the thresholds).
import type { WorkerProcess } from './pool.js';
import type { AttemptResult } from './protocol.js';
import type { Attempt, SchedulerEvents } from './scheduler.js';

interface Unbooked {
  w: WorkerProcess;
  a: Attempt;
  r: AttemptResult;
  nowEpoch: number;
}

export class ResultBooking {
  private unbooked: Unbooked[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly events: SchedulerEvents) {}

  /** Results of `w` received at `nowEpoch` (epoch ms): booked now when one failed, else on the next turn. */
  add(w: WorkerProcess, done: readonly Attempt[], results: readonly AttemptResult[], nowEpoch: number): void {
    let failed = false;
    for (let i = 0; i < done.length; i++) {
      this.unbooked.push({ w, a: done[i]!, r: results[i]!, nowEpoch });
      if (!results[i]!.ok) failed = true;
    }
    if (failed) this.flush();
    else this.timer ??= setTimeout(this.flush, 1);
  }

  /** Book the results received: anything that reads the outcomes calls this first. */
  readonly flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.unbooked;
    if (batch.length === 0) return;
    this.unbooked = [];
    for (const { w, a, r, nowEpoch } of batch) this.events.result(w, a, r, nowEpoch);
  };
}
