// The baselines' worker: runs the tasks of a message in order and answers with their results in
// one message, as a runner worker does with a chunk; nothing else around it.
import { spin } from './busy.mjs';

const iterations = Number(process.argv[2] ?? 0);
let sink = 0;
process.on('message', (m) => {
  if (m.type === 'stop') process.exit(sink === 0.5 ? 1 : 0);
  const t0 = performance.now();
  const results = [];
  for (const a of m.attempts) {
    if (iterations > 0) sink ^= spin(iterations);
    results.push({ id: a.id, attempt: a.attempt, ok: true, succeeded: a.task.files.length, returned: a.task.files.length, runMs: 0 });
  }
  process.send({ type: 'results', results, ms: performance.now() - t0 });
});
process.send({ type: 'ready' });
