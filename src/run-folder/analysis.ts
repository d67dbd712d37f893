// Statistics over a step's mini-batch attempts, shared by the report and the doctor: percentiles
// (weighted, for the sampled attempts of a large run), a trend test, failures grouped by cause.
import type { Attempt, AttemptSet, DurationStats, MiniBatchFate, StepRun } from './model.js';

/** Linear-interpolated percentile of sorted values (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (n === 1) return sorted[0]!;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * n, min, mean, max and the percentiles of `values`; with `weights`, of each value counted as many
 * times as its weight (a sampled attempt stands for several): the same figures when every weight
 * is 1.
 */
export function summarize(values: ArrayLike<number>, weights?: ArrayLike<number>): Summary {
  if (weights !== undefined && !allOnes(weights)) return summarizeWeighted(values, weights);
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  return {
    n,
    min: n ? sorted[0]! : Number.NaN,
    mean: n ? sum / n : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1]! : Number.NaN,
  };
}

function allOnes(weights: ArrayLike<number>): boolean {
  for (let k = 0; k < weights.length; k++) if (weights[k] !== 1) return false;
  return true;
}

function summarizeWeighted(values: ArrayLike<number>, weights: ArrayLike<number>): Summary {
  // a sample has few distinct weights (1, and the weight of the sampled attempts): one sorted run
  // of values per weight, merged while the positions are walked
  const groups = new Map<number, number[]>();
  let total = 0;
  let sum = 0;
  for (let k = 0; k < values.length; k++) {
    const w = weights[k]!;
    const g = groups.get(w);
    if (g) g.push(values[k]!);
    else groups.set(w, [values[k]!]);
    total += w;
    sum += values[k]! * w;
  }
  const n = values.length;
  if (n === 0) return { n: 0, min: Number.NaN, mean: Number.NaN, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const runs = [...groups].map(([w, list]) => ({ w, v: Float64Array.from(list).sort(), at: 0 }));
  // percentile() over the values repeated as often as their weights: the value at position
  // floor(rank) and at the one after, interpolated
  const ranks = [50, 95, 99].map((p) => (p / 100) * Math.max(0, total - 1));
  const positions = [...new Set(ranks.flatMap((r) => [Math.floor(r), Math.floor(r) + 1]))].sort((a, b) => a - b);
  const value = new Map<number, number>();
  let next = 0;
  let covered = 0;
  let min = Number.NaN;
  let max = Number.NaN;
  for (let i = 0; i < n; i++) {
    let run = runs[0]!;
    for (const r of runs) if (r.at < r.v.length && (run.at >= run.v.length || r.v[r.at]! < run.v[run.at]!)) run = r;
    const v = run.v[run.at++]!;
    if (i === 0) min = v;
    max = v;
    covered += run.w;
    while (next < positions.length && positions[next]! < covered) value.set(positions[next++]!, v);
  }
  while (next < positions.length) value.set(positions[next++]!, max);
  const q = ranks.map((r) => {
    const lo = value.get(Math.floor(r))!;
    return lo + (value.get(Math.floor(r) + 1)! - lo) * (r - Math.floor(r));
  });
  return { n: Math.round(total), min, mean: sum / total, p50: q[0]!, p95: q[1]!, p99: q[2]!, max };
}

/** Durations (ms) of attempts, each weighted as it is sampled. */
export function summarizeDurations(attempts: readonly Attempt[]): Summary {
  return summarize(
    attempts.map((a) => a.durationMs),
    attempts.map((a) => a.weight),
  );
}

/** A step's kept attempts as columns (durationsOf filters them by outcome several times: typed arrays, not 200,000 objects, each time). */
interface DurationColumns {
  readonly codes: ReadonlyMap<string, number>;
  readonly code: Uint32Array;
  readonly ms: Float64Array;
  readonly weight: Float64Array;
  readonly known: Map<string, Summary>;
}

const bySet = new WeakMap<AttemptSet, DurationColumns>();

function columnsOf(attempts: AttemptSet): DurationColumns {
  let c = bySet.get(attempts);
  if (c) return c;
  const kept = attempts.kept;
  const codes = new Map<string, number>();
  const code = new Uint32Array(kept.length);
  const ms = new Float64Array(kept.length);
  const weight = new Float64Array(kept.length);
  for (let k = 0; k < kept.length; k++) {
    const a = kept[k]!;
    let n = codes.get(a.outcome);
    if (n === undefined) codes.set(a.outcome, (n = codes.size));
    code[k] = n;
    ms[k] = a.durationMs;
    weight[k] = a.weight;
  }
  bySet.set(attempts, (c = { codes, code, ms, weight, known: new Map() }));
  return c;
}

/** The durations of a step's attempts of these outcomes (in a large run, of its sample, weighted): worked out once. */
export function durationsOf(attempts: AttemptSet, outcomes: readonly string[]): Summary {
  const key = [...outcomes].sort().join(',');
  const c = columnsOf(attempts);
  let s = c.known.get(key);
  if (!s) {
    const wanted = new Uint8Array(c.codes.size);
    for (const o of outcomes) {
      const n = c.codes.get(o);
      if (n !== undefined) wanted[n] = 1;
    }
    let count = 0;
    for (let k = 0; k < c.code.length; k++) count += wanted[c.code[k]!]!;
    // in the order they are kept, as summarizeDurations over the attempts themselves
    const values = new Float64Array(count);
    const weights = new Float64Array(count);
    for (let k = 0, j = 0; k < c.code.length; k++) {
      if (wanted[c.code[k]!] === 0) continue;
      values[j] = c.ms[k]!;
      weights[j++] = c.weight[k]!;
    }
    s = summarize(values, weights);
    c.known.set(key, s);
  }
  return s;
}

export function median(values: readonly number[]): number {
  return percentile(Float64Array.from(values).sort(), 50);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf). */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(z) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

/** Mann-Kendall trend test: S, the normal approximation z, and the one-sided p-value for an increase. */
export function mannKendall(values: readonly number[]): { s: number; z: number; pIncrease: number; tau: number } {
  const n = values.length;
  const s = kendallS(values);
  const variance = (n * (n - 1) * (2 * n + 5)) / 18;
  const z = variance > 0 ? (s > 0 ? (s - 1) / Math.sqrt(variance) : s < 0 ? (s + 1) / Math.sqrt(variance) : 0) : 0;
  const pairs = (n * (n - 1)) / 2;
  return { s, z, pIncrease: 1 - normalCdf(z), tau: pairs > 0 ? s / pairs : 0 };
}

/**
 * Mann-Kendall's S, the sum of sign(x_j - x_i) over the pairs i < j, in O(n log n) (a resource
 * series has thousands of samples a process): the pairs less the tied ones less twice the
 * inversions (i < j with x_i > x_j), counted by a merge sort.
 */
export function kendallS(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  let a = Float64Array.from(values);
  let b = new Float64Array(n);
  let inversions = 0;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        if (a[j]! < a[i]!) {
          inversions += mid - i; // a[j] is below every value left in the first half
          b[k++] = a[j++]!;
        } else b[k++] = a[i++]!;
      }
      while (i < mid) b[k++] = a[i++]!;
      while (j < hi) b[k++] = a[j++]!;
    }
    [a, b] = [b, a];
  }
  let tied = 0;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && a[j] === a[i]) j++;
    tied += ((j - i) * (j - i - 1)) / 2;
    i = j;
  }
  return (n * (n - 1)) / 2 - tied - 2 * inversions;
}

/** Theil-Sen slope: the median of the pairwise slopes (robust to outliers). */
export function theilSen(xs: readonly number[], ys: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < xs.length - 1; i++) {
    for (let j = i + 1; j < xs.length; j++) {
      const dx = xs[j]! - xs[i]!;
      if (dx !== 0) slopes.push((ys[j]! - ys[i]!) / dx);
    }
  }
  return slopes.length ? median(slopes) : 0;
}

/** Failed attempts: an error, a timeout or a crash (an attempt cut by the end of the job is not one). */
export function isFailure(a: Attempt): boolean {
  return a.outcome !== 'success' && a.outcome !== 'aborted';
}

export function categoryOf(a: Attempt): string {
  switch (a.outcome) {
    case 'timeout':
      return 'RunTimeout';
    case 'crash':
      return 'WorkerCrash';
    case 'error':
      return a.errorType === 'InputError' ? 'InputError' : 'RunException';
    default:
      return a.outcome;
  }
}

/**
 * A message with its variable parts replaced, so that the same failure on different inputs
 * groups together: ids, numbers, paths, quoted values, hex and uuids.
 */
export function messagePattern(message: string): string {
  let s = message.split('\n')[0]!.trim();
  s = s
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>')
    .replace(/(?:[A-Za-z]:)?(?:[\\/][\w.@+~-]+){2,}[\\/]?/g, '<path>')
    .replace(/\bmb-\d+\b/g, '<mini-batch>')
    .replace(/\bworker-\d+\b/g, '<worker>')
    .replace(/\b[0-9a-f]{12,}\b/gi, '<hex>')
    .replace(/"[^"]{0,200}"|'[^']{0,200}'/g, '<value>')
    .replace(/-?\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, '<n>')
    .replace(/\s+/g, ' ');
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** The first stack frame outside node internals and step-telemetry itself: where to look. */
export function topFrame(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  for (const line of stack.split('\n')) {
    const m = /^\s+at (.*)$/.exec(line);
    if (!m) continue;
    const frame = m[1]!;
    if (/node:internal|\(node:|^node:|step-telemetry\/dist|[\\/]dist[\\/](?:runner|step|signals)[\\/.]|node_modules[\\/]@opentelemetry/.test(frame)) continue;
    return frame;
  }
  return undefined;
}

export interface Cause {
  readonly key: string;
  readonly category: string;
  readonly type?: string;
  readonly pattern: string;
  readonly example: string;
  readonly stack?: string;
  attempts: number;
  readonly miniBatches: Set<string>;
  /** Mini-batches whose last attempt failed with this cause (they failed for good). */
  finalFailures: number;
  /** Mini-batches that failed with this cause and later succeeded. */
  recovered: number;
  readonly workers: Set<string>;
  first: number;
  last: number;
  readonly exampleIds: string[];
}

function typeOf(a: Attempt, category: string): string | undefined {
  return a.errorType && a.errorType !== category ? a.errorType : undefined;
}

/** What groups failed attempts: the category, the error type and the message with its variable parts masked. */
export function causeKey(a: Attempt): string {
  const category = categoryOf(a);
  return `${category}|${typeOf(a, category) ?? ''}|${messagePattern(a.errorMessage ?? a.outcome)}`;
}

/** Failed attempts grouped by cause (category, error type and message pattern), most frequent first. */
export function groupFailures(step: StepRun): Cause[] {
  const causes = new Map<string, Cause>();
  const fateMap: ReadonlyMap<string, MiniBatchFate> = step.attempts.fates.troubled;
  for (const a of step.attempts.failed) {
    const category = categoryOf(a);
    const message = a.errorMessage ?? a.outcome;
    const pattern = messagePattern(message);
    const type = typeOf(a, category);
    const key = `${category}|${type ?? ''}|${pattern}`;
    let c = causes.get(key);
    if (!c) {
      c = {
        key,
        category,
        type,
        pattern,
        example: message,
        stack: a.stack,
        attempts: 0,
        miniBatches: new Set(),
        finalFailures: 0,
        recovered: 0,
        workers: new Set(),
        first: a.start,
        last: a.start,
        exampleIds: [],
      };
      causes.set(key, c);
    }
    c.attempts++;
    if (!c.miniBatches.has(a.id)) {
      c.miniBatches.add(a.id);
      if (c.exampleIds.length < 12) c.exampleIds.push(a.id);
      const fate = fateMap.get(a.id);
      if (fate) {
        const last = fate.attempts[fate.attempts.length - 1]!;
        if (last.outcome === 'success') c.recovered++;
        else if (isFailure(last) && causeKey(last) === key) c.finalFailures++;
      }
    }
    c.workers.add(a.worker);
    if (a.start < c.first) c.first = a.start;
    if (a.start > c.last) c.last = a.start;
  }
  return [...causes.values()].sort((a, b) => b.attempts - a.attempts || b.miniBatches.size - a.miniBatches.size);
}

/** The attempts that ran to an answer or to the timeout (by default), in start order. */
export function completed(attempts: readonly Attempt[], outcomes: ReadonlySet<string> = new Set(['success', 'error', 'timeout'])): Attempt[] {
  return attempts.filter((a) => outcomes.has(a.outcome));
}

/** Mini-batches that took more than one attempt (or started past the first: only the processed report). */
export function retried(fate: MiniBatchFate): boolean {
  return fate.attempts.length > 1 || fate.attempts[0]!.attempt > 1;
}

/** Attempts that failed (error, timeout, crash), exact. */
export function failedCount(attempts: AttemptSet): number {
  return attempts.count - (attempts.byOutcome.success?.n ?? 0) - (attempts.byOutcome.aborted?.n ?? 0);
}

/** A summary whose count, min, mean and max are the exact figures (its percentiles may come from a sample). */
export function exactSummary(s: Summary, stats: readonly DurationStats[]): Summary {
  let n = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of stats) {
    n += x.n;
    sum += x.sumMs;
    if (x.minMs < min) min = x.minMs;
    if (x.maxMs > max) max = x.maxMs;
  }
  return n === 0 ? s : { ...s, n, min, mean: sum / n, max };
}
