// Any OTLP/HTTP backend (a collector, Jaeger, Tempo, Grafana Cloud, ...), for the signals whose
// endpoint is set. Headers, timeout and compression come from the standard OTEL_EXPORTER_OTLP_*
// variables, which the exporters read themselves; the protocol picks JSON or protobuf.
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { redactUrl, type OtlpSignalConfig, type Signal } from '../config.js';
import { ExportHealth, type ExporterAgents } from './export-health.js';
import type { BackendExporters } from './backend.js';

export function createOtlpExporters(config: Partial<Record<Signal, OtlpSignalConfig>>, agents: ExporterAgents): BackendExporters {
  const out: BackendExporters = { name: 'OTLP', healths: [] };
  const health = (signal: Signal, c: OtlpSignalConfig): ExportHealth => {
    const h = new ExportHealth('OTLP', signal, redactUrl(c.url), `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_HEADERS or OTEL_EXPORTER_OTLP_HEADERS`);
    out.healths.push(h);
    return h;
  };
  const base = (c: OtlpSignalConfig) => ({ url: c.url, timeoutMillis: c.timeoutMs, httpAgentOptions: agents.forProtocol });
  if (config.traces) {
    const c = config.traces;
    out.traces = { exporter: c.protocol === 'http/json' ? new JsonTraceExporter(base(c)) : new ProtoTraceExporter(base(c)), health: health('traces', c) };
  }
  if (config.metrics) {
    const c = config.metrics;
    out.metrics = { exporter: c.protocol === 'http/json' ? new JsonMetricExporter(base(c)) : new ProtoMetricExporter(base(c)), health: health('metrics', c) };
  }
  if (config.logs) {
    const c = config.logs;
    out.logs = { exporter: c.protocol === 'http/json' ? new JsonLogExporter(base(c)) : new ProtoLogExporter(base(c)), health: health('logs', c) };
  }
  return out;
}
