// A worker process of the runner: loads the entry script, calls init() once, then run() for each
// mini-batch attempt the parent sends, one at a time and in order (short ones come several to a
// message, and the next message may arrive early: see chunks in run.ts), in the context of the
// parent's attempt span (so log records and user spans belong to it; not for an entry script that
// uses none of its telemetry) and with the mini-batch id on every log record. Its own step (process
// index N) writes logs.process-N.jsonl and friends into the runner's run folder.
//
// Its start-up (when its step starts, and what waits for it) is worker-start.ts's.
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
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Context } from '@opentelemetry/api';
import { EnvReader } from '../config.js';
import { AttemptUsage, type ResourceSnapshot } from '../resources/attempt-usage.js';
import type { Step } from '../step.js';
import type { EndOptions } from '../types.js';
import { serializeError, unpackRun, type AttemptResult, type AttemptTask, type ItemFailure, type SerializedError, type ParentMessage, type ShutdownMessage, type StartMessage, type WorkerMessage } from './protocol.js';
import { HOLD_MS } from './lane.js';
import { readKeyedRows } from './partition-keys.js';
import { TabularReader } from './tabular.js';
import type { EntryScript, InitContext, RunContext, TabularSource } from './types.js';
import { WORKER_SIGNALS, WorkerStart } from './worker-start.js';

const MAX_FAILURES_PER_RESULT = 1000;
/** Held results are sent once their output lines reach this size (or after HOLD_MS, see lane.ts). */
const HOLD_BYTES = 1 << 20;
/** This package's compiled (or source) folder: stack frames from here on are the runner's, not the user's. */
const OWN_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The error with its stack cut where the runner's own frames begin. */
function userError(error: unknown): SerializedError {
  const e = serializeError(error);
  if (!e.stack) return e;
  const lines = e.stack.split('\n');
  const cut = lines.findIndex((l, i) => i > 0 && /^\s+at /.test(l) && (l.includes(OWN_DIR) || l.includes('node:async_hooks') || l.includes('@opentelemetry')));
  return cut > 0 ? { ...e, stack: lines.slice(0, cut).join('\n') } : e;
}

let entry: EntryScript | undefined;
let start: StartMessage | undefined;
/** The worker's step and what waits for it; made with the start message. */
let startup: WorkerStart | undefined;
/** The context init() and run() get; `logger` and `step` are set once the step is up. */
let baseContext: InitContext | undefined;
/** init() finished: shutdown() is called at the end. */
let ready = false;
/** What each attempt's run() used (unless resources are off). */
let usage: AttemptUsage | undefined;

function send(message: WorkerMessage): void {
  try {
    process.send?.(message, undefined, undefined, ignoreSendError);
  } catch {
    // the parent is gone; 'disconnect' ends this process
  }
}

/** A failed send (the parent is gone) is not an error event; 'disconnect' ends this process. */
function ignoreSendError(): void {}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'start':
      void onStart(message);
      break;
    case 'run': {
      // one attempt at a time, in the order sent: the parent may send the next chunk early
      const attempts = unpackRun(message);
      const n = attempts.length;
      for (let i = 0; i < n; i++) queue.push({ task: attempts[i]!, last: i === n - 1 });
      if (!running) void drain();
      break;
    }
    case 'stop':
      // the runner ends this step: at the job's end (success), or on an abort or a timeout
      // (terminated, with SIGTERM right behind; whichever comes first ends the step, once)
      void stop(message.terminated ? 143 : 0, { outcome: message.terminated ? 'terminated' : 'success' }, true);
      break;
  }
});
// the start message comes after this (one sent before might reach only a preloaded module's listener)
send({ type: 'listening' });

/** An attempt waiting to run; `last`: the last of the chunk it came in. */
interface Queued {
  readonly task: AttemptTask;
  readonly last: boolean;
}

const queue: Queued[] = [];
let running = false;

async function drain(): Promise<void> {
  running = true;
  try {
    for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
      // one attempt before the step: the next waits for it (see worker-start.ts)
      const wait = startup!.beforeAttempt();
      if (wait) await wait;
      const pending = onRun(m);
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
  if (held.length > 0) noticeDue = Math.min(noticeDue, heldSince + HOLD_MS);
  // a notice armed before fires no later than this one is due (it was armed earlier, for as long)
  notice ??= setTimeout(onNotice, Math.max(0, noticeDue - now));
}

function onNotice(): void {
  notice = undefined;
  if (awaiting === undefined) return;
  const left = noticeDue - performance.now();
  if (left >= 1) notice = setTimeout(onNotice, left);
  else sendRunning();
}

// The parent died or closed the channel: nobody will read our results.
process.on('disconnect', () => {
  void stop(0);
});

/** run.log scalars logged and not yet sent to the runner: the latest value per name. */
const scalars = new Map<string, number>();
let scalarsTimer: NodeJS.Timeout | undefined;
const SCALARS_EVERY_MS = 1000;

/** The worker's step.log() values also go to the runner, whose Prometheus endpoint is the job's. */
function forwardScalars(s: Step): void {
  const log = s.log.bind(s);
  s.log = (name, value, options) => {
    log(name, value, options);
    if (typeof name !== 'string' || typeof value !== 'number' || !Number.isFinite(value)) return;
    scalars.set(name, value);
    if (scalarsTimer === undefined) {
      scalarsTimer = setTimeout(sendScalars, SCALARS_EVERY_MS);
      scalarsTimer.unref();
    }
  };
}

function sendScalars(): void {
  if (scalarsTimer !== undefined) clearTimeout(scalarsTimer);
  scalarsTimer = undefined;
  if (scalars.size === 0) return;
  send({ type: 'metrics', scalars: [...scalars] });
  scalars.clear();
}

let stopping = false;
/**
 * The end of this worker, once: what it holds goes to the runner, then shutdown() (after a
 * successful init()), then the step. `byRunner`: the runner's stop message (step.json says so).
 */
async function stop(code: number, end: EndOptions = {}, byRunner = false): Promise<void> {
  if (byRunner) startup?.step?.markStoppedBy('runner');
  if (stopping) return;
  stopping = true;
  flushResults();
  sendScalars();
  try {
    // a worker that ran without its step starts it now, to end it (its files say how it ended)
    const s = await startup?.start().catch(() => undefined);
    if (ready && entry?.shutdown && s) await callShutdown(s, entry.shutdown);
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
function onSignal(signal: NodeJS.Signals): void {
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

for (const sig of WORKER_SIGNALS) process.on(sig, onSignal);

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

/** Send and wait until the message is written (at most a second): the process exits right after. */
function sendAndWait(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    try {
      if (process.send === undefined) done();
      else process.send(message, undefined, undefined, done);
    } catch {
      done();
    }
  });
}

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
  start = message;
  // the runner's step identity, trace and run folder (this process was forked before they existed)
  Object.assign(process.env, message.env);
  const r = new EnvReader(process.env);
  if (!(r.bool('STEP_TELEMETRY_DISABLED') ?? false) && (r.bool('STEP_TELEMETRY_RESOURCES') ?? true)) usage = new AttemptUsage();
  baseContext = { args: message.args, worker: message.worker, input_type: message.inputType } as Partial<InitContext> as InitContext;
  startup = new WorkerStart(message, baseContext, (s) => {
    if (message.forwardMetrics) forwardScalars(s);
  });
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
  entry = { init, run, shutdown };
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
  ready = true;
  send({ type: 'ready', pid: process.pid, initMs: performance.now() - t0, shutdown: shutdown !== undefined });
}

/** One output line for a returned element. */
function toLine(row: unknown): string {
  if (typeof row === 'string') return row;
  if (typeof row === 'number' || typeof row === 'boolean' || typeof row === 'bigint') return String(row);
  if (row === undefined) return 'null';
  try {
    return JSON.stringify(row) ?? 'null';
  } catch {
    return String(row);
  }
}

function describeItem(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  return typeof reason === 'string' ? reason : describeItem(reason);
}

/** One mini-batch attempt: its items, the context run() gets, and the failures found so far. */
interface Attempt {
  readonly message: AttemptTask;
  /** The last attempt of its chunk: the results held so far go back after it. */
  readonly last: boolean;
  /** performance.now() when the attempt began (before its rows were read). */
  readonly start: number;
  items: unknown[];
  /** What each item of `items` is called in the report: a path or `file:line`. */
  names: string[];
  readonly failures: ItemFailure[];
  readonly userFailures: ItemFailure[];
  readonly ctx: RunContext;
  /** The attempt span's context with the mini-batch id: log records and user spans belong to it (none before the step is up). */
  context: Context | undefined;
  /** performance.now() when run() was called; 0 until then. */
  t0: number;
  /** The process's CPU time and heap then (resources sampled). */
  before: ResourceSnapshot | undefined;
}

/**
 * Run one mini-batch attempt and send its result. A run() that returns without a promise is
 * handled synchronously (no promise, no microtask per mini-batch): the result is sent and the
 * next queued mini-batch can start in the same turn. Returns a promise only while the attempt is
 * still running.
 */
function onRun(q: Queued): Promise<void> | undefined {
  const a = prepare(q);
  if (a.items.length === 0) {
    finish(a, NOT_RUN);
    return undefined;
  }
  a.t0 = performance.now();
  a.before = usage?.snapshot();
  let returned: unknown;
  try {
    returned = callRun(a);
  } catch (error) {
    return recover(a, error);
  }
  if (isThenable(returned)) {
    return Promise.resolve(returned).then(
      (value) => finish(a, value),
      (error: unknown) => recover(a, error),
    );
  }
  finish(a, returned);
  return undefined;
}

/** The attempt being run. */
let current: Attempt | undefined;
/** The tabular file read last stays open for the next mini-batch of it. */
const tabular = new TabularReader();

function prepare(q: Queued): Attempt {
  const began = performance.now();
  const message = q.task;
  const task = message.task;
  const failures: ItemFailure[] = [];
  let items: unknown[];
  let names: string[];
  let source: TabularSource | undefined;
  if (task.kind === 'files') {
    // Paths go to run() as they are; only when run() throws are they checked (see recover()), so
    // the common case costs no system call.
    items = task.files.slice();
    names = task.files as string[];
  } else if (task.kind === 'keyed') {
    items = [];
    names = [];
    try {
      for (const { file, rows } of readKeyedRows(task)) {
        for (const r of rows) {
          if (r.error !== undefined) failures.push({ item: `${file}:${r.line}`, reason: r.error, input: true });
          else {
            items.push(r.row);
            names.push(`${file}:${r.line}`);
          }
        }
      }
    } catch (error) {
      items = [];
      failures.length = 0;
      failures.push({ item: `the rows of ${JSON.stringify(task.keys)}`, reason: `cannot read them: ${errnoText(error as NodeJS.ErrnoException)}`, input: true, count: message.items });
    }
  } else {
    items = [];
    names = [];
    try {
      for (const r of tabular.read(task.file, task.format, task.start, task.end, task.firstLine, task.header)) {
        if (r.error !== undefined) failures.push({ item: `${task.file}:${r.line}`, reason: r.error, input: true });
        else {
          items.push(r.row);
          names.push(`${task.file}:${r.line}`);
        }
      }
    } catch (error) {
      items = [];
      const e = error as NodeJS.ErrnoException;
      failures.push({ item: `${task.file} rows ${task.firstRow}..${task.firstRow + message.items - 1}`, reason: `cannot read them: ${errnoText(e)}`, input: true, count: message.items });
    }
    source = { file: task.file, format: task.format, first_row: task.firstRow, rows: message.items };
  }
  const userFailures: ItemFailure[] = [];
  // the shared fields come from the prototype: no copy per mini-batch
  const ctx = Object.create(baseContext!) as { -readonly [K in keyof RunContext]: RunContext[K] };
  ctx.mini_batch_id = message.id;
  ctx.attempt = message.attempt;
  ctx.source = source;
  if (task.kind === 'keyed') ctx.partition_keys = task.keys;
  const a: Attempt = { message, last: q.last, start: began, items, names, failures, userFailures, ctx, context: startup!.contexts?.attemptContext(message.traceparent, message.id), t0: 0, before: undefined };
  current = a;
  ctx.failItem = (item: unknown, reason: unknown): void => {
    let name: string;
    if (typeof item === 'number' && Number.isInteger(item) && item >= 0 && item < a.names.length) name = a.names[item]!;
    else {
      const i = typeof item === 'object' && item !== null ? a.items.indexOf(item) : -1;
      name = i >= 0 ? a.names[i]! : describeItem(item);
    }
    if (a.userFailures.length < MAX_FAILURES_PER_RESULT) a.userFailures.push({ item: name, reason: reasonText(reason) });
  };
  return a;
}

/**
 * run() threw. Did it fail on input files that cannot be read? Then those are failed items, and
 * the mini-batch runs again without them (once, within this attempt); else the attempt failed.
 */
async function recover(a: Attempt, error: unknown): Promise<void> {
  const task = a.message.task;
  const bad = task.kind === 'files' ? task.files.map((f) => [f, unreadable(f)] as const).filter(([, why]) => why !== undefined) : [];
  if (bad.length === 0) {
    sendError(a, error);
    return;
  }
  const skip = new Set(bad.map(([f]) => f));
  for (const [f, why] of bad) a.failures.push({ item: f, reason: why!, input: true });
  a.items = a.items.filter((f) => !skip.has(f as string));
  a.names = a.items as string[];
  a.userFailures.length = 0;
  const s = await startup!.start();
  const t = startup!.recordContexts();
  a.context ??= t.attemptContext(a.message.traceparent, a.message.id);
  t.runIn(a.context, () => s.logger.warn(`run() failed and ${bad.length} input file(s) cannot be read; running the mini-batch again without them`, { files: [...skip], error: reasonText(error) }));
  if (a.items.length === 0) {
    finish(a, NOT_RUN);
    return;
  }
  let returned: unknown;
  try {
    returned = await callRun(a);
  } catch (again) {
    sendError(a, again);
    return;
  }
  finish(a, returned);
}

function sendError(a: Attempt, error: unknown): void {
  const m = a.message;
  const usage = usedSince(a);
  const end = performance.now();
  report(a, { id: m.id, attempt: m.attempt, ok: false, ran: true, succeeded: 0, returned: 0, start: epoch(a.start), end: epoch(end), runMs: end - a.t0, usage, error: userError(error), failures: a.failures.length > 0 ? a.failures : undefined });
}

/** What run() used: CPU, RSS and heap growth since it was called (undefined without resources, or before it was). */
function usedSince(a: Attempt): AttemptResult['usage'] {
  return a.before === undefined ? undefined : usage?.since(a.before);
}

/** Report the result of what run() returned (or NOT_RUN: no item could be read). */
function finish(a: Attempt, returned: unknown): void {
  const m = a.message;
  const usage = usedSince(a);
  const end = performance.now();
  const runMs = a.t0 > 0 ? end - a.t0 : 0;
  if (returned === NOT_RUN) {
    report(a, { id: m.id, attempt: m.attempt, ok: true, ran: false, succeeded: 0, returned: 0, failures: a.failures.slice(0, MAX_FAILURES_PER_RESULT), start: epoch(a.start), end: epoch(end), runMs });
    return;
  }
  const rows = toArray(returned);
  if (rows === undefined) {
    sendError(a, new TypeError(`run() returned ${returned === null ? 'null' : typeof returned}; expected an array with one element per succeeded item`));
    return;
  }
  if (rows.length > a.items.length) {
    // one element per succeeded item: more elements than items is a bug of run(), never silently cut
    const error = new RangeError(`run() returned ${rows.length} elements for ${a.items.length} items; it must return at most one element per item (a missing element is a failed item)`);
    error.name = 'TooManyResults';
    sendError(a, error);
    return;
  }
  let succeeded = rows.length;
  let lines: string | undefined;
  let all = a.userFailures.length > 0 ? a.failures.concat(a.userFailures) : a.failures;
  if (start!.outputAction === 'append_row' && rows.length > 0) {
    lines = '';
    for (let i = 0; i < rows.length; i++) {
      const line = toLine(rows[i]);
      // one line per item: a line break inside a row is refused (the item fails), never written
      if (line.includes('\n') || line.includes('\r')) {
        succeeded--;
        if (all === a.failures) all = a.failures.slice();
        all.push({ item: `element ${i} returned for ${m.id}`, reason: 'the row holds a line break; append_row writes one line per item: return an object (written as JSON, which escapes it) or remove the line break' });
        continue;
      }
      lines += `${line}\n`;
    }
  }
  report(a, { id: m.id, attempt: m.attempt, ok: true, ran: true, succeeded, returned: rows.length, lines, failures: all.length > 0 ? all.slice(0, MAX_FAILURES_PER_RESULT) : undefined, start: epoch(a.start), end: epoch(end), runMs, usage });
}

/** Results finished and not sent yet, oldest first. */
const held: AttemptResult[] = [];
let heldSince = 0;
let heldBytes = 0;

/**
 * Hold the result, or send it with those held before it: at the end of a chunk, when nothing else
 * is queued, after a failure (the parent retries it), or when the oldest has waited HOLD_MS.
 */
function report(a: Attempt, result: AttemptResult): void {
  if (held.length === 0) heldSince = performance.now();
  held.push(result);
  if (result.lines !== undefined) heldBytes += result.lines.length;
  if (a.last || queue.length === 0 || !result.ok || heldBytes >= HOLD_BYTES || performance.now() - heldSince >= HOLD_MS) flushResults();
}

function flushResults(): void {
  if (held.length === 0) return;
  send({ type: 'results', results: held.splice(0) });
  heldBytes = 0;
  // the first results are out: the step starts now (a worker whose entry script did not need it first)
  startup!.soon();
}

/** An attempt awaits past HOLD_MS: what is held goes back, with the attempt that runs (and the step starts meanwhile). */
function sendRunning(): void {
  const a = current;
  if (a === undefined) return;
  startup!.soon();
  send({ type: 'results', results: held.splice(0), running: { id: a.message.id, attempt: a.message.attempt, start: epoch(a.start) } });
  heldBytes = 0;
}

/** performance.now() as epoch ms (with a fraction), comparable across processes. */
function epoch(now: number): number {
  return performance.timeOrigin + now;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

const NOT_RUN = Symbol('not run');

/** run() of the attempt, in its context (see WorkerStart.contexts: none before the step is up unless the entry script only logs, none for one that uses nothing). */
function callRun(a: Attempt): unknown {
  const run = entry!.run;
  const contexts = startup!.contexts;
  if (contexts === undefined) return run(a.items, a.ctx);
  a.context ??= contexts.attemptContext(a.message.traceparent, a.message.id);
  return contexts.runIn(a.context, run, a.items, a.ctx);
}

function errnoText(e: NodeJS.ErrnoException): string {
  return e.code && !String(e.message).startsWith(e.code) ? `${e.code}: ${e.message}` : String(e.message);
}

function toArray(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object' && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function' && typeof value !== 'string') {
    return Array.from(value as Iterable<unknown>);
  }
  return undefined;
}

/** Why a file cannot be read, or undefined when it can. */
function unreadable(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return `not a regular file (${stat.isDirectory() ? 'a folder' : 'a special file'})`;
    fs.accessSync(file, fs.constants.R_OK);
    return undefined;
  } catch (error) {
    return errnoText(error as NodeJS.ErrnoException);
  }
}
