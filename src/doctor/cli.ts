// `step-telemetry doctor <run folder>`. Exit codes: 0 no finding at the --fail-on level, 1 there is
// one, 2 a usage error or a folder that is not a readable run folder.
import { RunFolderError } from '../run-folder/files.js';
import { formatDoctor, runDoctor, type FailOn } from './index.js';

export const DOCTOR_USAGE = `Usage: step-telemetry doctor <run folder> [options]

Checks a run folder (a step folder or a pipeline run folder) for the common traps of ML pipeline
steps and prints findings, each with its evidence and a suggested fix.

  --reference PATH              compare runtime and dependency versions with another run folder,
                                a step.json, or a lock file (package-lock.json, yarn.lock, pnpm-lock.yaml)
  --output PATH                 an output folder or file the run must have written to (repeatable)
  --run-invocation-timeout S    the runner's timeout, when the run folder does not record it
  --fail-on error|warning|never exit 1 when a finding of this severity (or worse) is found (default error)
  --json                        machine-readable output

Exit code: 0 no finding at the --fail-on level, 1 at least one, 2 a usage error or a folder that is
not a readable run folder (the message names the file and line).
`;

export async function main(argv: readonly string[]): Promise<number> {
  let folder: string | undefined;
  let json = false;
  let reference: string | undefined;
  const outputs: string[] = [];
  let timeout: number | undefined;
  let failOn: FailOn = 'error';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      return v;
    };
    try {
      switch (name) {
        case '--help':
        case '-h':
          process.stdout.write(DOCTOR_USAGE);
          return 0;
        case '--json':
          json = true;
          break;
        case '--reference':
          reference = value();
          break;
        case '--output':
          outputs.push(value());
          break;
        case '--run-invocation-timeout': {
          const v = value();
          timeout = Number(v);
          if (!(Number.isFinite(timeout) && timeout > 0)) throw new UsageError(`--run-invocation-timeout: expected a number of seconds > 0, got "${v}"`);
          break;
        }
        case '--fail-on': {
          const v = value();
          if (v !== 'error' && v !== 'warning' && v !== 'never') throw new UsageError(`--fail-on: expected error, warning or never, got "${v}"`);
          failOn = v;
          break;
        }
        default:
          if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
          if (folder !== undefined) throw new UsageError(`one run folder only (got "${folder}" and "${arg}")`);
          folder = arg;
      }
    } catch (error) {
      if (error instanceof UsageError) {
        process.stderr.write(`step-telemetry doctor: ${error.message}\n\n${DOCTOR_USAGE}`);
        return 2;
      }
      throw error;
    }
  }
  if (folder === undefined) {
    process.stderr.write(`step-telemetry doctor: which run folder?\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  try {
    const result = runDoctor(folder, { reference, outputs, runInvocationTimeout: timeout, failOn });
    process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : formatDoctor(result));
    return result.exitCode;
  } catch (error) {
    if (error instanceof RunFolderError) {
      if (json) process.stdout.write(`${JSON.stringify({ error: error.message, file: error.file, line: error.line }, null, 2)}\n`);
      process.stderr.write(`step-telemetry doctor: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

class UsageError extends Error {}
