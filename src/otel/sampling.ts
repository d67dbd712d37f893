// Sampling: OTEL_TRACES_SAMPLER (+ _ARG) decides what reaches the backends, as the SDK reads it
// (its own buildSamplerFromEnv). The run folder is the durable record and keeps every span: the
// sampler is wrapped so that a span sampled out is still recorded (RECORD, without the SAMPLED
// flag). The SDK's batch and simple span processors export only sampled spans; spans.jsonl takes
// them all and marks those sampled out.
import { createRequire } from 'node:module';
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler, SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';
import type { EnvReader } from '../config.js';

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/** The sampler OTEL_TRACES_SAMPLER names, built by the SDK's own reader; checked first so that a bad value is reported at start. */
export function samplerFromEnv(r: EnvReader): Sampler {
  const name = r.oneOf('OTEL_TRACES_SAMPLER', SAMPLERS);
  const arg = r.string('OTEL_TRACES_SAMPLER_ARG');
  if (arg !== undefined && name !== undefined && name.endsWith('traceidratio')) {
    const ratio = Number(arg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) r.issue('OTEL_TRACES_SAMPLER_ARG', 'a sampling ratio from 0 to 1; using 1');
  }
  try {
    // not exported by the package's index; the same module BasicTracerProvider reads the variables with
    const config = createRequire(import.meta.url)('@opentelemetry/sdk-trace-base/build/src/config.js') as { buildSamplerFromEnv?: () => Sampler };
    if (typeof config.buildSamplerFromEnv === 'function') return config.buildSamplerFromEnv();
  } catch {
    // an SDK without that module: the specification's default below
  }
  return new ParentBasedSampler({ root: new AlwaysOnSampler() });
}

/** Records every span; the inner sampler's decision only sets the SAMPLED flag (what is exported). */
export class RecordEverySpan implements Sampler {
  constructor(readonly inner: Sampler) {}

  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const result = this.inner.shouldSample(context, traceId, name, kind, attributes, links);
    return result.decision === SamplingDecision.NOT_RECORD ? { ...result, decision: SamplingDecision.RECORD } : result;
  }

  toString(): string {
    return `RecordEverySpan{${this.inner.toString()}}`;
  }
}
