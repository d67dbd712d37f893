// Propagation: the propagators OTEL_PROPAGATORS names (W3C trace context and baggage by default),
// the context a step inherits from TRACEPARENT / TRACESTATE / BAGGAGE (environment variables as
// carriers: the key upper-cased, `-` as `_`), and the variables it hands to a child process.
import { ROOT_CONTEXT, propagation, type Context, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Env, EnvReader } from '../config.js';

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

const envKey = (key: string): string => key.toUpperCase().replace(/-/g, '_');

const envGetter: TextMapGetter<Env> = {
  keys: (env) => Object.keys(env).map((k) => k.toLowerCase().replace(/_/g, '-')),
  get: (env, key) => env[envKey(key)],
};

const envSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[envKey(key)] = value;
  },
};

/** The context that TRACEPARENT, TRACESTATE and BAGGAGE (through the global propagator) give this process. */
export function contextFromEnvironment(env: Env): Context {
  return propagation.extract(ROOT_CONTEXT, env, envGetter);
}

/** The variables that carry `ctx` to a child process (TRACEPARENT, TRACESTATE, BAGGAGE, ...). */
export function environmentFor(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier, envSetter);
  return carrier;
}
