// The configuration fields whose values have a shape of their own, each parsed and checked here:
// mini_batch_size (a count of files, or a size for tabular input), input_pattern (a glob),
// partition_keys (column names), append_row_file_name (a file name, per node by default),
// logging_level (Python's names too), arguments (a list), environment_variables (a mapping, or
// NAME=value strings) and queue (a redis:// URL, whose credentials no issue shows).
import type { EnvReader } from '../config.js';
import type { LogLevel } from '../types.js';
import { globToRegExp } from './glob.js';
import { show, type ConfigValues } from './config-values.js';
import { parseQueueUrl, redactQueueUrl, type QueueAddress } from './queue/url.js';
import type { InputType } from './types.js';

const DEFAULT_APPEND_ROW_FILE_NAME = 'parallel_run_step.txt';

const LOGGING_LEVELS: Record<string, LogLevel> = {
  critical: 'error',
  fatal: 'error',
  error: 'error',
  warning: 'warn',
  warn: 'warn',
  info: 'info',
  http: 'http',
  verbose: 'verbose',
  debug: 'debug',
  silly: 'silly',
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** `1MB` → 1048576 (units are powers of 1024, as Azure ML reads them); undefined when malformed. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 1 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes >= 1 ? bytes : undefined;
}

/** mini_batch_size: a count for files (10 by default), a size for tabular (1 MB by default). */
export function miniBatchSize(v: ConfigValues, inputType: InputType): number {
  const fallback = inputType === 'files' ? 10 : 1024 * 1024;
  const mbs = v.raw('mini_batch_size');
  if (mbs === undefined) return fallback;
  if (inputType === 'files') {
    const n = typeof mbs.value === 'number' ? mbs.value : typeof mbs.value === 'string' && /^\s*\d+\s*$/.test(mbs.value) ? Number(mbs.value) : Number.NaN;
    if (Number.isInteger(n) && n >= 1) return n;
    v.bad('mini_batch_size', mbs, 'a whole number of files from 1 up (input_type files)');
    return fallback;
  }
  const size = parseSize(mbs.value);
  if (size !== undefined) return size;
  v.bad('mini_batch_size', mbs, 'a size such as 1MB, 256KB, 1GB or a number of bytes (input_type tabular)');
  return fallback;
}

/** input_pattern: a glob the listing matches (checked here, compiled there). */
export function inputPattern(v: ConfigValues): string | undefined {
  const pattern = v.str('input_pattern');
  if (pattern) {
    try {
      globToRegExp(pattern.value);
    } catch (error) {
      v.bad('input_pattern', pattern.raw, `a glob pattern (${(error as Error).message})`);
    }
  }
  return pattern?.value;
}

/**
 * partition_keys: a list of column names, or one string of names separated by commas (the CLI flag
 * may also be repeated). Tabular input only.
 */
export function partitionKeys(v: ConfigValues, inputType: InputType): string[] {
  const r = v.raw('partition_keys');
  if (r === undefined) return [];
  const list = Array.isArray(r.value) ? (r.value as unknown[]) : [r.value];
  const keys: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') {
      v.issues.push({ field: 'partition_keys', source: r.source, expected: 'column names (a list, or names separated by commas)', got: show(item) });
      return [];
    }
    for (const k of item.split(',')) if (k.trim() !== '' && !keys.includes(k.trim())) keys.push(k.trim());
  }
  if (keys.length === 0) v.issues.push({ field: 'partition_keys', source: r.source, expected: 'at least one column name', got: show(r.value) });
  else if (inputType !== 'tabular') v.issues.push({ field: 'partition_keys', source: r.source, expected: 'input_type tabular (the keys are columns of the rows)', got: `input_type ${inputType}` });
  return keys;
}

/** append_row_file_name: a name without a folder; by default one per node when there are several. */
export function appendRowFileName(v: ConfigValues, nodeCount: number, nodeRank: number): string {
  const arf = v.str('append_row_file_name');
  if (arf) {
    if (!(/[\\/]/.test(arf.value) || arf.value === '.' || arf.value === '..')) return arf.value;
    v.bad('append_row_file_name', arf.raw, 'a file name without a folder');
  }
  return nodeCount > 1 ? DEFAULT_APPEND_ROW_FILE_NAME.replace(/\.txt$/, `.node-${nodeRank}.txt`) : DEFAULT_APPEND_ROW_FILE_NAME;
}

/** logging_level: winston's levels and Python's names (WARNING, CRITICAL, ...), any case. */
export function loggingLevel(v: ConfigValues): LogLevel {
  const ll = v.raw('logging_level');
  if (ll === undefined) return 'info';
  const level = typeof ll.value === 'string' ? LOGGING_LEVELS[ll.value.trim().toLowerCase()] : undefined;
  if (level) return level;
  v.bad('logging_level', ll, 'one of DEBUG, INFO, WARNING, ERROR, CRITICAL');
  return 'info';
}

/** arguments: a list of strings (numbers and booleans as strings), or one string. */
export function argumentList(v: ConfigValues): string[] {
  const ar = v.raw('arguments');
  if (ar === undefined) return [];
  const list = typeof ar.value === 'string' ? [ar.value] : ar.value;
  if (Array.isArray(list) && list.every((a) => ['string', 'number', 'boolean'].includes(typeof a))) return list.map(String);
  v.bad('arguments', ar, 'a list of strings');
  return [];
}

/** environment_variables: an object, or KEY=VALUE strings (CLI); the valid entries are kept even when some are not. */
export function environmentVariables(v: ConfigValues): Record<string, string> {
  const out: Record<string, string> = {};
  const ev = v.raw('environment_variables');
  if (ev === undefined) return out;
  const entries: [string, unknown][] = [];
  let ok = true;
  if (Array.isArray(ev.value) || typeof ev.value === 'string') {
    for (const item of Array.isArray(ev.value) ? ev.value : [ev.value]) {
      const m = typeof item === 'string' ? /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(item) : null;
      if (m) entries.push([m[1]!, m[2]]);
      else ok = false;
    }
  } else if (ev.value !== null && typeof ev.value === 'object') {
    entries.push(...Object.entries(ev.value as Record<string, unknown>));
  } else ok = false;
  for (const [k, value] of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || !['string', 'number', 'boolean'].includes(typeof value)) ok = false;
    else out[k] = String(value);
  }
  if (!ok) v.bad('environment_variables', ev, 'a mapping of variable names to strings (NAME=value on the command line)');
  return out;
}

/** queue: the flag, the object, the file, else STEP_TELEMETRY_QUEUE_URL; its credentials are never shown. */
export function queueAddress(v: ConfigValues, reader: EnvReader): QueueAddress | undefined {
  const fromEnv = reader.string('STEP_TELEMETRY_QUEUE_URL');
  const qr = v.raw('queue') ?? (fromEnv !== undefined ? { value: fromEnv, source: 'STEP_TELEMETRY_QUEUE_URL', base: v.cwd } : undefined);
  if (qr === undefined) return undefined;
  const parsed = typeof qr.value === 'string' ? parseQueueUrl(qr.value) : 'a redis:// URL';
  if (typeof parsed !== 'string') return parsed;
  v.issues.push({ field: 'queue', source: qr.source, expected: parsed, got: typeof qr.value === 'string' ? JSON.stringify(redactQueueUrl(qr.value)) : show(qr.value) });
  return undefined;
}
