// The time a record is made at: now, except while something recorded earlier is written late (the
// runner books what its workers did before its step was up: see runner/early-start.ts), when it is
// the time that happened at. Read by the log records' timestamp and the runner's report rows.
let at: number | undefined;

/** Epoch ms for a record made now. */
export function recordedAt(): number {
  return at ?? Date.now();
}

/** Whether records made now are written late, at an earlier time (inside atTime). */
export function recordedLate(): boolean {
  return at !== undefined;
}

/** Run `fn` with records timed at `time` (epoch ms). */
export function atTime<T>(time: number, fn: () => T): T {
  const outer = at;
  at = time;
  try {
    return fn();
  } finally {
    at = outer;
  }
}
