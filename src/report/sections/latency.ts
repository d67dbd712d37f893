// Mini-batch latency that tells the truth: p50/p95/p99 of the successful attempts per time bucket,
// drawn as steps that break where a bucket has none (never a line across a gap); failed attempts
// marked by kind (error ×, timeout ▲, crash ◆) instead of being mixed into the percentiles; the
// timeout as a line; a logarithmic y axis to switch to (the default when max/median > 50). Then
// the distribution, stacked by outcome, and the numbers.
import { durationsOf, exactSummary, summarize, type Summary } from '../../run-folder/analysis.js';
import type { Attempt, DurationStats } from '../../run-folder/model.js';
import { histogramSvg, type HistogramBin } from '../charts/histogram.js';
import { xyChartSvg, type Mark, type MarkShape, type RangeBox, type Step } from '../charts/xy-chart.js';
import { COLORS, outcomeColor } from '../colors.js';
import { formatCount, formatDuration } from '../format.js';
import { esc, legend, plural, table, toggle, type LegendItem } from '../html.js';
import type { StepView } from '../step-view.js';

const LATENCY_BUCKETS = 500;
/** Successful attempts per bucket, on average, for a small run. */
const PER_BUCKET = 5;
const DOTS_LIMIT = 1500;
const MIN_FOR_PERCENTILES = 2;
/** Failed attempts marked one by one up to this many; beyond, per kind and time slot. */
const FAIL_MARKS = 300;
const FAIL_SLOTS = 80;
/** Buckets narrower than a few pixels get no tooltip column of their own. */
const HOVER_BUCKETS = 200;
const HISTOGRAM_BINS = 40;
/** A log axis by default when the slowest attempt is this many times the median. */
const LOG_RATIO = 50;

const FAILURE_KINDS: readonly { outcome: string; shape: MarkShape; label: string }[] = [
  { outcome: 'error', shape: 'cross', label: 'error' },
  { outcome: 'timeout', shape: 'triangle', label: 'timeout' },
  { outcome: 'crash', shape: 'diamond', label: 'crash' },
];

function shapeOf(outcome: string): MarkShape {
  return FAILURE_KINDS.find((k) => k.outcome === outcome)?.shape ?? 'cross';
}

/** run_invocation_timeout in ms, from the step span or result.json. */
function timeoutMs(view: StepView): number | undefined {
  const fromSpan = view.step.stepSpanAttributes['parallel_run.run_invocation_timeout'];
  const config = (view.step.result?.config as { run_invocation_timeout?: unknown } | undefined)?.run_invocation_timeout;
  const s = typeof fromSpan === 'number' ? fromSpan : typeof config === 'number' ? config : undefined;
  return s !== undefined && s > 0 ? s * 1000 : undefined;
}

interface Bucket {
  /** Where its attempts' durations and weights are in the step's columns, and how many. */
  from: number;
  n: number;
  failed: number;
}

/** "12 successful attempts", or "about 12 …" when they are counted from a sample. */
function counted(n: number, what: string, sampled: boolean): string {
  return `${sampled ? 'about ' : ''}${plural(Math.round(n), what)}`;
}

export function latencySection(view: StepView): string {
  const { step, index: i } = view;
  const sampled = step.attempts.sampled !== undefined;
  // in a large run, `kept` samples the successful attempts (each weighted); the failed ones are all there
  const done = step.attempts.kept.filter((a) => a.outcome !== 'aborted');
  if (done.length === 0) return '';
  const ok = done.filter((a) => a.outcome === 'success');
  const failed = done.filter((a) => a.outcome !== 'success');
  // percentiles of the successful attempts; of all when none succeeded
  const basis = ok.length > 0 ? ok : done;
  const stats = Object.entries(step.attempts.byOutcome).filter(([o]) => o !== 'aborted');
  const basisStats = basis === ok ? stats.filter(([o]) => o === 'success') : stats;
  const basisCount = basisStats.reduce((s, [, x]) => s + x.n, 0);
  let t0 = Infinity;
  let tMax = -Infinity;
  for (const a of done) {
    if (a.start < t0) t0 = a.start;
    if (a.start > tMax) tMax = a.start;
  }
  const span = Math.max(1, tMax - t0);
  const nb = Math.max(1, Math.min(LATENCY_BUCKETS, Math.ceil(basisCount / PER_BUCKET)));
  const width = span / nb;
  const bucketOf = (a: Attempt): number => Math.min(nb - 1, Math.floor(((a.start - t0) / span) * nb));
  // each bucket's attempts in a range of two columns, in the order of `basis` (a counting sort): its
  // percentiles from typed arrays, not from a list of objects a bucket
  const buckets: (Bucket | undefined)[] = new Array(nb);
  const of = new Uint32Array(basis.length);
  basis.forEach((a, j) => {
    const k = (of[j] = bucketOf(a));
    (buckets[k] ??= { from: 0, n: 0, failed: 0 }).n++;
  });
  let next = 0;
  for (const b of buckets) {
    if (!b) continue;
    b.from = next;
    next += b.n;
  }
  const ms = new Float64Array(basis.length);
  const weights = new Float64Array(basis.length);
  const filled = new Uint32Array(nb);
  basis.forEach((a, j) => {
    const at = buckets[of[j]!]!.from + filled[of[j]!]!++;
    ms[at] = a.durationMs;
    weights[at] = a.weight;
  });
  if (basis === ok) for (const a of failed) (buckets[bucketOf(a)] ??= { from: 0, n: 0, failed: 0 }).failed++;

  const p50: Step[] = [];
  const p95: Step[] = [];
  const p99: Step[] = [];
  const boxes: RangeBox[] = [];
  const hovers: { x0: number; x1: number; title: string }[] = [];
  const what = basis === ok ? 'successful attempt' : 'attempt';
  const withHovers = nb <= HOVER_BUCKETS;
  buckets.forEach((b, k) => {
    if (!b) return;
    const x0 = k * width;
    const x1 = (k + 1) * width;
    const counts = b.failed > 0 ? ` and ${plural(b.failed, 'failed attempt')}` : '';
    if (b.n === 0) {
      if (withHovers) hovers.push({ x0, x1, title: `${formatDuration(x0)} – ${formatDuration(x1)}: no ${what}${counts}` });
      return;
    }
    const q = summarize(ms.subarray(b.from, b.from + b.n), weights.subarray(b.from, b.from + b.n));
    // one attempt has no percentiles: its dot (or its range) shows it
    if (b.n >= MIN_FOR_PERCENTILES) {
      p50.push({ x0, x1, y: q.p50 });
      p95.push({ x0, x1, y: q.p95 });
      p99.push({ x0, x1, y: q.p99 });
    }
    boxes.push({ x0, x1, lo: q.min, hi: q.max });
    if (withHovers) hovers.push({
      x0,
      x1,
      title: `${formatDuration(x0)} – ${formatDuration(x1)}: ${counted(q.n, what, sampled)}${counts}; p50 ${formatDuration(q.p50)} · p95 ${formatDuration(q.p95)} · p99 ${formatDuration(q.p99)} · max ${formatDuration(q.max)}`,
    });
  });

  const marks: Mark[] = [];
  const dots = basis === ok && basisCount <= DOTS_LIMIT;
  if (dots) {
    for (const a of ok) marks.push({ x: a.start - t0, y: a.durationMs, color: COLORS.success, size: 2.6, opacity: 0.6, title: `${a.id} #${a.attempt}: ${formatDuration(a.durationMs)}`, mb: a.id });
  }
  const failMarks = failureMarks(failed, t0, span);
  marks.push(...failMarks);
  const timeout = timeoutMs(view);
  const max = Math.max(...stats.map(([, x]) => x.maxMs));
  const hlines = timeout !== undefined && (failed.some((a) => a.outcome === 'timeout') || max >= timeout * 0.5) ? [{ y: timeout, label: `run_invocation_timeout ${formatDuration(timeout)}`, color: COLORS.timeout }] : [];
  const basisOutcomes = basisStats.map(([o]) => o);
  const median = durationsOf(step.attempts, basisOutcomes).p50;
  const logDefault = median > 0 && Math.max(max, hlines[0]?.y ?? 0) / median > LOG_RATIO;
  const chart = (log: boolean): string =>
    xyChartSvg({
      id: `latency-svg-${i}${log ? '-log' : ''}`,
      label: `${step.label} mini-batch latency over time${log ? ' (logarithmic)' : ''}`,
      steps: [
        { name: 'p50', color: COLORS.p50, steps: p50, width: 2 },
        { name: 'p95', color: COLORS.p95, steps: p95 },
        { name: 'p99', color: COLORS.p99, steps: p99, dash: true },
      ],
      boxes: dots ? undefined : { color: COLORS.band, boxes },
      marks,
      hlines,
      hovers,
      xTime: true,
      xDomain: [0, span],
      xLabel: 'time since the first attempt',
      yFormat: formatDuration,
      yMin: 0,
      yLog: log,
      attrs: ` data-scale="${log ? 'log' : 'linear'}"`,
    });
  const legendItems: LegendItem[] = [
    { label: 'p50', color: COLORS.p50, shape: 'line' },
    { label: 'p95', color: COLORS.p95, shape: 'line' },
    { label: 'p99', color: COLORS.p99, shape: 'dash' },
    dots ? { label: 'successful attempt', color: COLORS.success, shape: 'circle' } : { label: 'min–max per bucket', color: '#b8cce6' },
    ...FAILURE_KINDS.filter((k) => failed.some((a) => a.outcome === k.outcome)).map((k) => ({ label: `${k.label}${failMarks.length < failed.length ? 's (the slowest per time slot)' : ''}`, color: outcomeColor(k.outcome), shape: k.shape })),
    ...(hlines.length > 0 ? [{ label: 'run_invocation_timeout', color: COLORS.timeout, shape: 'dash' as const }] : []),
  ];
  const caption =
    `Duration of attempts over the run: p50, p95 and p99 of the ${basis === ok ? 'successful attempts' : 'attempts (none succeeded)'} per time bucket ` +
    `(${nb === 1 ? 'one bucket' : `${nb} buckets of ${formatDuration(width)}`}; a gap is a bucket with fewer than ${MIN_FOR_PERCENTILES})` +
    (failed.length > 0 ? `; ${plural(failed.length, 'failed attempt')} marked ${failMarks.length < failed.length ? `by kind in ${FAIL_SLOTS} time slots` : 'one by one'}` : '');
  const over = toggle(`latency-log-${i}`, 'logarithmic y axis', chart(false), chart(true), logDefault);
  return (
    `<section class="sub" id="latency-${i}"><h3>Mini-batch latency</h3>` +
    `<figure class="chart" data-chart="latency"><figcaption>${esc(caption)}</figcaption>${over}${legend(legendItems)}</figure>` +
    distribution(view, done, durationsOf(step.attempts, basisOutcomes), basis === ok, stats) +
    statsTable(view, stats) +
    '</section>'
  );
}

/** One mark per failed attempt (clickable), or, for many, one per kind and time slot at the slowest of them. */
function failureMarks(failed: readonly Attempt[], t0: number, span: number): Mark[] {
  if (failed.length <= FAIL_MARKS) {
    return failed.map((a) => ({
      x: a.start - t0,
      y: a.durationMs,
      color: outcomeColor(a.outcome),
      shape: shapeOf(a.outcome),
      size: 4.5,
      cls: `mark-${a.outcome}`,
      mb: a.id,
      title: `${a.id} #${a.attempt}: ${a.outcome} after ${formatDuration(a.durationMs)}${a.errorMessage ? ` — ${a.errorMessage.split('\n')[0]!.slice(0, 100)}` : ''}`,
    }));
  }
  const slot = span / FAIL_SLOTS;
  const groups = new Map<string, { k: number; outcome: string; n: number; max: number }>();
  for (const a of failed) {
    const k = Math.min(FAIL_SLOTS - 1, Math.floor((a.start - t0) / slot));
    const key = `${a.outcome}|${k}`;
    const g = groups.get(key) ?? { k, outcome: a.outcome, n: 0, max: 0 };
    g.n++;
    if (a.durationMs > g.max) g.max = a.durationMs;
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({
    x: (g.k + 0.5) * slot,
    y: g.max,
    color: outcomeColor(g.outcome),
    shape: shapeOf(g.outcome),
    size: 5,
    cls: `mark-${g.outcome}`,
    title: `${formatDuration(g.k * slot)} – ${formatDuration((g.k + 1) * slot)}: ${plural(g.n, g.outcome)}, the slowest ${formatDuration(g.max)}`,
  }));
}

const LAYERS = [
  { outcome: 'success', name: 'successful', color: COLORS.line },
  { outcome: 'error', name: 'error', color: COLORS.error },
  { outcome: 'timeout', name: 'timeout', color: COLORS.timeout },
  { outcome: 'crash', name: 'crash', color: COLORS.crash },
] as const;

function distribution(view: StepView, done: readonly Attempt[], s: Summary, ofSuccesses: boolean, stats: readonly [string, DurationStats][]): string {
  const positive = Math.min(...stats.map(([, x]) => x.minPositiveMs));
  const lo = Number.isFinite(positive) ? positive : 0;
  const hi = Math.max(...stats.map(([, x]) => x.maxMs));
  const log = lo > 0 && hi / lo >= 20;
  const layerOf = (outcome: string): number => Math.max(0, LAYERS.findIndex((l) => l.outcome === outcome));
  const bins: { lo: number; hi: number; counts: number[] }[] = [];
  if (hi > lo) {
    for (let k = 0; k < HISTOGRAM_BINS; k++) {
      const a = log ? lo * (hi / lo) ** (k / HISTOGRAM_BINS) : lo + ((hi - lo) * k) / HISTOGRAM_BINS;
      const b = log ? lo * (hi / lo) ** ((k + 1) / HISTOGRAM_BINS) : lo + ((hi - lo) * (k + 1)) / HISTOGRAM_BINS;
      bins.push({ lo: a, hi: b, counts: LAYERS.map(() => 0) });
    }
    for (const a of done) {
      const v = Math.max(a.durationMs, lo);
      const k = log ? Math.floor((Math.log(v / lo) / Math.log(hi / lo)) * HISTOGRAM_BINS) : Math.floor(((v - lo) / (hi - lo)) * HISTOGRAM_BINS);
      bins[Math.min(HISTOGRAM_BINS - 1, Math.max(0, k))]!.counts[layerOf(a.outcome)]! += a.weight;
    }
    // a sampled attempt counts as its weight: whole numbers again
    for (const b of bins) b.counts = b.counts.map(Math.round);
  } else {
    const counts = LAYERS.map(() => 0);
    for (const a of done) counts[layerOf(a.outcome)]! += a.weight;
    bins.push({ lo: lo * 0.9, hi: lo * 1.1 || 1, counts: counts.map(Math.round) });
  }
  const used = LAYERS.filter((_, k) => bins.some((b) => b.counts[k]! > 0));
  const hist = histogramSvg({
    id: `histogram-svg-${view.index}`,
    label: `${view.step.label} mini-batch latency distribution`,
    bins: bins as HistogramBin[],
    layers: LAYERS.map((l) => ({ name: l.name, color: l.color })),
    markers: [
      { value: s.p50, label: 'p50', color: COLORS.p50 },
      { value: s.p95, label: 'p95', color: COLORS.p95 },
      { value: s.p99, label: 'p99', color: COLORS.p99 },
    ],
    log,
    format: formatDuration,
  });
  return (
    `<figure class="chart" data-chart="histogram"><figcaption>Distribution of attempt durations (${log ? 'logarithmic' : 'linear'} bins)${used.length > 1 ? ', stacked by outcome' : ''}; ` +
    `the markers are the percentiles of the ${ofSuccesses ? 'successful attempts' : 'attempts'}</figcaption>${hist}` +
    `${used.length > 1 ? legend(used.map((l) => ({ label: l.name === 'successful' ? 'successful attempts' : `${l.name} attempts`, color: l.color }))) : ''}</figure>`
  );
}

/** Counts, min, mean and max exact; the percentiles of a large run from its sample. */
function statsTable(view: StepView, stats: readonly [string, DurationStats][]): string {
  const { attempts } = view.step;
  // outcomes in the order their first attempt started
  const order = new Map<string, number>();
  for (const a of attempts.kept) if (a.outcome !== 'aborted' && !order.has(a.outcome)) order.set(a.outcome, a.start);
  const rows: [string, Summary][] = [
    ['all attempts', exactSummary(durationsOf(attempts, stats.map(([o]) => o)), stats.map(([, x]) => x))],
    ...stats.filter(([o]) => order.has(o)).sort((a, b) => order.get(a[0])! - order.get(b[0])!).map(([o, x]) => [o, exactSummary(durationsOf(attempts, [o]), [x])] as [string, Summary]),
  ];
  return table(
    ['attempts', 'count', 'min', 'mean', 'p50', 'p95', 'p99', 'max'],
    rows.map(([label, st]) => [
      esc(label),
      esc(formatCount(st.n)),
      esc(formatDuration(st.min)),
      esc(formatDuration(st.mean)),
      `<b>${esc(formatDuration(st.p50))}</b>`,
      `<b>${esc(formatDuration(st.p95))}</b>`,
      `<b>${esc(formatDuration(st.p99))}</b>`,
      esc(formatDuration(st.max)),
    ]),
    'num',
  );
}
