// The benchmark's stand-in for a mini-batch's work: a fixed amount of CPU work (not a wait on the
// clock, which would hide time lost to other processes on the same core). `iterations` is
// calibrated once by the benchmark and passed to both sides, so both do the same work.
export function spin(iterations) {
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x;
}

/** Iterations of spin() that take about `ms` on this machine (median of a few tries). */
export function calibrate(ms) {
  spin(1e6);
  const rates = [];
  for (let k = 0; k < 7; k++) {
    const n = 2e6;
    const t = performance.now();
    spin(n);
    rates.push(n / (performance.now() - t));
  }
  rates.sort((a, b) => a - b);
  return Math.round(rates[3] * ms);
}
