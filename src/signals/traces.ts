// Traces: one tracer provider per step. Every finished span goes to spans.jsonl; each backend gets
// a batch processor over its guarded exporter. Root spans take the pipeline run's trace id, so all
// steps of one pipeline run land in one trace even when no TRACEPARENT is passed.
import { SpanKind, SpanStatusCode, type Attributes, type Context } from '@opentelemetry/api';
import { hrTimeToMilliseconds, hrTimeToTimeStamp } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  RandomIdGenerator,
  type IdGenerator,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { BackendExporters } from '../sinks/backend.js';
import { guardExporter, type ExportHealth } from '../sinks/export-health.js';
import type { LocalRunFolder } from '../sinks/local.js';

/** Root spans get the pipeline run's trace id; span ids stay random. */
class PipelineTraceIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  constructor(private readonly traceId: string) {}
  generateTraceId = (): string => this.traceId;
  generateSpanId = (): string => this.random.generateSpanId();
}

const KIND_NAMES = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

/** One spans.jsonl line. Identity dimensions are left out: they are in step.json once. */
export function spanLine(span: ReadableSpan, omit: ReadonlySet<string>): string {
  const attributes: Attributes = {};
  for (const key in span.attributes) if (!omit.has(key)) attributes[key] = span.attributes[key];
  const line: Record<string, unknown> = {
    trace_id: span.spanContext().traceId,
    span_id: span.spanContext().spanId,
    parent_span_id: span.parentSpanContext?.spanId,
    name: span.name,
    kind: KIND_NAMES[span.kind] ?? String(span.kind),
    start: hrTimeToTimeStamp(span.startTime),
    duration_ms: Math.round(hrTimeToMilliseconds(span.duration) * 1000) / 1000,
    status: span.status.message ? { code: STATUS_NAMES[span.status.code], message: span.status.message } : { code: STATUS_NAMES[span.status.code] },
    attributes,
  };
  if (span.events.length > 0) {
    line.events = span.events.map((e) => ({ name: e.name, time: hrTimeToTimeStamp(e.time), attributes: e.attributes }));
  }
  return `${JSON.stringify(line)}\n`;
}

class LocalSpanProcessor implements SpanProcessor {
  constructor(
    private readonly local: LocalRunFolder,
    private readonly omit: ReadonlySet<string>,
  ) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    // serialised when the batch is written, not on the caller's path
    this.local.spans.append(() => spanLine(span, this.omit));
  }
  forceFlush(): Promise<void> {
    this.local.spans.flush();
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return this.forceFlush();
  }
}

/** Puts the step dimensions on every span, for backends that drop resource attributes. */
class DimensionsProcessor implements SpanProcessor {
  constructor(private readonly dims: Attributes) {}
  onStart(span: Span): void {
    span.setAttributes(this.dims);
  }
  onEnd(): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Counts spans offered to a backend, to tell what did not arrive. */
class CountingProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly health: ExportHealth,
  ) {}
  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    this.health.offeredItems++;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

export interface TracingOptions {
  readonly resource: Resource;
  /** Trace id for root spans (derived from the pipeline run id). */
  readonly traceId: string;
  readonly local?: LocalRunFolder;
  readonly backends: readonly BackendExporters[];
  /** Dimensions to set on every span, when a backend needs them as span attributes. */
  readonly spanDimensions?: Attributes;
  /** Attribute keys left out of spans.jsonl. */
  readonly localOmit: ReadonlySet<string>;
}

export function createTracerProvider(options: TracingOptions): BasicTracerProvider {
  const processors: SpanProcessor[] = [];
  if (options.spanDimensions) processors.push(new DimensionsProcessor(options.spanDimensions));
  if (options.local) processors.push(new LocalSpanProcessor(options.local, options.localOmit));
  for (const backend of options.backends) {
    if (!backend.traces) continue;
    const { exporter, health } = backend.traces;
    const batch = new BatchSpanProcessor(guardExporter(exporter, health, (spans: ReadableSpan[]) => spans.length), {
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: 1000,
      exportTimeoutMillis: 10_000,
    });
    processors.push(new CountingProcessor(batch, health));
  }
  return new BasicTracerProvider({
    resource: options.resource,
    idGenerator: new PipelineTraceIdGenerator(options.traceId),
    sampler: new AlwaysOnSampler(),
    spanProcessors: processors,
  });
}

/** Record an error on a span: an `exception` event with type, message and stack, and ERROR status. */
export function recordError(span: { recordException(e: Error | string): void; setStatus(s: { code: SpanStatusCode; message?: string }): void }, error: unknown): void {
  const e = error instanceof Error ? error : new Error(typeof error === 'string' ? error : safeMessage(error));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.name}: ${e.message}` });
}

function safeMessage(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'non-Error value thrown';
  }
}

export { SpanKind };
