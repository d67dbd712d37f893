// Runner configuration: ParallelRunConfig's names, meanings and defaults, from a YAML/JSON file,
// the programmatic object and CLI flags (flags > object > file > defaults). Everything is checked
// before any work starts; every problem is reported at once, naming the field, where it came
// from, and the values it allows.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EnvReader, type Env } from '../config.js';
import { resolveIdentity } from '../identity.js';
import type { LogLevel } from '../types.js';
import { RunnerConfigError, type RunnerConfigIssue } from './config-error.js';
import { parseQueueUrl, redactQueueUrl, type QueueAddress } from './queue/url.js';

export { RunnerConfigError, formatRunnerIssue, type RunnerConfigIssue } from './config-error.js';
import type { InputType, OutputAction, ParallelRunConfig } from './types.js';

export const DEFAULT_APPEND_ROW_FILE_NAME = 'parallel_run_step.txt';
export const DEFAULT_STEP_NAME = 'parallel-run';
/** Where startStep() reads the node count and rank from (src/identity.ts), in order. */
const NODE_COUNT_VARIABLES = ['STEP_TELEMETRY_NODE_COUNT', 'AZ_BATCHAI_NODE_COUNT', 'AZUREML_NODE_COUNT', 'WORLD_SIZE'];
const NODE_RANK_VARIABLES = ['STEP_TELEMETRY_NODE_RANK', 'JOB_COMPLETION_INDEX', 'AZ_BATCHAI_TASK_INDEX', 'NODE_RANK'];
const ENTRY_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/** The configuration after defaults and validation; paths are absolute. */
export interface ResolvedRunConfig {
  readonly entryScript: string;
  readonly inputs: readonly string[];
  /** Undefined: `output/` in the run folder. */
  readonly output: string | undefined;
  readonly inputType: InputType;
  readonly inputPattern: string | undefined;
  /** Files per mini-batch (files) or bytes per mini-batch (tabular). */
  readonly miniBatchSize: number;
  /** Tabular: columns whose values make a mini-batch (one per distinct combination); empty: cut by size. */
  readonly partitionKeys: readonly string[];
  readonly errorThreshold: number;
  readonly allowedFailedCount: number;
  readonly allowedFailedPercent: number;
  /** Seconds. */
  readonly progressUpdateTimeout: number;
  /** Seconds from the job's start to the first mini-batch started on a worker. */
  readonly firstTaskCreationTimeout: number;
  readonly outputAction: OutputAction;
  readonly appendRowFileName: string;
  readonly processCountPerNode: number;
  readonly nodeCount: number;
  readonly nodeRank: number;
  /** Seconds. */
  readonly runInvocationTimeout: number;
  readonly runMaxTry: number;
  /** Seconds a worker's shutdown() may take. */
  readonly shutdownTimeout: number;
  readonly loggingLevel: LogLevel;
  readonly arguments: readonly string[];
  readonly environmentVariables: Readonly<Record<string, string>>;
  readonly stepName: string;
  /** Seconds. */
  readonly progressInterval: number;
  /** The shared queue (undefined: the static split). */
  readonly queue: QueueAddress | undefined;
  /** Seconds a lease on a mini-batch of the queue lasts unrenewed. */
  readonly queueLockDuration: number;
  /** Resume: true (this run's own folder) or a run folder. */
  readonly resume: true | string | undefined;
  /** Run the failed items of this run folder. */
  readonly inputFailed: string | undefined;
}

/** Every configuration name, in the order the usage text lists them. */
export const CONFIG_FIELDS = [
  'entry_script',
  'input',
  'output',
  'config',
  'input_type',
  'input_pattern',
  'mini_batch_size',
  'partition_keys',
  'error_threshold',
  'allowed_failed_count',
  'allowed_failed_percent',
  'progress_update_timeout',
  'first_task_creation_timeout',
  'output_action',
  'append_row_file_name',
  'process_count_per_node',
  'node_count',
  'node_rank',
  'run_invocation_timeout',
  'run_max_try',
  'shutdown_timeout',
  'logging_level',
  'arguments',
  'environment_variables',
  'step_name',
  'progress_interval',
  'queue',
  'queue_lock_duration',
  'resume',
  'input_failed',
] as const satisfies readonly (keyof ParallelRunConfig)[];

export type ConfigField = (typeof CONFIG_FIELDS)[number];

/** A raw value and where it came from; relative paths resolve against `base`. */
interface Raw {
  readonly value: unknown;
  readonly source: string;
  readonly base: string;
}

/** Flag name for a config name: `mini_batch_size` → `--mini-batch-size`. */
export function flagName(field: string): string {
  return `--${field.replace(/_/g, '-')}`;
}

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

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Read a config file (YAML or JSON) into raw values; problems become issues. */
function readConfigFile(file: string, issues: RunnerConfigIssue[]): Map<string, Raw> {
  const out = new Map<string, Raw>();
  const abs = path.resolve(file);
  const label = path.basename(abs);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (error) {
    issues.push({ field: 'config', source: 'config', expected: 'a readable YAML or JSON file', got: `${show(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
    return out;
  }
  let doc: unknown;
  try {
    // loaded only when a config file is given: the library's import path stays light
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    doc = parse(text);
  } catch (error) {
    issues.push({ field: 'config', source: label, expected: 'valid YAML or JSON', got: (error as Error).message.split('\n')[0] });
    return out;
  }
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    issues.push({ field: 'config', source: label, expected: 'a mapping of ParallelRunConfig names to values', got: Array.isArray(doc) ? 'a list' : typeof doc });
    return out;
  }
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const field = key.replace(/-/g, '_');
    if (!(CONFIG_FIELDS as readonly string[]).includes(field) || field === 'config') {
      issues.push({ field: key, source: label, expected: `one of the configuration names (${CONFIG_FIELDS.filter((f) => f !== 'config').join(', ')})` });
      continue;
    }
    out.set(field, { value, source: `${label}: ${field}`, base: path.dirname(abs) });
  }
  return out;
}

/**
 * Merge the sources and validate. `flags` holds CLI values (strings, string lists for `input`,
 * `arguments`, `environment_variables`); `api` the programmatic object.
 */
export function resolveRunConfig(
  api: ParallelRunConfig,
  flags: Readonly<Record<string, unknown>> = {},
  env: Env = process.env,
  cwd: string = process.cwd(),
): ResolvedRunConfig {
  const issues: RunnerConfigIssue[] = [];
  if (api === null || typeof api !== 'object') {
    throw new RunnerConfigError([{ field: 'config', source: 'runParallel()', expected: 'an object of ParallelRunConfig fields', got: show(api) }]);
  }
  for (const key of Object.keys(api)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(key)) {
      issues.push({ field: key, source: 'runParallel()', expected: `one of the configuration names (${CONFIG_FIELDS.join(', ')})` });
    }
  }
  const configPath = (flags.config as string | undefined) ?? api.config;
  const fromFile = configPath !== undefined ? readConfigFile(path.resolve(cwd, configPath), issues) : new Map<string, Raw>();

  const raw = (field: ConfigField): Raw | undefined => {
    const f = flags[field];
    if (f !== undefined) return { value: f, source: flagName(field), base: cwd };
    const a = (api as Record<string, unknown>)[field];
    if (a !== undefined) return { value: a, source: `runParallel(): ${field}`, base: cwd };
    return fromFile.get(field);
  };
  const bad = (field: string, r: Raw, expected: string): undefined => {
    issues.push({ field, source: r.source, expected, got: show(r.value) });
    return undefined;
  };
  const num = (field: ConfigField, test: (n: number) => boolean, expected: string, fallback: number): number => {
    const r = raw(field);
    if (r === undefined) return fallback;
    const n = typeof r.value === 'number' ? r.value : typeof r.value === 'string' && r.value.trim() !== '' ? Number(r.value) : Number.NaN;
    if (!Number.isFinite(n) || !test(n)) {
      bad(field, r, expected);
      return fallback;
    }
    return n;
  };
  const int = (field: ConfigField, min: number, fallback: number, max = Number.MAX_SAFE_INTEGER): number =>
    num(field, (n) => Number.isInteger(n) && n >= min && n <= max, `a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`, fallback);
  const str = (field: ConfigField): { value: string; raw: Raw } | undefined => {
    const r = raw(field);
    if (r === undefined) return undefined;
    if (typeof r.value !== 'string' || r.value.trim() === '') return bad(field, r, 'a non-empty string');
    return { value: r.value.trim(), raw: r };
  };
  const oneOf = <T extends string>(field: ConfigField, allowed: readonly T[], fallback: T): T => {
    const r = raw(field);
    if (r === undefined) return fallback;
    if (typeof r.value === 'string' && (allowed as readonly string[]).includes(r.value)) return r.value as T;
    bad(field, r, `one of ${allowed.join(', ')}`);
    return fallback;
  };

  // entry_script
  let entryScript = '';
  const entry = str('entry_script');
  if (entry === undefined) {
    if (raw('entry_script') === undefined) issues.push({ field: 'entry_script', source: flagName('entry_script'), expected: 'the path of a JS or TS module exporting run() (and optionally init())' });
  } else {
    entryScript = path.resolve(entry.raw.base, entry.value);
    const ext = path.extname(entryScript).toLowerCase();
    if (!isFile(entryScript)) bad('entry_script', entry.raw, `an existing file (${entryScript} is ${describePath(entryScript)})`);
    else if (!ENTRY_EXTENSIONS.includes(ext)) bad('entry_script', entry.raw, `a module ending in ${ENTRY_EXTENSIONS.join(', ')}`);
  }

  // input_failed: the failed items of a run folder are the input
  const failedRaw = str('input_failed');
  const inputFailed = failedRaw ? path.resolve(failedRaw.raw.base, failedRaw.value) : undefined;
  if (failedRaw && inputFailed && !fs.existsSync(inputFailed)) bad('input_failed', failedRaw.raw, `a run folder (${inputFailed} does not exist)`);

  // input
  const inputs: string[] = [];
  const inputRaw = raw('input');
  if (inputRaw === undefined) {
    if (inputFailed === undefined) 
issues.push({ field: 'input', source: flagName('input'), expected: 'at least one input file or folder' });
  } else {
    const list = Array.isArray(inputRaw.value) ? inputRaw.value : [inputRaw.value];
    if (list.length === 0) bad('input', inputRaw, 'at least one input file or folder');
    for (const item of list) {
      if (typeof item !== 'string' || item.trim() === '') {
        bad('input', { ...inputRaw, value: item }, 'a path (string)');
        continue;
      }
      const abs = path.resolve(inputRaw.base, item);
      if (!fs.existsSync(abs) && !isSymlink(abs)) bad('input', { ...inputRaw, value: item }, `an existing file or folder (${abs} does not exist)`);
      else inputs.push(abs);
    }
  }

  // output
  let output: string | undefined;
  const out = str('output');
  if (out) {
    output = path.resolve(out.raw.base, out.value);
    if (fs.existsSync(output) && !fs.statSync(output).isDirectory()) bad('output', out.raw, `a folder (${output} is a file)`);
  }

  const inputType = oneOf<InputType>('input_type', ['files', 'tabular'], 'files');
  const pattern = str('input_pattern');
  const inputPattern = pattern?.value;
  if (pattern) {
    try {
      globToRegExp(pattern.value);
    } catch (error) {
      bad('input_pattern', pattern.raw, `a glob pattern (${(error as Error).message})`);
    }
  }

  // mini_batch_size: a count for files, a size for tabular
  let miniBatchSize = inputType === 'files' ? 10 : 1024 * 1024;
  const mbs = raw('mini_batch_size');
  if (mbs !== undefined) {
    if (inputType === 'files') {
      const n = typeof mbs.value === 'number' ? mbs.value : typeof mbs.value === 'string' && /^\s*\d+\s*$/.test(mbs.value) ? Number(mbs.value) : Number.NaN;
      if (Number.isInteger(n) && n >= 1) miniBatchSize = n;
      else bad('mini_batch_size', mbs, 'a whole number of files from 1 up (input_type files)');
    } else {
      const size = parseSize(mbs.value);
      if (size !== undefined) miniBatchSize = size;
      else bad('mini_batch_size', mbs, 'a size such as 1MB, 256KB, 1GB or a number of bytes (input_type tabular)');
    }
  }

  const errorThreshold = int('error_threshold', -1, -1);
  const allowedFailedCount = int('allowed_failed_count', -1, -1);
  const allowedFailedPercent = num('allowed_failed_percent', (n) => n >= 0 && n <= 100, 'a number from 0 to 100', 100);
  const runInvocationTimeout = num('run_invocation_timeout', (n) => n > 0 && n <= 2_000_000, 'a number of seconds > 0', 60);
  const runMaxTry = int('run_max_try', 1, 3, 1000);
  const progressUpdateTimeout = num(
    'progress_update_timeout',
    (n) => n > 0 && n <= 2_000_000,
    'a number of seconds > 0',
    3 * runInvocationTimeout * runMaxTry,
  );
  // first_task_creation_timeout: Azure ML's name, range and default
  const firstTaskCreationTimeout = num('first_task_creation_timeout', (n) => n > 0 && n <= 2_000_000, 'a number of seconds > 0', 600);
  const shutdownTimeout = num('shutdown_timeout', (n) => n > 0 && n <= 2_000_000, 'a number of seconds > 0', 10);
  const partitionKeys = keyList(raw('partition_keys'), inputType, issues);
  const outputAction = oneOf<OutputAction>('output_action', ['append_row', 'summary_only'], 'append_row');
  const processCountPerNode = int('process_count_per_node', 1, 1, 256);

  // node_count / node_rank: options, else the same environment variables as startStep()
  const reader = new EnvReader(env);
  const nodeCountOpt = raw('node_count') !== undefined ? int('node_count', 1, 1, 100_000) : undefined;
  const nodeRankOpt = raw('node_rank') !== undefined ? int('node_rank', 0, 0, 100_000) : undefined;
  const identity = resolveIdentity({ nodeCount: nodeCountOpt, nodeRank: nodeRankOpt }, env, reader);
  for (const issue of reader.issues) {
    if (issue.variable === 'STEP_TELEMETRY_NODE_RANK') continue; // rank >= count: reported below with the real numbers
    if (NODE_COUNT_VARIABLES.includes(issue.variable) || NODE_RANK_VARIABLES.includes(issue.variable)) {
      issues.push({ field: NODE_RANK_VARIABLES.includes(issue.variable) ? 'node_rank' : 'node_count', source: issue.variable, expected: issue.expected, got: show(env[issue.variable]) });
    }
  }
  const nodeCount = identity.nodeCount;
  let nodeRank = nodeRankOpt ?? new EnvReader(env).firstInt(NODE_RANK_VARIABLES, 0) ?? 0;
  if (nodeRank >= nodeCount) {
    const from = nodeRankOpt !== undefined ? raw('node_rank')!.source : (NODE_RANK_VARIABLES.find((n) => reader.string(n) !== undefined) ?? 'node_rank');
    issues.push({ field: 'node_rank', source: from, expected: `a rank from 0 to node_count - 1 = ${nodeCount - 1}`, got: String(nodeRank) });
    nodeRank = 0;
  }

  // append_row_file_name
  let appendRowFileName = nodeCount > 1 ? DEFAULT_APPEND_ROW_FILE_NAME.replace(/\.txt$/, `.node-${nodeRank}.txt`) : DEFAULT_APPEND_ROW_FILE_NAME;
  const arf = str('append_row_file_name');
  if (arf) {
    if (/[\\/]/.test(arf.value) || arf.value === '.' || arf.value === '..') bad('append_row_file_name', arf.raw, 'a file name without a folder');
    else appendRowFileName = arf.value;
  }

  // logging_level
  let loggingLevel: LogLevel = 'info';
  const ll = raw('logging_level');
  if (ll !== undefined) {
    const level = typeof ll.value === 'string' ? LOGGING_LEVELS[ll.value.trim().toLowerCase()] : undefined;
    if (level) loggingLevel = level;
    else bad('logging_level', ll, 'one of DEBUG, INFO, WARNING, ERROR, CRITICAL');
  }

  // arguments
  let args: string[] = [];
  const ar = raw('arguments');
  if (ar !== undefined) {
    const list = typeof ar.value === 'string' ? [ar.value] : ar.value;
    if (!Array.isArray(list) || !list.every((a) => ['string', 'number', 'boolean'].includes(typeof a))) bad('arguments', ar, 'a list of strings');
    else args = list.map(String);
  }

  // environment_variables: an object, or KEY=VALUE strings (CLI)
  const environmentVariables: Record<string, string> = {};
  const ev = raw('environment_variables');
  if (ev !== undefined) {
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
    for (const [k, v] of entries) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || !['string', 'number', 'boolean'].includes(typeof v)) ok = false;
      else environmentVariables[k] = String(v);
    }
    if (!ok) bad('environment_variables', ev, 'a mapping of variable names to strings (NAME=value on the command line)');
  }

  const stepName = str('step_name')?.value ?? reader.string('STEP_TELEMETRY_STEP_NAME') ?? DEFAULT_STEP_NAME;
  const progressInterval = num('progress_interval', (n) => n > 0 && n <= 86_400, 'a number of seconds > 0', 10);

  // queue: the flag, the object, the file, else STEP_TELEMETRY_QUEUE_URL; its credentials are never shown
  let queue: QueueAddress | undefined;
  const qr = raw('queue') ?? (reader.string('STEP_TELEMETRY_QUEUE_URL') !== undefined ? { value: reader.string('STEP_TELEMETRY_QUEUE_URL'), source: 'STEP_TELEMETRY_QUEUE_URL', base: cwd } : undefined);
  if (qr !== undefined) {
    const parsed = typeof qr.value === 'string' ? parseQueueUrl(qr.value) : 'a redis:// URL';
    if (typeof parsed === 'string') issues.push({ field: 'queue', source: qr.source, expected: parsed, got: typeof qr.value === 'string' ? JSON.stringify(redactQueueUrl(qr.value)) : show(qr.value) });
    else queue = parsed;
  }
  const queueLockDuration = num('queue_lock_duration', (n) => n >= 0.5 && n <= 86_400, 'a number of seconds from 0.5 to 86400', 30);
  let resume: true | string | undefined;
  const rr = raw('resume');
  if (rr !== undefined) {
    if (rr.value === true || rr.value === 'true') resume = true;
    else if (rr.value === false || rr.value === 'false') resume = undefined;
    else if (typeof rr.value === 'string' && rr.value.trim() !== '') {
      resume = path.resolve(rr.base, rr.value);
      if (!fs.existsSync(resume)) bad('resume', rr, `true, or a run folder to resume (${resume} does not exist)`);
    } else bad('resume', rr, 'true, or a run folder to resume');
  }

  if (issues.length > 0) throw new RunnerConfigError(issues);
  return {
    entryScript,
    inputs,
    output,
    inputType,
    inputPattern,
    miniBatchSize,
    partitionKeys,
    errorThreshold,
    allowedFailedCount,
    allowedFailedPercent,
    progressUpdateTimeout,
    firstTaskCreationTimeout,
    outputAction,
    appendRowFileName,
    processCountPerNode,
    nodeCount,
    nodeRank,
    runInvocationTimeout,
    runMaxTry,
    shutdownTimeout,
    loggingLevel,
    arguments: args,
    environmentVariables,
    stepName,
    progressInterval,
    queue,
    queueLockDuration,
    resume,
    inputFailed,
  };
}

/**
 * partition_keys: a list of column names, or one string of names separated by commas (the CLI flag
 * may also be repeated). Tabular input only.
 */
function keyList(r: Raw | undefined, inputType: InputType, issues: RunnerConfigIssue[]): string[] {
  if (r === undefined) return [];
  const list = Array.isArray(r.value) ? (r.value as unknown[]) : [r.value];
  const keys: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') {
      issues.push({ field: 'partition_keys', source: r.source, expected: 'column names (a list, or names separated by commas)', got: show(item) });
      return [];
    }
    for (const k of item.split(',')) if (k.trim() !== '' && !keys.includes(k.trim())) keys.push(k.trim());
  }
  if (keys.length === 0) issues.push({ field: 'partition_keys', source: r.source, expected: 'at least one column name', got: show(r.value) });
  else if (inputType !== 'tabular') issues.push({ field: 'partition_keys', source: r.source, expected: 'input_type tabular (the keys are columns of the rows)', got: `input_type ${inputType}` });
  return keys;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function describePath(p: string): string {
  try {
    return fs.statSync(p).isDirectory() ? 'a folder' : 'not a regular file';
  } catch {
    return 'missing';
  }
}

/** A glob (`*`, `**`, `?`, `{a,b}`, `[abc]`) as a RegExp over `/`-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) throw new Error('unclosed [');
      const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  if (braces > 0) throw new Error('unclosed {');
  return new RegExp(`^${re}$`);
}
