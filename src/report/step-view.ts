// What the sections of one step share, worked out once: its place in the page, its time range,
// and which of its worker processes the runner stopped.
import type { StepRun } from '../run-folder/model.js';
import { workerStops, type WorkerStops } from './worker-stops.js';

export interface StepView {
  readonly step: StepRun;
  /** Position in the page: the ids of its sections end in it (#timeline-svg-1, #failures-1, ...). */
  readonly index: number;
  readonly start?: number;
  readonly end?: number;
  readonly stops: WorkerStops;
}

/** From the step's own start and end, widened to its mini-batch attempts. */
export function stepRange(step: StepRun): { start?: number; end?: number } {
  let start = step.started;
  let end = step.ended;
  if (step.attempts.length > 0) {
    start = Math.min(start ?? Infinity, step.attempts[0]!.start);
    let last = -Infinity;
    for (const a of step.attempts) if (a.start + a.durationMs > last) last = a.start + a.durationMs;
    end = Math.max(end ?? -Infinity, last);
  }
  return { start, end };
}

export function stepView(step: StepRun, index: number): StepView {
  return { step, index, ...stepRange(step), stops: workerStops(step) };
}
