// startStep() and the Step: wires identity, sinks and signals together, and ends them within a
// bounded time whatever happens to the process.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  metrics,
  trace,
  type Attributes,
  type Context,
  type Meter,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type winston from 'winston';
import { ConfigError, EnvReader, formatIssue, resolveConfig, type ResolvedConfig } from './config.js';
import { Diagnostics } from './diagnostics.js';
import {
  identityDimensions,
  metricDimensions,
  parseTraceparent,
  resolveIdentity,
  resourceAttributes,
  traceIdForPipelineRun,
} from './identity.js';
import { installProcessHandlers } from './lifecycle.js';
import { PENDING_METRICS_LIMIT, processState, type ActiveStep } from './process-state.js';
import { collectRuntimeInfo } from './runtime-info.js';
import { CatalogInstruments, MetricRecorder } from './signals/metrics.js';
import { LogPipeline, bindLogger, processLogger, unbindLogger, withMiniBatch } from './signals/logs.js';
import { TRACER_NAME, createTracerProvider, recordError, type FinishedSpan, type FinishedSpans, type PipelineTraceIdGenerator } from './signals/traces.js';
import { createAzureExporters } from './sinks/azure.js';
import type { BackendExporters } from './sinks/backend.js';
import { ExporterAgents, guardExporter, type ExportHealth } from './sinks/export-health.js';
import { LocalRunFolder } from './sinks/local.js';
import { createOtlpExporters } from './sinks/otlp.js';
import { PrometheusSink } from './sinks/prometheus.js';
import { PrometheusExport } from './sinks/prometheus-export.js';
import { ResourceSampler } from './resources/sampler.js';
import type {
  Cell,
  EndOptions,
  EndResult,
  LogMetricOptions,
  SpanOptions,
  ExportSummary,
  StepIdentity,
  StepOptions,
  StepOutcome,
} from './types.js';

const STRUCTURED_EVENT_LIMIT = 8192;

/** A running pipeline step. Recording calls never throw; `end()` flushes within the bound. */
export class Step implements ActiveStep {
  readonly identity: StepIdentity;
  /** The step's winston logger (the process logger, bound to this step). */
  readonly logger: winston.Logger;
  /** Catalog instruments, for the runner and for integrations. */
  readonly instruments: CatalogInstruments;
  readonly tracer: Tracer;
  /** The step's root span (kind SERVER, so Application Insights lists the step under requests). */
  readonly rootSpan: Span;
  /** Prometheus registry holding the catalog metrics and the run.log gauges. */
  readonly prometheus: PrometheusSink;
  /** @internal the `/metrics` endpoint and Pushgateway pusher, when configured */
  prometheusExport: PrometheusExport | undefined;
  /** @internal CPU, memory, event loop and GPU sampling (src/resources/), unless STEP_TELEMETRY_RESOURCES=false */
  readonly resources: ResourceSampler | undefined;

  private readonly recorder: MetricRecorder;
  private readonly started = Date.now();
  private ending: Promise<EndResult> | undefined;
  private endedFlag = false;
  private readonly uninstall: () => void;
  private readonly tags: Record<string, string> = {};

  /** @internal use startStep() */
  constructor(
    private readonly config: ResolvedConfig,
    identity: StepIdentity,
    private readonly diagnostics: Diagnostics,
    private readonly local: LocalRunFolder | undefined,
    private readonly tracerProvider: BasicTracerProvider,
    private readonly meterProvider: MeterProvider | undefined,
    private readonly loggerProvider: LoggerProvider | undefined,
    private readonly healths: readonly ExportHealth[],
    private readonly agents: ExporterAgents,
    private readonly registeredGlobals: { trace: boolean; metrics: boolean; logs: boolean },
    private readonly staticInfo: Record<string, unknown>,
    rootSpanKind: StepOptions['rootSpanKind'],
    private readonly spanIds: PipelineTraceIdGenerator,
    private readonly finishedSpans: FinishedSpans,
  ) {
    this.identity = identity;
    const dims = identityDimensions(identity);
    const mdims = metricDimensions(identity);
    this.tracer = tracerProvider.getTracer(TRACER_NAME);
    const traceparent = parseTraceparent(process.env.TRACEPARENT);
    const parent = traceparent ? trace.setSpanContext(ROOT_CONTEXT, traceparent) : ROOT_CONTEXT;
    this.rootSpan = this.tracer.startSpan(identity.stepName, { kind: rootSpanKind === 'internal' ? SpanKind.INTERNAL : SpanKind.SERVER, attributes: { ...dims, 'step.kind': 'step' } }, parent);
    const meter: Meter | undefined = meterProvider?.getMeter('step-telemetry');
    this.prometheus = new PrometheusSink(mdims, diagnostics);
    this.instruments = new CatalogInstruments(meter, this.prometheus, mdims, diagnostics);
    this.recorder = new MetricRecorder(diagnostics, local, meter, this.prometheus, mdims, (kind, name, value) => {
      let json = JSON.stringify(value);
      if (json.length > STRUCTURED_EVENT_LIMIT) json = `${json.slice(0, STRUCTURED_EVENT_LIMIT)}…`;
      this.rootSpan.addEvent(`metric.${kind}`, { 'metric.name': name, 'metric.value': json });
    });
    const otelLogger = loggerProvider?.getLogger('step-telemetry');
    const otelDims: Attributes = { ...dims };
    const dimsJson = JSON.stringify(dims).slice(1, -1);
    const pipeline = new LogPipeline(local, config.console, otelLogger, otelDims, identity.stepName, dimsJson, this.rootSpan);
    this.logger = bindLogger(processState().logs, { dims, dimsJson, stepSpan: this.rootSpan, pipeline }, config.logLevel, diagnostics);
    this.instruments.record('running', 1);
    this.resources = config.resources.enabled ? ResourceSampler.start({ intervalMs: config.resources.intervalMs, file: local?.resourcesFile, processIndex: identity.processIndex, instruments: this.instruments, diagnostics }) : undefined;
    for (const h of healths) {
      const attributes = { backend: h.backend, signal: h.signal };
      h.onFailure = () => this.instruments.record('exportFailures', 1, attributes);
    }
    this.uninstall = config.handleProcessEvents ? installProcessHandlers(this) : () => undefined;
  }

  get ended(): boolean {
    return this.endedFlag;
  }

  /** URL of the Prometheus `/metrics` endpoint while it listens (`STEP_TELEMETRY_PROMETHEUS_PORT`). */
  get metricsEndpoint(): string | undefined {
    return this.prometheusExport?.endpoint;
  }

  /** The run folder, when local files are on. */
  get runFolder(): string | undefined {
    return this.local?.folder;
  }

  /** Run.log: one scalar, with an optional step index (MLflow's `step`). */
  log(name: string, value: number, options?: LogMetricOptions): void {
    this.recorder.scalar(name, value, options);
  }

  /** Run.log_list: a list of values under one name. */
  logList(name: string, values: readonly number[], options?: LogMetricOptions): void {
    this.recorder.list(name, values, options);
  }

  /** Run.log_row: one row of a table that is built row by row. */
  logRow(name: string, row: Readonly<Record<string, Cell>>, options?: LogMetricOptions): void {
    this.recorder.row(name, row, options);
  }

  /** Run.log_table: a table given as columns of equal length. */
  logTable(name: string, table: Readonly<Record<string, readonly Cell[]>>, options?: LogMetricOptions): void {
    this.recorder.table(name, table, options);
  }

  /** Tags of the step run: on the step span (`step.tag.<key>`), in metrics.jsonl and step.json. */
  setTags(tags: Readonly<Record<string, string | number | boolean>>): void {
    if (tags === null || typeof tags !== 'object') {
      this.diagnostics.warn('input.setTags', 'setTags() dropped: expected an object of strings');
      return;
    }
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags)) {
      if (k.length === 0 || k.length > 255 || !['string', 'number', 'boolean'].includes(typeof v)) {
        this.diagnostics.warn('input.setTags.entry', `setTags() dropped the tag "${k.slice(0, 40)}": keys are 1-255 characters, values strings, numbers or booleans`);
        continue;
      }
      clean[k] = String(v);
      this.rootSpan.setAttribute(`step.tag.${k}`, String(v));
    }
    Object.assign(this.tags, clean);
    this.recorder.tags(clean);
  }

  /**
   * Run `fn` inside a span (child of the active span, else of the step span). An error is recorded
   * on the span with its stack and re-thrown.
   */
  async span<T>(name: string, fn: (span: Span) => T | Promise<T>, options: SpanOptions = {}): Promise<T> {
    const span = this.startSpan(name, options);
    try {
      const result = await context.with(trace.setSpan(context.active(), span), () => fn(span));
      span.end();
      return result;
    } catch (error) {
      recordError(span, error);
      span.end();
      throw error;
    }
  }

  /** Start a span that the caller ends; its parent is the active span, else the step span. */
  startSpan(name: string, options: SpanOptions & { startTime?: number } = {}): Span {
    const active = context.active();
    const parent = trace.getSpan(active) ? active : trace.setSpan(active, this.rootSpan);
    return this.tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, startTime: options.startTime }, parent);
  }

  /**
   * A span id for a span recorded later with `recordSpan()`: hand a child process its trace
   * context first, record the span when it is over.
   */
  newSpanId(): string {
    return this.spanIds.newSpanId();
  }

  /**
   * Record a span that is already over (its id drawn with `newSpanId()`), straight to the exporters
   * and spans.jsonl: for a span known whole only at its end, at a fraction of a live span's cost.
   */
  recordSpan(span: FinishedSpan): void {
    this.finishedSpans.record(span);
  }

  /** Run `fn` with a mini-batch id in context: every log record inside carries `mini_batch_id`. */
  withMiniBatch<T>(miniBatchId: string, fn: () => T): T {
    return withMiniBatch(miniBatchId, fn);
  }

  /** W3C traceparent of the step span, to hand to a child process or the next step. */
  traceparent(): string {
    const sc = this.rootSpan.spanContext();
    return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
  }

  /** Flush every sink now, within the bound; never rejects. */
  async flush(): Promise<boolean> {
    this.local?.flush();
    return withinBound(
      Promise.allSettled([this.tracerProvider.forceFlush(), this.meterProvider?.forceFlush(), this.loggerProvider?.forceFlush(), this.prometheusExport?.pushNow()]),
      this.config.flushTimeoutMs,
    );
  }

  /** End the step: record the outcome, flush every sink within the bound, summarise exports. */
  end(options: EndOptions = {}): Promise<EndResult> {
    this.ending ??= this.finish(options);
    return this.ending;
  }

  /** Synchronous last resort for `process.exit()` and fatal paths: local files only. */
  flushLocalSync(outcome: StepOutcome, reason?: string): void {
    if (this.endedFlag) return;
    try {
      this.local?.flushSync();
    } catch {
      // the outcome below is still worth writing
    }
    try {
      this.local?.writeStepJson(this.stepJson(outcome, { reason, flushed: false }));
    } catch {
      // nothing more can be done on this path
    }
  }

  private async finish(options: EndOptions): Promise<EndResult> {
    const outcome: StepOutcome = options.outcome ?? (options.error !== undefined ? 'failure' : 'success');
    const durationMs = Date.now() - this.started;
    let flushed = false;
    let exports: ExportSummary[] = [];
    try {
      ({ flushed, exports } = await this.closeSignals(options, outcome, durationMs));
    } catch (error) {
      // telemetry never breaks the step: whatever failed, the outcome is still recorded below
      this.diagnostics.warn('end.failed', `ending the step's telemetry failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
    this.endedFlag = true;
    const state = processState();
    if (state.active === this) state.active = undefined;
    this.uninstall();
    this.local?.writeStepJson(this.stepJson(outcome, { flushed, durationMs, exports }));
    this.local?.close();
    return { outcome, durationMs, flushed, exports, runFolder: this.local?.folder };
  }

  /** The step span gets the outcome; every sink is flushed and shut down within the bound. */
  private async closeSignals(options: EndOptions, outcome: StepOutcome, durationMs: number): Promise<{ flushed: boolean; exports: ExportSummary[] }> {
    this.resources?.stop();
    if (options.error !== undefined) {
      recordError(this.rootSpan, options.error);
      this.logger.error(`step ${this.identity.stepName} failed`, { error: options.error instanceof Error ? options.error : String(options.error) });
    } else if (outcome === 'success') {
      this.rootSpan.setStatus({ code: SpanStatusCode.OK });
    } else {
      this.rootSpan.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    }
    this.rootSpan.setAttribute('step.outcome', outcome);
    this.instruments.record('running', 0);
    this.logger.info(`step ${this.identity.stepName} ended: ${outcome} after ${(durationMs / 1000).toFixed(3)} s`);
    this.rootSpan.end();
    // winston hands records to its transport through streams; let them drain before unbinding
    await new Promise<void>((resolve) => setImmediate(resolve));
    unbindLogger(processState().logs, this.diagnostics);
    this.local?.flush();

    const flushed = await withinBound(
      Promise.allSettled([this.tracerProvider.shutdown(), this.meterProvider?.shutdown(), this.loggerProvider?.shutdown(), this.prometheusExport?.shutdown()]),
      this.config.flushTimeoutMs,
    );
    // Cut what is still hanging, so that a dead backend cannot hold the process open.
    this.prometheusExport?.close();
    this.agents.destroy();
    if (!flushed) {
      const reason = new Error(`no answer within the flush bound (STEP_TELEMETRY_FLUSH_TIMEOUT_MS=${this.config.flushTimeoutMs})`);
      for (const h of this.healths) h.abandonInFlight(reason);
    }
    this.unregisterGlobals();
    const exports = this.healths.map((h) => h.summary());
    for (const h of this.healths) {
      if (h.troubled) this.diagnostics.notice(`${h.describe()}${this.local ? ` Everything is in ${this.local.folder}` : ''}`);
    }
    return { flushed, exports };
  }

  private unregisterGlobals(): void {
    if (this.registeredGlobals.trace) trace.disable();
    if (this.registeredGlobals.metrics) metrics.disable();
    if (this.registeredGlobals.logs) logs.disable();
  }

  private stepJson(outcome: StepOutcome | 'running', extra: Record<string, unknown>): Record<string, unknown> {
    return {
      ...this.staticInfo,
      tags: this.tags,
      started: new Date(this.started).toISOString(),
      ended: outcome === 'running' ? undefined : new Date().toISOString(),
      outcome,
      ...extra,
      diagnostics: this.diagnostics.records(),
    };
  }

  /** @internal */
  writeInitialStepJson(): void {
    this.local?.writeStepJson(this.stepJson('running', {}));
  }
}

function withinBound(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

let contextManagerSet = false;

function ensureContextManager(): void {
  if (contextManagerSet) return;
  contextManagerSet = true;
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  if (!context.setGlobalContextManager(manager)) manager.disable(); // someone registered one already
}

/**
 * Start the step of this process. Resolves identity and configuration (options > environment >
 * defaults), opens the sinks and returns the Step. A second call while a step runs returns the
 * same step (or throws when it names another one).
 */
export async function startStep(options: StepOptions = {}): Promise<Step> {
  const state = processState();
  if (state.starting) await state.starting.catch(() => undefined);
  const active = state.active;
  if (active instanceof Step && !active.ended) {
    if (options.name === undefined || options.name === active.identity.stepName) return active;
    throw new Error(
      `startStep(): step "${active.identity.stepName}" is already running in this process; end it before starting "${options.name}"`,
    );
  }
  const starting = Promise.resolve().then(async () => {
    const step = createStep(options);
    await step.prometheusExport?.start();
    return step;
  });
  state.starting = starting;
  try {
    const step = await starting;
    state.active = step;
    return step;
  } finally {
    state.starting = undefined;
  }
}

function createStep(options: StepOptions): Step {
  const env = process.env;
  const config = resolveConfig(options, env);
  const reader = new EnvReader(env);
  const identity = resolveIdentity(options, env, reader);
  if (env.TRACEPARENT && !parseTraceparent(env.TRACEPARENT)) reader.issue('TRACEPARENT', 'a W3C traceparent such as 00-<32 hex>-<16 hex>-01; the step starts a trace of its own');
  const issues = [...config.issues, ...reader.issues];
  if (issues.length > 0 && config.strict) throw new ConfigError(issues);

  const diagnostics = new Diagnostics();
  const disabled = config.disabled;
  const dims = identityDimensions(identity);
  const local = config.local && !disabled ? LocalRunFolder.open(config.dir, identity, JSON.stringify(dims), diagnostics) : undefined;
  if (local) diagnostics.addSink((line) => local.driver.append(`${new Date().toISOString()} ${line}\n`));
  for (const issue of issues) diagnostics.warn(`config.${issue.variable}`, `configuration: ${formatIssue(issue)}`);

  const agents = new ExporterAgents();
  const backends: BackendExporters[] = [];
  if (!disabled) {
    if (Object.keys(config.otlp).length > 0) {
      try {
        backends.push(createOtlpExporters(config.otlp, agents));
      } catch (error) {
        diagnostics.warn('otlp.setup', `OTLP export is off: ${(error as Error).message}`);
      }
    }
    if (config.azure) {
      try {
        backends.push(createAzureExporters(config.azure, agents, Math.min(10_000, config.flushTimeoutMs)));
      } catch (error) {
        diagnostics.warn('azure.setup', `Application Insights export is off: ${(error as Error).message}`);
      }
    }
  }
  const healths = backends.flatMap((b) => b.healths);
  // The registry lives in the Step; the exporter reads it at scrape and push time.
  let created: Step | undefined;
  const prometheusExport =
    !disabled && (config.prometheus.port !== undefined || config.prometheus.pushgatewayUrl !== undefined)
      ? new PrometheusExport({
          registry: () => created!.prometheus.registry,
          config: config.prometheus,
          groupingLabels: { ...metricDimensions(identity), ...(identity.processIndex > 0 ? { process: String(identity.processIndex) } : {}) },
          diagnostics,
          agents,
          requestTimeoutMs: Math.max(1, Math.min(10_000, config.flushTimeoutMs)),
        })
      : undefined;
  if (prometheusExport?.pushHealth) healths.push(prometheusExport.pushHealth);

  ensureContextManager();
  const resource = resourceFromAttributes(resourceAttributes(identity, env, options.resourceAttributes));
  const { provider: tracerProvider, ids: spanIds, finished: finishedSpans } = createTracerProvider({
    resource,
    traceId: traceIdForPipelineRun(identity.pipelineRunId),
    local,
    backends,
    spanDimensions: backends.some((b) => b.name === 'Application Insights') ? dims : undefined,
    localOmit: new Set(Object.keys(dims)),
  });

  const readers: IMetricReader[] = [];
  for (const b of backends) {
    if (!b.metrics) continue;
    const { exporter, health } = b.metrics;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: guardExporter(exporter, health, () => 1),
        exportIntervalMillis: config.metricExportIntervalMs,
        exportTimeoutMillis: Math.min(config.metricExportIntervalMs, 30_000),
      }),
    );
  }
  const meterProvider = readers.length > 0 ? new MeterProvider({ resource, readers }) : undefined;

  const logProcessors: LogRecordProcessor[] = [];
  for (const b of backends) {
    if (!b.logs) continue;
    const { exporter, health } = b.logs;
    const batch = new BatchLogRecordProcessor(guardExporter(exporter, health, (records: readonly unknown[]) => records.length), {
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: 1000,
      exportTimeoutMillis: 10_000,
    });
    logProcessors.push({
      onEmit: (record) => {
        health.offeredItems++;
        batch.onEmit(record);
      },
      forceFlush: () => batch.forceFlush(),
      shutdown: () => batch.shutdown(),
    });
  }
  const loggerProvider = logProcessors.length > 0 ? new LoggerProvider({ resource, processors: logProcessors }) : undefined;

  const registeredGlobals = {
    trace: trace.setGlobalTracerProvider(tracerProvider),
    metrics: meterProvider ? metrics.setGlobalMeterProvider(meterProvider) : false,
    logs: loggerProvider ? Boolean(logs.setGlobalLoggerProvider(loggerProvider)) : false,
  };

  const staticInfo = {
    identity,
    resource: resource.attributes,
    trace_id: undefined as string | undefined,
    runtime: collectRuntimeInfo(options.mainScript),
    backends: healths.map((h) => ({ backend: h.backend, signal: h.signal, target: h.target })),
    local: local ? { folder: local.folder } : undefined,
  };
  const step = new Step(config, identity, diagnostics, local, tracerProvider, meterProvider, loggerProvider, healths, agents, registeredGlobals, staticInfo, options.rootSpanKind, spanIds, finishedSpans);
  created = step;
  step.prometheusExport = prometheusExport;
  staticInfo.trace_id = step.rootSpan.spanContext().traceId;
  step.writeInitialStepJson();
  // values logged through import-time handles before the start
  const state = processState();
  for (const m of state.pendingMetrics) step.log(m.name, m.value, m.options);
  state.pendingMetrics = [];
  if (state.pendingOverflow > 0) {
    diagnostics.warn('metrics.pre-start-overflow', `${state.pendingOverflow} metric values logged before startStep() were dropped (the buffer holds ${PENDING_METRICS_LIMIT})`);
    state.pendingOverflow = 0;
  }
  step.logger.info(`step ${identity.stepName} started`, {
    backends: ['local', ...backends.map((b) => b.name)].filter((n) => n !== 'local' || local).join(', ') || 'none',
  });
  return step;
}

/** The process logger: usable at import time, records into the active step once it starts. */
export function getLogger(): winston.Logger {
  return processLogger(processState().logs);
}

/** The active step, if one has started and not ended. */
export function currentStep(): Step | undefined {
  const active = processState().active;
  return active instanceof Step && !active.ended ? active : undefined;
}

/**
 * A metric handle a module can take at import time. Values logged before `startStep()` are kept
 * (up to 10,000) and recorded when the step starts.
 */
export function metric(name: string): { readonly name: string; log(value: number, options?: LogMetricOptions): void } {
  return {
    name,
    log(value: number, options?: LogMetricOptions): void {
      const state = processState();
      const step = state.active;
      if (step && !step.ended) {
        step.log(name, value, options);
        return;
      }
      if (state.pendingMetrics.length < PENDING_METRICS_LIMIT) state.pendingMetrics.push({ name, value, options });
      else state.pendingOverflow++;
    },
  };
}
