// A worker process of the runner: loads the entry script, calls init() once, then run() for each
// mini-batch the parent sends (one at a time, in order: the next may arrive early), in the context of the parent's attempt span (so log records and user
// spans belong to it) and with the mini-batch id on every log record. Its own step (process index N) writes
// logs.process-N.jsonl and friends into the runner's run folder.
//
// The step's default process handling stays on: SIGTERM ends the step and exits 143, an uncaught
// exception is printed and exits 1 (the parent sees the crash and the stderr), process.exit()
// flushes the local files.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, context, trace, type Context } from '@opentelemetry/api';
import { parseTraceparent } from '../identity.js';
import { withMiniBatch } from '../signals/logs.js';
import { startStep, type Step } from '../step.js';
import { serializeError, type ItemFailure, type SerializedError, type ParentMessage, type ResultMessage, type RunMessage, type StartMessage, type WorkerMessage } from './protocol.js';
import { readTabularRange } from './tabular.js';
import type { EntryScript, InitContext, RunContext, TabularSource } from './types.js';

const MAX_FAILURES_PER_RESULT = 1000;
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

let step: Step | undefined;
let entry: EntryScript | undefined;
let start: StartMessage | undefined;
let baseContext: InitContext | undefined;

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
    case 'run':
      // one mini-batch at a time, in the order sent: the parent may send the next one early
      queue.push(message);
      if (!running) void drain();
      break;
    case 'stop':
      void stop(0);
      break;
  }
});

const queue: RunMessage[] = [];
let running = false;

async function drain(): Promise<void> {
  running = true;
  try {
    for (let m = queue.shift(); m !== undefined; m = queue.shift()) await onRun(m);
  } finally {
    running = false;
  }
}

// The parent died or closed the channel: nobody will read our results.
process.on('disconnect', () => {
  void stop(0);
});

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await step?.end();
  } finally {
    process.exit(code);
  }
}

function pickFunctions(mod: Record<string, unknown>): { init?: EntryScript['init']; run?: EntryScript['run'] } {
  const candidates = [mod, mod.default as Record<string, unknown> | undefined].filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object');
  // a CommonJS module imported from ESM puts module.exports on `default`
  for (const m of candidates) {
    if (typeof m.run === 'function') {
      return { run: m.run as EntryScript['run'], init: typeof m.init === 'function' ? (m.init as EntryScript['init']) : undefined };
    }
  }
  return {};
}

async function onStart(message: StartMessage): Promise<void> {
  start = message;
  step = await startStep({ processIndex: message.processIndex, mainScript: message.entryScript, rootSpanKind: 'internal' });
  const s = step;
  baseContext = { logger: s.logger, step: s, args: message.args, worker: message.worker, input_type: message.inputType };
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(message.entryScript).href)) as Record<string, unknown>;
  } catch (error) {
    s.logger.error(`cannot load the entry script ${message.entryScript}`, { error: error instanceof Error ? error : String(error) });
    send({ type: 'init-error', phase: 'load', error: userError(error) });
    return;
  }
  const { init, run } = pickFunctions(mod);
  if (!run) {
    const names = Object.keys(mod).join(', ') || 'nothing';
    const error = new TypeError(`the entry script ${message.entryScript} does not export a run(miniBatch, context) function (it exports: ${names})`);
    send({ type: 'init-error', phase: 'load', error: serializeError(error) });
    return;
  }
  entry = { init, run };
  const t0 = performance.now();
  if (init) {
    try {
      await s.span('init', () => init(baseContext!), { attributes: { 'worker.id': message.worker } });
    } catch (error) {
      s.logger.error('init() failed', { error: error instanceof Error ? error : String(error) });
      send({ type: 'init-error', phase: 'init', error: userError(error) });
      return;
    }
  }
  send({ type: 'ready', pid: process.pid, initMs: performance.now() - t0 });
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

async function onRun(message: RunMessage): Promise<void> {
  const s = step!;
  const task = message.task;
  const failures: ItemFailure[] = [];
  let items: unknown[];
  /** What each item of `items` is called in the report: a path or `file:line`. */
  let names: string[];
  let source: TabularSource | undefined;
  if (task.kind === 'files') {
    // Paths go to run() as they are; only when run() throws are they checked (see below), so the
    // common case costs no system call.
    items = task.files.slice();
    names = task.files as string[];
  } else {
    items = [];
    names = [];
    try {
      for (const r of readTabularRange(task.file, task.format, task.start, task.end, task.firstLine, task.header)) {
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
  ctx.failItem = (item: unknown, reason: unknown): void => {
    let name: string;
    if (typeof item === 'number' && Number.isInteger(item) && item >= 0 && item < names.length) name = names[item]!;
    else {
      const i = typeof item === 'object' && item !== null ? items.indexOf(item) : -1;
      name = i >= 0 ? names[i]! : describeItem(item);
    }
    if (userFailures.length < MAX_FAILURES_PER_RESULT) userFailures.push({ item: name, reason: reasonText(reason) });
  };
  // run() runs in the context of the runner's attempt span (a CONSUMER span in the parent): log
  // records carry its trace and span id and the mini-batch id, spans the user starts are its children.
  const parentContext = attemptContext(message.traceparent);
  const call = (): Promise<unknown> => withMiniBatch(message.id, async () => entry!.run(items, ctx), parentContext);
  const t0 = performance.now();
  let result: ResultMessage;
  try {
    let returned: unknown;
    if (items.length === 0) returned = NOT_RUN;
    else {
      try {
        returned = await call();
      } catch (error) {
        // Did run() fail on input files that cannot be read? Then those are failed items, and the
        // mini-batch runs again without them (once, within this attempt).
        const bad = task.kind === 'files' ? task.files.map((f) => [f, unreadable(f)] as const).filter(([, why]) => why !== undefined) : [];
        if (bad.length === 0) throw error;
        const skip = new Set(bad.map(([f]) => f));
        for (const [f, why] of bad) failures.push({ item: f, reason: why!, input: true });
        items = items.filter((f) => !skip.has(f as string));
        names = items as string[];
        userFailures.length = 0;
        withMiniBatch(message.id, () => s.logger.warn(`run() failed and ${bad.length} input file(s) cannot be read; running the mini-batch again without them`, { files: [...skip], error: reasonText(error) }), parentContext);
        returned = items.length > 0 ? await call() : NOT_RUN;
      }
    }
    const runMs = performance.now() - t0;
    if (returned === NOT_RUN) {
      result = { type: 'result', id: message.id, attempt: message.attempt, ok: true, ran: false, succeeded: 0, returned: 0, failures: failures.slice(0, MAX_FAILURES_PER_RESULT), runMs };
    } else {
      const rows = toArray(returned);
      if (rows === undefined) {
        throw new TypeError(`run() returned ${returned === null ? 'null' : typeof returned}; expected an array with one element per succeeded item`);
      }
      const succeeded = Math.min(rows.length, items.length);
      let lines: string | undefined;
      if (start!.outputAction === 'append_row' && rows.length > 0) {
        lines = '';
        for (const row of rows) lines += `${toLine(row)}\n`;
      }
      const all = userFailures.length > 0 ? failures.concat(userFailures) : failures;
      result = { type: 'result', id: message.id, attempt: message.attempt, ok: true, ran: true, succeeded, returned: rows.length, lines, failures: all.length > 0 ? all.slice(0, MAX_FAILURES_PER_RESULT) : undefined, runMs };
    }
  } catch (error) {
    result = { type: 'result', id: message.id, attempt: message.attempt, ok: false, ran: true, succeeded: 0, returned: 0, runMs: performance.now() - t0, error: userError(error), failures: failures.length > 0 ? failures : undefined };
  }
  send(result);
}

const NOT_RUN = Symbol('not run');

/** The parent's traceparent (`00-<trace>-<span>-<flags>`, always well-formed) as a context. */
function attemptContext(traceparent: string): Context {
  if (traceparent.length === 55) {
    return trace.setSpanContext(ROOT_CONTEXT, { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: traceparent.endsWith('1') ? 1 : 0, isRemote: true });
  }
  const sc = parseTraceparent(traceparent);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : context.active();
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
