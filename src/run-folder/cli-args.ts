// The argument loop the run-folder commands share: one positional run folder, options as
// `--name value` or `--name=value`, `-h`/`--help`, and usage errors printed with the usage text.

export class UsageError extends Error {}

/** One option: its name as given, and its value (read on demand; a missing value is a usage error). */
export interface Option {
  readonly name: string;
  value(): string;
}

/**
 * Parse `argv` for `step-telemetry <command>`. `onOption` handles each option and returns false for
 * one it does not know. Returns the run folder, or an exit code: 0 after `--help`, 2 after a usage
 * error (printed with the usage text).
 */
export function parseRunFolderArgs(command: string, usage: string, argv: readonly string[], onOption: (option: Option) => boolean): string | number {
  let folder: string | undefined;
  try {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      if (name === '-h' || name === '--help') {
        process.stdout.write(usage);
        return 0;
      }
      const option: Option = {
        name,
        value: () => {
          const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
          if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
          return v;
        },
      };
      if (arg.startsWith('-')) {
        if (!onOption(option)) throw new UsageError(`unknown option ${arg}`);
        continue;
      }
      if (folder !== undefined) throw new UsageError(`one run folder only (got "${folder}" and "${arg}")`);
      folder = arg;
    }
    if (folder === undefined) throw new UsageError('which run folder?');
    return folder;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`step-telemetry ${command}: ${error.message}\n\n${usage}`);
      return 2;
    }
    throw error;
  }
}
