// Whether an entry script uses its worker's telemetry: the step and logger of its context, or the
// packages that record through a step (step-telemetry, which loads the other two, OpenTelemetry's
// API, winston). A worker whose script uses none runs init() and its first mini-batch before its
// step starts (the step's modules are most of a worker's start-up: see worker.ts); one that may use
// any starts its step first. Told from what importing the script loaded (those packages are
// CommonJS: require's cache has them) and from the source text of init() and run(): a function
// that declares no context parameter, or uses it only as `name.<member>` for members other than
// `logger` and `step`, uses none. Whatever the reading cannot follow (the context passed on, spread
// or destructured into other names, `arguments`, `eval`, a bound function, a parameter list with
// defaults) counts as use: a wrong guess costs start-up time, never a record.
import { createRequire } from 'node:module';
import type { EntryScript } from './types.js';

/** Members of the context that are not telemetry. */
const PLAIN_MEMBERS = new Set(['args', 'worker', 'input_type', 'mini_batch_id', 'attempt', 'source', 'partition_keys', 'failItem']);
const TELEMETRY_PACKAGE = /[\\/]node_modules[\\/](@opentelemetry|winston)[\\/]/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** True when the entry script (already imported) may record through its worker's step before it is given work. */
export function entryUsesTelemetry(entry: Pick<EntryScript, 'init' | 'run'>): boolean {
  return telemetryLoaded() || mayUseContext(entry.init, 0) || mayUseContext(entry.run, 1);
}

/** A module of step-telemetry, OpenTelemetry or winston is loaded (the worker itself loads none before its step). */
function telemetryLoaded(): boolean {
  const cache = createRequire(import.meta.url).cache;
  for (const file in cache) if (TELEMETRY_PACKAGE.test(file)) return true;
  return false;
}

/** Whether `fn` may read `logger` or `step` of its parameter number `index` (the context). */
export function mayUseContext(fn: ((...args: never[]) => unknown) | undefined, index: number): boolean {
  if (fn === undefined) return false;
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return true;
  }
  // a bound or native function shows no source
  if (/\barguments\b|\beval\b|\[native code\]/.test(source)) return true;
  const parsed = parameters(source);
  if (parsed === undefined) return true;
  const param = parsed.params[index];
  if (param === undefined) return false;
  if (IDENTIFIER.test(param)) return !usesOnlyPlainMembers(parsed.body, param);
  const destructured = /^\{([^{}]*)\}$/.exec(param);
  if (destructured === null) return true;
  // `{ args, worker: w }`: the keys read are what matters
  return destructured[1]!.split(',').some((part) => {
    const key = part.split(':')[0]!.trim();
    return key !== '' && (!IDENTIFIER.test(key) || !PLAIN_MEMBERS.has(key));
  });
}

/** Every use of `name` in `body` is `name.<plain member>` (or `name?.<plain member>`). */
function usesOnlyPlainMembers(body: string, name: string): boolean {
  const escaped = name.replace(/\$/g, '\\$');
  if (new RegExp(`\\.\\.\\.\\s*${escaped}(?![\\w$])`).test(body)) return false;
  const use = new RegExp(`(^|[^\\w$.])${escaped}(?![\\w$])`, 'g');
  for (let m = use.exec(body); m !== null; m = use.exec(body)) {
    const after = /^\s*\??\.\s*([A-Za-z_$][\w$]*)/.exec(body.slice(m.index + m[0].length));
    if (after === null || !PLAIN_MEMBERS.has(after[1]!)) return false;
  }
  return true;
}

/**
 * The parameters of a function's source (`function f(a, b) {`, `async (a, b) => ...`, `a => ...`,
 * a method `run(a, b) {`) and what follows them; undefined when they hold anything but plain names
 * and flat destructuring (defaults, rest, nested patterns, comments).
 */
function parameters(source: string): { params: string[]; body: string } | undefined {
  const arrow = /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source);
  if (arrow) return { params: [arrow[1]!], body: source.slice(arrow[0].length) };
  const open = source.indexOf('(');
  if (open < 0) return undefined;
  let depth = 0;
  let close = -1;
  for (let i = open; i < source.length; i++) {
    const c = source[i];
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    if (depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) return undefined;
  const text = source.slice(open + 1, close);
  if (/[=.'"`/[\]]/.test(text)) return undefined;
  const params: string[] = [];
  let start = 0;
  depth = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if ((c === ',' && depth === 0) || i === text.length) {
      const p = text.slice(start, i).trim();
      if (p !== '') params.push(p);
      start = i + 1;
    }
  }
  return { params, body: source.slice(close + 1) };
}
