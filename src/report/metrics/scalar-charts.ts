// step.log scalars as line charts over their step index (whole-number ticks when the index is
// one), a long series as its mean and min–max per bucket; series that share a stem (train_loss /
// val_loss) overlaid in one chart, with a toggle to see them apart.
import type { MetricRecord, MetricSeries } from '../../run-folder/model.js';
import { xyChartSvg, type Band, type LineSeries } from '../charts/xy-chart.js';
import { COLORS, PALETTE } from '../colors.js';
import { formatNumber, maxOf, minOf } from '../format.js';
import { esc, legend, plural, toggle } from '../html.js';

const METRIC_POINTS = 1000;
/** Points drawn as dots as well as a line, for short series. */
const DOT_POINTS = 40;

export interface SeriesData {
  readonly points: [number, number][];
  readonly withStep: boolean;
  /** All x are whole numbers (a step index, or the record number). */
  readonly integer: boolean;
  /** Values, the last, the smallest, the largest. */
  readonly n: number;
  readonly last: number;
  readonly min: number;
  readonly max: number;
  /** Set when the series was aggregated: min–max per bucket. */
  readonly band?: [number, number, number][];
}

/** A scalar's values as points: over their step index when every record has one, else in order. */
export function seriesData(series: MetricSeries): SeriesData {
  const b = series.buckets;
  if (b) {
    // more values than were kept: their buckets (the reader's)
    return {
      points: b.buckets.map((x) => [x.x, x.mean]),
      withStep: b.withStep,
      integer: b.integer,
      n: b.n,
      last: b.last,
      min: b.min,
      max: b.max,
      band: b.buckets.map((x) => [x.x, x.min, x.max]),
    };
  }
  return recordsData(series.records);
}

function recordsData(records: readonly MetricRecord[]): SeriesData {
  const withStep = records.every((r) => r.step !== undefined);
  const pts: [number, number][] = records.map((r, k) => [withStep ? r.step! : k + 1, r.value as number]);
  if (withStep) pts.sort((a, b) => a[0] - b[0]);
  const values = records.map((r) => r.value as number);
  const integer = pts.every(([x]) => Number.isInteger(x));
  const figures = { n: values.length, last: values[values.length - 1]!, min: minOf(values), max: maxOf(values) };
  if (pts.length <= METRIC_POINTS) return { points: pts, withStep, integer, ...figures };
  const xMin = pts[0]![0];
  const xMax = pts[pts.length - 1]![0];
  const nb = METRIC_POINTS / 2;
  const acc: { n: number; sum: number; min: number; max: number; x: number }[] = [];
  for (const [x, y] of pts) {
    const b = Math.min(nb - 1, Math.floor(((x - xMin) / Math.max(1e-12, xMax - xMin)) * nb));
    const a = (acc[b] ??= { n: 0, sum: 0, min: Infinity, max: -Infinity, x: 0 });
    a.n++;
    a.sum += y;
    a.x += x;
    if (y < a.min) a.min = y;
    if (y > a.max) a.max = y;
  }
  const points: [number, number][] = [];
  const band: [number, number, number][] = [];
  for (const a of acc) {
    if (!a) continue;
    points.push([a.x / a.n, a.sum / a.n]);
    band.push([a.x / a.n, a.min, a.max]);
  }
  return { points, withStep, integer, ...figures, band };
}

function summary(name: string, d: SeriesData): string {
  return `<b>${esc(name)}</b> · ${plural(d.n, 'value')} · last ${esc(formatNumber(d.last))} · min ${esc(formatNumber(d.min))} · max ${esc(formatNumber(d.max))}${d.band ? ' · mean and min–max per bucket' : ''}`;
}

function chart(id: string, label: string, series: readonly { name: string; data: SeriesData; color: string }[]): string {
  const bands: Band[] = series.filter((s) => s.data.band).map((s) => ({ color: s.color, points: s.data.band!, title: `${s.name}: min–max per bucket` }));
  const lines: LineSeries[] = series.map((s) => ({ name: s.name, color: s.color, points: s.data.points, dots: s.data.points.length <= DOT_POINTS }));
  return xyChartSvg({
    id,
    label,
    lines,
    bands,
    xLabel: series[0]!.data.withStep ? 'step' : 'record',
    xInteger: series.every((s) => s.data.integer),
    width: 480,
    height: 220,
  });
}

/** One scalar series. */
export function scalarFigure(name: string, series: MetricSeries, id: string): string {
  const data = seriesData(series);
  return `<figure class="chart small" data-chart="metric"><figcaption>${summary(name, data)}</figcaption>${chart(id, `metric ${name}`, [{ name, data, color: COLORS.line }])}</figure>`;
}

/** Series of one stem in one chart (a toggle shows them one by one). */
export function overlayFigure(stem: string, members: readonly MetricSeries[], id: string): string {
  const series = members.map((m, k) => ({ name: m.name, data: seriesData(m), color: PALETTE[k % PALETTE.length]! }));
  const together = chart(id, `metrics ${series.map((s) => s.name).join(', ')}`, series) + legend(series.map((s) => ({ label: s.name, color: s.color, shape: 'line' as const })));
  const apart = series.map((s, k) => `<div class="apart"><div class="cap">${summary(s.name, s.data)}</div>${chart(`${id}-${k}`, `metric ${s.name}`, [{ name: s.name, data: s.data, color: s.color }])}</div>`).join('');
  const caption = `<b>${esc(stem)}</b>: ${series.map((s) => `${esc(s.name)} (last ${esc(formatNumber(s.data.last))})`).join(' · ')}`;
  return `<figure class="chart small" data-chart="overlay" data-stem="${esc(stem)}"><figcaption>${caption}</figcaption>${toggle(`${id}-apart`, 'separate charts', together, apart)}</figure>`;
}
