// The runner's public surface (re-exported by src/index.ts). Every export is listed by name.
export { runParallel } from './run.js';
export { RunnerConfigError, formatRunnerIssue } from './config.js';
export type { RunnerConfigIssue } from './config.js';
export type {
  EntryScript,
  ErrorCategory,
  ErrorInfo,
  InitContext,
  InputType,
  OutputAction,
  ParallelRunConfig,
  ParallelRunResult,
  ParallelRunStatus,
  RunContext,
  RunParallelOptions,
  TabularSource,
} from './types.js';
