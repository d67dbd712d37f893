// One mini-batch attempt in a runner worker: its items read, run() called in the attempt's context
// (see WorkerStart.contexts) with its timing and what it used (CPU, RSS, heap: AttemptUsage), a
// run() that fails on input files that cannot be read run again without them, and what run()
// returned turned into the attempt's result (append_row: one output line per element), which
// worker-results.ts holds or sends.
import { performance } from 'node:perf_hooks';
import type { Context } from '@opentelemetry/api';
import type { AttemptUsage, ResourceSnapshot } from '../resources/attempt-usage.js';
import type { AttemptResult, AttemptTask, ItemFailure, StartMessage } from './protocol.js';
import { readKeyedItems, readTabularItems, unreadable } from './attempt-items.js';
import { TabularReader } from './tabular.js';
import type { EntryScript, InitContext, RunContext, TabularSource } from './types.js';
import { userError } from './user-error.js';
import { epoch } from './worker-channel.js';
import { report } from './worker-results.js';
import type { WorkerStart } from './worker-start.js';

const MAX_FAILURES_PER_RESULT = 1000;

/** An attempt waiting to run; `last`: the last of the chunk it came in. */
export interface Queued {
  readonly task: AttemptTask;
  readonly last: boolean;
}

/** One mini-batch attempt: its items, the context run() gets, and the failures found so far. */
export interface Attempt {
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

/** The entry script's run(). */
let run: EntryScript['run'];
let outputAction: StartMessage['outputAction'];
let startup: WorkerStart;
/** The context init() and run() get: each attempt's context inherits from it. */
let baseContext: InitContext;
/** What each attempt's run() used (unless resources are off). */
let usage: AttemptUsage | undefined;

/** The attempts run the entry script's `entry` for the worker's `start` message. */
export function setUpAttempts(entry: EntryScript, start: StartMessage, workerStart: WorkerStart, context: InitContext, attemptUsage: AttemptUsage | undefined): void {
  run = entry.run;
  outputAction = start.outputAction;
  startup = workerStart;
  baseContext = context;
  usage = attemptUsage;
}

/** The attempt being run. */
export let current: Attempt | undefined;
/** The tabular file read last stays open for the next mini-batch of it. */
const tabular = new TabularReader();

/**
 * Run one mini-batch attempt and send its result. A run() that returns without a promise is
 * handled synchronously (no promise, no microtask per mini-batch): the result is sent and the
 * next queued mini-batch can start in the same turn. Returns a promise only while the attempt is
 * still running.
 */
export function runAttempt(q: Queued): Promise<void> | undefined {
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
    readKeyedItems(task, message.items, items, names, failures);
  } else {
    items = [];
    names = [];
    readTabularItems(tabular, task, message.items, items, names, failures);
    source = { file: task.file, format: task.format, first_row: task.firstRow, rows: message.items };
  }
  const userFailures: ItemFailure[] = [];
  // the shared fields come from the prototype: no copy per mini-batch
  const ctx = Object.create(baseContext) as { -readonly [K in keyof RunContext]: RunContext[K] };
  ctx.mini_batch_id = message.id;
  ctx.attempt = message.attempt;
  ctx.source = source;
  if (task.kind === 'keyed') ctx.partition_keys = task.keys;
  const a: Attempt = { message, last: q.last, start: began, items, names, failures, userFailures, ctx, context: startup.contexts?.attemptContext(message.traceparent, message.id), t0: 0, before: undefined };
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
  const s = await startup.start();
  const t = startup.recordContexts();
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
  if (outputAction === 'append_row' && rows.length > 0) {
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

const NOT_RUN = Symbol('not run');

/** run() of the attempt, in its context (see WorkerStart.contexts: none before the step is up unless the entry script only logs, none for one that uses nothing). */
function callRun(a: Attempt): unknown {
  const contexts = startup.contexts;
  if (contexts === undefined) return run(a.items, a.ctx);
  a.context ??= contexts.attemptContext(a.message.traceparent, a.message.id);
  return contexts.runIn(a.context, run, a.items, a.ctx);
}

function toArray(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object' && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function' && typeof value !== 'string') {
    return Array.from(value as Iterable<unknown>);
  }
  return undefined;
}
