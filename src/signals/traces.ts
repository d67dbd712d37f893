// Traces: one tracer provider per step. Every finished span goes to spans.jsonl; each backend gets
// a batch processor over its guarded exporter. Root spans take the pipeline run's trace id, so all
// steps of one pipeline run land in one trace even when no TRACEPARENT is passed.
import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode, type Attributes, type Context } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { BackendExporters } from '../sinks/backend.js';
import { guardExporter, type ExportHealth } from '../sinks/export-health.js';
import type { LocalRunFolder } from '../sinks/local.js';
import { isoFromHrTime } from '../util/iso-time.js';

const ID_POOL_BYTES = 8192;

/**
 * Root spans get the pipeline run's trace id. Span ids are random, hex-encoded from a pool that
 * is refilled 1,024 ids at a time (one crypto call instead of one per span). A caller may draw an
 * id first (`newSpanId`) and have the next span take it (`useNext`): the runner hands a mini-batch
 * its trace context before it spends time creating the span.
 */
export class PipelineTraceIdGenerator implements IdGenerator {
  private pool = Buffer.alloc(0);
  private offset = ID_POOL_BYTES;
  private reserved: string | undefined;
  constructor(private readonly traceId: string) {}
  generateTraceId = (): string => this.traceId;
  generateSpanId = (): string => {
    const id = this.reserved;
    if (id !== undefined) {
      this.reserved = undefined;
      return id;
    }
    return this.newSpanId();
  };

  newSpanId(): string {
    for (;;) {
      if (this.offset + 8 > this.pool.length) {
        this.pool = randomBytes(ID_POOL_BYTES);
        this.offset = 0;
      }
      const id = this.pool.toString('hex', this.offset, this.offset + 8);
      this.offset += 8;
      if (id !== '0000000000000000') return id;
    }
  }

  /** The next span id generated is `id` (once). */
  useNext(id: string): void {
    this.reserved = id;
  }
}

const KIND_NAMES = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

/** One spans.jsonl line, built by hand: this runs once per span. Identity dimensions are left out (they are in step.json). */
export function spanLine(span: ReadableSpan, omit: ReadonlySet<string>): string {
  const sc = span.spanContext();
  let attributes: Attributes = span.attributes;
  for (const key in attributes) {
    if (omit.has(key)) {
      attributes = {};
      for (const k in span.attributes) if (!omit.has(k)) attributes[k] = span.attributes[k];
      break;
    }
  }
  const parent = span.parentSpanContext?.spanId;
  const status = span.status;
  let line = `{"trace_id":"${sc.traceId}","span_id":"${sc.spanId}"`;
  if (parent) line += `,"parent_span_id":"${parent}"`;
  line += `,"name":${JSON.stringify(span.name)},"kind":"${KIND_NAMES[span.kind] ?? span.kind}","start":"${isoFromHrTime(span.startTime)}"`;
  line += `,"duration_ms":${Math.round(hrTimeToMilliseconds(span.duration) * 1000) / 1000}`;
  line += `,"status":{"code":"${STATUS_NAMES[status.code]}"${status.message ? `,"message":${JSON.stringify(status.message)}` : ''}}`;
  line += `,"attributes":${JSON.stringify(attributes)}`;
  if (span.events.length > 0) {
    line += `,"events":${JSON.stringify(span.events.map((e) => ({ name: e.name, time: isoFromHrTime(e.time), attributes: e.attributes })))}`;
  }
  return `${line}}\n`;
}

class LocalSpanProcessor implements SpanProcessor {
  constructor(
    private readonly local: LocalRunFolder,
    private readonly omit: ReadonlySet<string>,
  ) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    // serialised now: a span retained until the batch is written costs more in GC than the JSON
    this.local.spans.append(spanLine(span, this.omit));
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

export function createTracerProvider(options: TracingOptions): { provider: BasicTracerProvider; ids: PipelineTraceIdGenerator } {
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
  const ids = new PipelineTraceIdGenerator(options.traceId);
  const provider = new BasicTracerProvider({ resource: options.resource, idGenerator: ids, sampler: new AlwaysOnSampler(), spanProcessors: processors });
  return { provider, ids };
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
