// The baselines of the scale benchmark (scale.mjs): the runner's tasks (2-row byte ranges of one
// JSON Lines file) on a pool with nothing else around them. Prints one JSON line: epoch ms of the
// first result, of the last, and the steady state (from a quarter of the tasks done to the last).
//   MODE idle     forked workers, the runner's IPC (fork, JSON); a task goes to a worker when it
//                 is idle, one a message, as piscina and tinypool do
//   MODE chunks   the same workers, scheduled as the runner schedules (chunks sized by chunkSize
//                 in dist/runner/lane.js, the next one sent in advance, results back together)
//   MODE piscina  piscina (worker threads, its own message ports), 2 tasks a thread in flight
//   node scale-pool.mjs FILE MINI_BATCHES BYTES_PER_MINI_BATCH PROCESSES MODE
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chunkSize, CHUNK_BELOW_MS } from '../../dist/runner/lane.js';

const [file, nArg, bytesArg, pArg = '1', mode = 'idle'] = process.argv.slice(2);
const n = Number(nArg);
const bytes = Number(bytesArg);
const p = Number(pArg);
const traceparent = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
let next = 0;
const task = () => {
  const i = next++;
  return { id: `mb-${String(i).padStart(5, '0')}`, attempt: 1, traceparent, items: 2, task: { kind: 'tabular', file, format: 'jsonl', start: i * bytes, end: (i + 1) * bytes, firstRow: 2 * i, firstLine: 2 * i + 1 } };
};
let done = 0;
let first = 0;
let quarterAt = 0;
let doneAtQuarter = 0;
const quarter = Math.floor(n / 4);
const count = (k) => {
  if (done === 0) first = performance.timeOrigin + performance.now();
  done += k;
  if (quarterAt === 0 && done >= quarter) {
    quarterAt = performance.now();
    doneAtQuarter = done;
  }
};

let finished;
const all = new Promise((resolve) => (finished = resolve));
let stop = () => {};
if (mode === 'piscina') {
  const { Piscina } = await import('piscina');
  const pool = new Piscina({ filename: fileURLToPath(new URL('./scale-task.mjs', import.meta.url)), minThreads: p, maxThreads: p, idleTimeout: 60_000 });
  await Promise.all(Array.from({ length: p }, () => pool.run({ id: 'warm', attempt: 0, task: { file, start: 0, end: bytes } })));
  const submit = () => {
    if (next >= n) return;
    void pool.run(task()).then(() => {
      count(1);
      if (done === n) finished();
      else submit();
    });
  };
  for (let k = 0; k < 2 * p; k++) submit();
  stop = () => pool.destroy();
} else {
  const workers = Array.from({ length: p }, () => fork(new URL('./scale-fork-worker.mjs', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const lanes = new Map(workers.map((w) => [w, { chunks: 0, recentMs: undefined }]));
  const dispatch = (w) => {
    const lane = lanes.get(w);
    if (mode === 'idle') {
      if (lane.chunks === 0 && next < n) {
        lane.chunks = 1;
        w.send({ type: 'run', attempts: [task()] });
      }
      return;
    }
    if (lane.chunks >= 2 || (lane.chunks === 1 && !(lane.recentMs < CHUNK_BELOW_MS))) return;
    const k = chunkSize(lane.recentMs, n - next, workers.length);
    const attempts = [];
    while (attempts.length < k && next < n) attempts.push(task());
    if (attempts.length === 0) return;
    lane.chunks++;
    w.send({ type: 'run', attempts });
    if (lane.chunks === 1) dispatch(w);
  };
  for (const w of workers) {
    w.on('message', (m) => {
      const lane = lanes.get(w);
      lane.chunks--;
      const rs = m.results;
      const ms = (rs[rs.length - 1].end - rs[0].start) / rs.length;
      lane.recentMs = lane.recentMs === undefined ? ms : 0.7 * lane.recentMs + 0.3 * ms;
      count(rs.length);
      if (done === n) finished();
      else dispatch(w);
    });
    dispatch(w);
  }
  // the workers' exits are awaited, as the runner awaits its workers' (and their CPU time reaches scale.mjs's figures)
  stop = () => {
    const exits = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
    for (const w of workers) w.send({ type: 'stop' });
    return Promise.all(exits);
  };
}
await all;
const end = performance.now();
await stop();
process.stdout.write(`${JSON.stringify({ first, last: performance.timeOrigin + end, steadyMs: end - quarterAt, steadyCount: n - doneAtQuarter, peakRssKb: process.resourceUsage().maxRSS })}\n`);
