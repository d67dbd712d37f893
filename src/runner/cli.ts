// `step-telemetry parallel-run`: the configuration names as kebab-case flags, then `--` and the
// entry script's own arguments. Exit codes: 0 the thresholds held, 1 the job failed (cause printed
// and in result.json / error-summary.txt), 2 a usage or configuration error, 130/143 a signal.
import { CONFIG_FIELDS, RunnerConfigError, flagName, resolveRunConfig } from './config.js';

export const PARALLEL_RUN_USAGE = `Usage: step-telemetry parallel-run --entry-script FILE --input PATH [--input PATH ...] [options] [-- ARGS...]

Runs FILE's run(miniBatch, context) over the input in mini-batches in worker processes, with Azure ML
ParallelRunStep semantics (init() once per worker, retries, timeouts, error thresholds, append_row,
an optional shutdown() at each worker's end).
Flags are ParallelRunConfig's names in kebab-case; a YAML/JSON --config file may hold the same names
in snake_case (flags win). Everything after -- reaches the entry script (context.args, process.argv).

  --entry-script FILE             JS or TS module exporting run(), optionally init() and shutdown() (TS needs no build)
  --input PATH                    input file or folder (repeatable; folders are walked recursively)
  --output DIR                    output folder, created (default: output/ in the run folder)
  --config FILE                   YAML or JSON file with any of these settings
  --input-type files|tabular      files (default): a mini-batch is a list of paths;
                                  tabular: rows of .csv/.tsv/.jsonl/.ndjson files as objects
  --input-pattern GLOB            only files matching GLOB, e.g. '*.pgm' or '**/*.jsonl'
  --mini-batch-size N|SIZE        files per mini-batch (default 10) or a size for tabular (default 1MB)
  --partition-keys COL[,COL]      tabular: one mini-batch per distinct value of these columns (repeatable;
                                  mini_batch_size is then not used, as in Azure ML)
  --error-threshold N             failed items tolerated; -1 (default) ignores failures
  --allowed-failed-count N        failed mini-batches tolerated; -1 (default) ignores them
  --allowed-failed-percent P      percent of mini-batches that may fail (default 100)
  --progress-update-timeout S     abort when no attempt finishes for S seconds (default 3 x timeout x tries)
  --first-task-creation-timeout S fail when no mini-batch started S seconds after the start (default 600)
  --output-action ACTION          append_row (default) or summary_only
  --append-row-file-name NAME     default parallel_run_step.txt
  --process-count-per-node N      worker processes (default 1)
  --node-count N                  nodes sharing the input (default from the environment, else 1)
  --node-rank R                   this node (default STEP_TELEMETRY_NODE_RANK, JOB_COMPLETION_INDEX,
                                  AZ_BATCHAI_TASK_INDEX or NODE_RANK, else 0)
  --run-invocation-timeout S      seconds per run() call before its worker is killed (default 60)
  --run-max-try N                 tries per mini-batch (default 3)
  --shutdown-timeout S            seconds the entry script's shutdown() may take per worker (default 10)
  --logging-level LEVEL           DEBUG, INFO (default), WARNING, ERROR, CRITICAL
  --environment-variables K=V     extra environment for the workers (repeatable)
  --step-name NAME                default STEP_TELEMETRY_STEP_NAME, else parallel-run
  --progress-interval S           seconds between progress lines when not on a terminal (default 10)
  --arguments ARG                 an argument for the entry script (repeatable; same as after --)
  --queue URL                     share one job among nodes on a queue: redis://[user:pass@]host:port/db
                                  (default STEP_TELEMETRY_QUEUE_URL; see docs/multi-node.md)
  --queue-lock-duration S         a node's lease on a mini-batch of the queue, renewed every S/2 (default 30)
  --resume [RUN_FOLDER]           skip the mini-batches that succeeded in the run folder (default: this
                                  run's own) and run the rest; the output file is kept and appended to
  --input-failed RUN_FOLDER       run exactly the failed items of RUN_FOLDER's failed-items.jsonl

Exit code: 0 when the thresholds held, 1 when the job failed (the cause is printed and written to
result.json and error-summary.txt in the run folder), 2 for a usage or configuration error,
143/130 when stopped by SIGTERM/SIGINT.
`;

const REPEATABLE = new Set(['input', 'environment_variables', 'arguments', 'partition_keys']);

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parse `--flag value`, `--flag=value`, repeatable flags and `--`; unknown flags are errors. */
export function parseParallelRunArgs(argv: readonly string[]): { flags: Record<string, unknown>; help: boolean } {
  const flags: Record<string, unknown> = {};
  const known = new Map<string, string>(CONFIG_FIELDS.map((f) => [flagName(f), f]));
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}" (entry script arguments go after --)`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const field = known.get(name) ?? known.get(name.replace(/_/g, '-'));
    if (field === undefined) {
      throw new UsageError(`unknown flag ${name}; the flags are ${[...known.keys()].join(' ')}`);
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (field === 'resume' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = 'true';
    else {
      const v = argv[i + 1];
      if (v === undefined || (v.startsWith('--') && v !== '--')) throw new UsageError(`${name} needs a value`);
      value = v;
      i++;
    }
    if (REPEATABLE.has(field)) ((flags[field] ??= []) as string[]).push(value);
    else flags[field] = value; // the last one wins, so a wrapper's defaults can be overridden
  }
  if (rest.length > 0) flags.arguments = [...((flags.arguments as string[] | undefined) ?? []), ...rest];
  return { flags, help };
}

/** The `parallel-run` command; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: { flags: Record<string, unknown>; help: boolean };
  try {
    parsed = parseParallelRunArgs(argv);
  } catch (error) {
    process.stderr.write(`step-telemetry parallel-run: ${(error as Error).message}\n(see step-telemetry parallel-run --help)\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(PARALLEL_RUN_USAGE);
    return 0;
  }
  try {
    // the workers start first, then the cut of the input (run.ts and the rest of the runner load while they work)
    const config = resolveRunConfig({}, parsed.flags);
    const preforked = config.queue ? [] : (await import('./pool.js')).forkWorkers(config, config.processCountPerNode);
    const cut = config.queue || config.inputFailed ? undefined : (await import('./partition.js')).startPartition(config);
    const loading = import('./run.js');
    // its first slice is cut: the rest waits until the runner has loaded (run.ts holds it further)
    cut?.holdUntil(loading);
    const { runWith } = await loading;
    const result = await runWith({}, parsed.flags, {}, { config, preforked, cut });
    // nothing should hold the event loop now; if something does, do not hang the pipeline
    setTimeout(() => process.exit(result.exit_code), 3000).unref();
    return result.exit_code;
  } catch (error) {
    if (error instanceof RunnerConfigError) {
      process.stderr.write(`step-telemetry parallel-run: ${error.message}\n(see step-telemetry parallel-run --help)\n`);
      return 2;
    }
    throw error;
  }
}
