// The propagators OTEL_PROPAGATORS names (W3C trace context and baggage by default), as sdk-node
// builds them. The environment as a carrier is env-carrier.ts.
import type { TextMapPropagator } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { EnvReader } from '../config.js';

const NAMES = ['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'none'];

/** The propagator of OTEL_PROPAGATORS, as sdk-node builds it; undefined for `none`. */
export async function propagatorFromEnv(r: EnvReader): Promise<TextMapPropagator | undefined> {
  const listed = r.string('OTEL_PROPAGATORS');
  const names = listed === undefined ? ['tracecontext', 'baggage'] : [...new Set(listed.split(',').map((n) => n.trim()).filter(Boolean))];
  const unknown = names.filter((n) => !NAMES.includes(n));
  if (unknown.length > 0) r.issue('OTEL_PROPAGATORS', `a list of ${NAMES.join(', ')} (got ${unknown.join(', ')})`);
  if (names.includes('none')) return undefined;
  const out: TextMapPropagator[] = [];
  for (const name of names) {
    if (name === 'tracecontext') out.push(new W3CTraceContextPropagator());
    else if (name === 'baggage') out.push(new W3CBaggagePropagator());
    else if (name === 'b3' || name === 'b3multi') {
      const { B3Propagator, B3InjectEncoding } = await import('@opentelemetry/propagator-b3');
      out.push(new B3Propagator(name === 'b3multi' ? { injectEncoding: B3InjectEncoding.MULTI_HEADER } : {}));
    } else if (name === 'jaeger') out.push(new (await import('@opentelemetry/propagator-jaeger')).JaegerPropagator());
  }
  if (out.length === 0) return undefined;
  return out.length === 1 ? out[0] : new CompositePropagator({ propagators: out });
}
