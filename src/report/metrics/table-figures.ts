// step.logList, logRow and logTable records: a list as a line chart over its positions, a
// confusion matrix as a heatmap, other rows and tables as tables. The numbers behind a picture are
// one click away (a <details> under it).
import type { MetricRecord, MetricSeries } from '../../run-folder/model.js';
import { heatmapSvg } from '../charts/heatmap.js';
import { xyChartSvg } from '../charts/xy-chart.js';
import { COLORS } from '../colors.js';
import { formatCount, formatNumber, maxOf, minOf } from '../format.js';
import { cellText, esc, plural, table } from '../html.js';
import { asConfusionMatrix, rowsToColumns, type ConfusionMatrix } from './confusion.js';

const TABLE_ROWS = 500;
const LIST_ROWS = 200;
const DOT_POINTS = 40;

function more(n: number, shown: number, what: string): string {
  return n > shown ? `<p class="hint">${formatCount(n - shown)} more ${what} not shown</p>` : '';
}

function times(series: MetricSeries): string {
  return series.count > 1 ? `, logged ${series.count} times (the last shown)` : '';
}

/** A list of numbers: a line chart over its positions, its values behind a toggle. */
export function listFigure(series: MetricSeries, id: string): string {
  const { name, records } = series;
  const last = records[records.length - 1]!;
  const values = Array.isArray(last.value) ? (last.value as unknown[]) : [];
  const numbers = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const valuesTable = table(['#', 'value'], values.slice(0, LIST_ROWS).map((v, k) => [esc(String(k)), cellText(v)]), 'num') + more(values.length, LIST_ROWS, 'values');
  const head = `<b>${esc(name)}</b> · list${esc(times(series))}, ${plural(values.length, 'value')}`;
  if (numbers.length < 2 || numbers.length !== values.length) {
    return `<div class="mtable"><h4>${head}</h4>${valuesTable}</div>`;
  }
  const chart = xyChartSvg({
    id,
    label: `list ${name}`,
    lines: [{ name, color: COLORS.line, points: numbers.map((v, k) => [k, v] as [number, number]), dots: numbers.length <= DOT_POINTS }],
    xLabel: 'position in the list',
    xInteger: true,
    width: 480,
    height: 220,
  });
  return (
    `<figure class="chart small" data-chart="list"><figcaption>${head} · first ${esc(formatNumber(numbers[0]!))} · last ${esc(formatNumber(numbers[numbers.length - 1]!))} · min ${esc(formatNumber(minOf(numbers)))} · max ${esc(formatNumber(maxOf(numbers)))}</figcaption>` +
    `${chart}<details class="values"><summary>values</summary>${valuesTable}</details></figure>`
  );
}

function matrixFigure(name: string, m: ConfusionMatrix, id: string, what: string, tableHtml: string): string {
  let total = 0;
  let diagonal = 0;
  m.counts.forEach((r, i) =>
    r.forEach((c, j) => {
      total += c;
      if (m.rows[i] === m.cols[j]) diagonal += c;
    }),
  );
  const heat = heatmapSvg({ id, label: `confusion matrix ${name}`, rows: m.rows, cols: m.cols, counts: m.counts, rowTitle: m.rowTitle, colTitle: m.colTitle });
  const share = total > 0 ? ` · ${((diagonal / total) * 100).toFixed(1)}% on the diagonal` : '';
  return (
    `<figure class="chart small matrix" data-chart="confusion"><figcaption><b>${esc(name)}</b> · ${esc(what)} · ${m.rows.length} × ${m.cols.length} · ${esc(formatNumber(total))} counted${share}</figcaption>` +
    `<div class="heat-wrap">${heat}</div><p class="hint">Rows: ${esc(m.rowTitle)}; columns: ${esc(m.colTitle)}; each cell shaded by its share of the row (hover a cell for its count and share).</p>` +
    `<details class="values"><summary>the table</summary>${tableHtml}</details></figure>`
  );
}

/** logRow records: one table (or a confusion matrix, from the rows of the last step when they carry one). */
export function rowsFigure(series: MetricSeries, id: string): string {
  const { name, records: list } = series;
  const cols: string[] = [];
  for (const r of list) for (const k of Object.keys((r.value as Record<string, unknown>) ?? {})) if (!cols.includes(k)) cols.push(k);
  const rowsHtml = (records: readonly MetricRecord[], total = records.length): string =>
    table(
      ['step', ...cols.map(esc)],
      records.slice(0, TABLE_ROWS).map((r) => [r.step !== undefined ? esc(String(r.step)) : '', ...cols.map((c) => cellText((r.value as Record<string, unknown>)?.[c]))]),
    ) + more(total, TABLE_ROWS, 'rows');
  const steps = new Set(list.map((r) => r.step));
  const lastStep = list[list.length - 1]!.step;
  const latest = steps.size > 1 ? list.filter((r) => r.step === lastStep) : list;
  const m = asConfusionMatrix(name, rowsToColumns(latest.map((r) => (r.value as Record<string, unknown>) ?? {})));
  if (m) return matrixFigure(name, m, id, `rows${steps.size > 1 ? ` of step ${lastStep}` : ''}`, rowsHtml(latest));
  return `<div class="mtable"><h4>${esc(name)} <small>rows, ${plural(series.count, 'row')}</small></h4>${rowsHtml(list, series.count)}</div>`;
}

/** A logTable record (the last one logged): a confusion matrix, or a table. */
export function tableFigure(series: MetricSeries, id: string): string {
  const { name, records } = series;
  const last = records[records.length - 1]!;
  const t = (last.value as Record<string, unknown[]>) ?? {};
  const cols = Object.keys(t);
  const n = cols.length > 0 && Array.isArray(t[cols[0]!]) ? t[cols[0]!]!.length : 0;
  const rows: string[][] = [];
  for (let r = 0; r < Math.min(n, TABLE_ROWS); r++) rows.push(cols.map((c) => cellText(t[c]?.[r])));
  const tableHtml = table(cols.map(esc), rows) + more(n, TABLE_ROWS, 'rows');
  const m = asConfusionMatrix(name, t);
  if (m) return matrixFigure(name, m, id, `table${times(series)}, ${plural(n, 'row')}`, tableHtml);
  return `<div class="mtable"><h4>${esc(name)} <small>table${esc(times(series))}, ${plural(n, 'row')}</small></h4>${tableHtml}</div>`;
}
