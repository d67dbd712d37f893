// Traces: one tracer provider per step. Every finished span goes to spans.jsonl, sampled or not
// (the sampler of OTEL_TRACES_SAMPLER decides what the backends get, see otel/sampling.ts); each
// backend gets the SDK's batch processor over its guarded exporter (OTEL_BSP_* apply), or its simple
// one for the console. Root spans take the pipeline run's trace id, so all steps of one pipeline run
// land in one trace even when no TRACEPARENT is passed. Spans known only once they are over (the
// runner's mini-batch attempts) skip the SDK's live span: FinishedSpans hands them to the same
// processors as finished records, sampled by the same sampler.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import { getNumberFromEnv, hrTimeDuration, hrTimeToMilliseconds, millisToHrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SamplingDecision,
  SimpleSpanProcessor,
  type IdGenerator,
  type Sampler,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { BackendExporters } from '../sinks/backend.js';
import { guardExporter, type ExportHealth } from '../sinks/export-health.js';
import type { LocalRunFolder } from '../sinks/local.js';
import { ExportRate, SlowTail, sampledState, samplingAttributes, sheddableLimit, type ExportQueue } from '../otel/export-rate.js';
import { SpanIdPool } from '../otel/span-ids.js';
import { isoFromHrTime } from '../util/iso-time.js';
import { TRACER_NAME } from './step-scope.js';

/**
 * Root spans get the pipeline run's trace id. Span ids are random (SpanIdPool). The runner draws ids
 * with `newSpanId` for spans it records when they are over (see FinishedSpans), and may fix the id
 * of the step span before the SDK is loaded (`reserve`).
 */
export class PipelineTraceIdGenerator implements IdGenerator {
  private readonly pool = new SpanIdPool();
  private reserved: string | undefined;
  constructor(private readonly traceId: string) {}
  generateTraceId = (): string => this.traceId;
  generateSpanId = (): string => {
    const id = this.reserved;
    if (id === undefined) return this.pool.next();
    this.reserved = undefined;
    return id;
  };

  /** The next span id generated is `id` (a valid one, drawn before: the span it names was announced). */
  reserve(id: string): void {
    this.reserved = id;
  }

  newSpanId(): string {
    return this.pool.next();
  }
}

const KIND_NAMES = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

/**
 * One spans.jsonl line, built by hand: this runs once per span. What step.json has is left out:
 * the identity dimensions, and the trace id when it is the step's (`stepTraceId`).
 */
export function spanLine(span: ReadableSpan, omit: ReadonlySet<string>, stepTraceId?: string): string {
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
  let line = sc.traceId === stepTraceId ? `{"span_id":"${sc.spanId}"` : `{"trace_id":"${sc.traceId}","span_id":"${sc.spanId}"`;
  if (parent) line += `,"parent_span_id":"${parent}"`;
  // kept here, not exported: OTEL_TRACES_SAMPLER sampled it out
  if ((sc.traceFlags & TraceFlags.SAMPLED) === 0) line += ',"sampled":false';
  const scope = span.instrumentationScope.name;
  if (scope !== TRACER_NAME) line += `,"scope":${JSON.stringify(scope)}`;
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
  /** Set once the step span has started (its trace id is in step.json). */
  stepTraceId: string | undefined;
  constructor(
    private readonly local: LocalRunFolder,
    private readonly omit: ReadonlySet<string>,
  ) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    // serialised now: a span retained until the batch is written costs more in GC than the JSON
    this.local.spans.append(spanLine(span, this.omit, this.stepTraceId));
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

/**
 * A trace backend's queue: counts what reached it, and drops (counting) a span that finds the batch
 * processor's queue full, as the processor would (it counts nothing), so the export rate policy
 * knows how full each queue is. A span the policy may sample out finds it full a quarter earlier:
 * the last room is for spans that must be seen (errors, retries, the slowest).
 */
class BackendSpanQueue implements SpanProcessor, ExportQueue {
  readonly sheddable: number;

  constructor(
    private readonly inner: SpanProcessor,
    private readonly health: ExportHealth,
    readonly limit: number,
    readonly batch: number,
    private readonly rate: ExportRate | undefined,
  ) {
    this.sheddable = sheddableLimit(limit, batch);
    if (rate) health.onDelivered = (items, ms) => rate.delivered(this, items, ms);
  }
  queued(): number {
    const h = this.health;
    return h.offeredItems - h.queueFullItems - h.exportedItems;
  }
  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }
  /** `sheddable`: a span the export rate policy could have sampled out (FinishedSpans). */
  onEnd(span: ReadableSpan, sheddable = false): void {
    const h = this.health;
    // the SDK's processors export sampled spans only
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) {
      h.sampledOutItems++;
      return;
    }
    const queued = this.queued();
    h.offeredItems++;
    if (queued >= (sheddable ? this.sheddable : this.limit)) {
      h.queueFullItems++;
      return;
    }
    this.inner.onEnd(span);
    this.rate?.offered(this);
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
  /** OTEL_TRACES_SAMPLER's, wrapped to record every span (otel/sampling.ts). */
  readonly sampler: Sampler;
  /** Trace id for root spans (derived from the pipeline run id). */
  readonly traceId: string;
  readonly local?: LocalRunFolder;
  readonly backends: readonly BackendExporters[];
  /** Dimensions to set on every span, when a backend needs them as span attributes. */
  readonly spanDimensions?: Attributes;
  /** Attribute keys left out of spans.jsonl. */
  readonly localOmit: ReadonlySet<string>;
  /** An Application Insights backend takes the spans: sampled ones state `microsoft.sample_rate`. */
  readonly azure?: boolean;
}

/** A span that is already over, with all it will ever hold (see FinishedSpans). */
export interface FinishedSpan {
  readonly name: string;
  readonly kind: SpanKind;
  /** Drawn earlier with `PipelineTraceIdGenerator.newSpanId()` (a child process may have used it as its parent). */
  readonly spanId: string;
  readonly parent: SpanContext;
  /** Epoch ms (with a fraction). */
  readonly startTime: number;
  readonly endTime: number;
  /** Primitive values only: they are not checked or copied. */
  readonly attributes: Attributes;
  readonly status: SpanStatus;
  /** Recorded as an `exception` event at the end, as `span.recordException()` does. */
  readonly exception?: { readonly type: string; readonly message: string; readonly stack?: string };
  /**
   * What `FinishedSpans.decide()` gave when the span's context was handed out: with it, the span
   * follows the export rate policy (otel/export-rate.ts).
   */
  readonly exportProbability?: number;
  /** Exported whatever the policy decided (a retry, failed items); errors and the slowest 1 % always are. */
  readonly keep?: boolean;
}

/**
 * Records finished spans straight into the provider's processors, without the SDK's live span
 * (attribute checks and copies, clocks): for a record that is known whole only at its end, the
 * live span is most of the cost. What the processors see is what the SDK would give them: the
 * provider's sampler decides (a span it drops is not recorded; one it records without sampling is
 * not exported), the dimensions processor's attributes are added, the scope is the tracer's,
 * string values are cut to the span limits' attribute value length (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT).
 * Spans recorded with an `exportProbability` follow the export rate policy too.
 */
export class FinishedSpans {
  private readonly slow = new SlowTail();

  constructor(
    /** The export rate policy of the spans recorded here with an `exportProbability`. */
    readonly rate: ExportRate,
    private readonly sampler: Sampler,
    private readonly local: SpanProcessor | undefined,
    private readonly backends: readonly BackendSpanQueue[],
    private readonly resource: Resource,
    private readonly dims: Attributes | undefined,
    /** 0: no limit. */
    private readonly valueLengthLimit: number,
    private readonly azure: boolean,
  ) {}

  /** For a span recorded later: the probability it is exported with, decided now (0: only if it must be seen). */
  decide(): number {
    return this.rate.decide();
  }

  /** Record the span; its context (not sampled when it is not exported), or undefined when the sampler dropped it. */
  record(s: FinishedSpan): SpanContext | undefined {
    const sampled = this.sampler.shouldSample(trace.setSpanContext(ROOT_CONTEXT, s.parent), s.parent.traceId, s.name, s.kind, s.attributes, []);
    if (sampled.decision === SamplingDecision.NOT_RECORD) return undefined;
    const startTime = millisToHrTime(s.startTime);
    const endTime = millisToHrTime(Math.max(s.startTime, s.endTime));
    let exported = sampled.decision === SamplingDecision.RECORD_AND_SAMPLED;
    let traceState = sampled.traceState ?? s.parent.traceState;
    let attributes = this.dims ? { ...s.attributes, ...this.dims } : s.attributes;
    if (sampled.attributes) attributes = { ...attributes, ...sampled.attributes };
    let policyOut = false;
    let sheddable = false;
    const p = s.exportProbability;
    if (p !== undefined) {
      if (p > 0) this.rate.recorded();
      const slow = this.slow.observe(s.endTime - s.startTime);
      sheddable = s.keep !== true && s.status.code !== SpanStatusCode.ERROR && !slow;
      if (exported && p < 1 && sheddable) {
        if (p === 0) {
          exported = false;
          policyOut = true;
          this.rate.sampledOut++;
        } else {
          const stated = sampledState(traceState, p);
          traceState = stated.traceState;
          attributes = samplingAttributes(attributes, stated.probability, this.azure);
        }
      }
    }
    attributes = this.limited(attributes);
    const sc: SpanContext = { traceId: s.parent.traceId, spanId: s.spanId, traceFlags: exported ? TraceFlags.SAMPLED : TraceFlags.NONE, traceState };
    const e = s.exception;
    const span: ReadableSpan = {
      name: s.name,
      kind: s.kind,
      spanContext: () => sc,
      parentSpanContext: s.parent,
      startTime,
      endTime,
      duration: hrTimeDuration(startTime, endTime),
      status: s.status,
      attributes,
      links: [],
      events: e
        ? [
            {
              name: 'exception',
              time: endTime,
              attributes: this.limited(e.stack === undefined ? { 'exception.type': e.type, 'exception.message': e.message } : { 'exception.type': e.type, 'exception.message': e.message, 'exception.stacktrace': e.stack }),
              droppedAttributesCount: 0,
            },
          ]
        : [],
      ended: true,
      resource: this.resource,
      instrumentationScope: { name: TRACER_NAME },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
    this.local?.onEnd(span);
    // sampled out by the policy: in spans.jsonl only (the backends count what OTEL_TRACES_SAMPLER sampled out)
    if (!policyOut) for (const b of this.backends) b.onEnd(span, sheddable);
    return sc;
  }

  /** The attributes with string values cut to the limit (a copy only when there is a limit). */
  private limited(attributes: Attributes): Attributes {
    const limit = this.valueLengthLimit;
    if (limit <= 0) return attributes;
    const cut: Attributes = {};
    for (const k in attributes) {
      const v = attributes[k];
      cut[k] = typeof v === 'string' && v.length > limit ? v.slice(0, limit) : v;
    }
    return cut;
  }
}

export interface StepTracing {
  readonly provider: BasicTracerProvider;
  readonly ids: PipelineTraceIdGenerator;
  readonly finished: FinishedSpans;
  /** The step span's trace id, once it has started: spans.jsonl lines in that trace leave it out. */
  setStepTraceId(traceId: string): void;
}

export function createTracerProvider(options: TracingOptions): StepTracing {
  const processors: SpanProcessor[] = [];
  if (options.spanDimensions) processors.push(new DimensionsProcessor(options.spanDimensions));
  const local = options.local ? new LocalSpanProcessor(options.local, options.localOmit) : undefined;
  if (local) processors.push(local);
  // what the batch span processor reads (OTEL_BSP_*), read the same way
  const limit = getNumberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE') ?? 2048;
  const batch = Math.min(limit, getNumberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? 512);
  const backends: BackendSpanQueue[] = [];
  const rate = new ExportRate();
  for (const backend of options.backends) {
    if (!backend.traces) continue;
    const { exporter, health } = backend.traces;
    const guarded = guardExporter(exporter, health, (spans: ReadableSpan[]) => spans.length);
    const simple = backend.simple === true;
    if (!simple) health.queue = { variable: 'OTEL_BSP_MAX_QUEUE_SIZE', limit };
    const queue = simple ? new BackendSpanQueue(new SimpleSpanProcessor(guarded), health, Infinity, 1, undefined) : new BackendSpanQueue(new BatchSpanProcessor(guarded), health, limit, batch, rate);
    if (!simple) {
      rate.add(queue);
      health.rate = rate;
    }
    backends.push(queue);
    processors.push(queue);
  }
  const ids = new PipelineTraceIdGenerator(options.traceId);
  // span limits and OTEL_BSP_* come from the environment, read by the SDK itself
  const provider = new BasicTracerProvider({ resource: options.resource, idGenerator: ids, sampler: options.sampler, spanProcessors: processors });
  // the limits the SDK resolved (options, then OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, then OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)
  const limits = (provider.getTracer(TRACER_NAME) as unknown as { getSpanLimits?(): { attributeValueLengthLimit?: number } }).getSpanLimits?.();
  const finished = new FinishedSpans(
    rate,
    options.sampler,
    local,
    backends,
    options.resource,
    options.spanDimensions,
    Number.isFinite(limits?.attributeValueLengthLimit) ? limits!.attributeValueLengthLimit! : 0,
    options.azure === true,
  );
  return {
    provider,
    ids,
    finished,
    setStepTraceId: (traceId) => {
      if (local) local.stepTraceId = traceId;
    },
  };
}

export { SpanKind };
