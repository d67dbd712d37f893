// The step.log metrics: scalar series as charts (those that share a stem overlaid), single
// values in a table, lists as charts, confusion matrices as heatmaps, other rows and tables as
// tables, and the tags.
import type { MetricSeries } from '../../run-folder/model.js';
import { formatNumber } from '../format.js';
import { esc, iso, table } from '../html.js';
import { overlayFigure, scalarFigure, seriesData } from '../metrics/scalar-charts.js';
import { stemGroups } from '../metrics/stems.js';
import { listFigure, rowsFigure, tableFigure } from '../metrics/table-figures.js';
import type { StepView } from '../step-view.js';

const METRIC_CHARTS = 40;

/** Finite values of a scalar. */
function valuesOf(s: MetricSeries): number {
  return s.buckets?.n ?? s.records.length;
}

export function metricsSection(view: StepView): string {
  const { step, index: i } = view;
  if (step.metrics.length === 0) return '';
  // scalar series (two values or more) and the groups among them
  const series = new Map<string, MetricSeries>();
  for (const m of step.metrics) if (m.kind === 'scalar' && valuesOf(m) > 0) series.set(m.name, m);
  const charted = [...series.entries()].filter(([, v]) => valuesOf(v) > 1).map(([k]) => k);
  const groupOf = new Map<string, { stem: string; names: string[] }>();
  for (const g of stemGroups(charted)) {
    const names = g.names.filter((n) => !groupOf.has(n));
    // one x axis: all with a step index, or none
    const withStep = new Set(names.map((n) => seriesData(series.get(n)!).withStep));
    if (names.length < 2 || withStep.size > 1) continue;
    for (const n of names) groupOf.set(n, { stem: g.stem, names });
  }

  const charts: string[] = [];
  const singles: string[][] = [];
  const overflow: string[][] = [];
  const tables: string[] = [];
  let tags: Record<string, string> = {};
  let n = 0;
  const id = (): string => `metric-svg-${i}-${n++}`;
  for (const m of step.metrics) {
    const { kind, name } = m;
    if (kind === 'scalar') {
      const numeric = series.get(name);
      if (!numeric) continue;
      if (valuesOf(numeric) === 1) {
        const r = numeric.records[0]!;
        singles.push([esc(name), esc(formatNumber(r.value as number)), r.step !== undefined ? esc(String(r.step)) : '', esc(iso(r.time))]);
        continue;
      }
      const group = groupOf.get(name);
      if (group && group.names[0] !== name) continue; // drawn with the group's first
      if (charts.length < METRIC_CHARTS) {
        charts.push(group ? overlayFigure(group.stem, group.names.map((g) => series.get(g)!), id()) : scalarFigure(name, numeric, id()));
        continue;
      }
      for (const g of group?.names ?? [name]) {
        const d = seriesData(series.get(g)!);
        overflow.push([esc(g), esc(String(d.n)), esc(formatNumber(d.last)), esc(formatNumber(d.min)), esc(formatNumber(d.max))]);
      }
    } else if (kind === 'list') tables.push(listFigure(m, id()));
    else if (kind === 'row') tables.push(rowsFigure(m, id()));
    else if (kind === 'table') tables.push(tableFigure(m, id()));
    else if (kind === 'tags') for (const r of m.records) tags = { ...tags, ...((r.value as Record<string, string>) ?? {}) };
  }
  const parts: string[] = [];
  if (charts.length > 0) parts.push(`<div class="grid">${charts.join('')}</div>`);
  if (singles.length > 0) parts.push(`<h4>Single values</h4>${table(['name', 'value', 'step', 'time'], singles)}`);
  if (overflow.length > 0) parts.push(`<h4>More series</h4>${table(['name', 'values', 'last', 'min', 'max'], overflow)}`);
  if (tables.length > 0) parts.push(`<div class="grid">${tables.join('')}</div>`);
  if (Object.keys(tags).length > 0) parts.push(`<h4>Tags</h4>${table(['tag', 'value'], Object.entries(tags).map(([k, v]) => [esc(k), esc(v)]))}`);
  return `<section class="sub" id="metrics-${i}"><h3>Metrics (step.log)</h3>${parts.join('')}</section>`;
}
