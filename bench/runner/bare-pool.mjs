// The baselines: a bare pool of forked workers doing the same tasks (one file path each) with the
// same IPC, and nothing else: no spans, metrics, logs, reports or retries. Prints {"wallMs": ...,
// "steadyMs": ..., "steadyCount": ...}: all of it, and from the moment a quarter of the tasks were
// done to the end (the steady state, without start-up's transients), with the tasks done in it.
//   MODE idle     a worker gets one task when it is idle, as piscina and tinypool do
//   MODE chunks   the runner's scheduling without its telemetry: tasks go out in chunks sized by
//                 the runner's own rule (chunkSize in dist/runner/lane.js), the next chunk while a
//                 worker runs one, and a chunk's results come back in one message
//   node bare-pool.mjs FILES_DIR PROCESSES BUSY_ITERATIONS MODE
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CHUNK_BELOW_MS, chunkSize } from '../../dist/runner/lane.js';

const [dir, processes = '1', iterations = '0', mode = 'idle'] = process.argv.slice(2);
const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
const workers = Array.from({ length: Number(processes) }, () =>
  fork(new URL('./bare-worker.mjs', import.meta.url), [iterations], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
);
await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
let next = 0;
let done = 0;
let quarterAt;
let doneAtQuarter = 0;
const quarter = Math.floor(files.length / 4);
const count = (n) => {
  done += n;
  if (quarterAt === undefined && done >= quarter) {
    quarterAt = performance.now();
    doneAtQuarter = done;
  }
};
const task = (i) => ({ id: `mb-${String(i).padStart(5, '0')}`, attempt: 1, traceparent: '', items: 1, task: { kind: 'files', files: [files[i]] } });
const t0 = performance.now();
await new Promise((resolve) => {
  if (mode === 'idle') {
    const dispatch = (w) => {
      if (next < files.length) w.send({ type: 'run', attempts: [task(next++)] });
    };
    for (const w of workers) {
      w.on('message', (m) => {
        count(m.results.length);
        if (done === files.length) resolve();
        else dispatch(w);
      });
      dispatch(w);
    }
    return;
  }
  const lanes = new Map(workers.map((w) => [w, { chunks: 0, recentMs: undefined }]));
  const dispatch = (w) => {
    const lane = lanes.get(w);
    if (lane.chunks >= 2 || (lane.chunks === 1 && !(lane.recentMs < CHUNK_BELOW_MS))) return;
    const k = chunkSize(lane.recentMs, files.length - next, workers.length);
    const attempts = [];
    while (attempts.length < k && next < files.length) attempts.push(task(next++));
    if (attempts.length === 0) return;
    lane.chunks++;
    w.send({ type: 'run', attempts });
    if (lane.chunks === 1) dispatch(w);
  };
  for (const w of workers) {
    w.on('message', (m) => {
      const lane = lanes.get(w);
      lane.chunks--;
      const ms = m.ms / m.results.length;
      lane.recentMs = lane.recentMs === undefined ? ms : 0.7 * lane.recentMs + 0.3 * ms;
      count(m.results.length);
      if (done === files.length) resolve();
      else dispatch(w);
    });
    dispatch(w);
  }
});
const end = performance.now();
for (const w of workers) w.send({ type: 'stop' });
process.stdout.write(`${JSON.stringify({ wallMs: end - t0, steadyMs: end - quarterAt, steadyCount: files.length - doneAtQuarter })}\n`);
