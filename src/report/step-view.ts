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
  const { firstStart, lastEnd } = step.attempts;
  if (firstStart === undefined || lastEnd === undefined) return { start: step.started, end: step.ended };
  return { start: Math.min(step.started ?? Infinity, firstStart), end: Math.max(step.ended ?? -Infinity, lastEnd) };
}

export function stepView(step: StepRun, index: number): StepView {
  return { step, index, ...stepRange(step), stops: workerStops(step) };
}
