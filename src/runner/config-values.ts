// A configuration field's value as the sources give it (flags > the programmatic object > the
// config file), and the typed readers that check it: a number in a range, a whole number, a
// non-empty string, one of a list. A value that does not pass is an issue (naming the field, where
// the value came from and what is expected), collected so that every problem is reported at once;
// the reader then answers the default.
import type { RunnerConfigIssue } from './config-error.js';
import { flagName, type ConfigField } from './config-names.js';
import type { ParallelRunConfig } from './types.js';

/** A raw value and where it came from; relative paths resolve against `base`. */
export interface Raw {
  readonly value: unknown;
  readonly source: string;
  readonly base: string;
}

/** A value as an issue shows it. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export class ConfigValues {
  constructor(
    private readonly api: ParallelRunConfig,
    private readonly flags: Readonly<Record<string, unknown>>,
    private readonly file: ReadonlyMap<string, Raw>,
    readonly cwd: string,
    readonly issues: RunnerConfigIssue[],
  ) {}

  /** The value of `field` from the first source that sets it (undefined: none does). */
  raw(field: ConfigField): Raw | undefined {
    const f = this.flags[field];
    if (f !== undefined) return { value: f, source: flagName(field), base: this.cwd };
    const a = (this.api as Record<string, unknown>)[field];
    if (a !== undefined) return { value: a, source: `runParallel(): ${field}`, base: this.cwd };
    return this.file.get(field);
  }

  /** `r` is not what `field` takes: an issue. */
  bad(field: string, r: Raw, expected: string): undefined {
    this.issues.push({ field, source: r.source, expected, got: show(r.value) });
    return undefined;
  }

  num(field: ConfigField, test: (n: number) => boolean, expected: string, fallback: number): number {
    const r = this.raw(field);
    if (r === undefined) return fallback;
    const n = typeof r.value === 'number' ? r.value : typeof r.value === 'string' && r.value.trim() !== '' ? Number(r.value) : Number.NaN;
    if (!Number.isFinite(n) || !test(n)) {
      this.bad(field, r, expected);
      return fallback;
    }
    return n;
  }

  int(field: ConfigField, min: number, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
    return this.num(field, (n) => Number.isInteger(n) && n >= min && n <= max, `a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`, fallback);
  }

  /** Seconds above 0 (up to 2,000,000: about 23 days). */
  seconds(field: ConfigField, fallback: number): number {
    return this.num(field, (n) => n > 0 && n <= 2_000_000, 'a number of seconds > 0', fallback);
  }

  /** A non-empty string, trimmed, and where it came from. */
  str(field: ConfigField): { value: string; raw: Raw } | undefined {
    const r = this.raw(field);
    if (r === undefined) return undefined;
    if (typeof r.value !== 'string' || r.value.trim() === '') return this.bad(field, r, 'a non-empty string');
    return { value: r.value.trim(), raw: r };
  }

  oneOf<T extends string>(field: ConfigField, allowed: readonly T[], fallback: T): T {
    const r = this.raw(field);
    if (r === undefined) return fallback;
    if (typeof r.value === 'string' && (allowed as readonly string[]).includes(r.value)) return r.value as T;
    this.bad(field, r, `one of ${allowed.join(', ')}`);
    return fallback;
  }
}
