// What every chart's SVG shares: the root element and short coordinates.
import { esc } from '../html.js';

/** A coordinate with one decimal, as short as it can be. */
export function f(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

/** The root <svg>: scales to its container's width; `label` is what a screen reader says. */
export function svgOpen(id: string, width: number, height: number, label: string, attrs = ''): string {
  return `<svg class="chart-svg" id="${esc(id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}" xmlns="http://www.w3.org/2000/svg"${attrs}>`;
}

export function title(text: string | undefined): string {
  return text ? `<title>${esc(text)}</title>` : '';
}
