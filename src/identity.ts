// Who is recording: the step's identity, resolved once (options > environment > defaults), the
// OpenTelemetry resource built from it, and the trace that every step of one pipeline run joins.
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Attributes, SpanContext } from '@opentelemetry/api';
import type { Env, EnvReader } from './config.js';
import type { StepIdentity, StepOptions } from './types.js';

/** Parse `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-encoded), for the identity's fallbacks. */
export function parseResourceAttributes(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value) return out;
  for (const pair of value.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    let v = pair.slice(eq + 1).trim();
    try {
      v = decodeURIComponent(v);
    } catch {
      // keep the raw value
    }
    if (key) out[key] = v;
  }
  return out;
}

function defaultStepName(): string {
  const main = process.argv[1];
  if (!main) return 'step';
  const base = path.basename(main).replace(/\.(m|c)?(j|t)s$/, '');
  return base || 'step';
}

/** A short, time-ordered, unique id for a run that no orchestrator named. */
function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `run-${stamp}-${randomUUID().slice(0, 8)}`;
}

export function resolveIdentity(options: StepOptions, env: Env, r: EnvReader): StepIdentity {
  const resAttrs = parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES);
  const stepName = options.name ?? r.string('STEP_TELEMETRY_STEP_NAME') ?? resAttrs['step.name'] ?? defaultStepName();
  const runId = options.runId ?? r.first(['STEP_TELEMETRY_RUN_ID', 'AZUREML_RUN_ID']) ?? resAttrs['step.run_id'] ?? newRunId();
  const checkIndex = (name: string, value: number | undefined, min: number): number | undefined => {
    if (value === undefined) return undefined;
    if (Number.isInteger(value) && value >= min) return value;
    r.issue(`options.${name}`, `a whole number from ${min} up`);
    return undefined;
  };
  const nodeCount =
    checkIndex('nodeCount', options.nodeCount, 1) ??
    r.firstInt(['STEP_TELEMETRY_NODE_COUNT', 'AZ_BATCHAI_NODE_COUNT', 'AZUREML_NODE_COUNT', 'WORLD_SIZE'], 1) ??
    1;
  const nodeRank =
    checkIndex('nodeRank', options.nodeRank, 0) ??
    r.firstInt(['STEP_TELEMETRY_NODE_RANK', 'JOB_COMPLETION_INDEX', 'AZ_BATCHAI_TASK_INDEX', 'NODE_RANK'], 0) ??
    0;
  if (nodeRank >= nodeCount) r.issue('STEP_TELEMETRY_NODE_RANK', `a rank below the node count (${nodeCount})`);
  return {
    stepName,
    stepId: options.stepId ?? r.string('STEP_TELEMETRY_STEP_ID') ?? resAttrs['step.id'] ?? stepName,
    runId,
    pipelineRunId:
      options.pipelineRunId ?? r.first(['STEP_TELEMETRY_PIPELINE_RUN_ID', 'AZUREML_ROOT_RUN_ID']) ?? resAttrs['pipeline.run_id'] ?? runId,
    pipelineName:
      options.pipelineName ?? r.string('STEP_TELEMETRY_PIPELINE_NAME') ?? resAttrs['pipeline.name'] ?? resAttrs['service.namespace'] ?? 'pipeline',
    nodeRank: Math.min(nodeRank, nodeCount - 1),
    nodeCount,
    processIndex: checkIndex('processIndex', options.processIndex, 0) ?? r.int('STEP_TELEMETRY_PROCESS_INDEX', 0) ?? 0,
    host: os.hostname(),
    pid: process.pid,
  };
}

/** The dimensions every log record and span carries (Application Insights customDimensions). */
export function identityDimensions(id: StepIdentity): Record<string, string | number> {
  return {
    step_id: id.stepId,
    step_name: id.stepName,
    run_id: id.runId,
    pipeline_run_id: id.pipelineRunId,
    pipeline_name: id.pipelineName,
    node_rank: id.nodeRank,
    node_count: id.nodeCount,
    process_index: id.processIndex,
    host: id.host,
    pid: id.pid,
  };
}

/** The bounded metric attributes of this step. */
export function metricDimensions(id: StepIdentity): { pipeline: string; step: string; node: string } {
  return { pipeline: id.pipelineName, step: id.stepName, node: String(id.nodeRank) };
}

/**
 * The step's own resource attributes (src/otel/resource.ts merges them with the detectors' and the
 * user's). `service.name` here is the fallback when neither OTEL_SERVICE_NAME nor
 * OTEL_RESOURCE_ATTRIBUTES names the service.
 */
export function stepResourceAttributes(id: StepIdentity): Attributes {
  return {
    'service.name': id.stepName,
    'service.namespace': id.pipelineName,
    'service.instance.id': `${id.runId}/${id.nodeRank}/${id.processIndex}`,
    'step.id': id.stepId,
    'step.name': id.stepName,
    'step.run_id': id.runId,
    'pipeline.run_id': id.pipelineRunId,
    'pipeline.name': id.pipelineName,
    'step.node_rank': id.nodeRank,
    'step.node_count': id.nodeCount,
    'step.process_index': id.processIndex,
  };
}

/** The 32-hex trace id every step of a pipeline run shares when no TRACEPARENT is given. */
export function traceIdForPipelineRun(pipelineRunId: string): string {
  return createHash('sha256').update(`step-telemetry:${pipelineRunId}`).digest('hex').slice(0, 32);
}

/** TraceFlags.SAMPLED, without loading @opentelemetry/api: the runner's processes read identities before their steps start. */
const SAMPLED = 1;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Parse a W3C `traceparent` (the runner hands one to each attempt: this is its fast path); undefined when absent or malformed. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) return undefined;
  return { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & SAMPLED, isRemote: true };
}
