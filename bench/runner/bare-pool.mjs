// The baseline: a bare pool of forked workers doing the same tasks (one file path each) with the
// same IPC, and nothing else: no spans, metrics, reports or retries. With PREFETCH 1 each worker
// is sent its next task while it runs the current one, as the runner does for short mini-batches;
// with 0 a worker gets a task when it is idle, as piscina and tinypool do. Prints {"wallMs": ...}.
//   node bare-pool.mjs FILES_DIR PROCESSES BUSY_ITERATIONS PREFETCH
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [dir, processes = '1', iterations = '0', prefetch = '0'] = process.argv.slice(2);
const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
const workers = Array.from({ length: Number(processes) }, () =>
  fork(new URL('./bare-worker.mjs', import.meta.url), [iterations], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
);
await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
let next = 0;
let done = 0;
const t0 = performance.now();
await new Promise((resolve) => {
  const dispatch = (w) => {
    if (next >= files.length) return;
    const i = next++;
    w.send({ type: 'run', id: `mb-${String(i).padStart(5, '0')}`, attempt: 1, traceparent: '', items: 1, task: { kind: 'files', files: [files[i]] } });
  };
  for (const w of workers) {
    w.on('message', () => {
      if (++done === files.length) resolve();
      else dispatch(w);
    });
    dispatch(w);
  }
  if (prefetch === '1') for (const w of workers) dispatch(w);
});
const wallMs = performance.now() - t0;
for (const w of workers) w.send({ type: 'stop' });
process.stdout.write(`${JSON.stringify({ wallMs })}\n`);
