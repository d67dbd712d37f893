// startStep() and the Step: wires identity, sinks and signals together, and ends them within a
// bounded time whatever happens to the process.
import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import type winston from 'winston';
import type { ResolvedConfig } from './config.js';
import type { Diagnostics } from './diagnostics.js';
import { identityDimensions, metricDimensions } from './identity.js';
import { installProcessHandlers } from './lifecycle.js';
import { environmentFor } from './otel/env-carrier.js';
import type { StepSdk } from './otel/sdk.js';
import { isSpanId } from './otel/span-ids.js';
import { PENDING_METRICS_LIMIT, processState, type ActiveStep } from './process-state.js';
import { CatalogInstruments, MetricRecorder } from './signals/metrics.js';
import { LogPipeline, bindLogger, miniBatchIdOf, processLogger, unbindLogger, withMiniBatch } from './signals/logs.js';
import { recordFailure, startSafeSpan } from './signals/safe-span.js';
import { TRACER_NAME, recordError } from './signals/step-scope.js';
import type { FinishedSpan } from './signals/traces.js';
import type { ExporterAgents, ExportHealth } from './sinks/export-health.js';
import type { LocalRunFolder } from './sinks/local.js';
import type { PrometheusSink } from './sinks/prometheus.js';
import type { PrometheusExport } from './sinks/prometheus-export.js';
import { presumedSilent } from './sinks/verdicts.js';
import { describeValue, readFields } from './util/safe-read.js';
import { withinBound } from './util/within-bound.js';
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
  /** @internal the `/metrics` endpoint and Pushgateway pusher, when configured */
  prometheusExport: PrometheusExport | undefined;
  /** @internal CPU, memory, event loop and GPU sampling (src/resources/), unless STEP_TELEMETRY_RESOURCES=false */
  readonly resources: ResourceSampler | undefined;

  private readonly recorder: MetricRecorder;
  private readonly started: number;
  private ending: Promise<EndResult> | undefined;
  private endedFlag = false;
  private readonly uninstall: () => void;
  private readonly tags: Record<string, string> = {};
  /** Who ended this step from outside (`runner`: a parallel-run worker stopped by its runner), for step.json. */
  private stoppedBy: string | undefined;

  /** @internal use startStep() */
  constructor(
    private readonly config: ResolvedConfig,
    identity: StepIdentity,
    private readonly diagnostics: Diagnostics,
    private readonly local: LocalRunFolder | undefined,
    private readonly sdk: StepSdk,
    private readonly healths: readonly ExportHealth[],
    private readonly agents: ExporterAgents,
    private readonly staticInfo: Record<string, unknown>,
    rootSpanKind: StepOptions['rootSpanKind'],
    /** What TRACEPARENT, TRACESTATE and BAGGAGE gave this process (the step span's parent). */
    private readonly inherited: Context,
    /** Prometheus registry holding the catalog metrics and the run.log gauges (created with the SDK, at start). */
    readonly prometheus: PrometheusSink,
    begun: StepOptions['begun'] = undefined,
  ) {
    this.identity = identity;
    const dims = identityDimensions(identity);
    const mdims = metricDimensions(identity);
    this.tracer = sdk.tracerProvider.getTracer(TRACER_NAME);
    const now = Date.now();
    const time = begun?.time;
    const earlier = typeof time === 'number' && Number.isFinite(time) && time <= now;
    this.started = earlier ? time : now;
    if (isSpanId(begun?.spanId)) sdk.spanIds.reserve(begun.spanId);
    const kind = rootSpanKind === 'internal' ? SpanKind.INTERNAL : SpanKind.SERVER;
    this.rootSpan = this.tracer.startSpan(identity.stepName, { kind, attributes: { ...dims, 'step.kind': 'step' }, ...(earlier ? { startTime: time } : {}) }, inherited);
    sdk.stepSpan = this.rootSpan;
    sdk.setStepTraceId(this.rootSpan.spanContext().traceId);
    this.instruments = new CatalogInstruments(sdk.meter, this.prometheus, mdims, diagnostics);
    this.recorder = new MetricRecorder(diagnostics, local, sdk.meter, this.prometheus, mdims, (kind, name, value) => {
      let json = JSON.stringify(value);
      if (json.length > STRUCTURED_EVENT_LIMIT) json = `${json.slice(0, STRUCTURED_EVENT_LIMIT)}…`;
      this.rootSpan.addEvent(`metric.${kind}`, { 'metric.name': name, 'metric.value': json });
    });
    const otelDims: Attributes = { ...dims };
    const dimsJson = JSON.stringify(dims).slice(1, -1);
    const pipeline = new LogPipeline(local, config.console, sdk.logger, otelDims, identity.stepName, dimsJson, this.rootSpan);
    const { traceId: stepTraceId, spanId: stepSpanId } = this.rootSpan.spanContext();
    this.logger = bindLogger(processState().logs, { dims, stepSpan: this.rootSpan, stepTraceId, stepSpanId, pipeline }, config.logLevel, diagnostics);
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
    const read = readFields(tags);
    if (read.problem !== undefined) {
      this.diagnostics.warn('input.setTags', `setTags() dropped: expected an object of strings (${read.problem})`);
      return;
    }
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(read.fields)) {
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
   * on the span with its stack and re-thrown. A `fn` that is not a function is a TypeError.
   */
  async span<T>(name: string, fn: (span: Span) => T | Promise<T>, options: SpanOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError(`step.span(name, fn): fn must be a function, got ${describeValue(fn)}`);
    const span = startSafeSpan(this.tracer, this.rootSpan, name, options, this.diagnostics);
    try {
      const result = await context.with(trace.setSpan(context.active(), span), () => fn(span));
      span.end();
      return result;
    } catch (error) {
      recordFailure(span, error);
      span.end();
      throw error;
    }
  }

  /** Start a span that the caller ends; its parent is the active span, else the step span. */
  startSpan(name: string, options: SpanOptions & { startTime?: number } = {}): Span {
    return startSafeSpan(this.tracer, this.rootSpan, name, options, this.diagnostics);
  }

  /**
   * A span id for a span recorded later with `recordSpan()`: hand a child process its trace
   * context first, record the span when it is over.
   */
  newSpanId(): string {
    return this.sdk.spanIds.newSpanId();
  }

  /**
   * @internal For a span recorded later with `recordSpan()` at high rates (the runner's attempts):
   * the probability it is exported with, decided now by the export rate policy (docs/exports.md),
   * or 0 when it is exported only if it must be seen. Hand it to `recordSpan()` as
   * `exportProbability`; a child process's traceparent says not sampled for 0.
   */
  sampleForExport(): number {
    return this.sdk.finishedSpans.decide();
  }

  /**
   * Record a span that is already over (its id drawn with `newSpanId()`), straight to the exporters
   * and spans.jsonl: for a span known whole only at its end, at a fraction of a live span's cost.
   * Returns its context (sampled when it is exported), or undefined when the sampler dropped it.
   */
  recordSpan(span: FinishedSpan): SpanContext | undefined {
    return this.sdk.finishedSpans.record(span);
  }

  /** Run `fn` with a mini-batch id in context: every log record inside carries `mini_batch_id`. */
  withMiniBatch<T>(miniBatchId: string, fn: () => T): T {
    if (typeof fn !== 'function') throw new TypeError(`step.withMiniBatch(id, fn): fn must be a function, got ${describeValue(fn)}`);
    const id = miniBatchIdOf(miniBatchId, this.diagnostics);
    return id === undefined ? fn() : withMiniBatch(id, fn);
  }

  /**
   * The environment variables that carry this step's context to a child process or the next step:
   * TRACEPARENT (the active span, else the step span), TRACESTATE and BAGGAGE as the registered
   * propagators write them, and the pipeline run's id and name (the same trace and run folder).
   * Spread it over the child's environment: `{ ...process.env, ...step.childEnvironment() }`.
   */
  childEnvironment(): Record<string, string> {
    const active = context.active();
    let ctx = trace.getSpan(active) ? active : trace.setSpan(active, this.rootSpan);
    if (propagation.getBaggage(ctx) === undefined) {
      const inherited = propagation.getBaggage(this.inherited);
      if (inherited) ctx = propagation.setBaggage(ctx, inherited);
    }
    const env = environmentFor(ctx);
    env.TRACEPARENT ??= this.traceparent();
    return { ...env, STEP_TELEMETRY_PIPELINE_RUN_ID: this.identity.pipelineRunId, STEP_TELEMETRY_PIPELINE_NAME: this.identity.pipelineName };
  }

  /** W3C traceparent of the step span, to hand to a child process or the next step. */
  traceparent(): string {
    const sc = this.rootSpan.spanContext();
    return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
  }

  /** Flush every sink now, within the bound; never rejects. */
  async flush(): Promise<boolean> {
    this.local?.flush();
    return withinBound(Promise.allSettled([this.sdk.forceFlush(), this.prometheusExport?.pushNow()]), this.config.flushTimeoutMs);
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

    const silent = this.local ? presumedSilent(this.local.folder, this.started, this.healths) : new Set<ExportHealth>();
    const flushed = await this.sdk.shutdown(this.healths, this.agents, this.config.flushTimeoutMs, this.prometheusExport ? [this.prometheusExport.shutdown()] : [], silent);
    // Cut what is still hanging, so that a dead backend cannot hold the process open.
    this.prometheusExport?.close();
    const exports = this.healths.map((h) => h.summary());
    for (const h of this.healths) {
      if (h.troubled) this.diagnostics.notice(`${h.describe()}${this.local ? ` Everything is in ${this.local.folder}` : ''}`);
    }
    return { flushed, exports };
  }

  private stepJson(outcome: StepOutcome | 'running', extra: Record<string, unknown>): Record<string, unknown> {
    return {
      ...this.staticInfo,
      tags: this.tags,
      started: new Date(this.started).toISOString(),
      ended: outcome === 'running' ? undefined : new Date().toISOString(),
      outcome,
      ...(this.stoppedBy === undefined ? {} : { stopped_by: this.stoppedBy }),
      ...extra,
      diagnostics: this.diagnostics.records(),
    };
  }

  /** @internal The runner ends this worker's step: step.json says `"stopped_by": by`. */
  markStoppedBy(by: string): void {
    this.stoppedBy = by;
  }

  /** @internal */
  writeInitialStepJson(): void {
    this.local?.writeStepJson(this.stepJson('running', {}));
  }
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
    const { createStep } = await import('./step-setup.js');
    const step = await createStep(options);
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
