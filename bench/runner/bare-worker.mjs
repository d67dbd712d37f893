// The baseline's worker: the same IPC round trip as a runner worker, no runner around it.
import { spin } from './busy.mjs';

const iterations = Number(process.argv[2] ?? 0);
let sink = 0;
process.on('message', (m) => {
  if (m.type === 'stop') process.exit(sink === 0.5 ? 1 : 0);
  if (iterations > 0) sink ^= spin(iterations);
  process.send({ type: 'result', id: m.id, ok: true, succeeded: m.task.files.length, returned: m.task.files.length, runMs: 0 });
});
process.send({ type: 'ready' });
