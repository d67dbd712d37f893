// A histogram whose bars are stacked by kind (successful attempts, errors, timeouts, ...), with
// vertical markers (p50, p95, p99) whose labels are laid out on rows so that they never overlap.
import { COLORS } from '../colors.js';
import { formatNumber, maxOf } from '../format.js';
import { esc } from '../html.js';
import { placeLabels, textWidth, thinTicks } from './label-layout.js';
import { f, svgOpen, title } from './svg.js';
import { logTicks, niceTicks } from './ticks.js';

export interface HistogramBin {
  readonly lo: number;
  readonly hi: number;
  /** One count per layer, bottom first. */
  readonly counts: readonly number[];
}

export interface HistogramOptions {
  readonly id: string;
  readonly label: string;
  readonly bins: readonly HistogramBin[];
  readonly layers: readonly { readonly name: string; readonly color: string }[];
  readonly markers: readonly { readonly value: number; readonly label: string; readonly color: string }[];
  /** Bins spaced evenly in log(x). */
  readonly log: boolean;
  readonly format: (v: number) => string;
  readonly width?: number;
  readonly height?: number;
}

const ROW = 15;

export function histogramSvg(opts: HistogramOptions): string {
  const width = opts.width ?? 1000;
  const left = 56;
  const right = 16;
  const bottom = 30;
  const plotW = width - left - right;
  const lo = opts.bins[0]?.lo ?? 0;
  const hi = opts.bins[opts.bins.length - 1]?.hi ?? 1;
  const tx = (v: number): number => (opts.log ? Math.log10(Math.max(v, 1e-9)) : v);
  const X = (v: number): number => left + ((tx(v) - tx(lo)) / Math.max(1e-12, tx(hi) - tx(lo))) * plotW;

  // the marker labels first: how many rows they need decides the top margin
  const markers = opts.markers.filter((m) => Number.isFinite(m.value));
  const texts = markers.map((m) => `${m.label} ${opts.format(m.value)}`);
  const placed = placeLabels(
    markers.map((m, i) => ({ x: Math.min(width - right, Math.max(left, X(m.value))), width: textWidth(texts[i]!, true) })),
    left,
    width - right,
    markers.length,
  );
  const rows = Math.max(1, ...placed.map((p) => (p ? p.row + 1 : 0)));
  const top = 8 + rows * ROW;
  const height = (opts.height ?? 240) + (rows - 1) * ROW;
  const plotH = height - top - bottom;

  const totals = opts.bins.map((b) => b.counts.reduce((s, c) => s + c, 0));
  const maxCount = Math.max(1, maxOf(totals));
  const yTicks = niceTicks(0, maxCount, 4, true);
  const yMax = Math.max(maxCount, yTicks[yTicks.length - 1] ?? maxCount);
  const Y = (c: number): number => top + plotH - (c / yMax) * plotH;
  const parts: string[] = [svgOpen(opts.id, width, height, opts.label)];
  for (const t of yTicks) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${f(Y(t))}" y2="${f(Y(t))}" stroke="${COLORS.grid}"/><text x="${left - 6}" y="${f(Y(t) + 4)}" class="tick" text-anchor="end">${esc(formatNumber(t))}</text>`);
  }
  opts.bins.forEach((b, k) => {
    if (totals[k] === 0) return;
    const x0 = X(b.lo);
    const w = Math.max(1, X(b.hi) - x0 - 1);
    const tip = `${opts.format(b.lo)} – ${opts.format(b.hi)}: ${totals[k]}${
      b.counts.filter((c) => c > 0).length > 1 ? ` (${opts.layers.map((l, i) => (b.counts[i] ? `${b.counts[i]} ${l.name}` : '')).filter(Boolean).join(', ')})` : ` ${opts.layers[b.counts.findIndex((c) => c > 0)]?.name ?? ''}`
    }`;
    let acc = 0;
    b.counts.forEach((c, i) => {
      if (c === 0) return;
      const y1 = Y(acc);
      acc += c;
      const y0 = Y(acc);
      parts.push(`<rect class="bar" x="${f(x0)}" y="${f(y0)}" width="${f(w)}" height="${f(Math.max(0.8, y1 - y0))}" fill="${opts.layers[i]?.color ?? COLORS.line}" fill-opacity="0.8">${title(tip)}</rect>`);
    });
  });
  // x ticks: round values (powers of ten and 2, 5 between on a log axis), never overlapping
  const ticks = (opts.log ? logTicks(lo, hi) : niceTicks(lo, hi, 8)).filter((t) => t >= lo && t <= hi);
  const labelled = thinTicks((ticks.length >= 2 ? ticks : [lo, hi]).map((t) => ({ x: X(t), width: textWidth(opts.format(t)), text: opts.format(t) })));
  for (const t of labelled) {
    const anchor = t.x + t.width / 2 > width ? 'end' : 'middle';
    parts.push(`<line x1="${f(t.x)}" x2="${f(t.x)}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="${COLORS.axis}"/><text x="${anchor === 'end' ? width - 1 : f(t.x)}" y="${height - 10}" class="tick" text-anchor="${anchor}">${esc(t.text)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="${COLORS.axis}"/>`);
  markers.forEach((m, i) => {
    const p = placed[i];
    const xx = f(Math.min(width - right, Math.max(left, X(m.value))));
    const labelY = 8 + (p ? p.row : 0) * ROW + 11;
    parts.push(`<line class="marker-line" x1="${xx}" x2="${xx}" y1="${labelY + 3}" y2="${top + plotH}" stroke="${m.color}" stroke-width="1.6" stroke-dasharray="4 3"/>`);
    if (p) parts.push(`<text x="${f(p.x)}" y="${labelY}" class="marker" style="fill:${m.color}" text-anchor="start">${esc(texts[i]!)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
