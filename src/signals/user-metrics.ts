// The program's own OpenTelemetry instruments (`metrics.getMeter(...)` once the step has started):
// the step's meter provider is the global one, so they reach the metric backends like the catalog
// metrics; these readers also put them in the run folder (metrics.jsonl lines of kind `otel`, at
// each OTEL_METRIC_EXPORT_INTERVAL and at the end) and on the `/metrics` endpoint (rendered by
// OpenTelemetry's own Prometheus serializer). The step's own scope is left out: its metrics are
// already in both.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { metricHead, metricPrefix, metricRest, type LocalRunFolder } from '../sinks/local.js';
import { TRACER_NAME } from './step-scope.js';

/** Only the program's scopes. */
function usersOnly(rm: ResourceMetrics): ResourceMetrics {
  return { resource: rm.resource, scopeMetrics: rm.scopeMetrics.filter((s) => s.scope.name !== TRACER_NAME) };
}

/** Writes the program's metric points to metrics.jsonl (cumulative: each line is the total so far). */
export class RunFolderMetricExporter implements PushMetricExporter {
  constructor(private readonly local: LocalRunFolder) {}

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    const time = Date.now();
    for (const scope of usersOnly(metrics).scopeMetrics) {
      for (const m of scope.metrics) {
        for (const p of m.dataPoints) {
          const v = p.value as unknown;
          const value =
            m.dataPointType === DataPointType.HISTOGRAM || m.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM
              ? (({ count, sum, min, max }) => ({ count, sum, min, max }))(v as { count: number; sum?: number; min?: number; max?: number })
              : v;
          const otel = { attributes: p.attributes, unit: m.descriptor.unit || undefined, type: DataPointType[m.dataPointType].toLowerCase(), scope: scope.scope.name };
          this.local.metrics.append(metricHead(time, metricPrefix('otel', m.descriptor.name)) + metricRest(value, undefined, undefined, otel));
        }
      }
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A pull reader for the `/metrics` endpoint: the program's metrics in the Prometheus text format. */
export class PrometheusTextReader extends MetricReader {
  private serializer: { serialize(rm: ResourceMetrics): string } | undefined;

  async text(): Promise<string> {
    if (this.serializer === undefined) {
      const { PrometheusSerializer } = await import('@opentelemetry/exporter-prometheus');
      // no target_info and no scope labels: the step's registry carries the step's own labels
      this.serializer = new PrometheusSerializer('', false, undefined, true, true);
    }
    const { resourceMetrics } = await this.collect();
    const rm = usersOnly(resourceMetrics);
    return rm.scopeMetrics.length > 0 ? this.serializer.serialize(rm) : '';
  }

  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}
