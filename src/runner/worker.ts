// A worker process of the runner: loads the entry script, calls init() once, then run() for each
// mini-batch the parent sends, inside a `run` span that is the child of the parent's attempt span
// and with the mini-batch id on every log record. Its own step (process index N) writes
// logs.process-N.jsonl and friends into the runner's run folder.
//
// The step's default process handling stays on: SIGTERM ends the step and exits 143, an uncaught
// exception is printed and exits 1 (the parent sees the crash and the stderr), process.exit()
// flushes the local files.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, SpanKind, context, trace } from '@opentelemetry/api';
import { parseTraceparent } from '../identity.js';
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
    process.send?.(message);
  } catch {
    // the parent is gone; 'disconnect' ends this process
  }
}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'start':
      void onStart(message);
      break;
    case 'run':
      void onRun(message);
      break;
    case 'stop':
      void stop(0);
      break;
  }
});

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
  step = await startStep({ processIndex: message.processIndex });
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
  let items: unknown[] = [];
  /** What each item of `items` is called in the report: a path or `file:line`. */
  let names: string[];
  let source: TabularSource | undefined;
  if (task.kind === 'files') {
    names = [];
    for (const file of task.files) {
      const problem = unreadable(file);
      if (problem) failures.push({ item: file, reason: problem, input: true });
      else {
        items.push(file);
        names.push(file);
      }
    }
  } else {
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
      failures.push({ item: task.file, reason: `cannot read rows ${task.firstRow}..${task.firstRow + message.items - 1}: ${e.code ? `${e.code}: ` : ''}${e.message}`, input: true });
    }
    source = { file: task.file, format: task.format, first_row: task.firstRow, rows: message.items };
  }

  if (items.length === 0) {
    // nothing could be read: run() is not called
    send({ type: 'result', id: message.id, attempt: message.attempt, ok: true, ran: false, succeeded: 0, returned: 0, failures: failures.slice(0, MAX_FAILURES_PER_RESULT), runMs: 0 });
    return;
  }

  const userFailures: ItemFailure[] = [];
  const ctx: RunContext = {
    ...baseContext!,
    mini_batch_id: message.id,
    attempt: message.attempt,
    source,
    failItem(item: unknown, reason: unknown): void {
      let name: string;
      if (typeof item === 'number' && Number.isInteger(item) && item >= 0 && item < names.length) name = names[item]!;
      else {
        const i = typeof item === 'object' && item !== null ? items.indexOf(item) : -1;
        name = i >= 0 ? names[i]! : describeItem(item);
      }
      if (userFailures.length < MAX_FAILURES_PER_RESULT) userFailures.push({ item: name, reason: reasonText(reason) });
    },
  };
  const parent = parseTraceparent(message.traceparent);
  const parentContext = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : context.active();
  const t0 = performance.now();
  let result: ResultMessage;
  try {
    const returned = await context.with(parentContext, () =>
      s.withMiniBatch(message.id, () =>
        s.span(
          'run',
          async (span) => {
            const value = await entry!.run(items, ctx);
            span.setAttribute('mini_batch.returned', Array.isArray(value) ? value.length : -1);
            return value;
          },
          { kind: SpanKind.INTERNAL, attributes: { 'mini_batch.id': message.id, 'mini_batch.attempt': message.attempt, 'mini_batch.items': items.length, 'worker.id': start!.worker } },
        ),
      ),
    );
    const runMs = performance.now() - t0;
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
    const all = failures.concat(userFailures);
    result = { type: 'result', id: message.id, attempt: message.attempt, ok: true, ran: true, succeeded, returned: rows.length, lines, failures: all.length > 0 ? all.slice(0, MAX_FAILURES_PER_RESULT) : undefined, runMs };
  } catch (error) {
    result = { type: 'result', id: message.id, attempt: message.attempt, ok: false, ran: true, succeeded: 0, returned: 0, runMs: performance.now() - t0, error: userError(error), failures: failures.length > 0 ? failures : undefined };
  }
  send(result);
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
    const e = error as NodeJS.ErrnoException;
    return e.code ? `${e.code}: ${e.message}` : String(e.message);
  }
}
