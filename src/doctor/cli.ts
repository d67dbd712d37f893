// `step-telemetry doctor <run folder>`. Exit codes: 0 no finding at the --fail-on level, 1 there is
// one, 2 a usage error or a folder that is not a readable run folder.
import { parseRunFolderArgs, UsageError } from '../run-folder/cli-args.js';
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
  let json = false;
  let reference: string | undefined;
  const outputs: string[] = [];
  let timeout: number | undefined;
  let failOn: FailOn = 'error';
  const folder = parseRunFolderArgs('doctor', DOCTOR_USAGE, argv, (option) => {
    switch (option.name) {
      case '--json':
        json = true;
        return true;
      case '--reference':
        reference = option.value();
        return true;
      case '--output':
        outputs.push(option.value());
        return true;
      case '--run-invocation-timeout': {
        const v = option.value();
        timeout = Number(v);
        if (!(Number.isFinite(timeout) && timeout > 0)) throw new UsageError(`--run-invocation-timeout: expected a number of seconds > 0, got "${v}"`);
        return true;
      }
      case '--fail-on': {
        const v = option.value();
        if (v !== 'error' && v !== 'warning' && v !== 'never') throw new UsageError(`--fail-on: expected error, warning or never, got "${v}"`);
        failOn = v;
        return true;
      }
      default:
        return false;
    }
  });
  if (typeof folder === 'number') return folder;
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

