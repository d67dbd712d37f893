// A runner worker's finished results, held and sent back in batches: at the end of a chunk, when
// nothing else is queued, after a failed attempt, once their output lines reach HOLD_BYTES, or once
// the oldest has been held for HOLD_MS; and, with what is held, the attempt that awaits past HOLD_MS
// (sendRunning), so that a hang there is charged to it.
import { performance } from 'node:perf_hooks';
import type { AttemptResult } from './protocol.js';
import { HOLD_MS } from './lane.js';
import type { Attempt } from './worker-attempt.js';
import { epoch, send } from './worker-channel.js';
import type { WorkerStart } from './worker-start.js';

/** Held results are sent once their output lines reach this size (or after HOLD_MS, see lane.ts). */
const HOLD_BYTES = 1 << 20;

/** Results finished and not sent yet, oldest first. */
const held: AttemptResult[] = [];
let heldSince = 0;
let heldBytes = 0;
/** The worker's start-up: sent results start its step (see WorkerStart.soon()). */
let startup: WorkerStart | undefined;
/** The attempts queued after the one running: none left, what is held goes back. */
let queued: readonly unknown[] = [];

/** Results go back for the worker's `start`, which runs the attempts `queue` holds. */
export function holdResultsFor(start: WorkerStart, queue: readonly unknown[]): void {
  startup = start;
  queued = queue;
}

/** performance.now() when the oldest result held was finished; undefined when none is. */
export function heldSinceTime(): number | undefined {
  return held.length > 0 ? heldSince : undefined;
}

/**
 * Hold the result, or send it with those held before it: at the end of a chunk, when nothing else
 * is queued, after a failure (the parent retries it), or when the oldest has waited HOLD_MS.
 */
export function report(a: Attempt, result: AttemptResult): void {
  if (held.length === 0) heldSince = performance.now();
  held.push(result);
  if (result.lines !== undefined) heldBytes += result.lines.length;
  if (a.last || queued.length === 0 || !result.ok || heldBytes >= HOLD_BYTES || performance.now() - heldSince >= HOLD_MS) flushResults();
}

export function flushResults(): void {
  if (held.length === 0) return;
  send({ type: 'results', results: held.splice(0) });
  heldBytes = 0;
  // the first results are out: the step starts now (a worker whose entry script did not need it first)
  startup!.soon();
}

/** An attempt awaits past HOLD_MS: what is held goes back, with the attempt that runs (and the step starts meanwhile). */
export function sendRunning(a: Attempt | undefined): void {
  if (a === undefined) return;
  startup!.soon();
  send({ type: 'results', results: held.splice(0), running: { id: a.message.id, attempt: a.message.attempt, start: epoch(a.start) } });
  heldBytes = 0;
}
