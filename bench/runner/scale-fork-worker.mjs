// The bare fork pool's worker (scale.mjs): runs the attempts of a message in order and answers with
// their results in one message, over the same IPC as a runner worker (fork, JSON serialisation).
import { runTask } from './scale-task.mjs';

process.on('message', (m) => {
  if (m.type === 'stop') process.exit(0);
  const results = [];
  for (const a of m.attempts) results.push(runTask(a));
  process.send({ type: 'results', results });
});
process.send({ type: 'ready' });
