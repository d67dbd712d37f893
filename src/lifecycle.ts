// Process events: a step that is killed, crashes or simply reaches the end of its script is
// still flushed within the bound, and the process exits with the code it would have had.
//   beforeExit          the script ran out of work without calling end(): end it (outcome from exitCode)
//   SIGTERM / SIGINT    end as `terminated`, then exit 128 + signal number (143, 130)
//   uncaught exception  print it as Node would, end as `crashed`, exit 1 — unless the program has
//                       its own handler, in which case the step only records it and flushes local files
//   exit                last resort (process.exit() mid-step): write local files synchronously
import type { StepOutcome, EndOptions, EndResult } from './types.js';

interface Endable {
  readonly ended: boolean;
  end(options?: EndOptions): Promise<EndResult>;
  flushLocalSync(outcome: StepOutcome, reason?: string): void;
}

const SIGNAL_CODES: Record<string, number> = { SIGTERM: 15, SIGINT: 2 };

export function installProcessHandlers(step: Endable): () => void {
  let exiting = false;
  /** The outcome is already in the local files (a second signal): the exit must not overwrite it. */
  let written = false;

  const onBeforeExit = (): void => {
    if (step.ended || exiting) return;
    const failed = typeof process.exitCode === 'number' && process.exitCode !== 0;
    void step.end(failed ? { outcome: 'failure' } : {});
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    const code = 128 + (SIGNAL_CODES[signal] ?? 15);
    if (exiting) {
      // a second signal while flushing: stop now, local files first
      step.flushLocalSync('terminated', `second ${signal} during flush`);
      written = true;
      process.exit(code);
    }
    exiting = true;
    const error = new Error(`received ${signal}`);
    error.name = 'Terminated';
    void step.end({ outcome: 'terminated', error }).finally(() => process.exit(code));
  };

  const onUncaught = (error: unknown, origin: string): void => {
    const others = process.listenerCount('uncaughtException') - 1;
    if (others > 0) {
      // the program owns the exit; record what we can without waiting
      step.flushLocalSync('crashed', `${origin}: ${describe(error)}`);
      return;
    }
    if (exiting) return;
    exiting = true;
    try {
      process.stderr.write(`${error instanceof Error && error.stack ? error.stack : describe(error)}\n`);
    } catch {
      // ignore
    }
    void step.end({ outcome: 'crashed', error }).finally(() => process.exit(1));
  };

  const onExit = (code: number): void => {
    if (!step.ended && !written) step.flushLocalSync(code === 0 ? 'success' : 'failure', `process.exit(${code}) before step.end()`);
  };

  process.on('beforeExit', onBeforeExit);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onUncaught);
  process.on('exit', onExit);
  return () => {
    process.off('beforeExit', onBeforeExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('exit', onExit);
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return String(error);
  } catch {
    return 'a non-Error value';
  }
}
