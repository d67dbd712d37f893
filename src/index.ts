// The public surface of step-telemetry. Every export is listed by name.
export { startStep, currentStep, getLogger, metric, Step } from './step.js';
export { ConfigError } from './config.js';
export { runParallel, RunnerConfigError, formatRunnerIssue } from './runner/index.js';
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
  RunnerConfigIssue,
  TabularSource,
} from './runner/index.js';
export { CATALOG, MINIBATCH_DURATION_BUCKETS, prometheusName, prometheusLabels, sanitizePrometheusName } from './catalog.js';
export type { CatalogEntry, CatalogKey, InstrumentKind } from './catalog.js';
export type {
  Cell,
  EndOptions,
  EndResult,
  ExemplarContext,
  ExportSummary,
  LogLevel,
  LogMetricOptions,
  MetricHandle,
  Span,
  SpanOptions,
  StepIdentity,
  StepOptions,
  StepOutcome,
} from './types.js';
