// The runner's public surface (re-exported by src/index.ts). Every export is listed by name.
// runParallel() loads the runner (worker pool, partitioning, reports) on its first call, so
// importing the library costs nothing for programs that never run mini-batches.
import type { ParallelRunConfig, ParallelRunResult, RunParallelOptions } from './types.js';

export { RunnerConfigError, formatRunnerIssue } from './config.js';
export type { RunnerConfigIssue } from './config.js';
export type {
  EntryScript,
  InitContext,
  InputType,
  OutputAction,
  ParallelRunConfig,
  ParallelRunErrorCategory,
  ParallelRunErrorInfo,
  ParallelRunResult,
  ParallelRunStatus,
  RunContext,
  RunParallelOptions,
  TabularSource,
} from './types.js';

/**
 * Run an entry script over the input in mini-batches in worker processes, with Azure ML
 * ParallelRunStep semantics. Resolves with the result (also in result.json in the run folder);
 * rejects with a RunnerConfigError, before any work, when the configuration cannot run.
 */
export async function runParallel(config: ParallelRunConfig, options: RunParallelOptions = {}): Promise<ParallelRunResult> {
  const run = await import('./run.js');
  return run.runParallel(config, options);
}
