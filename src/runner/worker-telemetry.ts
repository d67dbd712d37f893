// A runner worker's telemetry, loaded when its step starts (worker.ts: before init() when the entry
// script uses it, else once the worker has sent its first results): the step, each attempt's trace
// context (its log records and spans belong to the attempt span), and the spans of what ran
// before the step was up.
import { ROOT_CONTEXT, context, trace, type Context } from '@opentelemetry/api';
import { parseTraceparent } from '../identity.js';
import { MINI_BATCH_KEY } from '../signals/logs.js';
import { recordFailure } from '../signals/safe-span.js';
import { startStep, type Step } from '../step.js';

export { startStep, type Step };

/** The parent's traceparent of an attempt (`00-<trace>-<span>-<flags>`, always well-formed) as a context with its mini-batch id. */
export function attemptContext(traceparent: string, miniBatchId: string): Context {
  let ctx: Context;
  if (traceparent.length === 55) {
    ctx = trace.setSpanContext(ROOT_CONTEXT, { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: traceparent.endsWith('1') ? 1 : 0, isRemote: true });
  } else {
    const sc = parseTraceparent(traceparent);
    ctx = sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : context.active();
  }
  return ctx.setValue(MINI_BATCH_KEY, miniBatchId);
}

/** `fn(...args)` in `ctx`. */
export function runIn<A extends unknown[], R>(ctx: Context, fn: (...args: A) => R, ...args: A): R {
  return context.with(ctx, fn, undefined, ...args);
}

/** A span of work that ran before the step was up (init()), from its start to its end (epoch ms). */
export function recordEarlySpan(step: Step, name: string, start: number, end: number, attributes: Record<string, string>, error?: unknown): void {
  const span = step.startSpan(name, { startTime: start, attributes });
  if (error !== undefined) recordFailure(span, error);
  span.end(end);
}
