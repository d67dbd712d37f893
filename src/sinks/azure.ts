// Azure Application Insights, for all three signals, when a connection string is set. Loaded only
// then (the exporter is about 320 modules).
// Offline storage is off: the exporter would only resend from disk on a 60 s timer after a later
// success, which a short step never sees, and it would leave caches in a temp folder. A step's
// durable copy is its run folder; for buffering across outages, use the collector sidecar.
// Statsbeat and SDK stats are off unless STEP_TELEMETRY_AZURE_STATSBEAT=true: they probe
// 169.254.169.254 and Microsoft's regional hosts, and their meter providers keep the process alive
// for 14-20 s after the step. The exporter reads APPLICATION_INSIGHTS_NO_STATSBEAT once, in its
// constructor; it is set for that moment only (the environment is left as it was).
import type { AzureMonitorExporterOptions } from '@azure/monitor-opentelemetry-exporter';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { SpanKind } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { AzureConfig, Signal } from '../config.js';
import { ExportHealth, type ExporterAgents } from './export-health.js';
import type { BackendExporters } from './backend.js';

const CREDENTIAL_VARIABLE = 'APPLICATIONINSIGHTS_CONNECTION_STRING';

/** Sees every response: routes the request through the step's agents and notes non-2xx answers. */
function wirePolicy(health: ExportHealth, agents: ExporterAgents, timeoutMs: number): PipelinePolicy {
  return {
    name: 'stepTelemetryWire',
    async sendRequest(request, next) {
      request.agent = agents.https;
      request.timeout = timeoutMs;
      const response = await next(request);
      if (response.status >= 300) {
        const body = response.bodyAsText ?? '';
        health.sawStatus(response.status, /InvalidOrExpiredToken/i.test(body) ? 'InvalidOrExpiredToken' : undefined);
      }
      return response;
    },
  };
}

/** The attribute the exporter takes a non-SERVER request's name from (its `ai.operation.name` tag). */
const OPERATION_NAME = 'ai.operation.name';

/**
 * The exporter names a request after its span only for SERVER spans; a CONSUMER span (a
 * mini-batch attempt) would land in `requests` without a name. It gets the span's name, through
 * a view of the span that adds the attribute (the span itself, shared with other exporters, is
 * left as it is).
 */
class NamedRequests implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}
  /** Returns the inner exporter's promise (it is an async function), so that its rejection is caught. */
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): unknown {
    return this.inner.export(spans.map(named), resultCallback);
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function named(span: ReadableSpan): ReadableSpan {
  if (span.kind !== SpanKind.CONSUMER || span.attributes[OPERATION_NAME] !== undefined) return span;
  const view = Object.create(span) as ReadableSpan;
  Object.defineProperty(view, 'attributes', { value: { ...span.attributes, [OPERATION_NAME]: span.name } });
  return view;
}

const NO_STATSBEAT = 'APPLICATION_INSIGHTS_NO_STATSBEAT';

/** `timeoutMs` bounds each request: no answer by then counts as a failed export. */
export async function createAzureExporters(config: AzureConfig, agents: ExporterAgents, timeoutMs: number, statsbeat: boolean): Promise<BackendExporters> {
  const { AzureMonitorLogExporter, AzureMonitorMetricExporter, AzureMonitorTraceExporter } = await import('@azure/monitor-opentelemetry-exporter');
  const out: BackendExporters = { name: 'Application Insights', healths: [] };
  const make = (signal: Signal): { options: AzureMonitorExporterOptions; health: ExportHealth } => {
    const health = new ExportHealth('Application Insights', signal, config.endpoint, CREDENTIAL_VARIABLE);
    out.healths.push(health);
    const options: AzureMonitorExporterOptions = {
      connectionString: config.connectionString,
      disableOfflineStorage: true,
      retryOptions: { maxRetries: 0 },
      additionalPolicies: [{ policy: wirePolicy(health, agents, timeoutMs), position: 'perCall' }],
    } as AzureMonitorExporterOptions;
    return { options, health };
  };
  const before = process.env[NO_STATSBEAT];
  if (!statsbeat) process.env[NO_STATSBEAT] = 'true';
  try {
    const t = make('traces');
    out.traces = { exporter: new NamedRequests(new AzureMonitorTraceExporter(t.options)), health: t.health };
    const m = make('metrics');
    out.metrics = { exporter: new AzureMonitorMetricExporter(m.options), health: m.health };
    const l = make('logs');
    out.logs = { exporter: new AzureMonitorLogExporter(l.options), health: l.health };
  } finally {
    if (before === undefined) delete process.env[NO_STATSBEAT];
    else process.env[NO_STATSBEAT] = before;
  }
  return out;
}
