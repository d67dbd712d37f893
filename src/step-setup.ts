// startStep()'s setup, loaded on its first call (so that importing the package loads no SDK):
// configuration and identity read and checked, OpenTelemetry's configuration read (sampler,
// propagators, resource), then the run folder, the exporters, the SDK and the Step. Each exporter's
// modules (OTLP, Application Insights, the Prometheus endpoint and Pushgateway, the logs SDK) load
// only when it is configured.
import { trace } from '@opentelemetry/api';
import { ConfigError, EnvReader, formatIssue, resolveConfig } from './config.js';
import { Diagnostics } from './diagnostics.js';
import { identityDimensions, metricDimensions, resolveIdentity, stepResourceAttributes, traceIdForPipelineRun } from './identity.js';
import { contextFromEnvironment } from './otel/env-carrier.js';
import { propagatorFromEnv } from './otel/propagation.js';
import { stepResource } from './otel/resource.js';
import { RecordEverySpan, samplerFromEnv } from './otel/sampling.js';
import { StepSdk, readSdkEnv, setupDiagLogger } from './otel/sdk.js';
import { PENDING_METRICS_LIMIT, processState } from './process-state.js';
import { collectRuntimeInfo } from './runtime-info.js';
import { Step } from './step.js';
import type { BackendExporters } from './sinks/backend.js';
import { createEnvExporters } from './sinks/env-exporters.js';
import { ExporterAgents } from './sinks/export-health.js';
import { LocalRunFolder } from './sinks/local.js';
import { PrometheusSink } from './sinks/prometheus.js';
import type { StepOptions } from './types.js';

/** Everything startStep() sets up, in order: configuration read and checked, then sinks, SDK, step. */
export async function createStep(options: StepOptions): Promise<Step> {
  const env = process.env;
  const config = resolveConfig(options, env);
  const reader = new EnvReader(env);
  const identity = resolveIdentity(options, env, reader);
  // OpenTelemetry's configuration, read (and checked) before anything is opened or registered
  setupDiagLogger(reader);
  const sampler = new RecordEverySpan(samplerFromEnv(reader));
  const propagator = await propagatorFromEnv(reader);
  const resource = await stepResource(stepResourceAttributes(identity), options.resourceAttributes, reader);
  const sdkEnv = readSdkEnv(reader);
  const issues = [...config.issues, ...reader.issues];
  if (issues.length > 0 && config.strict) throw new ConfigError(issues);

  const diagnostics = new Diagnostics();
  const disabled = config.disabled;
  const dims = identityDimensions(identity);
  const local = config.local && !disabled ? LocalRunFolder.open(config.dir, identity, diagnostics) : undefined;
  if (local) diagnostics.addSink((line) => local.driver.append(`${new Date().toISOString()} ${line}\n`));
  for (const issue of issues) diagnostics.warn(`config.${issue.variable}`, `configuration: ${formatIssue(issue)}`);

  const agents = new ExporterAgents();
  const backends: BackendExporters[] = [];
  if (!disabled) {
    try {
      backends.push(...(await createEnvExporters(config.exporters)));
    } catch (error) {
      diagnostics.warn('otlp.setup', `OpenTelemetry export is off: ${(error as Error).message}`);
    }
    if (config.azure) {
      try {
        const { createAzureExporters } = await import('./sinks/azure.js');
        backends.push(await createAzureExporters(config.azure, agents, Math.min(10_000, config.flushTimeoutMs), config.azureStatsbeat));
      } catch (error) {
        diagnostics.warn('azure.setup', `Application Insights export is off: ${(error as Error).message}`);
      }
    }
  }
  const healths = backends.flatMap((b) => b.healths);
  const prometheusOn = !disabled && (config.prometheus.port !== undefined || config.prometheus.pushgatewayUrl !== undefined);
  const sdk = new StepSdk({ config, sdkEnv, resource, sampler, propagator, backends, local, dims, traceId: traceIdForPipelineRun(identity.pipelineRunId), prometheus: prometheusOn && config.prometheus.port !== undefined });
  // after the propagator is registered (the program's, or ours)
  const inherited = contextFromEnvironment(env);
  if (env.TRACEPARENT?.trim() && !trace.getSpanContext(inherited)) diagnostics.warn('config.TRACEPARENT', 'configuration: TRACEPARENT: expected a W3C traceparent such as 00-<32 hex>-<16 hex>-01; the step starts a trace of its own');
  // The registry lives in the Step; the exporter reads it at scrape and push time.
  let created: Step | undefined;
  // the endpoint's and the Pushgateway's code only when one of them is configured
  const prometheusExport = prometheusOn
    ? new (await import('./sinks/prometheus-export.js')).PrometheusExport({
        registry: () => created!.prometheus.registry,
        config: config.prometheus,
        groupingLabels: { ...metricDimensions(identity), ...(identity.processIndex > 0 ? { process: String(identity.processIndex) } : {}) },
        diagnostics,
        agents,
        requestTimeoutMs: Math.max(1, Math.min(10_000, config.flushTimeoutMs)),
        otelText: sdk.prometheusText ? () => sdk.prometheusText!.text() : undefined,
      })
    : undefined;
  if (prometheusExport?.pushHealth) healths.push(prometheusExport.pushHealth);

  const staticInfo = {
    identity,
    resource: resource.attributes,
    trace_id: undefined as string | undefined,
    /** The step span: log records logged in it carry no span_id of their own. */
    span_id: undefined as string | undefined,
    // false: the program registered its own global provider first, which stays (docs/opentelemetry.md)
    otel_globals: sdk.registered,
    runtime: collectRuntimeInfo(options.mainScript),
    backends: healths.map((h) => ({ backend: h.backend, signal: h.signal, target: h.target })),
    local: local ? { folder: local.folder } : undefined,
  };
  const step = new Step(config, identity, diagnostics, local, sdk, healths, agents, staticInfo, options.rootSpanKind, inherited, new PrometheusSink(metricDimensions(identity), diagnostics), options.begun);
  created = step;
  step.prometheusExport = prometheusExport;
  staticInfo.trace_id = step.rootSpan.spanContext().traceId;
  staticInfo.span_id = step.rootSpan.spanContext().spanId;
  step.writeInitialStepJson();
  // values logged through import-time handles before the start
  const state = processState();
  for (const m of state.pendingMetrics) step.log(m.name, m.value, m.options);
  state.pendingMetrics = [];
  if (state.pendingOverflow > 0) {
    diagnostics.warn('metrics.pre-start-overflow', `${state.pendingOverflow} metric values logged before startStep() were dropped (the buffer holds ${PENDING_METRICS_LIMIT})`);
    state.pendingOverflow = 0;
  }
  step.logger.info(`step ${identity.stepName} started`, {
    backends: ['local', ...backends.map((b) => b.name)].filter((n) => n !== 'local' || local).join(', ') || 'none',
  });
  return step;
}

