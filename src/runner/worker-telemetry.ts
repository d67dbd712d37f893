// A runner worker's step, loaded when it starts (worker.ts: before init() when the entry script
// uses it, else once the worker has sent its first results), and the spans of what ran before.
import { recordFailure } from '../signals/safe-span.js';
import { startStep, type Step } from '../step.js';

export { startStep, type Step };
export { attemptContext, runIn } from './worker-logging.js';

/** A span of work that ran before the step was up (init()), from its start to its end (epoch ms). */
export function recordEarlySpan(step: Step, name: string, start: number, end: number, attributes: Record<string, string>, error?: unknown): void {
  const span = step.startSpan(name, { startTime: start, attributes });
  if (error !== undefined) recordFailure(span, error);
  span.end(end);
}
