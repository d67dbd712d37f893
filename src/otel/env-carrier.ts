// Environment variables as context carriers: the context a step inherits from TRACEPARENT,
// TRACESTATE and BAGGAGE (the propagator's key upper-cased, `-` as `_`), through whichever global
// propagator is registered, and the variables it hands to a child process.
import { ROOT_CONTEXT, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import type { Env } from '../config.js';

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
