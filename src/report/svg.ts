// Charts as inline SVG, drawn on the server side: no script is needed to see them, nothing is
// fetched, and the size is bounded by the aggregation done before (never one element per point
// of a large run). Tooltips are SVG <title>s.

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function minOf(values: readonly number[]): number {
  let m = Number.POSITIVE_INFINITY;
  for (const v of values) if (v < m) m = v;
  return m;
}

export function maxOf(values: readonly number[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > m) m = v;
  return m;
}

/** Short number for coordinates. */
function f(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

export const COLORS = {
  success: '#2f9e5f',
  error: '#d64545',
  timeout: '#e8912d',
  crash: '#8e44ad',
  aborted: '#9aa0a6',
  running: '#7aa6d8',
  other: '#5f6b7a',
  p50: '#2f6fbf',
  p95: '#e8912d',
  p99: '#d64545',
  line: '#2f6fbf',
  band: '#2f6fbf',
  grid: '#e3e6ea',
  axis: '#5f6b7a',
} as const;

export function outcomeColor(outcome: string): string {
  switch (outcome) {
    case 'success':
      return COLORS.success;
    case 'failure':
    case 'error':
      return COLORS.error;
    case 'timeout':
    case 'terminated':
      return COLORS.timeout;
    case 'crash':
    case 'crashed':
      return COLORS.crash;
    case 'aborted':
      return COLORS.aborted;
    case 'running':
      return COLORS.running;
    default:
      return COLORS.other;
  }
}

/** A duration for people: 450 ms, 12.3 s, 4:05, 1:02:03. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms === 0) return '0';
  const neg = ms < 0 ? '-' : '';
  ms = Math.abs(ms);
  if (ms < 1) return `${neg}${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${neg}${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${neg}${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${neg}${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${neg}${m}:${String(sec).padStart(2, '0')}`;
}

/** Round numbers between min and max, about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) return [min];
  const span = max - min;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** Ticks for a time axis in ms: steps of 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 6, 12 h. */
export function timeTicks(spanMs: number, count = 6): number[] {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5];
  const step = steps.find((s) => spanMs / s <= count) ?? 864e5;
  const out: number[] = [];
  for (let v = 0; v <= spanMs + 1e-9; v += step) out.push(v);
  return out;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly color: string;
  readonly title: string;
  /** Part of the lane's height this segment covers, from its top (0..1). Default: all of it. */
  readonly y0?: number;
  readonly h?: number;
  readonly mb?: string;
}

export interface Lane {
  readonly label: string;
  readonly segments: readonly Segment[];
  readonly title?: string;
}

const LEFT = 120;
const RIGHT = 16;

/** A Gantt-like timeline: one lane per worker (or step), time on x. */
export function timelineSvg(opts: { lanes: readonly Lane[]; t0: number; t1: number; width?: number; laneHeight?: number; id: string; label: string }): string {
  const width = opts.width ?? 1000;
  const laneH = opts.laneHeight ?? 22;
  const top = 8;
  const axisH = 26;
  const height = top + opts.lanes.length * (laneH + 4) + axisH;
  const span = Math.max(1, opts.t1 - opts.t0);
  const plotW = width - LEFT - RIGHT;
  const x = (t: number): number => LEFT + ((t - opts.t0) / span) * plotW;
  const parts: string[] = [];
  parts.push(`<svg class="chart-svg" id="${esc(opts.id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(opts.label)}" xmlns="http://www.w3.org/2000/svg">`);
  const ticks = timeTicks(span);
  for (const t of ticks) {
    const xx = f(x(opts.t0 + t));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${height - axisH}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${xx}" y="${height - 8}" class="tick" text-anchor="middle">${esc(formatDuration(t))}</text>`);
  }
  opts.lanes.forEach((lane, i) => {
    const y = top + i * (laneH + 4);
    parts.push(`<text x="${LEFT - 6}" y="${f(y + laneH / 2 + 4)}" class="lane" text-anchor="end">${lane.title ? `<title>${esc(lane.title)}</title>` : ''}${esc(lane.label.length > 18 ? `${lane.label.slice(0, 17)}…` : lane.label)}</text>`);
    parts.push(`<rect x="${LEFT}" y="${y}" width="${f(plotW)}" height="${laneH}" fill="#f5f6f8"/>`);
    for (const s of lane.segments) {
      const x0 = x(s.start);
      const w = Math.max(0.8, x(s.end) - x0);
      const y0 = y + (s.y0 ?? 0) * laneH;
      const h = (s.h ?? 1) * laneH;
      parts.push(
        `<rect x="${f(x0)}" y="${f(y0)}" width="${f(w)}" height="${f(Math.max(0.8, h))}" fill="${s.color}"${s.mb ? ` data-mb="${esc(s.mb)}" class="seg"` : ''}><title>${esc(s.title)}</title></rect>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dash?: boolean;
  readonly width?: number;
}

export interface Dot {
  readonly x: number;
  readonly y: number;
  readonly color: string;
  readonly title?: string;
}

export interface Band {
  readonly color: string;
  /** [x, low, high] */
  readonly points: readonly (readonly [number, number, number])[];
  readonly title?: string;
}

/** A line chart with optional dots and a min-max band. `xTime`: x in ms since the start. */
export function lineChartSvg(opts: {
  id: string;
  label: string;
  series: readonly Series[];
  dots?: readonly Dot[];
  bands?: readonly Band[];
  xTime?: boolean;
  xLabel?: string;
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
  yMin?: number;
}): string {
  const width = opts.width ?? 1000;
  const height = opts.height ?? 280;
  const left = 64;
  const right = 16;
  const top = 10;
  const bottom = opts.xLabel ? 40 : 28;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of opts.series) for (const [px, py] of s.points) {
    xs.push(px);
    ys.push(py);
  }
  for (const d of opts.dots ?? []) {
    xs.push(d.x);
    ys.push(d.y);
  }
  for (const b of opts.bands ?? []) for (const [px, lo, hi] of b.points) {
    xs.push(px);
    ys.push(lo, hi);
  }
  let xMin = minOf(xs);
  let xMax = maxOf(xs);
  if (!Number.isFinite(xMin)) {
    xMin = 0;
    xMax = 1;
  }
  if (xMax === xMin) {
    xMax = xMin + 1;
  }
  let yMin = opts.yMin ?? minOf(ys);
  let yMax = maxOf(ys);
  if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) {
    yMin = 0;
    yMax = 1;
  }
  if (yMax === yMin) {
    yMax = yMin + (Math.abs(yMin) || 1);
    if (opts.yMin === undefined) yMin -= Math.abs(yMin) * 0.1 || 0;
  }
  const yTicks = niceTicks(yMin, yMax + (yMax - yMin) * 0.05, 5);
  yMax = Math.max(yMax, yTicks[yTicks.length - 1] ?? yMax);
  yMin = Math.min(yMin, yTicks[0] ?? yMin);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const X = (v: number): number => left + ((v - xMin) / (xMax - xMin)) * plotW;
  const Y = (v: number): number => top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;
  const yFmt = opts.yFormat ?? formatNumber;
  const parts: string[] = [];
  parts.push(`<svg class="chart-svg" id="${esc(opts.id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(opts.label)}" xmlns="http://www.w3.org/2000/svg">`);
  for (const t of yTicks) {
    const yy = f(Y(t));
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${COLORS.grid}"/><text x="${left - 6}" y="${f(Y(t) + 4)}" class="tick" text-anchor="end">${esc(yFmt(t))}</text>`);
  }
  const xTicks = opts.xTime ? timeTicks(xMax - xMin).map((t) => t + xMin) : niceTicks(xMin, xMax, 8);
  for (const t of xTicks) {
    if (t < xMin - 1e-9 || t > xMax + 1e-9) continue;
    const xx = f(X(t));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="${COLORS.axis}"/><text x="${xx}" y="${top + plotH + 17}" class="tick" text-anchor="middle">${esc(opts.xTime ? formatDuration(t - xMin) : formatNumber(t))}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="${COLORS.axis}"/>`);
  if (opts.xLabel) parts.push(`<text x="${f(left + plotW / 2)}" y="${height - 4}" class="axis-label" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  for (const b of opts.bands ?? []) {
    if (b.points.length === 0) continue;
    const upper = b.points.map(([px, , hi]) => `${f(X(px))},${f(Y(hi))}`);
    const lower = [...b.points].reverse().map(([px, lo]) => `${f(X(px))},${f(Y(lo))}`);
    parts.push(`<polygon points="${upper.concat(lower).join(' ')}" fill="${b.color}" fill-opacity="0.18" stroke="none">${b.title ? `<title>${esc(b.title)}</title>` : ''}</polygon>`);
  }
  for (const d of opts.dots ?? []) {
    parts.push(`<circle cx="${f(X(d.x))}" cy="${f(Y(d.y))}" r="2.2" fill="${d.color}" fill-opacity="0.55">${d.title ? `<title>${esc(d.title)}</title>` : ''}</circle>`);
  }
  for (const s of opts.series) {
    if (s.points.length === 0) continue;
    if (s.points.length === 1) {
      const [px, py] = s.points[0]!;
      parts.push(`<circle cx="${f(X(px))}" cy="${f(Y(py))}" r="3" fill="${s.color}"><title>${esc(`${s.name}: ${yFmt(py)}`)}</title></circle>`);
      continue;
    }
    const d = s.points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${f(X(px))} ${f(Y(py))}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.6}"${s.dash ? ' stroke-dasharray="5 3"' : ''}><title>${esc(s.name)}</title></path>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

export interface HistogramBin {
  readonly lo: number;
  readonly hi: number;
  readonly count: number;
}

/** A histogram with vertical markers (p50, p95, p99). `log`: bins are spaced evenly in log(x). */
export function histogramSvg(opts: {
  id: string;
  label: string;
  bins: readonly HistogramBin[];
  markers: readonly { value: number; label: string; color: string }[];
  log: boolean;
  format: (v: number) => string;
  width?: number;
  height?: number;
}): string {
  const width = opts.width ?? 1000;
  const height = opts.height ?? 240;
  const left = 56;
  const right = 16;
  const top = 22;
  const bottom = 30;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const lo = opts.bins[0]?.lo ?? 0;
  const hi = opts.bins[opts.bins.length - 1]?.hi ?? 1;
  const tx = (v: number): number => (opts.log ? Math.log10(Math.max(v, 1e-9)) : v);
  const X = (v: number): number => left + ((tx(v) - tx(lo)) / Math.max(1e-12, tx(hi) - tx(lo))) * plotW;
  const maxCount = Math.max(1, maxOf(opts.bins.map((b) => b.count)));
  const yTicks = niceTicks(0, maxCount, 4);
  const yMax = Math.max(maxCount, yTicks[yTicks.length - 1] ?? maxCount);
  const Y = (c: number): number => top + plotH - (c / yMax) * plotH;
  const parts: string[] = [];
  parts.push(`<svg class="chart-svg" id="${esc(opts.id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(opts.label)}" xmlns="http://www.w3.org/2000/svg">`);
  for (const t of yTicks) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${f(Y(t))}" y2="${f(Y(t))}" stroke="${COLORS.grid}"/><text x="${left - 6}" y="${f(Y(t) + 4)}" class="tick" text-anchor="end">${esc(formatNumber(t))}</text>`);
  }
  for (const b of opts.bins) {
    if (b.count === 0) continue;
    const x0 = X(b.lo);
    const w = Math.max(1, X(b.hi) - x0 - 1);
    parts.push(`<rect x="${f(x0)}" y="${f(Y(b.count))}" width="${f(w)}" height="${f(top + plotH - Y(b.count))}" fill="${COLORS.line}" fill-opacity="0.75"><title>${esc(`${opts.format(b.lo)} – ${opts.format(b.hi)}: ${b.count}`)}</title></rect>`);
  }
  // x ticks: bin edges, thinned
  const every = Math.max(1, Math.ceil(opts.bins.length / 8));
  opts.bins.forEach((b, i) => {
    if (i % every !== 0) return;
    parts.push(`<text x="${f(X(b.lo))}" y="${height - 10}" class="tick" text-anchor="middle">${esc(opts.format(b.lo))}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="${COLORS.axis}"/>`);
  opts.markers.forEach((m, i) => {
    if (!Number.isFinite(m.value)) return;
    const xx = f(Math.min(width - right, Math.max(left, X(m.value))));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top - 4}" y2="${top + plotH}" stroke="${m.color}" stroke-width="1.6" stroke-dasharray="4 3"/><text x="${xx}" y="${top - 8 + (i % 2) * 0}" class="marker" fill="${m.color}" text-anchor="${i === 0 ? 'end' : i === 2 ? 'start' : 'middle'}">${esc(`${m.label} ${opts.format(m.value)}`)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
