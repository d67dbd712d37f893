// The exporters that the standard variables name (OTEL_{TRACES,METRICS,LOGS}_EXPORTER: otlp over
// grpc, http/protobuf or http/json, zipkin, console), built as sdk-node builds them: each exporter
// reads its own endpoint, headers, TLS files, compression and temporality from the environment.
// Only the timeout is ours (capped by the flush bound). Modules load only for what is configured.
import { type OtlpSignalConfig, type ResolvedConfig, type Signal } from '../config.js';
import { ExportHealth } from './export-health.js';
import type { BackendExporters } from './backend.js';

const OTLP_MODULES: Readonly<Record<Signal, Readonly<Record<OtlpSignalConfig['protocol'], string>>>> = {
  traces: { grpc: '@opentelemetry/exporter-trace-otlp-grpc', 'http/json': '@opentelemetry/exporter-trace-otlp-http', 'http/protobuf': '@opentelemetry/exporter-trace-otlp-proto' },
  metrics: { grpc: '@opentelemetry/exporter-metrics-otlp-grpc', 'http/json': '@opentelemetry/exporter-metrics-otlp-http', 'http/protobuf': '@opentelemetry/exporter-metrics-otlp-proto' },
  logs: { grpc: '@opentelemetry/exporter-logs-otlp-grpc', 'http/json': '@opentelemetry/exporter-logs-otlp-http', 'http/protobuf': '@opentelemetry/exporter-logs-otlp-proto' },
};
const OTLP_CLASS: Readonly<Record<Signal, string>> = { traces: 'OTLPTraceExporter', metrics: 'OTLPMetricExporter', logs: 'OTLPLogExporter' };

type Ctor = new (options?: Record<string, unknown>) => never;

async function load(module: string, name: string): Promise<Ctor> {
  const m = (await import(module)) as Record<string, unknown>;
  return m[name] as Ctor;
}

/** One backend per exporter name, with a health record per signal it serves. */
export async function createEnvExporters(exporters: ResolvedConfig['exporters']): Promise<BackendExporters[]> {
  const byName = new Map<string, BackendExporters>();
  const backend = (name: string, simple = false): BackendExporters => {
    let b = byName.get(name);
    if (!b) byName.set(name, (b = { name, healths: [], simple }));
    return b;
  };
  const add = (b: BackendExporters, signal: Signal, exporter: unknown, target: string, credential: string): void => {
    const health = new ExportHealth(b.name, signal, target, credential);
    b.healths.push(health);
    (b as unknown as Record<Signal, unknown>)[signal] = { exporter, health };
  };
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    const { names, otlp } = exporters[signal];
    for (const name of names) {
      if (name === 'otlp' && otlp) {
        const Exporter = await load(OTLP_MODULES[signal][otlp.protocol], OTLP_CLASS[signal]);
        const upper = signal.toUpperCase();
        add(backend('OTLP'), signal, new Exporter({ timeoutMillis: otlp.timeoutMs }), otlp.target, `OTEL_EXPORTER_OTLP_${upper}_HEADERS or OTEL_EXPORTER_OTLP_HEADERS`);
      } else if (name === 'zipkin') {
        const Exporter = await load('@opentelemetry/exporter-zipkin', 'ZipkinExporter');
        add(backend('Zipkin'), signal, new Exporter(), process.env.OTEL_EXPORTER_ZIPKIN_ENDPOINT?.trim() || 'http://localhost:9411/api/v2/spans', 'OTEL_EXPORTER_ZIPKIN_ENDPOINT');
      } else if (name === 'console') {
        const [module, cls] =
          signal === 'traces' ? ['@opentelemetry/sdk-trace-base', 'ConsoleSpanExporter'] : signal === 'metrics' ? ['@opentelemetry/sdk-metrics', 'ConsoleMetricExporter'] : ['@opentelemetry/sdk-logs', 'ConsoleLogRecordExporter'];
        add(backend('console', true), signal, new (await load(module, cls))(), 'stdout', '');
      }
      // 'prometheus' is the step's own /metrics endpoint (config.prometheus)
    }
  }
  return [...byName.values()];
}
