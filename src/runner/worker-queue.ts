// A runner worker's queue of attempts: run one at a time, in the order sent (the parent may send
// the next chunk early), each after the step when it waits for it (see worker-start.ts); while one
// awaits, the parent is told within HOLD_MS what runs (sendRunning).
import { performance } from 'node:perf_hooks';
import { unpackRun, type RunMessage } from './protocol.js';
import { HOLD_MS } from './lane.js';
import { current, runAttempt, type Attempt, type Queued } from './worker-attempt.js';
import { heldSinceTime, sendRunning } from './worker-results.js';
import type { WorkerStart } from './worker-start.js';

/** The attempts sent and not begun, in order. */
export const queue: Queued[] = [];
let running = false;
let startup: WorkerStart | undefined;

/** The attempts run for the worker's `start`. */
export function queueFor(start: WorkerStart): void {
  startup = start;
}

/** The attempts of a run message go in the queue (one at a time, in the order sent). */
export function enqueue(message: RunMessage): void {
  const attempts = unpackRun(message);
  const n = attempts.length;
  for (let i = 0; i < n; i++) queue.push({ task: attempts[i]!, last: i === n - 1 });
  if (!running) void drain();
}

async function drain(): Promise<void> {
  running = true;
  try {
    for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
      // one attempt before the step: the next waits for it (see worker-start.ts)
      const wait = startup!.beforeAttempt();
      if (wait) await wait;
      const pending = runAttempt(m);
      if (pending) {
        awaiting = current;
        armNotice();
        try {
          await pending;
        } finally {
          awaiting = undefined;
        }
      }
    }
  } finally {
    running = false;
  }
}

/** The attempt whose run() is awaited now. */
let awaiting: Attempt | undefined;
/**
 * One timer serves every attempt that awaits: most settle long before it fires, and a timer made
 * and cleared per attempt costs more than the attempt itself. When it fires early for the attempt
 * awaited then (it was armed for an earlier one), it is armed again for the rest.
 */
let notice: NodeJS.Timeout | undefined;
/** When the parent is told what runs (performance.now()): HOLD_MS after the attempt began to await, or after the oldest result held. */
let noticeDue = 0;

/** While an attempt awaits, the event loop is free: tell the parent within HOLD_MS what runs (see sendRunning). */
function armNotice(): void {
  const now = performance.now();
  noticeDue = now + HOLD_MS;
  const heldSince = heldSinceTime();
  if (heldSince !== undefined) noticeDue = Math.min(noticeDue, heldSince + HOLD_MS);
  // a notice armed before fires no later than this one is due (it was armed earlier, for as long)
  notice ??= setTimeout(onNotice, Math.max(0, noticeDue - now));
}

function onNotice(): void {
  notice = undefined;
  if (awaiting === undefined) return;
  const left = noticeDue - performance.now();
  if (left >= 1) notice = setTimeout(onNotice, left);
  else sendRunning(current);
}
