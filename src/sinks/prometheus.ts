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

/** How often a histogram bucket takes a new exemplar (per label set): a scrape shows the last one. */
const EXEMPLAR_EVERY_MS = 1000;

interface CatalogMetric {
  readonly metric: PromMetric;
  /** Counters: what was added per label set (the cached objects of CatalogInstruments) since prom-client last read it. */
  readonly pending?: Map<Record<string, string>, number>;
  /** Histograms: the bucket bounds, and when each bucket of each label set last took an exemplar. */
  readonly buckets?: readonly number[];
  readonly exemplarAt?: Map<Record<string, string>, Float64Array>;
}

export class PrometheusSink {
  readonly registry = new client.Registry();
  private readonly catalogMetrics = new Map<CatalogKey, CatalogMetric>();
  private readonly userNames = new Map<string, string>();

  constructor(
    private readonly labels: Readonly<Record<string, string>>,
    private readonly diagnostics: Diagnostics,
  ) {}

  /** The prom-client metric of a catalog entry, created on first use. */
  private catalog(key: CatalogKey): CatalogMetric {
    let m = this.catalogMetrics.get(key);
    if (m) return m;
    const entry = CATALOG[key];
    const config = {
      name: prometheusName(entry),
      help: entry.description,
      labelNames: prometheusLabels(entry),
      registers: [this.registry],
    };
    if (entry.kind === 'counter') {
      // Counters add up here and reach prom-client when it is read (at a scrape, a push, the end):
      // a map update per record instead of prom-client's label checks and hashing on each one.
      const pending = new Map<Record<string, string>, number>();
      const diagnostics = this.diagnostics;
      const counter = new client.Counter({
        ...config,
        collect() {
          try {
            for (const [labels, value] of pending) this.inc(labels, value);
          } catch (error) {
            diagnostics.warn('prometheus.update', `prometheus metric ${entry.name} not updated: ${(error as Error).message}`);
          }
          pending.clear();
        },
      });
      m = { metric: counter, pending };
    } else if (entry.kind === 'histogram') {
      // Histograms keep the last exemplar per bucket (a sample mini-batch's trace id). prom-client
      // allows exemplars only on an OpenMetrics registry, whose rendering renames counters in place;
      // the registry stays in the Prometheus format (pushes, `promtool`) and the /metrics endpoint
      // renders OpenMetrics itself (prometheus-export.ts), so the histogram is registered by hand.
      const buckets = (entry as { buckets: readonly number[] }).buckets;
      const histogram = new client.Histogram({ ...config, registers: [], buckets: [...buckets], enableExemplars: true });
      this.registry.registerMetric(histogram);
      m = { metric: histogram, buckets, exemplarAt: new Map() };
    } else m = { metric: new client.Gauge(config) };
    this.catalogMetrics.set(key, m);
    return m;
  }

  /** `labels`: one of the cached label objects of CatalogInstruments (counters add up per object). */
  update(key: CatalogKey, labels: Record<string, string>, value: number, exemplar?: ExemplarContext): void {
    try {
      const m = this.catalog(key);
      if (m.pending) {
        if (value < 0) throw new Error('a counter only goes up');
        m.pending.set(labels, (m.pending.get(labels) ?? 0) + value);
      } else if (m.exemplarAt) (m.metric as client.Histogram).observe({ labels, value, exemplarLabels: this.exemplar(m, labels, value, exemplar) });
      else (m.metric as client.Gauge).set(labels, value);
    } catch (error) {
      this.diagnostics.warn('prometheus.update', `prometheus metric ${CATALOG[key].name} not updated: ${(error as Error).message}`);
    }
  }

  /** The exemplar of a histogram sample: none while its bucket took one less than a second ago. */
  private exemplar(m: CatalogMetric, labels: Record<string, string>, value: number, exemplar: ExemplarContext | undefined): Record<string, string> {
    const buckets = m.buckets!;
    let b = 0;
    while (b < buckets.length && value > buckets[b]!) b++;
    let at = m.exemplarAt!.get(labels);
    if (at === undefined) m.exemplarAt!.set(labels, (at = new Float64Array(buckets.length + 1)));
    const now = Date.now();
    if (now - at[b]! < EXEMPLAR_EVERY_MS) return NO_EXEMPLAR;
    const ex = exemplarLabels(exemplar);
    if (ex !== NO_EXEMPLAR) at[b] = now;
    return ex;
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
