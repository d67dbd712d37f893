// What a remote backend contributes: one exporter per signal, each with its health record.
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { ExportHealth } from './export-health.js';

export interface BackendExporters {
  readonly name: string;
  readonly healths: ExportHealth[];
  /** Export each span and log record as it ends (the console exporters, as sdk-node does), not in batches. */
  readonly simple?: boolean;
  traces?: { exporter: SpanExporter; health: ExportHealth };
  metrics?: { exporter: PushMetricExporter; health: ExportHealth };
  logs?: { exporter: LogRecordExporter; health: ExportHealth };
}
