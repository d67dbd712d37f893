// Runner configuration: ParallelRunConfig's names, meanings and defaults, from a YAML/JSON file,
// the programmatic object and CLI flags (flags > object > file > defaults). Everything is checked
// before any work starts; every problem is reported at once, naming the field, where it came
// from, and the values it allows. This is the entry that composes the rooms of each job:
//   config-names.ts    the configuration names and their flags
//   config-file.ts     the config file (YAML or JSON)
//   config-values.ts   a field's value from the sources, the typed readers that check it, the issues
//   config-paths.ts    the paths (entry script, input, output, run folders) and their checks on disk
//   config-nodes.ts    node_count / node_rank from the options or the environment
//   config-fields.ts   the fields with a shape of their own (sizes, globs, keys, levels, lists, the queue)
//   config-error.ts    the error every problem is reported with
import path from 'node:path';
import { EnvReader, type Env } from '../config.js';
import type { LogLevel } from '../types.js';
import { RunnerConfigError, type RunnerConfigIssue } from './config-error.js';
import { readConfigFile } from './config-file.js';
import { appendRowFileName, argumentList, environmentVariables, inputPattern, loggingLevel, miniBatchSize, partitionKeys, queueAddress } from './config-fields.js';
import { CONFIG_FIELDS } from './config-names.js';
import { nodePlace } from './config-nodes.js';
import { entryScriptPath, inputFailedPath, inputPaths, outputPath, resumeFrom } from './config-paths.js';
import { ConfigValues, show, type Raw } from './config-values.js';
import type { QueueAddress } from './queue/url.js';
import type { InputType, OutputAction, ParallelRunConfig } from './types.js';

export { RunnerConfigError, formatRunnerIssue, type RunnerConfigIssue } from './config-error.js';
export { parseSize } from './config-fields.js';
export { CONFIG_FIELDS, flagName, type ConfigField } from './config-names.js';
export { globToRegExp } from './glob.js';

export const DEFAULT_STEP_NAME = 'parallel-run';

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
  const v = new ConfigValues(api, flags, fromFile, cwd, issues);

  // in the order of their issues
  const entryScript = entryScriptPath(v);
  const inputFailed = inputFailedPath(v);
  const inputs = inputPaths(v, inputFailed);
  const output = outputPath(v);
  const inputType = v.oneOf<InputType>('input_type', ['files', 'tabular'], 'files');
  const pattern = inputPattern(v);
  const batchSize = miniBatchSize(v, inputType);
  const errorThreshold = v.int('error_threshold', -1, -1);
  const allowedFailedCount = v.int('allowed_failed_count', -1, -1);
  const allowedFailedPercent = v.num('allowed_failed_percent', (n) => n >= 0 && n <= 100, 'a number from 0 to 100', 100);
  const runInvocationTimeout = v.seconds('run_invocation_timeout', 60);
  const runMaxTry = v.int('run_max_try', 1, 3, 1000);
  const progressUpdateTimeout = v.seconds('progress_update_timeout', 3 * runInvocationTimeout * runMaxTry);
  // first_task_creation_timeout: Azure ML's name, range and default
  const firstTaskCreationTimeout = v.seconds('first_task_creation_timeout', 600);
  const shutdownTimeout = v.seconds('shutdown_timeout', 10);
  const keys = partitionKeys(v, inputType);
  const outputAction = v.oneOf<OutputAction>('output_action', ['append_row', 'summary_only'], 'append_row');
  const processCountPerNode = v.int('process_count_per_node', 1, 1, 256);
  const reader = new EnvReader(env);
  const { nodeCount, nodeRank } = nodePlace(v, env, reader);
  const appendRow = appendRowFileName(v, nodeCount, nodeRank);
  const level = loggingLevel(v);
  const args = argumentList(v);
  const variables = environmentVariables(v);
  const stepName = v.str('step_name')?.value ?? reader.string('STEP_TELEMETRY_STEP_NAME') ?? DEFAULT_STEP_NAME;
  const progressInterval = v.num('progress_interval', (n) => n > 0 && n <= 86_400, 'a number of seconds > 0', 10);
  const queue = queueAddress(v, reader);
  const queueLockDuration = v.num('queue_lock_duration', (n) => n >= 0.5 && n <= 86_400, 'a number of seconds from 0.5 to 86400', 30);
  const resume = resumeFrom(v);

  if (issues.length > 0) throw new RunnerConfigError(issues);
  return {
    entryScript,
    inputs,
    output,
    inputType,
    inputPattern: pattern,
    miniBatchSize: batchSize,
    partitionKeys: keys,
    errorThreshold,
    allowedFailedCount,
    allowedFailedPercent,
    progressUpdateTimeout,
    firstTaskCreationTimeout,
    outputAction,
    appendRowFileName: appendRow,
    processCountPerNode,
    nodeCount,
    nodeRank,
    runInvocationTimeout,
    runMaxTry,
    shutdownTimeout,
    loggingLevel: level,
    arguments: args,
    environmentVariables: variables,
    stepName,
    progressInterval,
    queue,
    queueLockDuration,
    resume,
    inputFailed,
  };
}
