// The baseline's worker: the same IPC round trip as a runner worker, no runner around it.
let busyMs = Number(process.argv[2] ?? 0);
process.on('message', (m) => {
  if (m.type === 'stop') process.exit(0);
  if (busyMs > 0) {
    const end = performance.now() + busyMs;
    while (performance.now() < end);
  }
  process.send({ type: 'result', id: m.id, ok: true, succeeded: m.task.files.length, returned: m.task.files.length, runMs: 0 });
});
process.send({ type: 'ready' });
