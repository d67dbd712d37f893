// A runner worker's logger and attempt contexts without its step: OpenTelemetry's API, its
// context manager and winston, not the SDK. For an entry script that logs through its context and
// uses nothing else of the step (entry-needs.ts), init() and the first mini-batch run before the
// step starts: the process logger holds their records (with their times, the attempt's trace
// context and mini-batch id) until the step starts and takes them. The worker's step uses the same
// attempt contexts once it is up (worker-telemetry.ts).
import { ROOT_CONTEXT, context, trace, type Context } from '@opentelemetry/api';
import type winston from 'winston';
import { parseTraceparent } from '../identity.js';
import { ensureContextManager } from '../otel/context-manager.js';
import { processState } from '../process-state.js';
import { MINI_BATCH_KEY, heldToConsole, processLogger } from '../signals/logs.js';

/** Records the logger holds until the step starts: bounded, and more than init() and one mini-batch are likely to write. */
const HELD_RECORDS = 100_000;

/**
 * The process logger, holding what it is given until the worker's step starts (it surely does). A
 * worker that dies first (an uncaught exception, process.exit()) writes what it held to its stderr:
 * the runner keeps that in console.process-N.log and shows its tail with the crash.
 */
export function workerLogger(): winston.Logger {
  ensureContextManager();
  const state = processState().logs;
  state.bufferLimit = HELD_RECORDS;
  const toConsole = (): void => heldToConsole(state);
  process.on('uncaughtExceptionMonitor', toConsole);
  process.on('exit', toConsole);
  return processLogger(state);
}

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
