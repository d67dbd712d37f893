// A chart of values over x (time, a step index, or a position): lines, step series that break
// where there is no data (never drawn across a gap), marks of several shapes (clickable when they
// carry a mini-batch id), min–max bands, horizontal reference lines, and a linear or logarithmic
// y axis. Tick labels are thinned so that they never overlap.
import { COLORS } from '../colors.js';
import { formatDuration, formatNumber, maxOf, minOf } from '../format.js';
import { esc } from '../html.js';
import { textWidth, thinTicks } from './label-layout.js';
import { f, svgOpen, title } from './svg.js';
import { logTicks, niceTicks, timeTicks } from './ticks.js';

export interface LineSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dash?: boolean;
  readonly width?: number;
  /** Draw each point as a dot too (short series). */
  readonly dots?: boolean;
}

/** One value held over [x0, x1) (a time bucket); consecutive steps join, a missing one leaves a gap. */
export interface Step {
  readonly x0: number;
  readonly x1: number;
  readonly y: number;
}

export interface StepSeries {
  readonly name: string;
  readonly color: string;
  readonly steps: readonly Step[];
  readonly dash?: boolean;
  readonly width?: number;
}

export type MarkShape = 'circle' | 'triangle' | 'cross' | 'diamond';

export interface Mark {
  readonly x: number;
  readonly y: number;
  readonly color: string;
  readonly shape?: MarkShape;
  readonly size?: number;
  readonly opacity?: number;
  readonly title?: string;
  readonly mb?: string;
  /** Extra class, e.g. `mark-timeout`. */
  readonly cls?: string;
}

/** A continuous min–max band (a polygon). */
export interface Band {
  readonly color: string;
  /** [x, low, high] */
  readonly points: readonly (readonly [number, number, number])[];
  readonly title?: string;
}

/** A min–max range per bucket (one rectangle each: nothing between buckets). */
export interface RangeBox {
  readonly x0: number;
  readonly x1: number;
  readonly lo: number;
  readonly hi: number;
}

export interface XyChartOptions {
  readonly id: string;
  readonly label: string;
  readonly lines?: readonly LineSeries[];
  readonly steps?: readonly StepSeries[];
  readonly marks?: readonly Mark[];
  readonly bands?: readonly Band[];
  readonly boxes?: { readonly color: string; readonly boxes: readonly RangeBox[] };
  /** Horizontal reference lines (a timeout). */
  readonly hlines?: readonly { readonly y: number; readonly label: string; readonly color: string }[];
  /** Invisible columns that carry a tooltip (a bucket's counts). */
  readonly hovers?: readonly { readonly x0: number; readonly x1: number; readonly title: string }[];
  /** x in ms since the start. */
  readonly xTime?: boolean;
  /** x is a step index: whole-number ticks only. */
  readonly xInteger?: boolean;
  /** The x domain, when it is wider than the data (a time axis from the first attempt to the last). */
  readonly xDomain?: readonly [number, number];
  readonly xLabel?: string;
  readonly yFormat?: (v: number) => string;
  readonly yMin?: number;
  readonly yLog?: boolean;
  readonly width?: number;
  readonly height?: number;
  /** Extra attributes of the <svg> element. */
  readonly attrs?: string;
}

function markPath(shape: MarkShape, x: number, y: number, s: number): string {
  switch (shape) {
    case 'triangle':
      return `M${f(x)} ${f(y - s)}l${f(s)} ${f(1.7 * s)}h${f(-2 * s)}z`;
    case 'diamond':
      return `M${f(x)} ${f(y - s)}l${f(s)} ${f(s)}l${f(-s)} ${f(s)}l${f(-s)} ${f(-s)}z`;
    case 'cross':
      return `M${f(x - s)} ${f(y - s)}l${f(2 * s)} ${f(2 * s)}M${f(x + s)} ${f(y - s)}l${f(-2 * s)} ${f(2 * s)}`;
    default:
      return '';
  }
}

export function xyChartSvg(opts: XyChartOptions): string {
  const width = opts.width ?? 1000;
  const height = opts.height ?? 280;
  const left = 64;
  const right = 16;
  const top = 12;
  const bottom = opts.xLabel ? 40 : 28;
  const xs: number[] = [];
  const ys: number[] = [];
  const add = (x: number[], y: number[]): void => {
    for (const v of x) xs.push(v);
    for (const v of y) ys.push(v);
  };
  for (const s of opts.lines ?? []) for (const [px, py] of s.points) add([px], [py]);
  for (const s of opts.steps ?? []) for (const st of s.steps) add([st.x0, st.x1], [st.y]);
  for (const m of opts.marks ?? []) add([m.x], [m.y]);
  for (const b of opts.bands ?? []) for (const [px, lo, hi] of b.points) add([px], [lo, hi]);
  for (const b of opts.boxes?.boxes ?? []) add([b.x0, b.x1], [b.lo, b.hi]);
  for (const h of opts.hlines ?? []) ys.push(h.y);
  let [xMin, xMax] = opts.xDomain ?? [minOf(xs), maxOf(xs)];
  if (!Number.isFinite(xMin) || !Number.isFinite(xMax)) [xMin, xMax] = [0, 1];
  if (xMax === xMin) xMax = xMin + 1;

  const yFmt = opts.yFormat ?? formatNumber;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let Y: (v: number) => number;
  let yTicks: number[];
  if (opts.yLog) {
    const positive = ys.filter((v) => v > 0);
    let lo = minOf(positive);
    let hi = maxOf(positive);
    if (!Number.isFinite(lo)) [lo, hi] = [1, 10];
    if (hi <= lo) hi = lo * 10;
    lo /= 1.25;
    hi *= 1.25;
    yTicks = logTicks(lo, hi);
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    Y = (v) => top + plotH - ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * plotH;
  } else {
    let yMin = opts.yMin ?? minOf(ys);
    let yMax = maxOf(ys);
    if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) [yMin, yMax] = [0, 1];
    if (yMax === yMin) {
      yMax = yMin + (Math.abs(yMin) || 1);
      if (opts.yMin === undefined) yMin -= Math.abs(yMin) * 0.1 || 0;
    }
    yTicks = niceTicks(yMin, yMax + (yMax - yMin) * 0.05, 5);
    yMax = Math.max(yMax, yTicks[yTicks.length - 1] ?? yMax);
    yMin = Math.min(yMin, yTicks[0] ?? yMin);
    const y0 = yMin;
    const y1 = yMax;
    Y = (v) => top + plotH - ((v - y0) / (y1 - y0)) * plotH;
  }
  const X = (v: number): number => left + ((v - xMin) / (xMax - xMin)) * plotW;

  const parts: string[] = [svgOpen(opts.id, width, height, opts.label, opts.attrs ?? '')];
  for (const t of yTicks) {
    const yy = f(Y(t));
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${COLORS.grid}"/><text x="${left - 6}" y="${f(Y(t) + 4)}" class="tick" text-anchor="end">${esc(yFmt(t))}</text>`);
  }
  const xTickValues = opts.xTime ? timeTicks(xMax - xMin).map((t) => t + xMin) : niceTicks(xMin, xMax, 8, opts.xInteger);
  const xTickLabels = thinTicks(
    xTickValues
      .filter((t) => t >= xMin - 1e-9 && t <= xMax + 1e-9)
      .map((t) => {
        const text = opts.xTime ? formatDuration(t - xMin) : formatNumber(t);
        return { x: X(t), width: textWidth(text), text };
      }),
  );
  for (const t of xTickLabels) {
    const xx = f(t.x);
    // the last label ends at the edge rather than past it
    const anchor = t.x + t.width / 2 > width ? 'end' : 'middle';
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="${COLORS.axis}"/><text x="${anchor === 'end' ? width - 1 : xx}" y="${top + plotH + 17}" class="tick" text-anchor="${anchor}">${esc(t.text)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="${COLORS.axis}"/>`);
  if (opts.xLabel) parts.push(`<text x="${f(left + plotW / 2)}" y="${height - 4}" class="axis-label" text-anchor="middle">${esc(opts.xLabel)}</text>`);

  // under everything else, so that marks stay clickable
  for (const h of opts.hovers ?? []) {
    const x0 = X(h.x0);
    parts.push(`<rect class="hover" x="${f(x0)}" y="${top}" width="${f(Math.max(1, X(h.x1) - x0))}" height="${f(plotH)}" fill="transparent"><title>${esc(h.title)}</title></rect>`);
  }
  for (const b of opts.bands ?? []) {
    if (b.points.length === 0) continue;
    const upper = b.points.map(([px, , hi]) => `${f(X(px))},${f(Y(hi))}`);
    const lower = [...b.points].reverse().map(([px, lo]) => `${f(X(px))},${f(Y(lo))}`);
    parts.push(`<polygon points="${upper.concat(lower).join(' ')}" fill="${b.color}" fill-opacity="0.18" stroke="none">${title(b.title)}</polygon>`);
  }
  if (opts.boxes && opts.boxes.boxes.length > 0) {
    // one stepped outline per run of adjacent buckets: nothing is drawn between runs
    const runs: RangeBox[][] = [];
    for (const b of opts.boxes.boxes) {
      const last = runs[runs.length - 1];
      const prev = last?.[last.length - 1];
      if (prev && Math.abs(b.x0 - prev.x1) <= Math.abs(b.x1 - b.x0) * 1e-6) last!.push(b);
      else runs.push([b]);
    }
    const d = runs
      .map((run) => {
        const top = run.map((b, k) => `${k === 0 ? `M${f(X(b.x0))} ${f(Y(b.hi))}` : `V${f(Y(b.hi))}`}H${f(X(b.x1))}`).join('');
        const bottom = [...run].reverse().map((b) => `V${f(Y(b.lo))}H${f(X(b.x0))}`).join('');
        return `${top}${bottom}z`;
      })
      .join('');
    parts.push(`<path class="range" d="${d}" fill="${opts.boxes.color}" fill-opacity="0.16"><title>min–max of the bucket</title></path>`);
  }
  for (const h of opts.hlines ?? []) {
    const yy = f(Y(h.y));
    parts.push(
      `<line class="hline" x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${h.color}" stroke-width="1.2" stroke-dasharray="6 4"/>` +
        `<text x="${width - right - 4}" y="${f(Y(h.y) - 4)}" class="hline-label" style="fill:${h.color}" text-anchor="end">${esc(h.label)}</text>`,
    );
  }
  for (const m of opts.marks ?? []) {
    const shape = m.shape ?? 'circle';
    const s = m.size ?? (shape === 'circle' ? 2.2 : 3.6);
    const cls = [m.mb ? 'seg' : '', m.cls ?? ''].filter(Boolean).join(' ');
    const common = `${cls ? ` class="${cls}"` : ''}${m.mb ? ` data-mb="${esc(m.mb)}"` : ''}`;
    const tip = title(m.title);
    if (shape === 'circle') parts.push(`<circle cx="${f(X(m.x))}" cy="${f(Y(m.y))}" r="${s}" fill="${m.color}" fill-opacity="${m.opacity ?? 0.55}"${common}>${tip}</circle>`);
    else if (shape === 'cross') parts.push(`<path d="${markPath(shape, X(m.x), Y(m.y), s * 0.8)}" stroke="${m.color}" stroke-width="2.2" fill="none"${common}>${tip}</path>`);
    else parts.push(`<path d="${markPath(shape, X(m.x), Y(m.y), s)}" fill="${m.color}" fill-opacity="${m.opacity ?? 0.9}" stroke="#fff" stroke-width="0.8"${common}>${tip}</path>`);
  }
  for (const s of opts.steps ?? []) {
    // one path per run of adjacent buckets: a bucket without data breaks the line
    let d = '';
    let end = Number.NaN;
    const flush = (): void => {
      if (d) parts.push(`<path class="step-series" data-series="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.8}" stroke-linecap="round"${s.dash ? ' stroke-dasharray="5 3"' : ''}><title>${esc(s.name)}</title></path>`);
      d = '';
    };
    for (const st of s.steps) {
      const joined = Math.abs(st.x0 - end) <= Math.abs(st.x1 - st.x0) * 1e-6;
      if (!joined) flush();
      d += joined ? `V${f(Y(st.y))}H${f(X(st.x1))}` : `M${f(X(st.x0))} ${f(Y(st.y))}H${f(X(st.x1))}`;
      end = st.x1;
    }
    flush();
  }
  for (const s of opts.lines ?? []) {
    if (s.points.length === 0) continue;
    if (s.points.length > 1) {
      const d = s.points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${f(X(px))} ${f(Y(py))}`).join('');
      parts.push(`<path class="line-series" data-series="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.6}"${s.dash ? ' stroke-dasharray="5 3"' : ''}><title>${esc(s.name)}</title></path>`);
    }
    if (s.dots || s.points.length === 1) {
      for (const [px, py] of s.points) parts.push(`<circle class="point" cx="${f(X(px))}" cy="${f(Y(py))}" r="2.6" fill="${s.color}"><title>${esc(`${s.name} at ${formatNumber(px)}: ${yFmt(py)}`)}</title></circle>`);
    }
  }
  parts.push('</svg>');
  return parts.join('');
}
