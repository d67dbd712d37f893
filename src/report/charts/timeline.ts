// A Gantt-like timeline: one lane per worker (or step), time on x, a bar per attempt (or per
// aggregated time slot). Bars with a mini-batch id are clickable (the script filters the logs).
import { COLORS } from '../colors.js';
import { formatDuration } from '../format.js';
import { esc } from '../html.js';
import { f, svgOpen, title } from './svg.js';
import { timeTicks } from './ticks.js';

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

/** The margins of the plot: strips.ts draws under the same x. */
export const LANE_LEFT = 120;
export const LANE_RIGHT = 16;
const LEFT = LANE_LEFT;
const RIGHT = LANE_RIGHT;

export function timelineSvg(opts: { lanes: readonly Lane[]; t0: number; t1: number; width?: number; laneHeight?: number; id: string; label: string }): string {
  const width = opts.width ?? 1000;
  const laneH = opts.laneHeight ?? 22;
  const top = 8;
  const axisH = 26;
  const height = top + opts.lanes.length * (laneH + 4) + axisH;
  const span = Math.max(1, opts.t1 - opts.t0);
  const plotW = width - LEFT - RIGHT;
  const x = (t: number): number => LEFT + ((t - opts.t0) / span) * plotW;
  const parts: string[] = [svgOpen(opts.id, width, height, opts.label)];
  for (const t of timeTicks(span)) {
    const xx = f(x(opts.t0 + t));
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${height - axisH}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${xx}" y="${height - 8}" class="tick" text-anchor="middle">${esc(formatDuration(t))}</text>`);
  }
  opts.lanes.forEach((lane, i) => {
    const y = top + i * (laneH + 4);
    parts.push(`<text x="${LEFT - 6}" y="${f(y + laneH / 2 + 4)}" class="lane" text-anchor="end">${title(lane.title)}${esc(lane.label.length > 18 ? `${lane.label.slice(0, 17)}…` : lane.label)}</text>`);
    parts.push(`<rect x="${LEFT}" y="${y}" width="${f(plotW)}" height="${laneH}" fill="#f5f6f8"/>`);
    for (const s of lane.segments) {
      const x0 = x(s.start);
      const w = Math.max(0.8, x(s.end) - x0);
      const y0 = y + (s.y0 ?? 0) * laneH;
      const h = (s.h ?? 1) * laneH;
      parts.push(`<rect x="${f(x0)}" y="${f(y0)}" width="${f(w)}" height="${f(Math.max(0.8, h))}" fill="${s.color}"${s.mb ? ` data-mb="${esc(s.mb)}" class="seg"` : ''}>${title(s.title)}</rect>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}
