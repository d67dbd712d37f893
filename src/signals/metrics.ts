// Metrics: the run.log family, recorded once and fanned out (local history, OpenTelemetry,
// Prometheus), and the catalog instruments that the runner records into.
// The hot path of step.log is a validation, one map write and one array push: the OpenTelemetry
// and Prometheus gauges read the last value when they are collected.
import type { Attributes, Counter, Gauge, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { CATALOG, sanitizePrometheusName, type BoundedAttribute, type CatalogKey } from '../catalog.js';
import type { Diagnostics } from '../diagnostics.js';
import { metricHead, metricPrefix, metricRest, type LocalRunFolder } from '../sinks/local.js';
import type { PrometheusSink } from '../sinks/prometheus.js';
import type { Cell, ExemplarContext, LogMetricOptions } from '../types.js';
import { printable } from '../util/printable.js';
import { describeValue, errorText, isPlainObject, readArray, readFields } from '../util/safe-read.js';

const MAX_NAME_LENGTH = 255;
/**
 * Distinct run.log scalar names exported as gauges (OpenTelemetry and Prometheus). Values of
 * later names are kept in metrics.jsonl only, and counted in one diagnostic: a name per item or
 * per file would otherwise grow the heap and every backend's series without bound.
 */
export const MAX_GAUGE_NAMES = 1000;
const MAX_LIST_LENGTH = 100_000;
const MAX_TABLE_CELLS = 1_000_000;
const OTEL_NAME = /^[A-Za-z][A-Za-z0-9_./-]{0,254}$/;

interface ScalarEntry {
  value: number;
  /** Its metrics.jsonl lines' `metricPrefix()`, and their `metricHead()` in the millisecond `headTime`, as bytes. */
  readonly prefix: string;
  headTime: number;
  head: Buffer;
}

/** Receives the non-scalar records too, e.g. to put them on the step span. */
export type StructuredListener = (kind: 'list' | 'row' | 'table', name: string, value: unknown) => void;

export class MetricRecorder {
  private readonly scalars = new Map<string, ScalarEntry>();

  constructor(
    private readonly diagnostics: Diagnostics,
    private readonly local: LocalRunFolder | undefined,
    private readonly meter: Meter | undefined,
    private readonly prometheus: PrometheusSink,
    private readonly attributes: Attributes,
    private readonly onStructured?: StructuredListener,
  ) {}

  scalar(name: unknown, value: unknown, options?: LogMetricOptions): void {
    let entry = this.scalars.get(name as string);
    if (entry === undefined) {
      if (!this.validName(name, 'log')) return;
      if (!this.validNumber(name, value, 'log')) return;
      if (this.scalars.size >= MAX_GAUGE_NAMES) {
        this.diagnostics.warn(
          'metrics.gauge-cap',
          `more than ${MAX_GAUGE_NAMES} distinct metric names: "${name.slice(0, 80)}" and later new names are kept in metrics.jsonl only, not exported as gauges (step.json counts their values)`,
        );
        this.append(undefined, metricPrefix('scalar', name), name, value, options);
        return;
      }
      entry = this.register(name);
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.validNumber(name as string, value, 'log');
      return;
    }
    entry.value = value as number;
    this.append(entry, entry.prefix, name as string, value, options);
  }

  list(name: unknown, values: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logList')) return;
    const copy = readArray(values);
    if (copy === undefined || copy.length > MAX_LIST_LENGTH || !copy.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      this.drop('logList.value', `logList("${name}") dropped: expected an array of at most ${MAX_LIST_LENGTH} finite numbers`);
      return;
    }
    this.append(undefined, metricPrefix('list', name), name, copy, options);
    this.onStructured?.('list', name, copy);
  }

  row(name: unknown, row: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logRow')) return;
    const read = isPlainObject(row) ? readFields(row) : undefined;
    const copy = read?.fields;
    if (copy === undefined || !Object.values(copy).every(isCell)) {
      this.drop('logRow.value', `logRow("${name}") dropped: expected an object of numbers, strings, booleans or null${read?.problem ? ` (${read.problem})` : ''}`);
      return;
    }
    this.append(undefined, metricPrefix('row', name), name, copy, options);
    this.onStructured?.('row', name, copy);
  }

  table(name: unknown, table: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logTable')) return;
    const copy = readTable(table);
    if (typeof copy === 'string') {
      this.drop('logTable.value', `logTable("${name}") dropped: ${copy}`);
      return;
    }
    this.append(undefined, metricPrefix('table', name), name, copy, options);
    this.onStructured?.('table', name, copy);
  }

  tags(tags: Record<string, string>): void {
    this.local?.metrics.append(metricHead(Date.now(), metricPrefix('tags', 'tags')) + metricRest(tags));
  }

  /**
   * A metrics.jsonl line of `name` (its `metricPrefix()`) with the step index and description of
   * the options. A scalar's `entry` keeps the line's start as bytes for the millisecond.
   */
  private append(entry: ScalarEntry | undefined, prefix: string, name: string, value: unknown, options: LogMetricOptions | undefined): void {
    if (this.local === undefined) return;
    let step: number | undefined;
    let description: string | undefined;
    if (options !== undefined && options !== null) {
      let s: unknown;
      let d: unknown;
      try {
        s = options.step;
        d = options.description;
      } catch (error) {
        this.drop('metric.options', `reading the options of "${name}" threw (${errorText(error)}); the value is kept without them`);
      }
      if (s !== undefined) {
        if (Number.isInteger(s) && (s as number) >= 0) step = s as number;
        else this.drop('metric.step', `the step index of "${name}" must be a whole number >= 0 (got ${describeValue(s)}); the value is kept without it`);
      }
      if (typeof d === 'string') description = d;
    }
    const time = Date.now();
    const rest = metricRest(value, step, description);
    if (entry === undefined) this.local.metrics.append(metricHead(time, prefix) + rest);
    else {
      if (entry.headTime !== time) {
        entry.headTime = time;
        entry.head = Buffer.from(metricHead(time, prefix));
      }
      this.local.metrics.append(rest, entry.head);
    }
  }

  /** First sight of a scalar name: create its gauges in OpenTelemetry and Prometheus. */
  private register(name: string): ScalarEntry {
    const entry: ScalarEntry = { value: 0, prefix: metricPrefix('scalar', name), headTime: -1, head: Buffer.alloc(0) };
    this.scalars.set(name, entry);
    const read = (): number => entry.value;
    // One name on both paths: the OpenTelemetry instrument name (a valid one), and in Prometheus
    // the name the collector's translation gives that instrument.
    const otelName = otelInstrumentName(name);
    if (otelName !== name) {
      this.diagnostics.warn(
        'metric.otel-name',
        `metric "${name}" is exported as "${otelName}" (instrument names allow letters, digits, _ . / - and start with a letter); other such names are renamed the same way, counted in step.json`,
      );
    }
    this.prometheus.userGauge(otelName, read);
    if (this.meter) {
      try {
        const gauge: ObservableGauge = this.meter.createObservableGauge(otelName, { description: `run.log metric ${printable(name)}` });
        gauge.addCallback((result) => result.observe(read(), this.attributes));
      } catch (error) {
        this.diagnostics.warn('metric.otel', `metric "${name}" not sent to OpenTelemetry: ${errorText(error)}`);
      }
    }
    return entry;
  }

  private validName(name: unknown, api: string): name is string {
    if (typeof name === 'string' && name.trim().length > 0 && name.length <= MAX_NAME_LENGTH) return true;
    this.drop(`${api}.name`, `${api}() dropped a value: the metric name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters (got ${describeValue(name)})`);
    return false;
  }

  private validNumber(name: unknown, value: unknown, api: string): boolean {
    if (typeof value === 'number' && Number.isFinite(value)) return true;
    this.drop(`${api}.value`, `${api}("${String(name)}") dropped: the value must be a finite number (got ${describeValue(value)}); later drops are counted, not printed`);
    return false;
  }

  private drop(kind: string, message: string): void {
    this.diagnostics.warn(`input.${kind}`, message);
  }
}

/** `name` when it is a valid instrument name, else a valid one made from it. */
export function otelInstrumentName(name: string): string {
  if (OTEL_NAME.test(name)) return name;
  const cleaned = name.replace(/[^A-Za-z0-9_./-]/g, '_');
  return (/^[A-Za-z]/.test(cleaned) ? cleaned : `m_${cleaned}`).slice(0, 255);
}

function isCell(value: unknown): value is Cell {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/** A copy of a table of columns, each read once; or what is wrong with it. */
function readTable(table: unknown): Record<string, Cell[]> | string {
  const read = isPlainObject(table) ? readFields(table) : undefined;
  if (read?.fields === undefined) return `expected an object of columns, e.g. { actual: [...], predicted: [...] }${read?.problem ? ` (${read.problem})` : ''}`;
  const copy: Record<string, Cell[]> = {};
  let length = -1;
  let cells = 0;
  let columns = 0;
  for (const [key, value] of Object.entries(read.fields)) {
    const column = readArray(value);
    if (column === undefined) return 'every column must be an array';
    if (length >= 0 && column.length !== length) return 'all columns must have the same length';
    length = column.length;
    cells += column.length;
    if (cells > MAX_TABLE_CELLS) return `more than ${MAX_TABLE_CELLS} cells`;
    if (!column.every(isCell)) return 'cells must be numbers, strings, booleans or null';
    copy[key] = column as Cell[];
    columns++;
  }
  return columns === 0 ? 'the table has no columns' : copy;
}

/** Values of a catalog entry's own attributes (beyond the step dimensions), by attribute name. */
export type CatalogAttributes = Readonly<Partial<Record<BoundedAttribute, string>>>;

/** One attribute set of an entry: as OpenTelemetry attributes and as Prometheus labels (`cpu.mode` → `cpu_mode`). */
interface MergedAttributes {
  readonly otel: Record<string, string>;
  readonly prom: Record<string, string>;
}

/** Attribute sets are bounded by design; values of sets past this many are dropped (one diagnostic). */
const MAX_CACHED_ATTRIBUTE_SETS = 2048;

/**
 * The catalog's instruments, each recorded to OpenTelemetry (when a backend wants metrics) and to
 * Prometheus. Attribute sets are bounded, so their merged objects are cached.
 */
export class CatalogInstruments {
  private readonly otel = new Map<CatalogKey, Counter | Histogram | Gauge>();
  /** Per catalog key, the merged attribute objects by their values (prometheus.ts adds up counters per object). */
  private readonly attributeCache = new Map<CatalogKey, Map<string, MergedAttributes>>();
  private cachedSets = 0;
  private readonly plain: MergedAttributes;

  constructor(
    private readonly meter: Meter | undefined,
    private readonly prometheus: PrometheusSink,
    private readonly dims: Readonly<Record<string, string>>,
    private readonly diagnostics: Diagnostics,
  ) {
    this.plain = { otel: dims as Record<string, string>, prom: dims as Record<string, string> };
  }

  /**
   * Add to a counter, record into a histogram or set a gauge, by the entry's kind. `exemplar`
   * (e.g. a mini-batch span's `spanContext()`) tags a histogram sample with its trace id.
   */
  record(key: CatalogKey, value: number, attributes?: CatalogAttributes, exemplar?: ExemplarContext): void {
    const entry = CATALOG[key] as (typeof CATALOG)[CatalogKey] | undefined;
    if (entry === undefined || typeof value !== 'number' || !Number.isFinite(value)) {
      this.diagnostics.warn('catalog.value', `${entry?.name ?? `the catalog has no entry ${describeValue(key)}`}: dropped ${entry ? 'a non-finite value' : 'a value'}`);
      return;
    }
    let attrs: MergedAttributes | undefined;
    try {
      attrs = this.merged(key, attributes);
    } catch (error) {
      this.diagnostics.warn('catalog.attributes', `${entry.name}: reading the attributes threw (${errorText(error)}); the value was dropped`);
      return;
    }
    if (attrs === undefined) {
      this.diagnostics.warn('catalog.attribute-sets', `${entry.name}: more than ${MAX_CACHED_ATTRIBUTE_SETS} distinct attribute sets across the catalog (attributes are meant to be bounded): values of new sets are dropped`);
      return;
    }
    this.prometheus.update(key, attrs.prom, value, exemplar);
    if (this.meter === undefined) return;
    try {
      const instrument = this.instrument(key);
      if ('add' in instrument) instrument.add(value, attrs.otel);
      else instrument.record(value, attrs.otel);
    } catch (error) {
      this.diagnostics.warn('catalog.otel', `${entry.name} not recorded: ${errorText(error)}`);
    }
  }

  private merged(key: CatalogKey, attributes: CatalogAttributes | undefined): MergedAttributes | undefined {
    if (attributes === undefined) return this.plain;
    const names: readonly BoundedAttribute[] = CATALOG[key].attributes;
    // most entries have one attribute (outcome): then its value is the key itself
    let cacheKey = names.length === 1 ? String(attributes[names[0]!] ?? '') : '';
    if (names.length !== 1) for (const name of names) cacheKey += `|${attributes[name] ?? ''}`;
    let byKey = this.attributeCache.get(key);
    if (byKey === undefined) this.attributeCache.set(key, (byKey = new Map()));
    let merged = byKey.get(cacheKey);
    if (merged === undefined) {
      if (this.cachedSets >= MAX_CACHED_ATTRIBUTE_SETS) return undefined;
      const otel: Record<string, string> = { ...this.dims };
      let prom = otel;
      for (const name of names) {
        const v = attributes[name];
        if (v === undefined) continue;
        otel[name] = String(v);
        if (name.includes('.')) {
          if (prom === otel) prom = { ...otel };
          delete prom[name];
          prom[sanitizePrometheusName(name)] = String(v);
        } else if (prom !== otel) prom[name] = String(v);
      }
      merged = { otel, prom };
      byKey.set(cacheKey, merged);
      this.cachedSets++;
    }
    return merged;
  }

  private instrument(key: CatalogKey): Counter | Histogram | Gauge {
    let instrument = this.otel.get(key);
    if (instrument) return instrument;
    const entry = CATALOG[key];
    const meter = this.meter!;
    const options = { description: entry.description, unit: entry.unit };
    if (entry.kind === 'counter') instrument = meter.createCounter(entry.name, options);
    else if (entry.kind === 'histogram') {
      instrument = meter.createHistogram(entry.name, {
        ...options,
        advice: { explicitBucketBoundaries: [...(entry as { buckets: readonly number[] }).buckets] },
      });
    } else instrument = meter.createGauge(entry.name, options);
    this.otel.set(key, instrument);
    return instrument;
  }
}
