// Numbers and durations for people, and the extremes of long arrays (no spread: a 100k-element
// Math.min(...values) overflows the stack).

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

/** x with `digits` decimals at most, without trailing zeros: 1, 1.5, 12.34. */
function decimals(x: number, digits: number): string {
  return String(Number(x.toFixed(digits)));
}

/** A duration for people: 450 ms, 1.5 ms, 12.3 s, 4:05, 1:02:03. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms === 0) return '0';
  const neg = ms < 0 ? '-' : '';
  ms = Math.abs(ms);
  if (ms < 1) return `${neg}${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${neg}${decimals(ms, ms < 10 ? 2 : ms < 100 ? 1 : 0)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${neg}${decimals(s, s < 10 ? 2 : 1)} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${neg}${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${neg}${m}:${String(sec).padStart(2, '0')}`;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

/** 12,345 */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
