// What an entry script may use of its worker's telemetry: nothing, its context's logger only, or
// anything (its context's step, or the packages that record through a step: step-telemetry, which
// loads the other two, OpenTelemetry's API, winston). The step's modules are most of a worker's
// start-up (worker-start.ts): a worker whose script uses nothing runs init() and its first mini-batch
// before its step starts; one whose script only logs through its context gets the process logger
// first (winston, not the SDK); any other starts its step first. Told from what importing the script
// loaded (those packages are CommonJS: require's cache has them) and from the source text of init()
// and run(): a function that declares no context parameter uses nothing; one that uses it only as
// `name.<member>` (or destructures it) uses those members. Whatever the reading cannot follow (the
// context passed on or spread, `arguments`, `eval`, a bound function, a parameter list with
// defaults) counts as anything: a wrong guess costs start-up time, never a record.
import { createRequire } from 'node:module';
import type { EntryScript } from './types.js';

/** Members of the context that are not telemetry. */
const PLAIN_MEMBERS = new Set(['args', 'worker', 'input_type', 'mini_batch_id', 'attempt', 'source', 'partition_keys', 'failItem']);
const TELEMETRY_PACKAGE = /[\\/]node_modules[\\/](@opentelemetry|winston)[\\/]/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** What of its worker's telemetry an entry script may use: none, its context's logger only, or anything (the step). */
export type EntryNeeds = 'none' | 'logger' | 'step';

/** What the entry script (already imported) may use of its worker's telemetry before it is given work. */
export function entryNeeds(entry: Pick<EntryScript, 'init' | 'run'>): EntryNeeds {
  if (telemetryLoaded()) return 'step';
  const init = contextUse(entry.init, 0);
  const run = contextUse(entry.run, 1);
  return init === 'step' || run === 'step' ? 'step' : init === 'logger' || run === 'logger' ? 'logger' : 'none';
}

/** A module of step-telemetry, OpenTelemetry or winston is loaded (the worker itself loads none before its step). */
export function telemetryLoaded(): boolean {
  const cache = createRequire(import.meta.url).cache;
  for (const file in cache) if (TELEMETRY_PACKAGE.test(file)) return true;
  return false;
}

/** What `fn` may read of its parameter number `index` (the context): only plain members, `logger` too, or anything. */
export function contextUse(fn: ((...args: never[]) => unknown) | undefined, index: number): EntryNeeds {
  if (fn === undefined) return 'none';
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return 'step';
  }
  // a bound or native function shows no source
  if (/\barguments\b|\beval\b|\[native code\]/.test(source)) return 'step';
  const parsed = parameters(source);
  if (parsed === undefined) return 'step';
  const param = parsed.params[index];
  if (param === undefined) return 'none';
  let members: string[] | undefined;
  if (IDENTIFIER.test(param)) members = membersRead(parsed.body, param);
  else {
    // `{ args, logger: log }`: the keys read are what matters
    const destructured = /^\{([^{}]*)\}$/.exec(param);
    members = destructured?.[1]!.split(',').map((part) => part.split(':')[0]!.trim()).filter((k) => k !== '');
    if (members?.some((k) => !IDENTIFIER.test(k))) members = undefined;
  }
  if (members === undefined) return 'step';
  let use: EntryNeeds = 'none';
  for (const m of members) {
    if (m === 'logger') use = 'logger';
    else if (!PLAIN_MEMBERS.has(m)) return 'step';
  }
  return use;
}

/** The members read of `name` in `body`, when every use of it is `name.<member>` (or `name?.<member>`); undefined otherwise. */
function membersRead(body: string, name: string): string[] | undefined {
  const escaped = name.replace(/\$/g, '\\$');
  if (new RegExp(`\\.\\.\\.\\s*${escaped}(?![\\w$])`).test(body)) return undefined;
  const use = new RegExp(`(^|[^\\w$.])${escaped}(?![\\w$])`, 'g');
  const members: string[] = [];
  for (let m = use.exec(body); m !== null; m = use.exec(body)) {
    const after = /^\s*\??\.\s*([A-Za-z_$][\w$]*)/.exec(body.slice(m.index + m[0].length));
    if (after === null) return undefined;
    members.push(after[1]!);
  }
  return members;
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
