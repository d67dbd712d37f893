// Strips on one time axis: small charts stacked one above the other (a worker's memory, its CPU,
// the node's CPU), each with its own y scale from 0, under the same time ticks and in the same
// left and right margins as the mini-batch timeline (timeline.ts), so that a strip's x is the
// timeline's x: a jump in memory sits under the mini-batch that ran then. A strip draws polylines
// (areas down to 0 when filled), marks, and a tinted background when a finding is about it; hover
// columns carry a title (and a mini-batch id, clickable like a timeline bar).
import { COLORS } from '../colors.js';
import { formatDuration } from '../format.js';
import { esc } from '../html.js';
import { f, svgOpen, title } from './svg.js';
import { LANE_LEFT, LANE_RIGHT } from './timeline.js';
import { timeTicks } from './ticks.js';

/** One polyline of [time, value] points; a gap in the data is a new path. */
export interface StripPath {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  /** The colour of an area down to 0 under the line (opaque: a later path's area covers it). */
  readonly fill?: string;
  readonly width?: number;
}

export interface StripMark {
  readonly t: number;
  /** A mark for a stretch of time: a bar from t to here, the shape at its middle. */
  readonly until?: number;
  readonly color: string;
  readonly shape: 'diamond' | 'triangle';
  readonly title: string;
  readonly mb?: string;
  readonly cls?: string;
}

/** Room at the top of a strip for its scale's text. */
const LABEL_PAD = 14;

export interface Strip {
  readonly label: string;
  /** A small, muted label (the second strip of a worker: its CPU). */
  readonly minor?: boolean;
  readonly labelTitle?: string;
  readonly height: number;
  /** The top of the y scale (the bottom is 0) and its text, written at the strip's top left. */
  readonly max: number;
  readonly maxLabel: string;
  readonly paths: readonly StripPath[];
  readonly marks?: readonly StripMark[];
  /** A horizontal line (a memory limit), dashed. */
  readonly hline?: { readonly y: number; readonly color: string; readonly title: string };
  /** Background tint: a finding is about this strip. */
  readonly tint?: string;
  /** Extra space above it (between workers). */
  readonly gapBefore?: number;
  /** Extra attributes of its <g> and of its marks' (data-*). */
  readonly attrs?: string;
}

/** A tooltip column over strips `from`..`to` (indices), clickable when it names a mini-batch. */
export interface StripHover {
  readonly from: number;
  readonly to: number;
  readonly t0: number;
  readonly t1: number;
  readonly title: string;
  readonly mb?: string;
}

export function stripsSvg(opts: { strips: readonly Strip[]; hovers?: readonly StripHover[]; t0: number; t1: number; width?: number; id: string; label: string }): string {
  const width = opts.width ?? 1000;
  const top = 8;
  const axisH = 26;
  const ys: number[] = [];
  let y = top;
  for (const s of opts.strips) {
    y += s.gapBefore ?? 0;
    ys.push(y);
    y += s.height + 3;
  }
  const height = y + axisH;
  const span = Math.max(1, opts.t1 - opts.t0);
  const plotW = width - LANE_LEFT - LANE_RIGHT;
  const X = (t: number): number => LANE_LEFT + ((Math.min(opts.t1, Math.max(opts.t0, t)) - opts.t0) / span) * plotW;
  const parts: string[] = [svgOpen(opts.id, width, height, opts.label)];
  for (const t of timeTicks(span)) {
    const xx = f(X(opts.t0 + t));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${height - axisH}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${xx}" y="${height - 8}" class="tick" text-anchor="middle">${esc(formatDuration(t))}</text>`);
  }
  opts.strips.forEach((s, i) => {
    const y0 = ys[i]!;
    // the top LABEL_PAD px hold the scale's text: the values stay under it
    const Y = (v: number): number => y0 + s.height - (Math.max(0, Math.min(v, s.max)) / s.max) * (s.height - LABEL_PAD);
    const label = s.label.length > 18 ? `${s.label.slice(0, 17)}…` : s.label;
    parts.push(`<g class="strip"${s.attrs ?? ''}>`);
    parts.push(`<text x="${LANE_LEFT - 6}" y="${f(y0 + Math.min(s.height / 2 + 4, 13))}" class="${s.minor ? 'tick' : 'lane'}" text-anchor="end">${title(s.labelTitle)}${esc(label)}</text>`);
    parts.push(`<rect class="strip-bg" x="${LANE_LEFT}" y="${f(y0)}" width="${f(plotW)}" height="${s.height}" fill="${s.tint ?? '#f5f6f8'}"/>`);
    for (const p of s.paths) {
      if (p.points.length === 0) continue;
      const line = p.points.map(([t, v], k) => `${k === 0 ? 'M' : 'L'}${f(X(t))} ${f(Y(v))}`).join('');
      if (p.fill) {
        const first = p.points[0]!;
        const last = p.points[p.points.length - 1]!;
        parts.push(`<path d="${line}L${f(X(last[0]))} ${f(Y(0))}L${f(X(first[0]))} ${f(Y(0))}z" fill="${p.fill}" stroke="none"/>`);
      }
      parts.push(`<path class="strip-line" data-series="${esc(p.name)}" d="${line}" fill="none" stroke="${p.color}" stroke-width="${p.width ?? 1.4}" stroke-linejoin="round"/>`);
    }
    if (s.hline && s.hline.y <= s.max) {
      const yy = f(Y(s.hline.y));
      parts.push(`<line class="strip-limit" x1="${LANE_LEFT}" x2="${width - LANE_RIGHT}" y1="${yy}" y2="${yy}" stroke="${s.hline.color}" stroke-width="1.2" stroke-dasharray="5 3">${title(s.hline.title)}</line>`);
    }
    parts.push(`<text x="${LANE_LEFT + 4}" y="${f(y0 + 10)}" class="strip-max">${esc(s.maxLabel)}</text>`);
    parts.push('</g>');
  });
  for (const h of opts.hovers ?? []) {
    const x0 = X(h.t0);
    const y0 = ys[h.from]!;
    const y1 = ys[h.to]! + opts.strips[h.to]!.height;
    parts.push(
      `<rect class="hover${h.mb ? ' seg' : ''}" x="${f(x0)}" y="${f(y0)}" width="${f(Math.max(1, X(h.t1) - x0))}" height="${f(y1 - y0)}" fill="transparent"${h.mb ? ` data-mb="${esc(h.mb)}"` : ''}>${title(h.title)}</rect>`,
    );
  }
  // marks last: above the hover columns, so that their own titles show
  opts.strips.forEach((s, i) => {
    const y0 = ys[i]!;
    if (!s.marks?.length) return;
    parts.push(`<g class="marks"${s.attrs ?? ''}>`);
    for (const m of s.marks) {
      const x = m.until === undefined ? X(m.t) : (X(m.t) + X(m.until)) / 2;
      const c = y0 + 7;
      if (m.until !== undefined) parts.push(`<rect x="${f(X(m.t))}" y="${f(y0)}" width="${f(Math.max(1, X(m.until) - X(m.t)))}" height="3" fill="${m.color}"/>`);
      const d = m.shape === 'triangle' ? `M${f(x)} ${f(c - 6)}l6 10.4h-12z` : `M${f(x)} ${f(c - 6)}l6 6l-6 6l-6 -6z`;
      const cls = ['strip-mark', m.mb ? 'seg' : '', m.cls ?? ''].filter(Boolean).join(' ');
      parts.push(`<path class="${cls}" d="${d}" fill="${m.color}" stroke="#fff" stroke-width="1"${m.mb ? ` data-mb="${esc(m.mb)}"` : ''}>${title(m.title)}</path>`);
    }
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}
