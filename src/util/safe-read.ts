// Reading what a program hands to a recording call, which may be anything: getters and Proxy
// traps that throw, null prototypes, revoked proxies, symbols. Nothing here throws.

/** `String(value)`, for any value: a symbol's description, `[object]` when even that throws. */
export function safeString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'symbol') return value.description ?? '';
  try {
    return String(value);
  } catch {
    return '[object]';
  }
}

/** `Name: message` of a thrown value, whatever it is. */
export function errorText(error: unknown): string {
  try {
    if (error instanceof Error) return `${safeString(error.name)}: ${safeString(error.message)}`;
  } catch {
    // a Proxy that throws from its traps
  }
  return safeString(error);
}

/** A short description of a value for a diagnostic: `42`, `"abc"`, `a string of 300 characters`, `null`, `a symbol`, `an object`. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `a BigInt (${value}n)`;
    case 'symbol':
      return 'a symbol';
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      try {
        if (Array.isArray(value)) return 'an array';
      } catch {
        // a revoked Proxy
      }
      return 'an object';
  }
}

/** True for `{}` and `Object.create(null)`, false for anything else (class instances, arrays, Proxies that throw). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  try {
    if (Array.isArray(value)) return false;
    const proto = Object.getPrototypeOf(value);
    return proto === Object.prototype || proto === null;
  } catch {
    return false;
  }
}

export type ReadFields = { readonly fields: Record<string, unknown>; readonly problem?: undefined } | { readonly fields?: undefined; readonly problem: string };

/**
 * A copy of an object's own enumerable string-keyed fields, read once (so a getter cannot answer
 * the check and the copy differently). A field whose getter throws makes the whole read a
 * `problem`, unless `placeholder` is given: then it is replaced by `[Unreadable: <error>]`.
 */
export function readFields(value: unknown, placeholder = false): ReadFields {
  if (value === null || typeof value !== 'object') return { problem: `expected an object, got ${describeValue(value)}` };
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch (error) {
    return { problem: `listing its fields threw (${errorText(error)})` };
  }
  const fields: Record<string, unknown> = {};
  for (const key of keys) {
    try {
      fields[key] = (value as Record<string, unknown>)[key];
    } catch (error) {
      if (!placeholder) return { problem: `reading its field "${key.slice(0, 40)}" threw (${errorText(error)})` };
      fields[key] = `[Unreadable: ${errorText(error)}]`;
    }
  }
  return { fields };
}

/** A copy of an array, or undefined when `value` is not one or reading it throws (a Proxy). */
export function readArray(value: unknown): unknown[] | undefined {
  try {
    return Array.isArray(value) ? Array.prototype.slice.call(value) : undefined;
  } catch {
    return undefined;
  }
}

/** One property of an options object, or undefined when reading it throws. */
export function readOption(options: unknown, key: string): { value: unknown; error?: string } {
  if (options === null || typeof options !== 'object') return { value: undefined };
  try {
    return { value: (options as Record<string, unknown>)[key] };
  } catch (error) {
    return { value: undefined, error: errorText(error) };
  }
}
