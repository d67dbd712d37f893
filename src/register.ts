// The zero-code agent: `node --import step-telemetry/register script.js` (or
// NODE_OPTIONS="--import step-telemetry/register") makes an unmodified script a step. Before the
// script runs: the step starts (identity and configuration from the environment, as startStep()
// reads them), the instrumentations of OTEL_NODE_ENABLED_INSTRUMENTATIONS are enabled, and the
// console is recorded (src/agent/console-capture.ts). Every exit path ends the step as end() does:
// the script returning (beforeExit: the exit code decides the outcome), an uncaught error (printed,
// `crashed`, exit 1), SIGTERM/SIGINT, and process.exit(), which here waits for the flush (within the
// bound) before the process exits with the code it was given.
import { EnvReader } from './config.js';
import { Diagnostics } from './diagnostics.js';
import { captureConsole } from './agent/console-capture.js';
import { enableInstrumentations, instrumentationNames } from './agent/instrumentations.js';
import { startStep } from './step.js';
import type { StepOutcome } from './types.js';

async function startAgent(): Promise<void> {
  const reader = new EnvReader(process.env);
  const { names, explicit } = instrumentationNames(reader);
  // the script's own console prints its lines; the step records them without printing them again
  const step = await startStep({ console: false });
  const enabled = await enableInstrumentations(names, explicit, new Diagnostics());
  step.logger.info(`step ${step.identity.stepName} started by step-telemetry/register`, { instrumentations: enabled.join(', ') || 'none' });
  captureConsole(() => (step.ended ? undefined : step.logger));

  const exit = process.exit.bind(process);
  let exiting = false;
  process.exit = ((code?: number | string | null): never => {
    if (exiting || step.ended) return exit(code ?? undefined);
    exiting = true;
    const n = code === undefined || code === null ? (typeof process.exitCode === 'number' ? process.exitCode : 0) : Number(code);
    process.exitCode = n;
    const outcome: StepOutcome = n === 0 ? 'success' : 'failure';
    void step.end({ outcome }).finally(() => exit(n));
    // process.exit() would not return: statements after it still run while the step flushes (within the bound)
    return undefined as never;
  }) as typeof process.exit;
}

try {
  await startAgent();
} catch (error) {
  // the script runs anyway: telemetry never breaks it
  try {
    process.stderr.write(`[step-telemetry] the agent could not start: ${error instanceof Error ? error.message : String(error)}\n`);
  } catch {
    // a closed stderr
  }
}
