// ISO-8601 timestamps on hot paths: records arrive in bursts within the same millisecond or
// second, so the formatted prefix is cached and only the fraction is rebuilt.

let lastMs = -1;
let lastMsIso = '';

/** `new Date(ms).toISOString()`, cached for the last millisecond seen. */
export function isoFromMillis(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastMsIso = new Date(ms).toISOString();
  }
  return lastMsIso;
}

let lastSecond = -1;
let lastSecondPrefix = '';

/** ISO-8601 with nanoseconds from an OpenTelemetry HrTime `[seconds, nanoseconds]`. */
export function isoFromHrTime(time: readonly [number, number]): string {
  const [seconds, nanos] = time;
  if (seconds !== lastSecond) {
    lastSecond = seconds;
    lastSecondPrefix = new Date(seconds * 1000).toISOString().slice(0, 19);
  }
  return `${lastSecondPrefix}.${String(nanos).padStart(9, '0')}Z`;
}
