// Small HTML builders shared by the sections: escaping, tables, tiles, legends, badges, and a
// toggle between two views that works without script (a checkbox and a CSS sibling rule).
import { outcomeColor } from './colors.js';
import { formatCount, formatNumber } from './format.js';

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : many}`;
}

export function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '–' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function firstLine(s: string, max = 240): string {
  const l = s.split('\n')[0]!;
  return l.length > max ? `${l.slice(0, max)}…` : l;
}

export function badge(outcome: string, label = outcome): string {
  return `<span class="badge" style="background:${outcomeColor(outcome)}">${esc(label)}</span>`;
}

/** A mini-batch id that filters the log records to it when clicked. */
export function mbButton(id: string): string {
  return `<button class="mb-link" data-mb="${esc(id)}" title="show the log records of ${esc(id)}">${esc(id)}</button>`;
}

/** Cells are HTML already (escape what you put in). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  return `<div class="table-wrap"><table class="${cls}"><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

export interface LegendItem {
  readonly label: string;
  readonly color: string;
  /** A marker shape instead of a square swatch. */
  readonly shape?: 'circle' | 'triangle' | 'cross' | 'diamond' | 'line' | 'dash';
}

const SWATCHES: Record<NonNullable<LegendItem['shape']>, string> = {
  circle: '<circle cx="7" cy="5" r="3.2" fill="C"/>',
  triangle: '<path d="M7 1.5l4 7h-8z" fill="C"/>',
  cross: '<path d="M3.5 1.5l7 7M10.5 1.5l-7 7" stroke="C" stroke-width="2"/>',
  diamond: '<path d="M7 0.8l4.2 4.2-4.2 4.2-4.2-4.2z" fill="C"/>',
  line: '<path d="M0 5h14" stroke="C" stroke-width="2.2"/>',
  dash: '<path d="M0 5h14" stroke="C" stroke-width="2" stroke-dasharray="4 2"/>',
};

export function legend(items: readonly LegendItem[]): string {
  return `<div class="legend">${items
    .map((i) => `<span>${i.shape ? `<svg class="sw" width="14" height="10" aria-hidden="true">${SWATCHES[i.shape].replaceAll('"C"', `"${i.color}"`)}</svg>` : `<i style="background:${i.color}"></i>`}${esc(i.label)}</span>`)
    .join('')}</div>`;
}

export function tiles(items: readonly { label: string; value: string; tone?: string }[]): string {
  return `<div class="tiles">${items.map((t) => `<div class="tile${t.tone ? ` ${t.tone}` : ''}"><div class="v">${t.value}</div><div class="l">${esc(t.label)}</div></div>`).join('')}</div>`;
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return esc(formatNumber(v));
  if (typeof v === 'string') return esc(v.length > 300 ? `${v.slice(0, 300)}…` : v);
  return esc(JSON.stringify(v).slice(0, 300));
}

/**
 * Two views of one thing and a checkbox that switches between them, without script: the first view
 * shows while the box is unchecked (`checked`: start with the second).
 */
export function toggle(id: string, label: string, first: string, second: string, checked = false): string {
  return (
    `<div class="toggle"><input type="checkbox" class="toggle-box" id="${esc(id)}"${checked ? ' checked' : ''}>` +
    `<label class="toggle-label" for="${esc(id)}">${esc(label)}</label><div class="view-a">${first}</div><div class="view-b">${second}</div></div>`
  );
}
