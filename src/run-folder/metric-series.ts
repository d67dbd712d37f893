// A step's metrics.jsonl records (step.log and friends), gathered per metric as they are read, in a
// size that does not grow with the records: a scalar keeps its first 1,000 finite values, and past
// that its values in at most 1,000 buckets of x (the step index, or the value's position), whose
// width doubles as the range grows; rows keep 10,000, then the rows of the last step; a list or a
// table keeps its last record; tags are merged.
import type { MetricRecord, MetricSeries, ScalarBuckets } from './model.js';

const RAW_POINTS = 1000;
const BUCKETS = 1000;
const MAX_ROWS = 10_000;
const MAX_SERIES = 10_000;

interface Bucket {
  n: number;
  sx: number;
  sy: number;
  min: number;
  max: number;
}

/** Buckets of equal width over x, numbered from x = 0; two merge into one when there would be more than BUCKETS. */
class Buckets {
  private width: number;
  private readonly map = new Map<number, Bucket>();
  private lo = Infinity;
  private hi = -Infinity;

  constructor(span: number) {
    this.width = span > 0 ? span / (BUCKETS / 2) : 1;
  }

  add(x: number, y: number): void {
    let k = Math.floor(x / this.width);
    while (Math.max(this.hi, k) - Math.min(this.lo, k) >= BUCKETS) {
      this.halve();
      k = Math.floor(x / this.width);
    }
    if (k < this.lo) this.lo = k;
    if (k > this.hi) this.hi = k;
    let b = this.map.get(k);
    if (!b) this.map.set(k, (b = { n: 0, sx: 0, sy: 0, min: Infinity, max: -Infinity }));
    b.n++;
    b.sx += x;
    b.sy += y;
    if (y < b.min) b.min = y;
    if (y > b.max) b.max = y;
  }

  private halve(): void {
    this.width *= 2;
    const old = [...this.map];
    this.map.clear();
    this.lo = Infinity;
    this.hi = -Infinity;
    for (const [k, b] of old) {
      const j = Math.floor(k / 2);
      const into = this.map.get(j);
      if (!into) this.map.set(j, b);
      else {
        into.n += b.n;
        into.sx += b.sx;
        into.sy += b.sy;
        into.min = Math.min(into.min, b.min);
        into.max = Math.max(into.max, b.max);
      }
      if (j < this.lo) this.lo = j;
      if (j > this.hi) this.hi = j;
    }
  }

  list(): ScalarBuckets['buckets'] {
    return [...this.map]
      .sort((a, b) => a[0] - b[0])
      .map(([, b]) => ({ x: b.sx / b.n, mean: b.sy / b.n, min: b.min, max: b.max }));
  }
}

class Series {
  count = 0;
  records: MetricRecord[] = [];
  // scalars
  n = 0;
  withStep = true;
  integer = true;
  last = 0;
  min = Infinity;
  max = -Infinity;
  byStep: Buckets | undefined;
  byPosition: Buckets | undefined;
  // rows past MAX_ROWS: those of the last step
  tailStep: number | undefined;
  tail: MetricRecord[] | undefined;

  constructor(
    readonly kind: string,
    readonly name: string,
  ) {}

  add(r: MetricRecord): void {
    this.count++;
    switch (this.kind) {
      case 'scalar':
        if (typeof r.value === 'number' && Number.isFinite(r.value)) this.scalar(r, r.value);
        return;
      case 'row':
        if (this.records.length < MAX_ROWS) this.records.push(r);
        else {
          if (this.tail === undefined || r.step !== this.tailStep) {
            this.tail = [];
            this.tailStep = r.step;
          }
          if (this.tail.length < MAX_ROWS) this.tail.push(r);
        }
        return;
      case 'tags': {
        const merged = { ...(this.records[0]?.value as Record<string, unknown> | undefined), ...(r.value as Record<string, unknown> | undefined) };
        this.records = [{ ...r, value: merged }];
        return;
      }
      default:
        this.records = [r]; // a list, a table: the last one is what is shown
    }
  }

  private scalar(r: MetricRecord, y: number): void {
    this.n++;
    const position = this.n;
    if (r.step === undefined) this.withStep = false;
    const x = this.withStep ? r.step! : position;
    if (!Number.isInteger(x)) this.integer = false;
    this.last = y;
    if (y < this.min) this.min = y;
    if (y > this.max) this.max = y;
    if (this.records.length < RAW_POINTS && this.byPosition === undefined) {
      this.records.push(r);
      return;
    }
    if (this.byPosition === undefined) {
      // past the first values: into buckets, those first values included
      const steps = this.records.map((m) => m.step ?? 0);
      this.byPosition = new Buckets(RAW_POINTS);
      if (this.withStep) this.byStep = new Buckets(Math.max(...steps) - Math.min(...steps));
      this.records.forEach((m, k) => {
        this.byPosition!.add(k + 1, m.value as number);
        this.byStep?.add(m.step!, m.value as number);
      });
    }
    this.byPosition.add(position, y);
    if (this.withStep) this.byStep?.add(r.step!, y);
    else this.byStep = undefined;
  }

  finish(): MetricSeries {
    const records = this.tail ? this.records.concat(this.tail) : this.records;
    if (this.byPosition === undefined) return { kind: this.kind, name: this.name, count: this.count, records };
    const buckets = (this.withStep ? this.byStep! : this.byPosition).list();
    return {
      kind: this.kind,
      name: this.name,
      count: this.count,
      records,
      buckets: { n: this.n, withStep: this.withStep, integer: this.integer, last: this.last, min: this.min, max: this.max, buckets },
    };
  }
}

export class MetricCollector {
  private readonly series = new Map<string, Series>();
  /** Records of names past MAX_SERIES (not kept). */
  dropped = 0;

  add(r: MetricRecord): void {
    const key = `${r.kind}\u0000${r.name}`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) {
        this.dropped++;
        return;
      }
      this.series.set(key, (s = new Series(r.kind, r.name)));
    }
    s.add(r);
  }

  finish(): MetricSeries[] {
    return [...this.series.values()].map((s) => s.finish());
  }
}
