// The spans that `step.startSpan()` and `step.span()` hand out: OpenTelemetry spans whose every
// method checks what it is given (span-input.ts) and never throws, so that a number passed to
// `updateName()` or a Proxy passed to `setAttributes()` can neither break the step nor reach an
// exporter (the Application Insights exporter fails on a span name that is not a string, the
// protobuf serialiser loses the whole batch on a null one) or write a line that does not parse.
import {
  INVALID_SPAN_CONTEXT,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type AttributeValue,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import type { Diagnostics } from '../diagnostics.js';
import { errorText, readArray } from '../util/safe-read.js';
import { attributeValue, droppedAttribute, spanAttributes, spanException, spanLink, spanName, spanOptions, spanStatus, spanTime } from './span-input.js';

export class SafeSpan implements Span {
  constructor(
    private readonly inner: Span,
    private readonly diagnostics: Diagnostics,
  ) {}

  spanContext(): SpanContext {
    return this.inner.spanContext();
  }

  setAttribute(key: string, value: AttributeValue): this {
    const checked = typeof key === 'string' && key.length > 0 ? attributeValue(value) : undefined;
    if (checked !== undefined) this.guard(() => this.inner.setAttribute(key, checked));
    else if (value !== undefined && value !== null) droppedAttribute(key, value, this.diagnostics);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    const checked = spanAttributes(attributes, this.diagnostics);
    if (checked) this.guard(() => this.inner.setAttributes(checked));
    return this;
  }

  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    const n = spanName(name, this.diagnostics, 'event');
    const second = attributesOrStartTime;
    let isTime = typeof second === 'number';
    try {
      isTime ||= second instanceof Date || Array.isArray(second);
    } catch {
      // a Proxy: read as attributes, which reports it
    }
    const attributes = isTime ? undefined : spanAttributes(second, this.diagnostics);
    const time = spanTime(isTime ? second : startTime, this.diagnostics);
    this.guard(() => this.inner.addEvent(n, attributes, time));
    return this;
  }

  addLink(link: Link): this {
    const checked = spanLink(link, this.diagnostics);
    if (checked) this.guard(() => this.inner.addLink(checked));
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of readArray(links) ?? []) this.addLink(link as Link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    const checked = spanStatus(status, this.diagnostics);
    if (checked) this.guard(() => this.inner.setStatus(checked));
    return this;
  }

  updateName(name: string): this {
    const n = spanName(name, this.diagnostics);
    this.guard(() => this.inner.updateName(n));
    return this;
  }

  end(endTime?: TimeInput): void {
    const time = endTime === undefined ? undefined : spanTime(endTime, this.diagnostics);
    try {
      this.inner.end(time);
    } catch (error) {
      this.failed(error);
    }
  }

  isRecording(): boolean {
    return this.inner.isRecording();
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const e = spanException(exception);
    const t = spanTime(time, this.diagnostics);
    this.guard(() => this.inner.recordException(e, t));
  }

  private guard(call: () => unknown): void {
    try {
      call();
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    this.diagnostics.warn('span.failed', `a span call failed inside OpenTelemetry (${errorText(error)}); the step goes on`);
  }
}

/**
 * A span with a checked name and options, a child of the active span (else of `parent`); a
 * non-recording span, with one diagnostic, if even that fails.
 */
export function startSafeSpan(tracer: Tracer, parent: Span, name: unknown, options: unknown, diagnostics: Diagnostics): Span {
  const n = spanName(name, diagnostics);
  const o = spanOptions(options, diagnostics);
  try {
    const active = context.active();
    const ctx = trace.getSpan(active) ? active : trace.setSpan(active, parent);
    return new SafeSpan(tracer.startSpan(n, { kind: o.kind, attributes: o.attributes, startTime: o.startTime }, ctx), diagnostics);
  } catch (error) {
    diagnostics.warn('span.failed', `a span could not be started (${errorText(error)}); the step goes on`);
    return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
  }
}

/** Record a thrown value on a span (an `exception` event, ERROR status), whatever was thrown. */
export function recordFailure(span: Span, error: unknown): void {
  const e = spanException(error);
  span.recordException(e);
  const text = typeof e === 'string' ? e : e.name !== undefined ? `${e.name}: ${e.message}` : e.message;
  span.setStatus({ code: SpanStatusCode.ERROR, message: text });
}
