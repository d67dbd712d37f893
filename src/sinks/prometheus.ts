// The Prometheus view of a step: the catalog metrics under the names the collector's OTLP
// translation gives their OpenTelemetry twins, and one gauge per run.log scalar. The values are
// kept here (a counter adds up per label set, a gauge keeps its last value, a histogram its
// buckets, sum, count and one exemplar per bucket); prom-client renders them, and is loaded only
// when the registry is first read: by the /metrics endpoint or the Pushgateway when one is
// configured, or by a program that reads `step.prometheus.registry`. A step without Prometheus never
// loads it. prom-client throws on bad labels and names; every call here is wrapped, so a typo never
// ends a ten-hour job.
import { createRequire } from 'node:module';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import type client from 'prom-client';
import { CATALOG, prometheusLabels, prometheusName, sanitizePrometheusName, type CatalogEntry, type CatalogKey } from '../catalog.js';
import type { Diagnostics } from '../diagnostics.js';
import type { ExemplarContext } from '../types.js';
import { printable } from '../util/printable.js';

type PromClient = typeof client;
let promClient: PromClient | undefined;

/** prom-client, loaded on first use. */
function prom(): PromClient {
  return (promClient ??= createRequire(import.meta.url)('prom-client') as PromClient);
}

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

interface Exemplar {
  readonly labelSet: Record<string, string>;
  readonly value: number;
  /** Epoch seconds, as prom-client keeps it. */
  readonly timestamp: number;
}

/** One label set of a histogram: per-bucket counts (the last one +Inf), sum, count, the last exemplar of each bucket and when it was taken. */
interface Series {
  readonly counts: Float64Array;
  sum: number;
  count: number;
  readonly exemplars: (Exemplar | null)[];
  readonly exemplarAt: Float64Array;
}

/** A value line as prom-client's registry reads it from a metric. */
interface PromValueLine {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar?: Exemplar | null;
}

/** A catalog metric's values, kept here whether or not prom-client renders them yet. */
interface CatalogState {
  readonly entry: CatalogEntry;
  readonly labelNames: readonly string[];
  /** Label objects seen (the cached ones of CatalogInstruments), each checked once against labelNames. */
  readonly checked: WeakSet<Record<string, string>>;
  /** Counters: what was added per label set since prom-client last read it; gauges: the last value per label set. */
  readonly values?: Map<Record<string, string>, number>;
  /** Histograms: the bucket bounds and the series per label set. */
  readonly buckets?: readonly number[];
  readonly series?: Map<Record<string, string>, Series>;
}

/**
 * A histogram of the catalog as prom-client's registry reads a metric (`get()` for JSON,
 * `getForPromString()` for the text format), from the state kept here: the same lines prom-client's
 * own histogram writes (cumulative `_bucket` lines with `le`, then `+Inf`, `_sum`, `_count`).
 */
class RenderedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly state: CatalogState,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; values: PromValueLine[]; aggregator: string }> {
    return Promise.resolve(this.render(true));
  }

  getForPromString(): Promise<{ name: string; help: string; type: string; values: PromValueLine[]; aggregator: string }> {
    return Promise.resolve(this.render(false));
  }

  reset(): void {
    this.state.series!.clear();
  }

  private render(splay: boolean): { name: string; help: string; type: string; values: PromValueLine[]; aggregator: string } {
    const buckets = this.state.buckets!;
    const bucketName = `${this.name}_bucket`;
    const values: PromValueLine[] = [];
    const line = (le: Record<string, string | number>, labels: Record<string, string>, value: number, metricName: string, exemplar?: Exemplar | null): void => {
      values.push(splay ? { labels: { ...le, ...labels }, value, metricName, exemplar } : { labels: le, sharedLabels: labels, value, metricName, exemplar });
    };
    for (const [labels, s] of this.state.series!) {
      let acc = 0;
      for (let b = 0; b < buckets.length; b++) {
        acc += s.counts[b]!;
        line({ le: buckets[b]! }, labels, acc, bucketName, s.exemplars[b]);
      }
      line({ le: '+Inf' }, labels, s.count, bucketName, s.exemplars[buckets.length]);
      line({}, labels, s.sum, `${this.name}_sum`);
      line({}, labels, s.count, `${this.name}_count`);
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A run.log scalar's gauge, read from `read` when rendered. */
interface UserGauge {
  readonly name: string;
  readonly help: string;
  readonly read: () => number | undefined;
}

export class PrometheusSink {
  private readonly catalogStates = new Map<CatalogKey, CatalogState>();
  private readonly userGauges: UserGauge[] = [];
  private readonly userNames = new Map<string, string>();
  private rendered: client.Registry | undefined;

  constructor(
    private readonly labels: Readonly<Record<string, string>>,
    private readonly diagnostics: Diagnostics,
  ) {}

  /** The prom-client registry holding the catalog metrics and the run.log gauges (prom-client loads now if it has not). */
  get registry(): client.Registry {
    if (this.rendered) return this.rendered;
    const registry = new (prom().Registry)();
    this.rendered = registry;
    for (const state of this.catalogStates.values()) this.render(state);
    for (const g of this.userGauges) this.renderGauge(g);
    return registry;
  }

  /** The state of a catalog entry, made on first use (and rendered when the registry exists). */
  private state(key: CatalogKey): CatalogState {
    let st = this.catalogStates.get(key);
    if (st) return st;
    const entry = CATALOG[key];
    const base = { entry, labelNames: prometheusLabels(entry), checked: new WeakSet<Record<string, string>>() };
    st =
      entry.kind === 'histogram'
        ? { ...base, buckets: (entry as { buckets: readonly number[] }).buckets, series: new Map() }
        : { ...base, values: new Map() };
    this.catalogStates.set(key, st);
    if (this.rendered) this.render(st);
    return st;
  }

  /** The prom-client metric that renders a catalog entry's state, in the registry. */
  private render(st: CatalogState): void {
    const entry = st.entry;
    const config = { name: prometheusName(entry), help: entry.description, labelNames: [...st.labelNames], registers: [this.rendered!] };
    const diagnostics = this.diagnostics;
    const values = st.values;
    /** prom-client reads a counter or gauge: the values kept here reach it through `write` (`inc` or `set`). */
    const collect = (write: (labels: Record<string, string>, value: number) => void): void => {
      try {
        for (const [labels, value] of values!) write(labels, value);
      } catch (error) {
        diagnostics.warn('prometheus.update', `prometheus metric ${entry.name} not updated: ${(error as Error).message}`);
      }
    };
    try {
      if (entry.kind === 'counter') {
        // Counters add up here and reach prom-client when it is read (at a scrape, a push, the end)
        new (prom().Counter)({
          ...config,
          collect() {
            collect((labels, value) => this.inc(labels, value));
            values!.clear();
          },
        });
      } else if (entry.kind === 'gauge') {
        new (prom().Gauge)({
          ...config,
          collect() {
            collect((labels, value) => this.set(labels, value));
          },
        });
      } else {
        // Histograms keep the last exemplar per bucket (a sample mini-batch's trace id). prom-client
        // allows exemplars only on an OpenMetrics registry, whose rendering renames counters in place;
        // the registry stays in the Prometheus format (pushes, `promtool`) and the /metrics endpoint
        // renders OpenMetrics itself (prometheus-export.ts) from the exemplars kept here.
        this.rendered!.registerMetric(new RenderedHistogram(config.name, config.help, st) as unknown as client.Metric);
      }
    } catch (error) {
      diagnostics.warn('prometheus.update', `prometheus metric ${entry.name} not rendered: ${(error as Error).message}`);
    }
  }

  /** `labels`: one of the cached label objects of CatalogInstruments (counters add up per object). */
  update(key: CatalogKey, labels: Record<string, string>, value: number, exemplar?: ExemplarContext): void {
    try {
      const st = this.state(key);
      if (!st.checked.has(labels)) {
        const unknown = Object.keys(labels).filter((k) => !st.labelNames.includes(k));
        if (unknown.length > 0) throw new Error(`Added label "${unknown[0]}" is not included in initial labelset: ${JSON.stringify(st.labelNames)}`);
        st.checked.add(labels);
      }
      if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
      if (st.series) this.observe(st, labels, value, exemplar);
      else if (st.entry.kind === 'counter') {
        if (value < 0) throw new Error('a counter only goes up');
        st.values!.set(labels, (st.values!.get(labels) ?? 0) + value);
      } else st.values!.set(labels, value);
    } catch (error) {
      this.diagnostics.warn('prometheus.update', `prometheus metric ${CATALOG[key].name} not updated: ${(error as Error).message}`);
    }
  }

  /** A histogram sample; its bucket takes the exemplar unless it took one less than a second ago. */
  private observe(st: CatalogState, labels: Record<string, string>, value: number, exemplar: ExemplarContext | undefined): void {
    const buckets = st.buckets!;
    let s = st.series!.get(labels);
    if (s === undefined) {
      const n = buckets.length + 1;
      s = { counts: new Float64Array(n), sum: 0, count: 0, exemplars: new Array<Exemplar | null>(n).fill(null), exemplarAt: new Float64Array(n) };
      st.series!.set(labels, s);
    }
    let b = 0;
    while (b < buckets.length && value > buckets[b]!) b++;
    s.counts[b]!++;
    s.sum += value;
    s.count++;
    const now = Date.now();
    if (now - s.exemplarAt[b]! < EXEMPLAR_EVERY_MS) return;
    const ex = exemplarLabels(exemplar);
    if (ex === NO_EXEMPLAR) return;
    s.exemplarAt[b] = now;
    s.exemplars[b] = { labelSet: ex, value, timestamp: now / 1000 };
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
    const gauge = { name: promName, help: `run.log metric ${printable(name)}`, read };
    if (this.rendered && !this.renderGauge(gauge)) {
      this.userNames.set(promName, '');
      return false;
    }
    this.userGauges.push(gauge);
    this.userNames.set(promName, name);
    return true;
  }

  /** The prom-client gauge of a run.log scalar, in the registry; false (with one diagnostic) when prom-client refuses it. */
  private renderGauge(g: UserGauge): boolean {
    const labels = this.labels;
    try {
      new (prom().Gauge)({
        name: g.name,
        help: g.help,
        labelNames: Object.keys(labels),
        registers: [this.rendered!],
        collect() {
          const v = g.read();
          if (v !== undefined) this.set(labels, v);
        },
      });
      return true;
    } catch (error) {
      this.diagnostics.warn('prometheus.user', `metric "${g.name}" not exposed to Prometheus: ${(error as Error).message}`);
      return false;
    }
  }
}
