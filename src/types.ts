// Public option and result types. Everything a user can pass or get back is declared here.
import type { Attributes, Span, SpanKind } from '@opentelemetry/api';

/** Options of `startStep()`. Each field falls back to its environment variable, then to a default. */
export interface StepOptions {
  /** Step name, e.g. `score`. Env `STEP_TELEMETRY_STEP_NAME`; default: the main script's file name. */
  name?: string;
  /** Stable id of the step within its pipeline. Env `STEP_TELEMETRY_STEP_ID`; default: the step name. */
  stepId?: string;
  /** This execution of the step. Env `STEP_TELEMETRY_RUN_ID`, then `AZUREML_RUN_ID`; default: a new id. */
  runId?: string;
  /** The pipeline run all steps share. Env `STEP_TELEMETRY_PIPELINE_RUN_ID`, then `AZUREML_ROOT_RUN_ID`; default: the run id. */
  pipelineRunId?: string;
  /** Env `STEP_TELEMETRY_PIPELINE_NAME`, then `service.namespace` in `OTEL_RESOURCE_ATTRIBUTES`; default `pipeline`. */
  pipelineName?: string;
  /** This node's rank. Env `STEP_TELEMETRY_NODE_RANK`, `JOB_COMPLETION_INDEX`, `AZ_BATCHAI_TASK_INDEX`, `NODE_RANK`; default 0. */
  nodeRank?: number;
  /** Env `STEP_TELEMETRY_NODE_COUNT`, `AZ_BATCHAI_NODE_COUNT` ... ; default 1. */
  nodeCount?: number;
  /** Index of this process on its node. Env `STEP_TELEMETRY_PROCESS_INDEX`; default 0. */
  processIndex?: number;
  /** Root of the local run folders. Env `STEP_TELEMETRY_DIR`; default `./telemetry`. */
  dir?: string;
  /** Write the local run folder. Env `STEP_TELEMETRY_LOCAL`; default true. */
  local?: boolean;
  /** Print log lines on the console. Env `STEP_TELEMETRY_CONSOLE`; default true. */
  console?: boolean;
  /** Lowest level logged. Env `STEP_TELEMETRY_LOG_LEVEL`; default `info`. */
  logLevel?: LogLevel;
  /** Upper bound for the flush at the end, in ms. Env `STEP_TELEMETRY_FLUSH_TIMEOUT_MS`; default 5000. */
  flushTimeoutMs?: number;
  /** Throw at start on configuration errors instead of reporting them and going on. Env `STEP_TELEMETRY_STRICT`. */
  strict?: boolean;
  /** Flush and exit on SIGTERM/SIGINT/uncaught exceptions. Env `STEP_TELEMETRY_HANDLE_PROCESS_EVENTS`; default true. */
  handleProcessEvents?: boolean;
  /** Application Insights connection string. Env `APPLICATIONINSIGHTS_CONNECTION_STRING`. */
  applicationInsightsConnectionString?: string;
  /**
   * The script whose nearest package.json lists the step's dependencies, recorded in step.json for
   * `step-telemetry doctor` (default: the main script; the runner passes the entry script).
   */
  mainScript?: string;
  /**
   * Kind of the step span: `server` (default) puts the step in Application Insights' `requests`;
   * `internal` keeps it out (the runner's worker processes use it).
   */
  rootSpanKind?: 'server' | 'internal';
  /**
   * @internal For the runner, whose work starts before its step and its workers': when the step
   * began (epoch ms: the step span's start and step.json's `started`; default now) and the id the
   * step span takes (16 hex digits, announced before the step started; default a new one).
   * Invalid values are ignored.
   */
  begun?: { readonly time?: number; readonly spanId?: string };
  /** Extra resource attributes (merged over `OTEL_RESOURCE_ATTRIBUTES`). */
  resourceAttributes?: Attributes;
  /** Serve the Prometheus registry at `/metrics` on this port (0: any free port). Env `STEP_TELEMETRY_PROMETHEUS_PORT`; default: no endpoint. */
  prometheusPort?: number;
  /** Address the `/metrics` endpoint binds. Env `STEP_TELEMETRY_PROMETHEUS_HOST`; default `127.0.0.1` (loopback). */
  prometheusHost?: string;
  /** Push the registry to this Pushgateway. Env `STEP_TELEMETRY_PUSHGATEWAY_URL`; default: no push. */
  pushgatewayUrl?: string;
  /** ms between pushes (0: only at the end). Env `STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS`; default 15000. */
  pushgatewayIntervalMs?: number;
  /** Delete the step's group from the Pushgateway at the end instead of a last push. Env `STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END`; default false. */
  pushgatewayDeleteOnEnd?: boolean;
  /** The `job` label of the Pushgateway grouping key. Env `STEP_TELEMETRY_PUSHGATEWAY_JOB`; default `step-telemetry`. */
  pushgatewayJob?: string;
  /** Sample CPU, memory, event loop, GC and GPU of this process (docs/resources.md). Env `STEP_TELEMETRY_RESOURCES`; default true. */
  resources?: boolean;
  /** ms between resource samples. Env `STEP_TELEMETRY_RESOURCES_INTERVAL_MS`; default 5000. */
  resourcesIntervalMs?: number;
}

/** Trace context of a sample, attached to a histogram observation as an OpenMetrics exemplar (e.g. `span.spanContext()`). */
export interface ExemplarContext {
  readonly traceId: string;
  readonly spanId?: string;
  /** A span context's flags: one not sampled (not exported) gives no exemplar, as OpenTelemetry's trace-based exemplar filter does. */
  readonly traceFlags?: number;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

/** The resolved identity of a step: the OpenTelemetry resource and the dimensions of every record. */
export interface StepIdentity {
  readonly stepId: string;
  readonly stepName: string;
  readonly runId: string;
  readonly pipelineRunId: string;
  readonly pipelineName: string;
  readonly nodeRank: number;
  readonly nodeCount: number;
  readonly processIndex: number;
  readonly host: string;
  readonly pid: number;
}

/** Options of the `Run.log` family. */
export interface LogMetricOptions {
  /** Step index (epoch, iteration), as MLflow's `log_metric(key, value, step)`: a whole number >= 0. */
  step?: number;
  /** A description, kept in the local history. */
  description?: string;
}

export type Cell = number | string | boolean | null;

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
}

/** What a backend did during the step, as summarised at the end. */
export interface ExportSummary {
  readonly backend: string;
  readonly signal: string;
  readonly target: string;
  readonly batches: number;
  readonly failedBatches: number;
  /** Spans or log records that reached the export queue and were not delivered (`notExported`: queueFull + exportFailed + unsent). */
  readonly droppedItems: number;
  /** Traces and logs: what reached this backend's export queue (spans: those the sampler kept). */
  readonly offeredItems?: number;
  readonly deliveredItems?: number;
  /** Traces and logs: what did not reach the backend, per reason (docs/exports.md). */
  readonly notExported?: {
    /** Spans OTEL_TRACES_SAMPLER sampled out (in spans.jsonl, marked). */
    readonly sampledOut: number;
    /** Mini-batch spans the export rate policy sampled out at runner rates (in spans.jsonl, marked). */
    readonly rateSampledOut: number;
    /** Dropped because the export queue (OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BLRP_MAX_QUEUE_SIZE) was full. */
    readonly queueFull: number;
    /** In batches that failed, or that the step gave up waiting for. */
    readonly exportFailed: number;
    /** Still queued when the step stopped waiting (the flush bound passed); for logs this includes earlier drops at a full queue. */
    readonly unsent: number;
  };
  /** Traces: the lowest probability the export rate policy kept mini-batch spans with, when it sampled any out. */
  readonly lowestSamplingProbability?: number;
  readonly lastError?: string;
  readonly hint?: string;
  /** What the step concluded about the backend (the runner's parent does not wait again for one its workers found silent). */
  readonly verdict?: 'ok' | 'refused' | 'unauthorized' | 'silent' | 'failing';
}

export type StepOutcome = 'success' | 'failure' | 'terminated' | 'crashed';

export interface EndOptions {
  /** Defaults to `failure` when `error` is given, else `success`. */
  outcome?: StepOutcome;
  error?: unknown;
}

export interface EndResult {
  readonly outcome: StepOutcome;
  readonly durationMs: number;
  /** True when every sink flushed within the bound. */
  readonly flushed: boolean;
  readonly exports: readonly ExportSummary[];
  readonly runFolder?: string;
}

/** A metric handle that a module can take at import time; it records into whichever step is active. */
export interface MetricHandle {
  readonly name: string;
  log(value: number, options?: LogMetricOptions): void;
}

export type { Span };
