// Serialisation that cannot throw: JSON.stringify first, then a bounded walk that replaces cycles,
// BigInts and deep or wide structures, then a placeholder. Values are read without trusting them:
// getters and Proxy traps may throw, prototypes may be null.
import { readOption, safeString } from './safe-read.js';

const MAX_DEPTH = 8;
const MAX_KEYS = 200;

/** `value instanceof Error`, false when asking throws (a Proxy). */
export function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

function replaceErrors(_key: string, value: unknown): unknown {
  if (isError(value)) return errorToJson(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** `{ name, message, stack, code }` of an error, each read safely. */
export function errorToJson(error: Error): Record<string, unknown> {
  const text = (key: string): string | undefined => {
    const v = readOption(error, key).value;
    return v === undefined || v === null ? undefined : safeString(v);
  };
  const out: Record<string, unknown> = { name: text('name') ?? 'Error', message: text('message') ?? '' };
  const stack = text('stack');
  if (stack) out.stack = stack;
  const code = readOption(error, 'code').value;
  if (code !== undefined) out.code = typeof code === 'number' || typeof code === 'string' ? code : safeString(code);
  return out;
}

function bounded(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    return value;
  }
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Object]';
  seen.add(value);
  try {
    if (value instanceof Error) return errorToJson(value);
    if (Array.isArray(value)) {
      const items = value.slice(0, MAX_KEYS).map((v) => bounded(v, depth + 1, seen));
      if (value.length > MAX_KEYS) items.push(`[${value.length - MAX_KEYS} more]`);
      return items;
    }
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const key in value) {
      if (n++ >= MAX_KEYS) {
        out['…'] = 'truncated';
        break;
      }
      out[key] = bounded((value as Record<string, unknown>)[key], depth + 1, seen);
    }
    return out;
  } catch {
    return '[Unserializable]';
  } finally {
    seen.delete(value);
  }
}

/** JSON text of any value; never throws. Errors become {name, message, stack}. */
export function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, replaceErrors) ?? 'null';
  } catch {
    try {
      return JSON.stringify(bounded(value, 0, new WeakSet())) ?? 'null';
    } catch {
      return '"[Unserializable]"';
    }
  }
}

/**
 * JSON object text of a record's fields: `{...}` whatever they hold. A `toJSON` of the record
 * itself is not called (it could make the line a number, or nothing); never throws.
 */
export function safeRecordJson(record: object): string {
  try {
    if (typeof (record as { toJSON?: unknown }).toJSON !== 'function') {
      const json = JSON.stringify(record, replaceErrors);
      if (json !== undefined && json.charCodeAt(0) === 123) return json;
    }
  } catch {
    // the bounded walk below
  }
  try {
    const copy = bounded(record, 0, new WeakSet());
    if (copy !== null && typeof copy === 'object' && !Array.isArray(copy)) return JSON.stringify(copy);
  } catch {
    // the placeholder below
  }
  return '{"message":"[Unserializable]"}';
}
