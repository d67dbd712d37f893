// The runner's step, planned before it starts. Its identity, run folder and the traceparent of its
// span follow from the options and the environment alone, so the workers get them with their start
// message at once and the first mini-batches run while this process loads the step's modules
// (winston, OpenTelemetry: most of its start-up); the step then starts with exactly these (its span
// takes the announced id: startStep's internal `begun`). Planned only where nothing but those
// inputs decides the step span's context: the default sampler (or always_on), the W3C propagator,
// no OpenTelemetry registered in the process yet, and no strict mode (which may refuse to start);
// otherwise the step starts first, as it always did.
import { EnvReader, resolveConfig, type Env } from '../config.js';
import { resolveIdentity, traceIdForPipelineRun } from '../identity.js';
import type { SpanIdPool } from '../otel/span-ids.js';
import { runFolderPath } from '../sinks/local.js';
import type { StepIdentity, StepOptions } from '../types.js';

export interface StepPlan {
  /** What to start the step with: the options given, with the identity and the span id fixed. */
  readonly options: StepOptions;
  readonly identity: StepIdentity;
  /** Undefined when the step writes no run folder. */
  readonly runFolder: string | undefined;
  /** W3C traceparent of the step span to be. */
  readonly traceparent: string;
  /** The step will serve Prometheus (an endpoint or a Pushgateway). */
  readonly prometheus: boolean;
}

const W3C_ONLY = /^\s*(tracecontext|baggage)(\s*,\s*(tracecontext|baggage))*\s*$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** Where @opentelemetry/api 1.x keeps what a program registered (a tracer provider, a propagator, ...). */
const OTEL_API_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/** The plan of the step `options` start, begun at `time` (epoch ms); undefined when only the started step can tell. */
export function planStep(options: StepOptions, env: Env, ids: SpanIdPool, time: number): StepPlan | undefined {
  if ((globalThis as Record<symbol, unknown>)[OTEL_API_GLOBAL] !== undefined) return undefined;
  const r = new EnvReader(env);
  const sampler = r.string('OTEL_TRACES_SAMPLER');
  if (sampler !== undefined && sampler !== 'parentbased_always_on' && sampler !== 'always_on') return undefined;
  const propagators = r.string('OTEL_PROPAGATORS');
  if (propagators !== undefined && !(W3C_ONLY.test(propagators) && propagators.includes('tracecontext'))) return undefined;
  const given = r.string('TRACEPARENT');
  const parent = given === undefined ? undefined : TRACEPARENT.exec(given);
  if (given !== undefined && (parent === null || /^0+$/.test(parent![1]!) || /^0+$/.test(parent![2]!))) return undefined;
  const config = resolveConfig(options, env);
  if (config.strict || config.issues.length > 0) return undefined;
  const identity = resolveIdentity(options, env, r);
  if (r.issues.length > 0) return undefined;
  const traceId = parent ? parent[1]! : traceIdForPipelineRun(identity.pipelineRunId);
  // parentbased_always_on: a root is sampled, a child follows its remote parent
  const sampled = sampler === 'always_on' || !parent || (parseInt(parent[3]!, 16) & 1) === 1;
  const spanId = ids.next();
  return {
    options: {
      ...options,
      name: identity.stepName,
      stepId: identity.stepId,
      runId: identity.runId,
      pipelineRunId: identity.pipelineRunId,
      pipelineName: identity.pipelineName,
      nodeRank: identity.nodeRank,
      nodeCount: identity.nodeCount,
      begun: { time, spanId },
    },
    identity,
    runFolder: config.local && !config.disabled ? runFolderPath(config.dir, identity) : undefined,
    traceparent: `00-${traceId}-${spanId}-0${sampled ? 1 : 0}`,
    prometheus: !config.disabled && (config.prometheus.port !== undefined || config.prometheus.pushgatewayUrl !== undefined),
  };
}
