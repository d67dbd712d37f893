// Labels that never overlap: each label is placed at its wanted x on the first row where it
// collides with nothing already placed, shifted to stay inside the chart. Text widths are
// estimated on the generous side for the report's 11 px system font (the browser tests measure).

/** Estimated width in px of `text` at 11 px (bold: a little wider). */
export function textWidth(text: string, bold = false): number {
  let w = 0;
  for (const ch of text) w += /[\u00b5.,:;!|il1' ]/.test(ch) ? 3.6 : /[MW%—–]/.test(ch) ? 9.8 : /[A-Z0-9]/.test(ch) ? 7.4 : 6.6;
  return Math.ceil(w * (bold ? 1.08 : 1) + 2);
}

export interface PlacedLabel {
  /** Left edge of the text (use text-anchor="start"). */
  readonly x: number;
  readonly row: number;
  readonly width: number;
}

/**
 * Rows for labels centred at `wanted` x positions (in the given order of priority), inside
 * [minX, maxX], at least `gap` px apart on one row; never more than `maxRows` rows (a label that fits
 * nowhere is left out: `undefined`).
 */
export function placeLabels(labels: readonly { x: number; width: number }[], minX: number, maxX: number, maxRows = 3, gap = 6): (PlacedLabel | undefined)[] {
  const rows: { from: number; to: number }[][] = [];
  return labels.map((l) => {
    const x = Math.max(minX, Math.min(maxX - l.width, l.x - l.width / 2));
    for (let r = 0; r < maxRows; r++) {
      const row = (rows[r] ??= []);
      if (row.every((o) => x + l.width + gap <= o.from || x >= o.to + gap)) {
        row.push({ from: x, to: x + l.width });
        return { x, row: r, width: l.width };
      }
    }
    return undefined;
  });
}

/** The ticks (by x) that can be labelled left to right without overlapping; always the first. */
export function thinTicks<T extends { x: number; width: number }>(ticks: readonly T[], gap = 10): T[] {
  const out: T[] = [];
  let right = -Infinity;
  for (const t of [...ticks].sort((a, b) => a.x - b.x)) {
    if (t.x - t.width / 2 < right + gap) continue;
    out.push(t);
    right = t.x + t.width / 2;
  }
  return out;
}
