// Logs: one winston logger per process. A format puts the step dimensions, the active trace/span
// ids and the mini-batch id on every record (so transports a user adds see them too); one
// transport fans each record out to the console, the driver log, logs.jsonl and OpenTelemetry.
// Before a step starts, records wait in a small buffer; after it ends, they go to the console.
import { ROOT_CONTEXT, context, createContextKey, trace, type Attributes, type Context, type Span, type SpanContext } from '@opentelemetry/api';
import { SeverityNumber, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import winston from 'winston';
import TransportStream from 'winston-transport';
import type { LocalRunFolder } from '../sinks/local.js';
import { errorToJson, isError, safeRecordJson, safeStringify } from '../util/safe-json.js';
import { describeValue, errorText, readFields, readOption, safeString } from '../util/safe-read.js';
import { isoFromMillis } from '../util/iso-time.js';
import { recordedAt, recordedLate } from '../util/recorded-at.js';
import type { Diagnostics } from '../diagnostics.js';
import type { LogLevel } from '../types.js';

export const MINI_BATCH_KEY = createContextKey('step-telemetry.mini_batch_id');

const LEVEL = Symbol.for('level');
const PRE_START_BUFFER = 1000;

const SEVERITY: Record<string, SeverityNumber> = {
  error: SeverityNumber.ERROR,
  warn: SeverityNumber.WARN,
  info: SeverityNumber.INFO,
  http: SeverityNumber.INFO2,
  verbose: SeverityNumber.DEBUG2,
  debug: SeverityNumber.DEBUG,
  silly: SeverityNumber.TRACE,
};

/** Keys the pipeline writes itself; everything else on a record is the caller's meta. */
const OWN_KEYS = new Set([
  'level', 'message', 'timestamp', 'stack', 'trace_id', 'span_id', 'mini_batch_id',
  'step_id', 'step_name', 'run_id', 'pipeline_run_id', 'pipeline_name', 'node_rank', 'node_count', 'process_index', 'host', 'pid',
]);

type Info = winston.Logform.TransformableInfo & Record<string, unknown>;

/** What the process logger is bound to while a step runs. */
export interface LogBinding {
  readonly dims: Readonly<Record<string, string | number>>;
  readonly stepSpan: Span;
  /** The step span's ids (in step.json): records in its trace, or logged in it, do not repeat them. */
  readonly stepTraceId: string;
  readonly stepSpanId: string;
  readonly pipeline: LogPipeline;
}

/** The span context a record was logged in before the step was up (the bound step exports it in that context, not the step span's). */
const heldContexts = new WeakMap<Info, SpanContext>();
/** Records made late, at an earlier time (the runner's held records: runner/early-start.ts): OTLP gets them at that time too. */
const lateRecords = new WeakSet<Info>();

/**
 * Adds time, trace context and mini-batch id; reads the binding at call time. What is the same on
 * every record of the step is left off it (logs.jsonl stays small; step.json has it): the step
 * dimensions (the pipeline writes them on the first line only), and the trace and span ids when
 * they are the step span's. Programs that added transports of their own get all of it as fields.
 */
function stepContextFormat(state: LoggerState): winston.Logform.Format {
  return winston.format((info) => {
    info.timestamp = isoFromMillis(recordedAt());
    if (recordedLate()) lateRecords.add(info);
    const binding = state.binding;
    if (binding === undefined) {
      // before the step: the context's span and mini-batch now (else the step span's, see bindLogger)
      const active = context.active();
      const sc = trace.getSpanContext(active);
      if (sc !== undefined) {
        info.trace_id = sc.traceId;
        info.span_id = sc.spanId;
        heldContexts.set(info, sc);
      }
      const miniBatch = active.getValue(MINI_BATCH_KEY);
      if (miniBatch !== undefined) info.mini_batch_id = miniBatch;
      return info;
    }
    const theirs = state.logger !== undefined && state.logger.transports.length > 1;
    if (theirs) Object.assign(info, binding.dims);
    const active = context.active();
    const sc = (trace.getSpan(active) ?? binding.stepSpan).spanContext();
    if (theirs || sc.traceId !== binding.stepTraceId) info.trace_id = sc.traceId;
    if (theirs || sc.spanId !== binding.stepSpanId) info.span_id = sc.spanId;
    const miniBatch = active.getValue(MINI_BATCH_KEY);
    if (miniBatch !== undefined) info.mini_batch_id = miniBatch;
    return info;
  })();
}

/**
 * Writes one record to every output of the step. logs.jsonl: the record as JSON, with the step
 * dimensions on the first line only (they tell a re-run into the same folder apart; step.json has
 * them). driver.log: the record for people, except the info and lower records of a mini-batch
 * (the bulk of a large run: they are in logs.jsonl and in the report, by mini-batch).
 */
export class LogPipeline {
  /** `,<dims>}`: closes the first line of logs.jsonl; then `}` alone. */
  private firstTail: string | undefined;
  private readonly stepIds: { readonly traceId: string; readonly spanId: string };

  constructor(
    private readonly local: LocalRunFolder | undefined,
    private readonly consoleOn: boolean,
    private readonly otelLogger: OtelLogger | undefined,
    private readonly otelDims: Attributes,
    private readonly stepName: string,
    dimsJson: string,
    private readonly stepSpan: Span,
  ) {
    this.firstTail = dimsJson ? `,${dimsJson}}` : undefined;
    this.stepIds = stepSpan.spanContext();
  }

  /**
   * The record as logs.jsonl has it. When the program added transports of its own, the format put
   * the dimensions and the step span's ids on the record for them: they are left out here, so the
   * line is the same whichever way the record came.
   */
  private lineFields(info: Info): Info {
    if (info.step_id === undefined) return info;
    const out = {} as Info;
    for (const key in info) {
      if (key in this.otelDims) continue;
      if ((key === 'trace_id' && info.trace_id === this.stepIds.traceId) || (key === 'span_id' && info.span_id === this.stepIds.spanId)) continue;
      out[key] = info[key];
    }
    return out;
  }

  /** `held`: a record logged before the step was up, written now (its time and span context are its own). */
  write(info: Info, held = false): void {
    let meta: Record<string, unknown> | undefined;
    let error: Record<string, unknown> | undefined;
    for (const key in info) {
      if (OWN_KEYS.has(key)) continue;
      let value = info[key];
      if (isError(value)) {
        value = errorToJson(value);
        info[key] = value;
        error ??= value as Record<string, unknown>;
      }
      (meta ??= {})[key] = value;
    }
    if (error === undefined && typeof info.stack === 'string') {
      error = { name: errorName(info.stack), message: String(info.message), stack: info.stack };
    }
    if (this.local) {
      const fields = this.lineFields(info);
      let json: string | undefined;
      if (typeof fields.toJSON !== 'function') {
        try {
          json = JSON.stringify(fields);
        } catch {
          // cyclic, BigInt, a getter that throws: the safe walk below
        }
      }
      json ??= safeRecordJson(fields);
      const first = this.firstTail;
      if (first !== undefined) {
        // the dimensions after the record's own fields: where a field has their name, they win (JSON.parse keeps the last)
        this.firstTail = undefined;
        this.local.logs.appendLine(`${json.length > 2 ? `${json.slice(0, -1)}${first}` : `{${first.slice(1)}`}\n`);
      } else this.local.logs.append(json.slice(0, -1)); // the file's tail ends the line
    }
    const forDriver = this.local !== undefined && (info.mini_batch_id === undefined || info.level === 'error' || info.level === 'warn');
    if (this.consoleOn || forDriver) {
      const body = humanBody(info, meta);
      const time = safeString(info.timestamp);
      const level = levelLabel(info.level);
      if (forDriver) this.local!.driver.append(`${time} ${level} ${body}`);
      if (this.consoleOn) writeConsole(info.level, `${time} ${level} ${this.stepName} ${body}`);
    }
    if (this.otelLogger) this.emitOtel(info, meta, error, held);
  }

  private emitOtel(info: Info, meta: Record<string, unknown> | undefined, error: Record<string, unknown> | undefined, held: boolean): void {
    const attributes: Attributes = { ...this.otelDims };
    if (info.mini_batch_id !== undefined) attributes.mini_batch_id = String(info.mini_batch_id);
    if (meta) {
      for (const key in meta) {
        const v = meta[key];
        if (v === null || v === undefined) continue;
        attributes[key] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : safeStringify(v);
      }
    }
    if (error) {
      attributes['exception.type'] = String(error.name ?? 'Error');
      attributes['exception.message'] = String(error.message ?? info.message);
      if (error.stack !== undefined) attributes['exception.stacktrace'] = String(error.stack);
    }
    try {
      let ctx: Context;
      let timestamp: number | undefined;
      if (held) {
        // logged before the step: in the span context it was logged in (a runner worker's attempt)
        const sc = heldContexts.get(info);
        ctx = sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : trace.setSpan(ROOT_CONTEXT, this.stepSpan);
      } else {
        // the active span's context, else the step span's: every record correlates with a trace
        ctx = trace.getSpan(context.active()) ? context.active() : trace.setSpan(context.active(), this.stepSpan);
      }
      if (held || lateRecords.has(info)) {
        // logged before the step was up, or booked late: at its own time, as the local files have it
        const t = typeof info.timestamp === 'string' ? Date.parse(info.timestamp) : NaN;
        if (Number.isFinite(t)) timestamp = t;
      }
      this.otelLogger!.emit({
        severityNumber: SEVERITY[info.level] ?? SeverityNumber.INFO,
        severityText: info.level.toUpperCase(),
        body: typeof info.message === 'string' ? info.message : safeStringify(info.message),
        attributes,
        context: ctx,
        ...(timestamp === undefined ? {} : { timestamp }),
      });
    } catch {
      // the SDK does not throw here; if it ever does, the local files still have the record
    }
  }
}

function errorName(stack: string): string {
  const m = /^([A-Za-z_$][\w$]*(?:Error|Exception)?):/.exec(stack);
  return m ? m[1] : 'Error';
}

const LEVEL_LABELS: Record<string, string> = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', http: 'HTTP ', verbose: 'VERB ', debug: 'DEBUG', silly: 'SILLY' };

function fastStringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return safeStringify(value);
  }
}

function levelLabel(level: string): string {
  return LEVEL_LABELS[level] ?? safeString(level).toUpperCase().padEnd(5);
}

/** A record for people after its time and level: `[mini-batch] message {fields}`, the stack below. */
function humanBody(info: Info, meta: Record<string, unknown> | undefined): string {
  const mb = info.mini_batch_id !== undefined ? `[${safeString(info.mini_batch_id)}] ` : '';
  const message = typeof info.message === 'string' ? info.message : safeStringify(info.message);
  let line = `${mb}${message}`;
  if (meta) line += ` ${fastStringify(meta)}`;
  if (typeof info.stack === 'string' && !(meta && 'stack' in meta)) line += `\n${info.stack}`;
  return `${line}\n`;
}

function writeConsole(level: string, line: string): void {
  try {
    (level === 'error' ? process.stderr : process.stdout).write(line);
  } catch {
    // a closed console must not break the step
  }
}

/** The single transport of the process logger; follows the binding, buffers before the start. */
class StepTransport extends TransportStream {
  constructor(private readonly state: LoggerState) {
    super();
  }

  override log(info: Info, next: () => void): void {
    next();
    const binding = this.state.binding;
    if (binding) {
      writeRecord(this.state, binding, info);
      return;
    }
    if (this.state.ended) {
      this.state.afterEnd?.(info);
      return;
    }
    if (this.state.buffer.length < (this.state.bufferLimit ?? PRE_START_BUFFER)) this.state.buffer.push(info);
    else this.state.overflow++;
  }
}

export interface LoggerState {
  binding: LogBinding | undefined;
  /** The bound step's diagnostics (set by bindLogger). */
  diagnostics?: Diagnostics;
  ended: boolean;
  buffer: Info[];
  /** How many records wait for the step (default PRE_START_BUFFER; a runner worker, whose step surely comes, holds more). */
  bufferLimit?: number;
  overflow: number;
  afterEnd?: (info: Info) => void;
  logger?: winston.Logger;
}

const SPLAT = Symbol.for('splat');
const FORMAT_TOKEN = /%[scdjifoO%]/;
const noop = (): void => undefined;

/** The process logger, created on first use (at import time of a user module, perhaps). */
export function processLogger(state: LoggerState): winston.Logger {
  if (state.logger) return state.logger;
  const format = winston.format.combine(winston.format.errors({ stack: true }), stepContextFormat(state));
  const transport = new StepTransport(state);
  const logger = winston.createLogger({
    level: 'info',
    levels: winston.config.npm.levels,
    format,
    transports: [transport],
    exitOnError: false,
  });
  installFastPath(logger, format, transport, state);
  state.logger = logger;
  return logger;
}

/** Hand a record to the step's outputs; a record that cannot be written is dropped with one diagnostic. */
function writeRecord(state: LoggerState, binding: LogBinding, info: Info, held = false): void {
  try {
    binding.pipeline.write(info, held);
  } catch (error) {
    state.diagnostics?.warn('logs.write', `a log record could not be written (${errorText(error)}); it was dropped`);
  }
}

/**
 * The common call, `logger.info('message', { fields })`, skips winston's stream plumbing while
 * the logger is as we built it (our format, our single transport) and is called on itself (a
 * child logger adds its own fields): the record is built exactly as winston's `log()` builds it,
 * formatted by the same format, and handed to the same transport. Anything else (other arguments,
 * added transports, a new format, `silent`) takes winston's path.
 * Either way, arguments whose getters or Proxy traps throw cannot make the call throw: the record
 * is logged again with what could be read of them (see `readable`), or dropped with a diagnostic.
 */
function installFastPath(logger: winston.Logger, format: winston.Logform.Format, transport: StepTransport, state: LoggerState): void {
  const levels = logger.levels;
  const methods = logger as unknown as Record<string, (...args: unknown[]) => winston.Logger>;
  for (const level of Object.keys(levels)) {
    const slow = methods[level];
    const severity = levels[level];
    const record = function (self: unknown, args: unknown[]): winston.Logger {
      const [message, meta] = args;
      if (
        (self !== logger && self !== undefined) ||
        args.length > 2 ||
        typeof message !== 'string' ||
        logger.transports.length !== 1 ||
        logger.transports[0] !== transport ||
        logger.format !== format ||
        logger.silent ||
        (meta !== undefined && (typeof meta !== 'object' || meta === null || meta instanceof Error || Array.isArray(meta))) ||
        FORMAT_TOKEN.test(message)
      ) {
        return slow.apply(self ?? logger, args);
      }
      if (levels[logger.level] < severity) return logger;
      let info: Info;
      if (meta === undefined) {
        info = { ...logger.defaultMeta, level, message } as Info;
      } else {
        const m = meta as Record<string, unknown>;
        info = Object.assign({}, logger.defaultMeta, m, { level, message }) as Info;
        (info as Record<symbol, unknown>)[SPLAT] = [m];
        if (m.message) info.message = `${message} ${String(m.message)}`;
        if (m.stack) info.stack = m.stack;
        if (m.cause) info.cause = m.cause;
      }
      (info as Record<symbol, unknown>)[LEVEL] = level;
      const out = format.transform(info, format.options) as Info | false;
      if (out) transport.log(out, noop);
      return logger;
    };
    methods[level] = guarded(level, record, slow, logger, state);
  }
  const log = methods.log;
  const known = (level: unknown): boolean => typeof level === 'string' && Object.hasOwn(levels, level);
  const logged = (self: unknown, args: unknown[]): winston.Logger => {
    // winston prints an unknown level raw to stderr, and its transports drop the record: keep it, as info
    const first = args[0];
    const record = args.length === 1 && typeof first === 'object' && first !== null; // logger.log({ level, message, ... })
    const level = record ? readOption(first, 'level').value : first;
    if (!known(level)) {
      state.diagnostics?.warn('input.logger.level', `logger.log() got the level ${describeValue(level)}, not one of ${Object.keys(levels).join(', ')}: logged as info`);
      args[0] = record ? { ...readFields(first, true).fields, level: 'info' } : 'info';
    }
    return log.apply(self ?? logger, args);
  };
  methods.log = guarded('log', logged, log, logger, state, 1);
}

/** `call`, and when reading its arguments throws, `fallback` with the readable part of them. */
function guarded(
  name: string,
  call: (self: unknown, args: unknown[]) => winston.Logger,
  fallback: (...args: unknown[]) => winston.Logger,
  logger: winston.Logger,
  state: LoggerState,
  leading = 0,
): (...args: unknown[]) => winston.Logger {
  return function (this: unknown, ...args: unknown[]): winston.Logger {
    try {
      return call(this, args);
    } catch (error) {
      state.diagnostics?.warn('input.logger', `logger.${name}() could not read what it was given (${errorText(error)}): the record was logged with what could be read`);
      try {
        const head = args.slice(0, leading).map((a) => (typeof a === 'string' ? a : 'info'));
        return fallback.apply(this ?? logger, [...head, ...readable(args.slice(leading))]);
      } catch (again) {
        state.diagnostics?.warn('logs.write', `a log record could not be written (${errorText(again)}); it was dropped`);
        return logger;
      }
    }
  };
}

/**
 * Arguments of a logger call made safe to read: the message as text, each object as a plain
 * copy of its own fields (a field whose getter throws becomes `[Unreadable: <error>]`).
 */
function readable(args: readonly unknown[]): unknown[] {
  const [message, ...rest] = args;
  let text: string;
  if (typeof message === 'string') text = message;
  else if (isError(message)) text = errorText(message);
  else {
    text = safeStringify(message);
    if (text.startsWith('"')) text = JSON.parse(text) as string; // a JSON string: its text
  }
  const fields: Record<string, unknown> = {};
  for (const arg of rest) {
    if (arg === null || typeof arg !== 'object') continue;
    const read = readFields(arg, true);
    Object.assign(fields, read.fields ?? { meta_error: read.problem });
  }
  return [text, fields];
}

/** Bind the process logger to a step; replays what was logged before the start. */
export function bindLogger(state: LoggerState, binding: LogBinding, level: LogLevel, diagnostics: Diagnostics): winston.Logger {
  const logger = processLogger(state);
  logger.level = level;
  state.binding = binding;
  state.diagnostics = diagnostics;
  state.ended = false;
  const buffered = state.buffer;
  state.buffer = [];
  // records from before the start: in the span context they were logged in (a runner worker's attempt), else the step span's
  for (const info of buffered) writeRecord(state, binding, info, true);
  if (state.overflow > 0) {
    diagnostics.warn('logs.pre-start-overflow', `${state.overflow} log records written before startStep() were dropped (the buffer holds ${state.bufferLimit ?? PRE_START_BUFFER})`);
    state.overflow = 0;
  }
  return logger;
}

/** Records still waiting for a step, to stderr as the console shows them: the process ends before its step started. */
export function heldToConsole(state: LoggerState): void {
  if (state.binding !== undefined) return;
  const held = state.buffer;
  state.buffer = [];
  for (const info of held) writeConsole('error', `${safeString(info.timestamp)} ${levelLabel(info.level)} ${humanBody(info, undefined)}`);
}

/** After the step ends, records go to the console only, with one diagnostic. */
export function unbindLogger(state: LoggerState, diagnostics: Diagnostics): void {
  state.binding = undefined;
  state.ended = true;
  state.afterEnd = (info) => {
    diagnostics.warn('logs.after-end', 'a log record was written after the step ended: it goes to the console only');
    writeConsole(info.level, `${safeString(info.timestamp)} ${levelLabel(info.level)} ${humanBody(info, undefined)}`);
  };
}

export function withMiniBatch<T>(miniBatchId: string, fn: () => T, parent: Context = context.active()): T {
  return context.with(parent.setValue(MINI_BATCH_KEY, miniBatchId), fn);
}

/** A mini-batch id as records carry it: a string (numbers and BigInts as their text); undefined, with one diagnostic, for anything else. */
export function miniBatchIdOf(value: unknown, diagnostics: Diagnostics): string | undefined {
  if (typeof value === 'string') return value;
  const id = typeof value === 'number' || typeof value === 'bigint' ? String(value) : typeof value === 'symbol' && value.description ? value.description : undefined;
  diagnostics.warn(
    `input.withMiniBatch.id:${value === null ? 'null' : typeof value}`,
    `withMiniBatch() takes a string id: got ${describeValue(value)}; ${id === undefined ? 'the records inside carry no mini_batch_id' : `used as ${JSON.stringify(id)}`}`,
  );
  return id;
}
