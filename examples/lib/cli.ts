// Small option helpers shared by the demo step scripts: a CLI flag wins over its environment
// variable, which wins over the default. Folders default to ./demo-output/<sub> (relative to the
// working directory) or $DEMO_OUTPUT_DIR/<sub>.
import path from 'node:path';
import { parseArgs } from 'node:util';

/** A usage error: the script prints it and exits with code 2, before any telemetry starts. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parse `--name value` / `--name=value` string flags and `--help`; unknown flags are errors. */
export function parseFlags<const N extends string>(
  names: readonly N[],
  argv: readonly string[] = process.argv.slice(2),
): { values: Partial<Record<N, string>>; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const name of names) options[name] = { type: 'string' };
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    const { help, ...rest } = values as Record<string, string | boolean | undefined>;
    return { values: rest as Partial<Record<N, string>>, help: help === true };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Root of the demo's output folders: $DEMO_OUTPUT_DIR, else ./demo-output. */
export function outputRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DEMO_OUTPUT_DIR || 'demo-output');
}

/** Reads options: the `--name` flag, else the env variable, else the default. */
export interface OptionReader {
  /** A folder, absolute: the flag, else the env variable, else <outputRoot>/<sub>. */
  folder(name: string, envName: string, sub: string): string;
  /** A whole number >= min (default 0). */
  int(name: string, envName: string, fallback: number, min?: number): number;
  /** A finite number > 0. */
  positive(name: string, envName: string, fallback: number): number;
}

export function optionReader(values: Partial<Record<string, string>>, env: NodeJS.ProcessEnv = process.env): OptionReader {
  const pick = (name: string, envName: string): { raw: string; from: string } | undefined => {
    const flag = values[name];
    if (flag !== undefined) return { raw: flag, from: `--${name}` };
    const value = env[envName];
    return value !== undefined && value !== '' ? { raw: value, from: envName } : undefined;
  };
  return {
    folder(name, envName, sub) {
      const chosen = pick(name, envName);
      if (chosen && chosen.raw.trim() === '') throw new UsageError(`${chosen.from}: expected a folder, got an empty string`);
      return chosen ? path.resolve(chosen.raw) : path.join(outputRoot(env), sub);
    },
    int(name, envName, fallback, min = 0) {
      const chosen = pick(name, envName);
      if (!chosen) return fallback;
      const value = Number(chosen.raw);
      if (!/^\s*-?\d+\s*$/.test(chosen.raw) || !Number.isSafeInteger(value) || value < min) {
        throw new UsageError(`${chosen.from}: expected a whole number >= ${min}, got ${JSON.stringify(chosen.raw)}`);
      }
      return value;
    },
    positive(name, envName, fallback) {
      const chosen = pick(name, envName);
      if (!chosen) return fallback;
      const value = Number(chosen.raw);
      if (chosen.raw.trim() === '' || !Number.isFinite(value) || value <= 0) {
        throw new UsageError(`${chosen.from}: expected a number > 0, got ${JSON.stringify(chosen.raw)}`);
      }
      return value;
    },
  };
}

/** Run a step script's option parsing; on a UsageError print it with the usage text and exit 2. */
export function parseOrExit<T>(usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${usage}\n`);
      process.exit(2);
    }
    throw err;
  }
}
