/**
 * Runs a pipeline-step script in a child Node process with a clean telemetry environment,
 * plus temp-folder helpers for tests.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { onTestFinished } from 'vitest';

/**
 * Prefixes of variables removed from the inherited environment, so a developer's or CI's own
 * telemetry settings never leak into a test. (`APPLICATION_INSIGHTS_` is the legacy spelling the Azure
 * exporter still reads, e.g. APPLICATION_INSIGHTS_NO_STATSBEAT; `VITEST` and NODE_OPTIONS belong to the runner.)
 */
export const STRIPPED_ENV_PREFIXES: readonly string[] = [
  'OTEL_',
  'APPLICATIONINSIGHTS_',
  'APPLICATION_INSIGHTS_',
  'STEP_TELEMETRY_',
  'AZUREML_',
  'VITEST',
];
export const STRIPPED_ENV_NAMES: readonly string[] = ['NODE_OPTIONS'];

/** A copy of process.env without the variables above. */
export function baseChildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    const upper = name.toUpperCase();
    if (STRIPPED_ENV_NAMES.includes(upper)) continue;
    if (STRIPPED_ENV_PREFIXES.some((prefix) => upper.startsWith(prefix))) continue;
    env[name] = value;
  }
  return env;
}

export interface RunStepOptions {
  /** Path of the .mjs (or .js) script to run with `process.execPath`. */
  script: string;
  /** Added on top of baseChildEnv(); a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  args?: string[];
  cwd?: string;
  /** The child is SIGKILLed after this long (default 30 000 ms); the result then has `timedOut: true`. */
  timeoutMs?: number;
  /** Sends `signal` once stdout contains `whenStdoutIncludes` (checked on every stdout chunk). */
  signalAfter?: { signal: NodeJS.Signals; whenStdoutIncludes: string };
  /** Extra node flags placed before the script (e.g. ['--enable-source-maps']). */
  nodeArgs?: string[];
  /** Written to the child's stdin, which is then closed. Default: an empty stdin (immediate EOF). */
  stdin?: string;
}

export interface RunStepResult {
  /** Exit code; null when the child was ended by a signal. */
  code: number | null;
  /** Signal that ended the child, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** True when the child was SIGKILLed because timeoutMs elapsed. */
  timedOut: boolean;
  /** True when `signalAfter.signal` was sent. */
  signalSent: boolean;
  pid: number | undefined;
}

/** Spawns `node [nodeArgs] script [args]` and resolves when the child has exited and its output is drained. */
export function runStepScript(options: RunStepOptions): Promise<RunStepResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const env = baseChildEnv();
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }

  return new Promise<RunStepResult>((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
      cwd: options.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });

    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let signalSent = false;
    let settled = false;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const after = options.signalAfter;
      if (after && !signalSent && child.exitCode === null && child.signalCode === null && stdout.includes(after.whenStdoutIncludes)) {
        signalSent = child.kill(after.signal);
      }
    });
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });

    // stdin: the given text, then EOF (an empty stdin when none is given).
    child.stdin.on('error', () => undefined); // the child may exit without reading stdin
    child.stdin.end(options.stdin ?? '');

    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    // 'close' (not 'exit'): fires after stdout/stderr are fully read.
    child.once('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        durationMs: performance.now() - started,
        timedOut,
        signalSent,
        pid: child.pid,
      });
    });
  });
}

export interface TempDir {
  path: string;
  cleanup: () => Promise<void>;
}

/** Creates `$TMPDIR/<prefix>XXXXXX`; `cleanup()` removes it recursively (idempotent). */
export async function makeTempDir(prefix = 'step-telemetry-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Inside a running vitest test: a temp folder removed automatically when the test finishes. Returns its path. */
export async function useTempDir(prefix = 'step-telemetry-test-'): Promise<string> {
  const dir = await makeTempDir(prefix);
  onTestFinished(dir.cleanup);
  return dir.path;
}
