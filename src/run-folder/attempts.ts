// A step's mini-batch attempts, gathered as they are read (spans, or processed-mini-batches.csv
// when there are none), in a size that does not grow with the mini-batches:
//   - exact: the count, durations per outcome (n, sum, min, max), retries, per-worker figures, the
//     first start and the last end, the fate of every mini-batch (how many, how many succeeded),
//     with an IdTable of the ids, and what run() used as the workers measured it (sums per worker,
//     the attempts that waited longest off CPU);
//   - whole: every attempt of a "troubled" mini-batch (one that failed or took more than one
//     attempt; up to 100,000 of them), so the failures, the causes and the retries are exact;
//   - sampled: the successful first attempts, all of them up to 200,000, then a uniform sample of
//     200,000 (reservoir sampling, seeded: the same folder gives the same report), each standing
//     for `of / kept` of them. Distributions (percentiles, latency over time, the histogram) are
//     drawn from it; see docs/report-and-doctor.md for how close they are.
import { causeKey, isFailure } from './analysis.js';
import { IdTable } from './id-table.js';
import type { Attempt, AttemptSet, DurationStats, MiniBatchFate, WorkerAttempts, WorkerUsage } from './model.js';

export const ATTEMPT_SAMPLE = 200_000;
const TROUBLED_MAX = 100_000;
/** Causes of failure whose earliest stack trace is kept (the rest keep theirs). */
const STACK_CAUSES = 10_000;
/** An attempt whose run() was on a CPU less than this share of its time waited (on I/O, a timer, a lock): the doctor's io-bound. */
export const WAITED_CPU_SHARE = 0.3;
/** The attempts that waited longest kept (RunUsage.waited). */
const WAITED_KEPT = 20;

/** Flags of an id in the step's IdTable. */
export const SEEN_ATTEMPT = 1;
/** Its first attempt was a successful first attempt (counted in `plainSucceeded`). */
const PLAIN = 2;
export const SEEN_ROW = 4;
export const ROW_AGAIN = 8;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** xorshift32: a fixed sequence, so that the same folder gives the same sample. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/**
 * The successful first attempts: all of them up to `size`, then a uniform sample (reservoir
 * sampling), kept in columns: an attempt sampled out leaves no object behind (a million of them
 * would otherwise fill the old generation with garbage).
 */
class PlainSample {
  seen = 0;
  private n = 0;
  private ids: string[] = [];
  private start = new Float64Array(1024);
  private duration = new Float64Array(1024);
  private items = new Float64Array(1024);
  /** NaN: not recorded (this and the four figures of what run() used). */
  private itemsFailed = new Float64Array(1024);
  private runMs = new Float64Array(1024);
  private cpuMs = new Float64Array(1024);
  private rssBytes = new Float64Array(1024);
  private heapGrowthBytes = new Float64Array(1024);
  private worker = new Uint32Array(1024);
  private readonly workers: string[] = [];
  private readonly workerIndex = new Map<string, number>();
  /** The rare ones that carry an error field all the same: kept whole. */
  private readonly whole = new Map<number, Attempt>();
  private readonly random = random(0x5eed);

  constructor(private readonly size: number) {}

  add(a: Attempt): void {
    this.seen++;
    let k: number;
    if (this.n < this.size) {
      k = this.n++;
      if (k === this.start.length) this.grow();
    } else {
      k = Math.floor(this.random() * this.seen);
      if (k >= this.size) return;
    }
    this.ids[k] = a.id;
    this.start[k] = a.start;
    this.duration[k] = a.durationMs;
    this.items[k] = a.items;
    this.itemsFailed[k] = a.itemsFailed ?? Number.NaN;
    this.runMs[k] = a.runMs ?? Number.NaN;
    this.cpuMs[k] = a.cpuMs ?? Number.NaN;
    this.rssBytes[k] = a.rssBytes ?? Number.NaN;
    this.heapGrowthBytes[k] = a.heapGrowthBytes ?? Number.NaN;
    let w = this.workerIndex.get(a.worker);
    if (w === undefined) {
      w = this.workers.push(a.worker) - 1;
      this.workerIndex.set(a.worker, w);
    }
    this.worker[k] = w;
    if (a.errorType !== undefined || a.errorMessage !== undefined || a.stack !== undefined) this.whole.set(k, a);
    else this.whole.delete(k);
  }

  private grow(): void {
    const size = Math.min(this.size, this.start.length * 2);
    const more = <T extends Float64Array | Uint32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.start = more(this.start);
    this.duration = more(this.duration);
    this.items = more(this.items);
    this.itemsFailed = more(this.itemsFailed);
    this.runMs = more(this.runMs);
    this.cpuMs = more(this.cpuMs);
    this.rssBytes = more(this.rssBytes);
    this.heapGrowthBytes = more(this.heapGrowthBytes);
    this.worker = more(this.worker);
  }

  get sampled(): boolean {
    return this.seen > this.n;
  }

  get kept(): number {
    return this.n;
  }

  /** The attempts kept, each standing for seen / kept of them. */
  attempts(): Attempt[] {
    const weight = this.sampled ? this.seen / this.n : 1;
    const out: Attempt[] = [];
    const at = (column: Float64Array, k: number): number | undefined => (Number.isNaN(column[k]!) ? undefined : column[k]);
    for (let k = 0; k < this.n; k++) {
      const whole = this.whole.get(k);
      out.push(
        whole
          ? { ...whole, weight }
          : {
              id: this.ids[k]!,
              attempt: 1,
              items: this.items[k]!,
              worker: this.workers[this.worker[k]!]!,
              start: this.start[k]!,
              durationMs: this.duration[k]!,
              outcome: 'success',
              errorType: undefined,
              errorMessage: undefined,
              stack: undefined,
              itemsFailed: at(this.itemsFailed, k),
              runMs: at(this.runMs, k),
              cpuMs: at(this.cpuMs, k),
              rssBytes: at(this.rssBytes, k),
              heapGrowthBytes: at(this.heapGrowthBytes, k),
              weight,
            },
      );
    }
    return out;
  }
}

export class AttemptCollector {
  private count = 0;
  private retries = 0;
  private firstStart = Infinity;
  private lastEnd = -Infinity;
  private readonly byOutcome = new Map<string, Mutable<DurationStats>>();
  private readonly byWorker = new Map<string, Mutable<WorkerAttempts> & { readonly name: string }>();
  private readonly plain: PlainSample;
  /** Mini-batches whose first attempt succeeded and that did not try again. */
  private plainSucceeded = 0;
  private distinct = 0;
  private readonly troubled = new Map<string, Attempt[]>();
  private troubledComplete = true;
  private readonly stackHolders = new Map<string, Mutable<Attempt>>();
  private readonly usage = new Map<string, Mutable<WorkerUsage>>();
  private waitedCount = 0;
  /** The attempts that waited longest off CPU, up to WAITED_KEPT, in no order. */
  private readonly waited: Attempt[] = [];

  constructor(
    private readonly ids: IdTable,
    sampleSize = ATTEMPT_SAMPLE,
  ) {
    this.plain = new PlainSample(sampleSize);
  }

  get size(): number {
    return this.count;
  }

  add(a: Mutable<Attempt>): void {
    this.count++;
    if (a.attempt > 1) this.retries++;
    if (a.start < this.firstStart) this.firstStart = a.start;
    const end = a.start + a.durationMs;
    if (end > this.lastEnd) this.lastEnd = end;
    let s = this.byOutcome.get(a.outcome);
    if (!s) this.byOutcome.set(a.outcome, (s = { n: 0, sumMs: 0, minMs: Infinity, maxMs: -Infinity, minPositiveMs: Infinity }));
    s.n++;
    s.sumMs += a.durationMs;
    if (a.durationMs < s.minMs) s.minMs = a.durationMs;
    if (a.durationMs > s.maxMs) s.maxMs = a.durationMs;
    if (a.durationMs > 0 && a.durationMs < s.minPositiveMs) s.minPositiveMs = a.durationMs;
    let w = this.byWorker.get(a.worker);
    if (!w) this.byWorker.set(a.worker, (w = { name: a.worker, attempts: 0, failed: 0, busyMs: 0 }));
    a.worker = w.name; // one string for all the attempts of a worker (JSON.parse gives each record its own)
    w.attempts++;
    w.busyMs += a.durationMs;
    const failed = isFailure(a);
    if (failed) {
      w.failed++;
      if (a.stack !== undefined) this.keepOneStack(a);
    }
    if (a.cpuMs !== undefined && a.runMs !== undefined) this.addUsage(a, a.runMs, a.cpuMs);

    const slot = this.ids.slot(a.id);
    const flags = this.ids.flagsAt(slot);
    if ((flags & SEEN_ATTEMPT) === 0) this.distinct++;
    const list = flags & SEEN_ATTEMPT ? this.troubled.get(a.id) : undefined;
    if (list) {
      list.push(a);
      return;
    }
    if ((flags & SEEN_ATTEMPT) === 0 && a.attempt === 1 && a.outcome === 'success') {
      this.ids.addFlags(slot, SEEN_ATTEMPT | PLAIN);
      this.plainSucceeded++;
      this.plain.add(a);
      return;
    }
    this.ids.addFlags(slot, SEEN_ATTEMPT);
    if (this.troubled.size >= TROUBLED_MAX) {
      this.troubledComplete = false;
      return;
    }
    const attempts: Attempt[] = [];
    if (flags & PLAIN) {
      // it succeeded at its first attempt before (the step ran again into the folder): that attempt
      // is not at hand any more, only that it was one
      this.plainSucceeded--;
      attempts.push({ id: a.id, attempt: 1, items: 0, worker: '', start: 0, durationMs: 0, outcome: 'success', weight: 0 });
    }
    attempts.push(a);
    this.troubled.set(a.id, attempts);
  }

  private addUsage(a: Attempt, runMs: number, cpuMs: number): void {
    let u = this.usage.get(a.worker);
    if (!u) this.usage.set(a.worker, (u = { attempts: 0, busyAttempts: 0, runMs: 0, cpuMs: 0, rssMaxBytes: 0 }));
    u.attempts++;
    if (a.rssBytes !== undefined && a.rssBytes > u.rssMaxBytes) u.rssMaxBytes = a.rssBytes;
    if (runMs <= 0) return;
    u.busyAttempts++;
    u.runMs += runMs;
    u.cpuMs += cpuMs;
    if (cpuMs / runMs >= WAITED_CPU_SHARE) return;
    this.waitedCount++;
    const list = this.waited;
    if (list.length < WAITED_KEPT) {
      list.push(a);
      return;
    }
    // replace the one that waited least, if this one waited longer
    let least = 0;
    for (let k = 1; k < list.length; k++) if (offCpuMs(list[k]!) < offCpuMs(list[least]!)) least = k;
    if (runMs - cpuMs > offCpuMs(list[least]!)) list[least] = a;
  }

  /** One stack trace per cause of failure: the earliest attempt's (the one the report shows). */
  private keepOneStack(a: Mutable<Attempt>): void {
    const key = causeKey(a);
    const holder = this.stackHolders.get(key);
    if (holder === undefined) {
      if (this.stackHolders.size < STACK_CAUSES) this.stackHolders.set(key, a);
      return;
    }
    if (a.start < holder.start) {
      holder.stack = undefined;
      this.stackHolders.set(key, a);
    } else a.stack = undefined;
  }

  finish(source: AttemptSet['source']): AttemptSet {
    const fates: { fate: MiniBatchFate; first: number }[] = [];
    let kept: Attempt[] = this.plain.attempts();
    let succeeded = this.plainSucceeded;
    for (const [id, list] of this.troubled) {
      let first = Infinity;
      for (const a of list) {
        if (a.weight === 0) continue;
        kept.push(a);
        if (a.start < first) first = a.start;
      }
      list.sort((x, y) => x.attempt - y.attempt || x.start - y.start);
      const final = list[list.length - 1]!.outcome;
      if (final === 'success') succeeded++;
      fates.push({ fate: { id, attempts: list, final }, first });
    }
    kept = byStart(kept);
    fates.sort((x, y) => x.first - y.first);
    const byOutcome: Record<string, DurationStats> = {};
    for (const [k, v] of this.byOutcome) byOutcome[k] = v;
    return {
      source,
      count: this.count,
      byOutcome,
      retries: this.retries,
      firstStart: this.count > 0 ? this.firstStart : undefined,
      lastEnd: this.count > 0 ? this.lastEnd : undefined,
      byWorker: this.byWorker,
      kept,
      sampled: this.plain.sampled ? { of: this.plain.seen, kept: this.plain.kept } : undefined,
      failed: kept.filter(isFailure),
      fates: { total: this.distinct, succeeded, troubled: new Map(fates.map((f) => [f.fate.id, f.fate])), complete: this.troubledComplete },
      usage: { byWorker: this.usage, waited: { count: this.waitedCount, longest: [...this.waited].sort((x, y) => offCpuMs(y) - offCpuMs(x)) } },
    };
  }
}

/** Time in run() off CPU (of an attempt with both figures). */
export function offCpuMs(a: Attempt): number {
  return a.runMs! - a.cpuMs!;
}

/**
 * The attempts by start, then attempt number, in their order where both are equal (as a stable
 * sort gives them): the keys are taken once into typed arrays, and the indices sorted (a comparator
 * reading two objects was most of the time a sampled million took here).
 */
function byStart(list: readonly Attempt[]): Attempt[] {
  const n = list.length;
  const start = new Float64Array(n);
  const attempt = new Float64Array(n);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    start[i] = list[i]!.start;
    attempt[i] = list[i]!.attempt;
    order[i] = i;
  }
  order.sort((a, b) => start[a]! - start[b]! || attempt[a]! - attempt[b]! || a - b);
  return Array.from(order, (i) => list[i]!);
}
