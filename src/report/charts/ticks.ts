// Axis ticks: round numbers (whole numbers only for a step index), time steps, and powers of ten
// for a logarithmic axis.

/** Round numbers between min and max, about `count` of them; `integer`: whole numbers only (a step index). */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (max <= min) return [min];
  const span = max - min;
  const raw = span / Math.max(1, count);
  const mag = integer ? Math.max(1, 10 ** Math.floor(Math.log10(raw))) : 10 ** Math.floor(Math.log10(raw));
  const step = (integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]).map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
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

/** Ticks of a log axis over [lo, hi] (> 0): powers of ten, with 2 and 5 between them when the span is short. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > lo)) return lo > 0 ? [lo] : [];
  const k0 = Math.floor(Math.log10(lo));
  const k1 = Math.ceil(Math.log10(hi));
  const mantissas = k1 - k0 <= 2 ? [1, 2, 5] : k1 - k0 <= 4 ? [1, 3] : [1];
  const out: number[] = [];
  for (let k = k0; k <= k1; k++) {
    for (const m of mantissas) {
      const v = m * 10 ** k;
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(Number(v.toPrecision(12)));
    }
  }
  return out;
}
