// A confusion matrix as a heatmap: one cell per (actual, predicted) pair with its count written in
// it, shaded by its share of the row (so that a rare class reads as clearly as a frequent one),
// the diagonal outlined, and the row totals on the right. Every cell's tooltip has the count.
import { formatNumber } from '../format.js';
import { esc } from '../html.js';
import { textWidth } from './label-layout.js';
import { f, svgOpen } from './svg.js';

export interface HeatmapOptions {
  readonly id: string;
  readonly label: string;
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  /** counts[row][col] */
  readonly counts: readonly (readonly number[])[];
  readonly rowTitle: string;
  readonly colTitle: string;
}

const LABEL_MAX = 16;

function short(label: string): string {
  return label.length > LABEL_MAX ? `${label.slice(0, LABEL_MAX - 1)}…` : label;
}

/** White to the report's blue; zero stays a faint grey so that 0 and "a few" differ. */
function shade(share: number): string {
  if (!(share > 0)) return '#f4f5f7';
  const t = Math.min(1, 0.08 + 0.92 * share);
  const mix = (a: number, b: number): number => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 31)},${mix(255, 83)},${mix(255, 158)})`;
}

export function heatmapSvg(opts: HeatmapOptions): string {
  const nr = opts.rows.length;
  const nc = opts.cols.length;
  const n = Math.max(nr, nc);
  const cell = Math.max(12, Math.min(44, Math.floor(560 / n)));
  const rowLabelW = Math.max(...opts.rows.map((r) => textWidth(short(r))), 10);
  const colLabelW = Math.max(...opts.cols.map((c) => textWidth(short(c))), 10);
  const rotate = colLabelW > cell - 4;
  const left = Math.max(22 + rowLabelW + 8, rotate ? Math.ceil(colLabelW * 0.72 - cell / 2) + 8 : 0);
  const top = 38;
  const totals = opts.counts.map((r) => r.reduce((s, c) => s + c, 0));
  const totalW = Math.max(...totals.map((t) => textWidth(formatNumber(t))), textWidth('total'));
  const width = left + nc * cell + 10 + totalW + 8;
  // long column labels go under the matrix, turned by 45°, running down to the left
  const height = top + nr * cell + (rotate ? Math.ceil(colLabelW * 0.72) + 12 : 8);
  const parts: string[] = [svgOpen(opts.id, width, height, opts.label, ` data-rows="${nr}" data-cols="${nc}" style="max-width:${width}px"`)];
  // axis titles: predicted across the top, actual down the left
  parts.push(`<text class="axis-label" x="${f(left + (nc * cell) / 2)}" y="12" text-anchor="middle">${esc(opts.colTitle)} →</text>`);
  parts.push(`<text class="axis-label" transform="translate(12 ${f(top + (nr * cell) / 2)}) rotate(-90)" text-anchor="middle">← ${esc(opts.rowTitle)}</text>`);
  opts.cols.forEach((c, j) => {
    const x = left + j * cell + cell / 2;
    const label = esc(short(c));
    const tip = c.length > LABEL_MAX ? `<title>${esc(c)}</title>` : '';
    parts.push(
      rotate
        ? `<text class="cm-col" transform="translate(${f(x + 4)} ${top + nr * cell + 8}) rotate(-45)" text-anchor="end">${tip}${label}</text>`
        : `<text class="cm-col" x="${f(x)}" y="${top - 5}" text-anchor="middle">${tip}${label}</text>`,
    );
  });
  parts.push(`<text class="cm-total-head" x="${left + nc * cell + 10}" y="${top - 5}" text-anchor="start">total</text>`);
  const fits = cell >= 18;
  opts.rows.forEach((r, i) => {
    const y = top + i * cell;
    parts.push(`<text class="cm-row" x="${left - 6}" y="${f(y + cell / 2 + 4)}" text-anchor="end">${r.length > LABEL_MAX ? `<title>${esc(r)}</title>` : ''}${esc(short(r))}</text>`);
    const total = totals[i]!;
    opts.cols.forEach((c, j) => {
      const count = opts.counts[i]![j] ?? 0;
      const share = total > 0 ? count / total : 0;
      const x = left + j * cell;
      const diag = r === c;
      const tip = `${opts.rowTitle} ${r}, ${opts.colTitle} ${c}: ${formatNumber(count)}${total > 0 ? ` (${(share * 100).toFixed(1)}% of the ${formatNumber(total)} with ${opts.rowTitle} ${r})` : ''}`;
      parts.push(
        `<rect class="cm-cell${diag ? ' cm-diag' : ''}" data-row="${i}" data-col="${j}" data-count="${count}" x="${x}" y="${y}" width="${cell - 1}" height="${cell - 1}" fill="${shade(share)}"${diag ? ' stroke="#1d2430" stroke-opacity="0.45"' : ''}><title>${esc(tip)}</title></rect>`,
      );
      const text = formatNumber(count);
      if (fits && count !== 0 && textWidth(text) <= cell - 2) {
        parts.push(`<text class="cm-count${share > 0.5 ? ' on-dark' : ''}" x="${f(x + (cell - 1) / 2)}" y="${f(y + cell / 2 + 4)}" text-anchor="middle">${esc(text)}</text>`);
      }
    });
    parts.push(`<text class="cm-total" x="${left + nc * cell + 10}" y="${f(y + cell / 2 + 4)}" text-anchor="start">${esc(formatNumber(total))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
