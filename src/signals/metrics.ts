// Metrics: the run.log family, recorded once and fanned out (local history, OpenTelemetry,
// Prometheus), and the catalog instruments that the runner records into.
// The hot path of step.log is a validation, one map write and one array push: the OpenTelemetry
// and Prometheus gauges read the last value when they are collected.
import type { Attributes, Counter, Gauge, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { CATALOG, sanitizePrometheusName, type BoundedAttribute, type CatalogKey } from '../catalog.js';
import type { Diagnostics } from '../diagnostics.js';
import type { LocalRunFolder, MetricLine } from '../sinks/local.js';
import type { PrometheusSink } from '../sinks/prometheus.js';
import type { Cell, ExemplarContext, LogMetricOptions } from '../types.js';

const MAX_NAME_LENGTH = 255;
const MAX_LIST_LENGTH = 100_000;
const MAX_TABLE_CELLS = 1_000_000;
const OTEL_NAME = /^[A-Za-z][A-Za-z0-9_./-]{0,254}$/;

interface ScalarEntry {
  value: number;
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
      entry = this.register(name);
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.validNumber(name as string, value, 'log');
      return;
    }
    entry.value = value as number;
    this.append('scalar', name as string, value, options);
  }

  list(name: unknown, values: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logList')) return;
    if (!Array.isArray(values) || values.length > MAX_LIST_LENGTH || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      this.drop('logList.value', `logList("${name}") dropped: expected an array of at most ${MAX_LIST_LENGTH} finite numbers`);
      return;
    }
    const copy = values.slice();
    this.append('list', name, copy, options);
    this.onStructured?.('list', name, copy);
  }

  row(name: unknown, row: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logRow')) return;
    if (!isPlainObject(row) || !Object.values(row).every(isCell)) {
      this.drop('logRow.value', `logRow("${name}") dropped: expected an object of numbers, strings, booleans or null`);
      return;
    }
    const copy = { ...row };
    this.append('row', name, copy, options);
    this.onStructured?.('row', name, copy);
  }

  table(name: unknown, table: unknown, options?: LogMetricOptions): void {
    if (!this.validName(name, 'logTable')) return;
    const problem = tableProblem(table);
    if (problem) {
      this.drop('logTable.value', `logTable("${name}") dropped: ${problem}`);
      return;
    }
    const copy: Record<string, Cell[]> = {};
    for (const [k, v] of Object.entries(table as Record<string, Cell[]>)) copy[k] = v.slice();
    this.append('table', name, copy, options);
    this.onStructured?.('table', name, copy);
  }

  tags(tags: Record<string, string>): void {
    this.local?.metrics.append({ time: Date.now(), kind: 'tags', name: 'tags', value: tags });
  }

  private append(kind: MetricLine['kind'], name: string, value: unknown, options: LogMetricOptions | undefined): void {
    if (this.local === undefined) return;
    let step: number | undefined;
    let description: string | undefined;
    if (options !== undefined && options !== null) {
      step = options.step;
      if (step !== undefined && !(Number.isInteger(step) && step >= 0)) {
        this.drop('metric.step', `the step index of "${name}" must be a whole number >= 0 (got ${String(step)}); the value is kept without it`);
        step = undefined;
      }
      if (typeof options.description === 'string') description = options.description;
    }
    this.local.metrics.append({ time: Date.now(), kind, name, value, step, description });
  }

  /** First sight of a scalar name: create its gauges in OpenTelemetry and Prometheus. */
  private register(name: string): ScalarEntry {
    const entry: ScalarEntry = { value: 0 };
    this.scalars.set(name, entry);
    const read = (): number => entry.value;
    // One name on both paths: the OpenTelemetry instrument name (a valid one), and in Prometheus
    // the name the collector's translation gives that instrument.
    const otelName = otelInstrumentName(name);
    if (otelName !== name) {
      this.diagnostics.warn(`metric.otel-name:${name}`, `metric "${name}" is exported as "${otelName}" (instrument names allow letters, digits, _ . / - and start with a letter)`);
    }
    this.prometheus.userGauge(otelName, read);
    if (this.meter) {
      try {
        const gauge: ObservableGauge = this.meter.createObservableGauge(otelName, { description: `run.log metric ${name}` });
        gauge.addCallback((result) => result.observe(read(), this.attributes));
      } catch (error) {
        this.diagnostics.warn(`metric.otel:${name}`, `metric "${name}" not sent to OpenTelemetry: ${(error as Error).message}`);
      }
    }
    return entry;
  }

  private validName(name: unknown, api: string): name is string {
    if (typeof name === 'string' && name.trim().length > 0 && name.length <= MAX_NAME_LENGTH) return true;
    this.drop(`${api}.name`, `${api}() dropped a value: the metric name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters (got ${describe(name)})`);
    return false;
  }

  private validNumber(name: unknown, value: unknown, api: string): boolean {
    if (typeof value === 'number' && Number.isFinite(value)) return true;
    this.drop(`${api}.value`, `${api}("${String(name)}") dropped: the value must be a finite number (got ${describe(value)}); later drops are counted, not printed`);
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

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isCell(value: unknown): value is Cell {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

function tableProblem(table: unknown): string | undefined {
  if (!isPlainObject(table)) return 'expected an object of columns, e.g. { actual: [...], predicted: [...] }';
  const columns = Object.values(table);
  if (columns.length === 0) return 'the table has no columns';
  let length = -1;
  let cells = 0;
  for (const column of columns) {
    if (!Array.isArray(column)) return 'every column must be an array';
    if (length >= 0 && column.length !== length) return 'all columns must have the same length';
    length = column.length;
    cells += column.length;
    if (cells > MAX_TABLE_CELLS) return `more than ${MAX_TABLE_CELLS} cells`;
    if (!column.every(isCell)) return 'cells must be numbers, strings, booleans or null';
  }
  return undefined;
}

/** Values of a catalog entry's own attributes (beyond the step dimensions), by attribute name. */
export type CatalogAttributes = Readonly<Partial<Record<BoundedAttribute, string>>>;

/** One attribute set of an entry: as OpenTelemetry attributes and as Prometheus labels (`cpu.mode` → `cpu_mode`). */
interface MergedAttributes {
  readonly otel: Record<string, string>;
  readonly prom: Record<string, string>;
}

/** Attribute sets are bounded by design; past this many the merged objects are not cached. */
const MAX_CACHED_ATTRIBUTE_SETS = 2048;

/**
 * The catalog's instruments, each recorded to OpenTelemetry (when a backend wants metrics) and to
 * Prometheus. Attribute sets are bounded, so their merged objects are cached.
 */
export class CatalogInstruments {
  private readonly otel = new Map<CatalogKey, Counter | Histogram | Gauge>();
  private readonly attributeCache = new Map<string, MergedAttributes>();
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
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.diagnostics.warn(`catalog.value:${key}`, `${CATALOG[key].name}: dropped a non-finite value`);
      return;
    }
    const attrs = this.merged(key, attributes);
    this.prometheus.update(key, attrs.prom, value, exemplar);
    if (this.meter === undefined) return;
    try {
      const instrument = this.instrument(key);
      if ('add' in instrument) instrument.add(value, attrs.otel);
      else instrument.record(value, attrs.otel);
    } catch (error) {
      this.diagnostics.warn(`catalog.otel:${key}`, `${CATALOG[key].name} not recorded: ${(error as Error).message}`);
    }
  }

  private merged(key: CatalogKey, attributes: CatalogAttributes | undefined): MergedAttributes {
    if (attributes === undefined) return this.plain;
    const names: readonly BoundedAttribute[] = CATALOG[key].attributes;
    let cacheKey: string = key;
    for (const name of names) cacheKey += `|${attributes[name] ?? ''}`;
    let merged = this.attributeCache.get(cacheKey);
    if (merged === undefined) {
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
      if (this.attributeCache.size < MAX_CACHED_ATTRIBUTE_SETS) this.attributeCache.set(cacheKey, merged);
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
