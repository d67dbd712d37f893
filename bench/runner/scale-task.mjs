// The baselines' work for one mini-batch of the scale benchmark, the same as a runner worker does
// before and around a no-op run(): read the mini-batch's byte range of a JSON Lines file and parse
// its rows. Nothing else (no spans, logs, metrics, reports, retries).
import fs from 'node:fs';

let fd;
let fdFile;

/** Run one attempt (AttemptTask's shape, protocol.ts) and return its result (AttemptResult's shape). */
export function runTask(a) {
  const t = a.task;
  const t0 = performance.now();
  if (fdFile !== t.file) {
    if (fd !== undefined) fs.closeSync(fd);
    fd = fs.openSync(t.file, 'r');
    fdFile = t.file;
  }
  const buf = Buffer.allocUnsafe(t.end - t.start);
  fs.readSync(fd, buf, 0, buf.length, t.start);
  let rows = 0;
  for (const line of buf.toString('utf8').split('\n')) if (line !== '') rows += JSON.parse(line) === undefined ? 0 : 1;
  const t1 = performance.now();
  return { id: a.id, attempt: a.attempt, ok: true, ran: true, succeeded: rows, returned: rows, start: performance.timeOrigin + t0, end: performance.timeOrigin + t1, runMs: 0 };
}

/** piscina's entry: one task, one result. */
export default runTask;
