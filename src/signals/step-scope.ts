// What the step's spans and metrics have in common, kept light (no SDK): the instrumentation scope,
// and how an error is put on a span.
import { SpanStatusCode } from '@opentelemetry/api';

/** The instrumentation scope of every span and metric of a step. */
export const TRACER_NAME = 'step-telemetry';

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

