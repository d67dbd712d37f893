// Serialisation that cannot throw: JSON.stringify first, then a bounded walk that replaces cycles,
// BigInts and deep or wide structures, then a placeholder.

const MAX_DEPTH = 8;
const MAX_KEYS = 200;

function replaceErrors(_key: string, value: unknown): unknown {
  if (value instanceof Error) return errorToJson(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function errorToJson(error: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  if (error.stack) out.stack = error.stack;
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
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
