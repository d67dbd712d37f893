// The OpenTelemetry SDK of a step, built from OpenTelemetry's own configuration as sdk-node builds
// it (the exporters, the sampler, span limits and OTEL_BSP_* read the environment themselves; the
// few selections sdk-node makes in its utils, such as the exporter per protocol, BLRP and log
// record limits, are made the same way here, as Elastic's EDOT distribution does), with the step's
// sinks beside them: the run folder (every span, the program's metrics), Application Insights and
// the `/metrics` endpoint. Registers the providers, the context manager and the propagator
// globally unless the program registered its own first: then the program's stay, and the step's
// telemetry joins their context (one trace) while going to the step's own sinks.
import { createRequire } from 'node:module';
import {
  context,
  diag,
  DiagLogLevel,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type DiagLogger,
  type Meter,
  type Span,
  type SpanOptions,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { logs, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import { diagLogLevelFromString } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { BatchLogRecordProcessor, LoggerProvider, LogRecordExporter, LogRecordProcessor, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import type { BasicTracerProvider, Sampler } from '@opentelemetry/sdk-trace-base';
import type { EnvReader, ResolvedConfig } from '../config.js';
import { TRACER_NAME } from '../signals/step-scope.js';
import { createTracerProvider, type FinishedSpans, type PipelineTraceIdGenerator } from '../signals/traces.js';
import { withinBound } from '../util/within-bound.js';
import { PrometheusTextReader, RunFolderMetricExporter } from '../signals/user-metrics.js';
import type { BackendExporters } from '../sinks/backend.js';
import { guardExporter, type ExportHealth, type ExporterAgents } from '../sinks/export-health.js';
import { ensureContextManager } from './context-manager.js';
import { BackendLogProcessor } from './log-export.js';
import type { LocalRunFolder } from '../sinks/local.js';

/** The SDK settings sdk-node reads in its utils rather than in the SDK packages (OTEL_BLRP_*, OTEL_LOGRECORD_*). */
export interface SdkEnv {
  readonly blrp: { maxQueueSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis?: number; maxExportBatchSize?: number };
  readonly logRecordLimits: { attributeCountLimit?: number; attributeValueLengthLimit?: number };
}

export function readSdkEnv(r: EnvReader): SdkEnv {
  return {
    blrp: {
      maxQueueSize: r.int('OTEL_BLRP_MAX_QUEUE_SIZE', 1),
      scheduledDelayMillis: r.int('OTEL_BLRP_SCHEDULE_DELAY', 0),
      exportTimeoutMillis: r.int('OTEL_BLRP_EXPORT_TIMEOUT', 1),
      maxExportBatchSize: r.int('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', 1),
    },
    logRecordLimits: {
      attributeCountLimit: r.firstInt(['OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'], 0),
      attributeValueLengthLimit: r.firstInt(['OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'], 0),
    },
  };
}

/** OTEL_LOG_LEVEL: the SDK's own diagnostics, to stderr (never through console.*, which the agent records). */
export function setupDiagLogger(r: EnvReader): void {
  const level = r.string('OTEL_LOG_LEVEL');
  if (level === undefined) return;
  const write = (name: string) => (message: string, ...args: unknown[]) => {
    try {
      process.stderr.write(`[opentelemetry ${name}] ${[message, ...args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a)))].join(' ')}\n`);
    } catch {
      // a closed stderr
    }
  };
  const logger: DiagLogger = { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('verbose') };
  diag.setLogger(logger, { logLevel: diagLogLevelFromString(level) ?? DiagLogLevel.INFO, suppressOverrideMessage: true });
}

export interface SdkInput {
  readonly config: ResolvedConfig;
  readonly sdkEnv: SdkEnv;
  readonly resource: Resource;
  readonly sampler: Sampler;
  readonly propagator: TextMapPropagator | undefined;
  readonly backends: readonly BackendExporters[];
  readonly local: LocalRunFolder | undefined;
  /** The step dimensions: on every span for Application Insights, left out of spans.jsonl. */
  readonly dims: Attributes;
  readonly traceId: string;
  /** Serve the program's metrics on `/metrics`. */
  readonly prometheus: boolean;
}

/** What the step records through, and how it ends. */
export class StepSdk {
  readonly tracerProvider: BasicTracerProvider;
  readonly spanIds: PipelineTraceIdGenerator;
  readonly finishedSpans: FinishedSpans;
  readonly meterProvider: MeterProvider | undefined;
  readonly loggerProvider: LoggerProvider | undefined;
  /** The meter of the step's own metrics when a backend takes metrics (else none: the hot path records to Prometheus and the files only). */
  readonly meter: Meter | undefined;
  readonly logger: OtelLogger | undefined;
  readonly prometheusText: PrometheusTextReader | undefined;
  /** The step span: the parent of the program's spans started where no span is active. */
  stepSpan: Span | undefined;
  /** Tell the local span file the step span's trace id (its lines in that trace leave it out). */
  readonly setStepTraceId: (traceId: string) => void;
  /** Which globals are the step's (false: the program registered its own first, which stay). */
  readonly registered: { readonly trace: boolean; readonly metrics: boolean; readonly logs: boolean; readonly propagator: boolean };

  constructor(input: SdkInput) {
    ensureContextManager();
    const { config, resource, backends, local } = input;
    const azure = backends.some((b) => b.name === 'Application Insights');
    const { provider, ids, finished, setStepTraceId } = createTracerProvider({
      resource,
      sampler: input.sampler,
      traceId: input.traceId,
      local,
      backends,
      spanDimensions: azure ? input.dims : undefined,
      localOmit: new Set(Object.keys(input.dims)),
      azure,
    });
    this.tracerProvider = provider;
    this.spanIds = ids;
    this.finishedSpans = finished;
    this.setStepTraceId = setStepTraceId;

    const interval = { exportIntervalMillis: config.metricExportIntervalMs, exportTimeoutMillis: config.metricExportTimeoutMs };
    const readers: IMetricReader[] = [];
    for (const b of backends) {
      if (b.metrics) readers.push(new PeriodicExportingMetricReader({ exporter: guardExporter(b.metrics.exporter, b.metrics.health, () => 0), ...interval }));
    }
    const remoteMetrics = readers.length > 0;
    if (local) readers.push(new PeriodicExportingMetricReader({ exporter: new RunFolderMetricExporter(local), ...interval }));
    this.prometheusText = input.prometheus ? new PrometheusTextReader() : undefined;
    if (this.prometheusText) readers.push(this.prometheusText);
    this.meterProvider = readers.length > 0 ? new MeterProvider({ resource, readers }) : undefined;
    this.meter = remoteMetrics ? this.meterProvider?.getMeter(TRACER_NAME) : undefined;

    // the logs SDK only for a backend that takes logs (the run folder's logs.jsonl does not go through it)
    const processors: LogRecordProcessor[] = [];
    const logsSdk = backends.some((b) => b.logs) ? (createRequire(import.meta.url)('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs')) : undefined;
    const { BatchLogRecordProcessor, SimpleLogRecordProcessor } = logsSdk ?? {};
    for (const b of backends) {
      if (!b.logs) continue;
      const { health } = b.logs;
      const exporter = guardExporter(b.logs.exporter, health, (records: readonly unknown[]) => records.length);
      const inner = logRecordProcessor(b.simple ? SimpleLogRecordProcessor! : BatchLogRecordProcessor!, exporter, b.simple ? {} : input.sdkEnv.blrp);
      if (!b.simple) health.queue = { variable: 'OTEL_BLRP_MAX_QUEUE_SIZE', limit: input.sdkEnv.blrp.maxQueueSize ?? 2048 };
      processors.push(new BackendLogProcessor(inner, health));
    }
    this.loggerProvider = logsSdk && processors.length > 0 ? new logsSdk.LoggerProvider({ resource, processors, logRecordLimits: input.sdkEnv.logRecordLimits }) : undefined;
    this.logger = this.loggerProvider?.getLogger(TRACER_NAME);

    this.registered = {
      trace: trace.setGlobalTracerProvider(new StepTracerProvider(provider, () => this.stepSpan)),
      metrics: this.meterProvider ? metrics.setGlobalMeterProvider(this.meterProvider) : false,
      logs: this.loggerProvider ? logs.setGlobalLoggerProvider(this.loggerProvider) === this.loggerProvider : false,
      propagator: input.propagator ? propagation.setGlobalPropagator(input.propagator) : false,
    };
  }

  /** Flush every provider now; never rejects. */
  forceFlush(): Promise<unknown> {
    return Promise.allSettled([this.tracerProvider.forceFlush(), this.meterProvider?.forceFlush(), this.loggerProvider?.forceFlush()]);
  }

  /**
   * Shut every provider down within `boundMs`, together with `extra` work. A backend that refuses
   * is given up at once; one an earlier process of this step found silent (`presumedSilent`) gets its
   * last export sent but not awaited; any other costs at most the bound. Then every connection of
   * the exporters is cut and the globals the step registered are released: nothing of ours keeps
   * the process alive. True when everything finished within the bound.
   */
  async shutdown(healths: readonly ExportHealth[], agents: ExporterAgents, boundMs: number, extra: Promise<unknown>[], presumedSilent: ReadonlySet<ExportHealth>): Promise<boolean> {
    for (const h of healths) h.beginEnding();
    const work = Promise.allSettled([this.tracerProvider.shutdown(), this.meterProvider?.shutdown(), this.loggerProvider?.shutdown(), ...extra]);
    if (presumedSilent.size > 0) {
      // after the last exports have started
      setImmediate(() => {
        const reason = new Error('not awaited: an earlier process of this step found the backend silent');
        for (const h of presumedSilent) h.giveUp(reason, true);
      });
    }
    const flushed = await withinBound(work, boundMs);
    if (!flushed) {
      const reason = new Error(`no answer within the flush bound (STEP_TELEMETRY_FLUSH_TIMEOUT_MS=${boundMs})`);
      for (const h of healths) h.abandonInFlight(reason);
    }
    for (const h of healths) h.destroyConnections();
    agents.destroy();
    if (this.registered.trace) trace.disable();
    if (this.registered.metrics) metrics.disable();
    if (this.registered.logs) logs.disable();
    if (this.registered.propagator) propagation.disable();
    return flushed;
  }
}

/**
 * The global tracer provider while a step runs: the SDK's, except that a span started where no
 * span is active (and not asked to be a root) becomes a child of the step span, as `step.span()`
 * does, so the program's and the instrumentations' spans hang under the step in its trace.
 */
class StepTracerProvider implements TracerProvider {
  constructor(
    private readonly inner: BasicTracerProvider,
    private readonly stepSpan: () => Span | undefined,
  ) {}

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    const tracer = this.inner.getTracer(name, version, options);
    const stepSpan = this.stepSpan;
    const wrapped = Object.create(tracer) as Tracer;
    // the SDK's startActiveSpan calls this.startSpan: it goes through here too
    wrapped.startSpan = (spanName: string, opts?: SpanOptions, ctx: Context = context.active()): Span => {
      const parent = stepSpan();
      if (parent !== undefined && !opts?.root && trace.getSpan(ctx) === undefined) ctx = trace.setSpan(ctx, parent);
      return tracer.startSpan(spanName, opts, ctx);
    };
    return wrapped;
  }
}

/**
 * A log record processor on any sdk-logs of the 0.2xx line: up to 0.218 its constructor takes
 * `(exporter, config)`, later ones `({ exporter, ...config })`. The first argument is both.
 */
function logRecordProcessor(
  Processor: typeof BatchLogRecordProcessor | typeof SimpleLogRecordProcessor,
  exporter: LogRecordExporter,
  config: SdkEnv['blrp'],
): LogRecordProcessor {
  const both = Object.assign(Object.create(exporter) as LogRecordExporter, { exporter, ...config });
  return new (Processor as unknown as new (a: unknown, b: unknown) => LogRecordProcessor)(both, config);
}
