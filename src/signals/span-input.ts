// What a program gives the span calls (names, options, attributes, times, statuses, exceptions,
// links), checked once at the API and made into what every exporter can take: a name is a string
// (a number or BigInt becomes its text, anything else `unnamed`), attributes are OpenTelemetry
// attribute values, times are finite. Each kind of bad value gets one diagnostic; nothing throws.
import { SpanKind, SpanStatusCode, isSpanContextValid, type Attributes, type AttributeValue, type Link, type SpanStatus, type TimeInput } from '@opentelemetry/api';
import type { Diagnostics } from '../diagnostics.js';
import { describeValue, errorText, readArray, readFields, readOption, safeString } from '../util/safe-read.js';

/** Longer names are cut (Application Insights keeps 1,024 characters of a request or dependency name). */
export const MAX_SPAN_NAME_LENGTH = 1024;
export const UNNAMED_SPAN = 'unnamed';

export interface CheckedSpanOptions {
  readonly kind: SpanKind;
  readonly attributes: Attributes | undefined;
  readonly startTime: TimeInput | undefined;
}

const DEFAULT_OPTIONS: CheckedSpanOptions = Object.freeze({ kind: SpanKind.INTERNAL, attributes: undefined, startTime: undefined });

/** A span (or event) name: strings as they are (cut to the limit), numbers and BigInts as their text, anything else `unnamed`. */
export function spanName(value: unknown, diagnostics: Diagnostics, what: 'span' | 'event' = 'span'): string {
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_SPAN_NAME_LENGTH) return value;
  const kind = `input.${what}.name`;
  const label = `${what === 'span' ? 'a span' : 'an event'} name`;
  if (typeof value === 'string') {
    if (value.length === 0) {
      diagnostics.warn(`${kind}:empty`, `${label} was empty: recorded as "${UNNAMED_SPAN}"`);
      return UNNAMED_SPAN;
    }
    diagnostics.warn(`${kind}:long`, `${label} of ${value.length} characters was cut to ${MAX_SPAN_NAME_LENGTH}`);
    return value.slice(0, MAX_SPAN_NAME_LENGTH);
  }
  let name = UNNAMED_SPAN;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') name = String(value);
  else if (typeof value === 'symbol' && value.description) name = value.description.slice(0, MAX_SPAN_NAME_LENGTH);
  const type = value === null ? 'null' : typeof value;
  diagnostics.warn(`${kind}:${type}`, `${label} must be a string: got ${describeValue(value)}, recorded as ${JSON.stringify(name)}`);
  return name;
}

/** The options of `startSpan()` / `span()`: `undefined` and `null` mean none; bad fields are dropped. */
export function spanOptions(value: unknown, diagnostics: Diagnostics): CheckedSpanOptions {
  if (value === undefined) return DEFAULT_OPTIONS;
  if (value === null || typeof value !== 'object') {
    if (value !== null) diagnostics.warn('input.span.options', `span options must be an object such as { attributes, kind }: got ${describeValue(value)}; ignored`);
    return DEFAULT_OPTIONS;
  }
  let kind: unknown;
  let attributes: unknown;
  let startTime: unknown;
  try {
    ({ kind, attributes, startTime } = value as Record<string, unknown>);
  } catch (error) {
    diagnostics.warn('input.span.options.unreadable', `reading the span options threw (${errorText(error)}); the options that could be read were used`);
  }
  return {
    kind: spanKind(kind, diagnostics),
    attributes: spanAttributes(attributes, diagnostics),
    startTime: spanTime(startTime, diagnostics),
  };
}

function spanKind(value: unknown, diagnostics: Diagnostics): SpanKind {
  if (value === undefined) return SpanKind.INTERNAL;
  if (value === SpanKind.INTERNAL || value === SpanKind.SERVER || value === SpanKind.CLIENT || value === SpanKind.PRODUCER || value === SpanKind.CONSUMER) return value;
  diagnostics.warn('input.span.kind', `a span kind must be a SpanKind (0 to 4): got ${describeValue(value)}; the span is INTERNAL`);
  return SpanKind.INTERNAL;
}

/** One attribute value, or undefined when it is not one (BigInts become their text). */
export function attributeValue(value: unknown): AttributeValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return value;
    case 'bigint':
      return String(value);
    case 'object': {
      const items = readArray(value);
      if (items === undefined) return undefined;
      let type: string | undefined;
      for (const item of items) {
        if (item === null || item === undefined) continue;
        const t = typeof item;
        if ((t !== 'string' && t !== 'number' && t !== 'boolean') || (type !== undefined && t !== type)) return undefined;
        type = t;
      }
      return items as AttributeValue;
    }
    default:
      return undefined;
  }
}

/** A copy holding the valid attributes; undefined when there are none to set. */
export function spanAttributes(value: unknown, diagnostics: Diagnostics): Attributes | undefined {
  if (value === undefined || value === null) return undefined;
  let keys: string[] | undefined;
  try {
    keys = typeof value === 'object' ? Object.keys(value) : undefined;
  } catch (error) {
    diagnostics.warn('input.span.attributes', `span attributes dropped: listing them threw (${errorText(error)})`);
    return undefined;
  }
  if (keys === undefined) {
    diagnostics.warn('input.span.attributes', `span attributes dropped: expected an object, got ${describeValue(value)}`);
    return undefined;
  }
  const out: Attributes = {};
  for (const key of keys) {
    let v: unknown;
    try {
      v = (value as Record<string, unknown>)[key];
    } catch (error) {
      v = `[Unreadable: ${errorText(error)}]`;
    }
    if (v === undefined || v === null) continue;
    const checked = key.length > 0 ? attributeValue(v) : undefined;
    if (checked === undefined) droppedAttribute(key, v, diagnostics);
    else out[key] = checked;
  }
  return out;
}

/** The diagnostic of an attribute that is not set. */
export function droppedAttribute(key: unknown, value: unknown, diagnostics: Diagnostics): void {
  const name = typeof key === 'string' && key.length > 0 ? `"${key.slice(0, 40)}"` : `with the key ${describeValue(key)}`;
  diagnostics.warn('input.span.attribute', `span attribute ${name} dropped: keys are non-empty strings, values strings, numbers, booleans or arrays of one of them (got ${describeValue(value)})`);
}

/** A time: epoch or performance milliseconds, a Date, or an HrTime `[seconds, nanoseconds]`; undefined otherwise. */
export function spanTime(value: unknown, diagnostics: Diagnostics): TimeInput | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  try {
    if (value instanceof Date && Number.isFinite(value.getTime())) return new Date(value.getTime());
    const hr = readArray(value);
    if (hr && hr.length === 2 && Number.isFinite(hr[0]) && Number.isFinite(hr[1])) return [hr[0] as number, hr[1] as number];
  } catch {
    // a Proxy: not a time
  }
  diagnostics.warn('input.span.time', `a span time must be milliseconds, a Date or [seconds, nanoseconds]: got ${describeValue(value)}; the current time is used`);
  return undefined;
}

/** A span status `{ code, message? }`; undefined (with a diagnostic) for anything else. */
export function spanStatus(value: unknown, diagnostics: Diagnostics): SpanStatus | undefined {
  const code = readOption(value, 'code');
  const message = readOption(value, 'message');
  if ((code.value === SpanStatusCode.UNSET || code.value === SpanStatusCode.OK || code.value === SpanStatusCode.ERROR) && code.error === undefined && message.error === undefined) {
    if (message.value === undefined || message.value === null) return { code: code.value };
    return { code: code.value, message: safeString(message.value) };
  }
  diagnostics.warn('input.span.status', `a span status must be { code: SpanStatusCode, message?: string }: got ${describeValue(value)}; ignored`);
  return undefined;
}

/** An exception as `recordException()` takes it, read without trusting the value: a string or `{ name, message, stack }`. */
export function spanException(value: unknown): string | { name?: string; message: string; stack?: string } {
  if (typeof value === 'string') return value;
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return safeString(value);
  const text = (key: string): string | undefined => {
    const v = readOption(value, key).value;
    return v === undefined || v === null ? undefined : safeString(v);
  };
  const name = text('name');
  const out: { name?: string; message: string; stack?: string } = { message: text('message') ?? (name === undefined ? errorText(value) : '') };
  if (name !== undefined) out.name = name;
  const stack = text('stack');
  if (stack !== undefined) out.stack = stack;
  return out;
}

/** A link whose span context is valid, its attributes checked; undefined otherwise. */
export function spanLink(value: unknown, diagnostics: Diagnostics): Link | undefined {
  const context = readOption(value, 'context').value;
  const fields = readFields(context);
  if (fields.fields !== undefined) {
    const { traceId, spanId, traceFlags, isRemote } = fields.fields;
    const sc = { traceId, spanId, traceFlags: typeof traceFlags === 'number' ? traceFlags : 0, isRemote: isRemote === true };
    if (typeof traceId === 'string' && typeof spanId === 'string' && isSpanContextValid(sc as never)) {
      const attributes = spanAttributes(readOption(value, 'attributes').value, diagnostics);
      return attributes ? { context: sc as Link['context'], attributes } : { context: sc as Link['context'] };
    }
  }
  diagnostics.warn('input.span.link', `a span link must be { context: a valid SpanContext, attributes? }: got ${describeValue(value)}; ignored`);
  return undefined;
}
