// A worker process of the runner: loads the entry script, calls init() once, then run() for each
// mini-batch attempt the parent sends, one at a time and in order (short ones come several to a
// message, and the next message may arrive early: see chunks in run.ts), in the context of the
// parent's attempt span (so log records and user spans belong to it; not for an entry script that
// uses none of its telemetry) and with the mini-batch id on every log record. Its own step (process
// index N) writes logs.process-N.jsonl and friends into the runner's run folder.
//
// This module is the entry: the parent's messages, and the start (loading the entry script, init()).
// Its start-up (when its step starts, and what waits for it) is worker-start.ts's; the queue of
// attempts worker-queue.ts's; one attempt (its items, run(), its timing and resources, what it
// returned) worker-attempt.ts's, with attempt-items.ts; the held results worker-results.ts's; the
// end (stop(), shutdown(), the signals) worker-end.ts's; the forwarded step.log() values
// worker-scalars.ts's; the messages out worker-channel.ts's.
//
// Results go back in batches: at the end of a chunk, after a failed attempt, or once some have
// been held for HOLD_MS. An attempt that awaits longer than that sends what is held and says that it
// runs, so that a hang there is charged to it. (A worker that dies holding results, or blocked in a
// synchronous run(), loses them: the parent then runs the chunk's mini-batches again one at a time,
// see run.ts.)
//
// Once its step is up, the step's default process handling is on for an uncaught exception
// (printed, exit 1: the parent sees the crash and the stderr) and process.exit() (the local files
// are flushed); before, Node's own. SIGTERM and SIGINT are the worker's own: like the runner's stop
// message they end the worker through stop(), which calls the entry script's shutdown() (bounded by
// shutdown_timeout) before the step ends as `terminated` (exit 143 / 130); the same signal again
// ends the process at once. A worker whose init() fails ends itself (exit 1); the runner decides
// whether a fresh one takes its place.
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { EnvReader } from '../config.js';
import { AttemptUsage } from '../resources/attempt-usage.js';
import { serializeError, type ParentMessage, type StartMessage } from './protocol.js';
import type { EntryScript, InitContext } from './types.js';
import { userError } from './user-error.js';
import { setUpAttempts } from './worker-attempt.js';
import { send } from './worker-channel.js';
import { endFor, onSignal, shutdownAtEnd, stop } from './worker-end.js';
import { enqueue, queue, queueFor } from './worker-queue.js';
import { holdResultsFor } from './worker-results.js';
import { forwardScalars } from './worker-scalars.js';
import { WORKER_SIGNALS, WorkerStart } from './worker-start.js';

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'start':
      void onStart(message);
      break;
    case 'run':
      // one attempt at a time, in the order sent: the parent may send the next chunk early
      enqueue(message);
      break;
    case 'stop':
      // the runner ends this step: at the job's end (success), or on an abort or a timeout
      // (terminated, with SIGTERM right behind; whichever comes first ends the step, once)
      void stop(message.terminated ? 143 : 0, { outcome: message.terminated ? 'terminated' : 'success' }, true);
      break;
  }
});
// the start message comes after this (one sent before might reach only a preloaded module's listener)
send({ type: 'listening' });

// The parent died or closed the channel: nobody will read our results.
process.on('disconnect', () => {
  void stop(0);
});

for (const sig of WORKER_SIGNALS) process.on(sig, onSignal);

function pickFunctions(mod: Record<string, unknown>): Partial<EntryScript> {
  const candidates = [mod, mod.default as Record<string, unknown> | undefined].filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object');
  // a CommonJS module imported from ESM puts module.exports on `default`
  const fn = <K extends keyof EntryScript>(m: Record<string, unknown>, name: K): EntryScript[K] | undefined => (typeof m[name] === 'function' ? (m[name] as EntryScript[K]) : undefined);
  for (const m of candidates) {
    if (typeof m.run === 'function') return { run: fn(m, 'run'), init: fn(m, 'init'), shutdown: fn(m, 'shutdown') };
  }
  return {};
}

async function onStart(message: StartMessage): Promise<void> {
  // the runner's step identity, trace and run folder (this process was forked before they existed)
  Object.assign(process.env, message.env);
  const r = new EnvReader(process.env);
  // what each attempt's run() used (unless resources are off)
  const usage = !(r.bool('STEP_TELEMETRY_DISABLED') ?? false) && (r.bool('STEP_TELEMETRY_RESOURCES') ?? true) ? new AttemptUsage() : undefined;
  // the context init() and run() get; `logger` and `step` are set once the step is up
  const baseContext = { args: message.args, worker: message.worker, input_type: message.inputType } as Partial<InitContext> as InitContext;
  const startup = new WorkerStart(message, baseContext, (s) => {
    if (message.forwardMetrics) forwardScalars(s);
  });
  endFor(message, startup, baseContext);
  queueFor(startup);
  holdResultsFor(startup, queue);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(message.entryScript).href)) as Record<string, unknown>;
  } catch (error) {
    const s = await startup.start();
    s.logger.error(`cannot load the entry script ${message.entryScript}`, { error: error instanceof Error ? error : String(error) });
    send({ type: 'init-error', phase: 'load', error: userError(error) });
    void stop(1, { error });
    return;
  }
  const { init, run, shutdown } = pickFunctions(mod);
  if (!run) {
    const names = Object.keys(mod).join(', ') || 'nothing';
    const error = new TypeError(`the entry script ${message.entryScript} does not export a run(miniBatch, context) function (it exports: ${names})`);
    send({ type: 'init-error', phase: 'exports', error: serializeError(error) });
    void stop(1, { error });
    return;
  }
  const entry: EntryScript = { init, run, shutdown };
  setUpAttempts(entry, message, startup, baseContext, usage);
  await startup.prepare(entry);
  const t0 = performance.now();
  if (init) {
    try {
      await startup.init(init);
    } catch (error) {
      const s = await startup.start();
      s.logger.error('init() failed', { error: error instanceof Error ? error : String(error) });
      send({ type: 'init-error', phase: 'init', error: userError(error) });
      void stop(1, { error });
      return;
    }
  }
  shutdownAtEnd(shutdown);
  send({ type: 'ready', pid: process.pid, initMs: performance.now() - t0, shutdown: shutdown !== undefined });
}

