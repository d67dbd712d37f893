// A runner worker's end, once (stop()): what it holds goes to the runner, then the entry script's
// shutdown() (after a successful init(), bounded by shutdown_timeout), then its step. SIGTERM and
// SIGINT end it through stop() as `terminated` (onSignal); the same signal again ends the process
// at once.
import { performance } from 'node:perf_hooks';
import type { Step } from '../step.js';
import type { EndOptions } from '../types.js';
import { serializeError, type SerializedError, type ShutdownMessage, type StartMessage } from './protocol.js';
import type { EntryScript, InitContext } from './types.js';
import { userError } from './user-error.js';
import { sendAndWait } from './worker-channel.js';
import { flushResults } from './worker-results.js';
import { sendScalars } from './worker-scalars.js';
import type { WorkerStart } from './worker-start.js';

let start: StartMessage | undefined;
let startup: WorkerStart | undefined;
/** The context shutdown() gets. */
let baseContext: InitContext | undefined;
/** The entry script's shutdown(), once init() has finished: it is called at the end. */
let shutdown: EntryScript['shutdown'];

/** The worker's `start` message came: its end is `startup`'s step's. */
export function endFor(message: StartMessage, workerStart: WorkerStart, context: InitContext): void {
  start = message;
  startup = workerStart;
  baseContext = context;
}

/** init() finished: the entry script's `fn` (if any) is called at the end. */
export function shutdownAtEnd(fn: EntryScript['shutdown']): void {
  shutdown = fn;
}

let stopping = false;
/**
 * The end of this worker, once: what it holds goes to the runner, then shutdown() (after a
 * successful init()), then the step. `byRunner`: the runner's stop message (step.json says so).
 */
export async function stop(code: number, end: EndOptions = {}, byRunner = false): Promise<void> {
  if (byRunner) startup?.step?.markStoppedBy('runner');
  if (stopping) return;
  stopping = true;
  flushResults();
  sendScalars();
  try {
    // a worker that ran without its step starts it now, to end it (its files say how it ended)
    const s = await startup?.start().catch(() => undefined);
    if (shutdown && s) await callShutdown(s, shutdown);
    if (byRunner) s?.markStoppedBy('runner');
    await s?.end(end);
  } finally {
    process.exit(code);
  }
}

let signalled: NodeJS.Signals | undefined;
/**
 * SIGTERM / SIGINT: the end through stop(), as `terminated`; the same signal again ends the process
 * now. Another one does not: Ctrl-C sends SIGINT to the whole process group, and the runner's
 * SIGTERM follows it, which must not cut shutdown() and the flush short.
 */
export function onSignal(signal: NodeJS.Signals): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  if (signalled === signal) {
    startup?.step?.flushLocalSync('terminated', `second ${signal} while ending`);
    process.exit(code);
  }
  if (signalled !== undefined) return;
  signalled = signal;
  const error = new Error(`received ${signal}`);
  error.name = 'Terminated';
  void stop(code, { outcome: 'terminated', error });
}

class ShutdownTimeout extends Error {
  override readonly name = 'ShutdownTimeout';
}

/**
 * The entry script's shutdown(), in a span, bounded by shutdown_timeout (one that never returns is
 * left behind: the worker ends anyway). How it ended is logged and sent to the runner (its worker
 * summary); it never changes the job's result. Never throws.
 */
async function callShutdown(s: Step, fn: NonNullable<EntryScript['shutdown']>): Promise<void> {
  const limit = start!.shutdownTimeoutMs;
  const t0 = performance.now();
  let outcome: ShutdownMessage['outcome'] = 'ok';
  let error: SerializedError | undefined;
  try {
    await s.span('shutdown', () => bounded(() => fn(baseContext!), limit), { attributes: { 'worker.id': start!.worker } });
  } catch (e) {
    outcome = e instanceof ShutdownTimeout ? 'timed out' : 'failed';
    error = e instanceof ShutdownTimeout ? serializeError(e) : userError(e);
    if (outcome === 'failed') s.logger.error('shutdown() failed; the job goes on as it was', { error: e instanceof Error ? e : String(e) });
    else s.logger.warn(`shutdown() did not return within ${limit / 1000} s (shutdown_timeout); the worker ends without waiting for it`);
  }
  await sendAndWait({ type: 'shutdown', outcome, ms: performance.now() - t0, error });
}

/** `fn()`'s promise, rejected with a ShutdownTimeout after `ms`. */
function bounded(fn: () => unknown, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ShutdownTimeout(`shutdown() did not return within ${ms / 1000} s (shutdown_timeout)`)), ms);
    Promise.resolve()
      .then(fn)
      .then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
  });
}
