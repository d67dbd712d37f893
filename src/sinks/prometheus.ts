// The prom-client registry of a step: catalog metrics under the names the collector's OTLP
// translation gives their OpenTelemetry twins, and one gauge per run.log scalar. prom-client throws
// on bad labels and names; every call here is wrapped, so a typo never ends a ten-hour job.
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import client from 'prom-client';
import { CATALOG, prometheusLabels, prometheusName, sanitizePrometheusName, type CatalogKey } from '../catalog.js';
import type { Diagnostics } from '../diagnostics.js';
import type { ExemplarContext } from '../types.js';
import { printable } from '../util/printable.js';

type PromMetric = client.Counter<string> | client.Histogram<string> | client.Gauge<string>;

const CATALOG_NAMES = new Set(Object.values(CATALOG).map((e) => prometheusName(e)));
const NO_EXEMPLAR: Record<string, string> = Object.freeze({}) as Record<string, string>;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

/**
 * OpenMetrics exemplar labels for a histogram sample: the given trace context, else the active
 * span's (one AsyncLocalStorage read), else none; none for a span that is not exported (not
 * sampled), whose trace a backend does not have. Ids that are not W3C hex are ignored.
 */
function exemplarLabels(exemplar: ExemplarContext | undefined): Record<string, string> {
  const sc = exemplar ?? trace.getSpanContext(context.active());
  if (sc === undefined || typeof sc.traceId !== 'string' || !TRACE_ID.test(sc.traceId)) return NO_EXEMPLAR;
  if (typeof sc.traceFlags === 'number' && (sc.traceFlags & 1) === 0) return NO_EXEMPLAR;
  if (exemplar === undefined && !isSpanContextValid(sc as Parameters<typeof isSpanContextValid>[0])) return NO_EXEMPLAR;
  return typeof sc.spanId === 'string' && SPAN_ID.test(sc.spanId) ? { trace_id: sc.traceId, span_id: sc.spanId } : { trace_id: sc.traceId };
}

export class PrometheusSink {
  readonly registry = new client.Registry();
  private readonly catalogMetrics = new Map<CatalogKey, PromMetric>();
  private readonly userNames = new Map<string, string>();

  constructor(
    private readonly labels: Readonly<Record<string, string>>,
    private readonly diagnostics: Diagnostics,
  ) {}

  /** The prom-client metric of a catalog entry, created on first use. */
  catalog(key: CatalogKey): PromMetric {
    let metric = this.catalogMetrics.get(key);
    if (metric) return metric;
    const entry = CATALOG[key];
    const config = {
      name: prometheusName(entry),
      help: entry.description,
      labelNames: prometheusLabels(entry),
      registers: [this.registry],
    };
    if (entry.kind === 'counter') metric = new client.Counter(config);
    else if (entry.kind === 'histogram') {
      // Histograms keep the last exemplar per bucket (a sample mini-batch's trace id). prom-client
      // allows exemplars only on an OpenMetrics registry, whose rendering renames counters in place;
      // the registry stays in the Prometheus format (pushes, `promtool`) and the /metrics endpoint
      // renders OpenMetrics itself (prometheus-export.ts), so the histogram is registered by hand.
      const histogram = new client.Histogram({ ...config, registers: [], buckets: [...(entry as { buckets: readonly number[] }).buckets], enableExemplars: true });
      this.registry.registerMetric(histogram);
      metric = histogram;
    }
    else metric = new client.Gauge(config);
    this.catalogMetrics.set(key, metric);
    return metric;
  }

  update(key: CatalogKey, labels: Record<string, string>, value: number, exemplar?: ExemplarContext): void {
    try {
      const metric = this.catalog(key);
      if (metric instanceof client.Counter) metric.inc(labels, value);
      else if (metric instanceof client.Histogram) metric.observe({ labels, value, exemplarLabels: exemplarLabels(exemplar) });
      else metric.set(labels, value);
    } catch (error) {
      this.diagnostics.warn('prometheus.update', `prometheus metric ${CATALOG[key].name} not updated: ${(error as Error).message}`);
    }
  }

  /**
   * A gauge for a run.log scalar; its value is read from `read` at scrape or push time, so logging
   * costs nothing here. Returns false (with one diagnostic) when the name cannot be used.
   */
  userGauge(name: string, read: () => number | undefined): boolean {
    const promName = sanitizePrometheusName(name);
    const owner = this.userNames.get(promName);
    if (owner !== undefined) {
      if (owner !== name) this.diagnostics.warn('prometheus.collision', `metric "${name}" maps to the Prometheus name ${promName}, already used by "${owner}"; it is kept in the local files and OpenTelemetry only`);
      return owner === name;
    }
    if (CATALOG_NAMES.has(promName) || CATALOG_NAMES.has(`${promName}_total`)) {
      this.diagnostics.warn('prometheus.reserved', `metric "${name}" would shadow the catalog metric ${promName}; it is kept in the local files and OpenTelemetry only`);
      this.userNames.set(promName, '');
      return false;
    }
    const labels = this.labels;
    try {
      new client.Gauge({
        name: promName,
        help: `run.log metric ${printable(name)}`,
        labelNames: Object.keys(labels),
        registers: [this.registry],
        collect() {
          const v = read();
          if (v !== undefined) this.set(labels, v);
        },
      });
      this.userNames.set(promName, name);
      return true;
    } catch (error) {
      this.diagnostics.warn('prometheus.user', `metric "${name}" not exposed to Prometheus: ${(error as Error).message}`);
      this.userNames.set(promName, '');
      return false;
    }
  }
}
