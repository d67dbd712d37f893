// One process, one step, N mini-batch-shaped records: a span, a histogram sample, two counters and
// a log line each. Prints wall time and resident memory as JSON. Backends come from the environment.
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { startStep } from 'step-telemetry';

const n = Number(process.argv[2] ?? 100_000);
// memory is also measured from the end of a warm-up of this many mini-batches: what grows after it
// is what a longer outage would keep adding; what grows before it is the heap finding its size
const warmup = Number(process.argv[3] ?? 20_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-loop-'));
const step = await startStep({ name: 'loop', dir, console: false, handleProcessEvents: false });
const mb = () => Math.round(process.memoryUsage().rss / 1048576);
const heapMb = () => Math.round(process.memoryUsage().heapUsed / 1048576);
globalThis.gc?.();
const rssBefore = mb();
const heapBefore = heapMb();
let peak = rssBefore;
let rssWarm = rssBefore;
let heapWarm = heapBefore;
let t0 = performance.now();
for (let i = -warmup; i < n; i++) {
  if (i === 0) {
    globalThis.gc?.();
    rssWarm = mb();
    heapWarm = heapMb();
    t0 = performance.now();
  }
  const start = performance.now();
  const span = step.startSpan('minibatch', { kind: SpanKind.CONSUMER, attributes: { 'minibatch.id': i, 'minibatch.items': 10 } });
  span.end();
  step.instruments.record('minibatchDuration', (performance.now() - start) / 1000, { outcome: 'success' });
  step.instruments.record('minibatches', 1, { outcome: 'success' });
  step.instruments.record('items', 10, { outcome: 'success' });
  step.logger.info('mini-batch done', { mini_batch: i, items: 10 });
  if ((i + warmup) % 100 === 0) {
    // let timers, exports and file writes run, as they do between real mini-batches (a real
    // mini-batch waits for its worker; this loop would otherwise never yield)
    await new Promise((resolve) => setImmediate(resolve));
    if ((i + warmup) % 5000 === 0) peak = Math.max(peak, mb());
  }
}
const wallMs = performance.now() - t0;
globalThis.gc?.();
const rssAfter = mb();
const heapAfter = heapMb();
peak = Math.max(peak, rssAfter);
const end = await step.end();
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ n, warmup, wallMs, rssBefore, rssWarm, rssAfter, heapBefore, heapWarm, heapAfter, peak, flushed: end.flushed, failed: end.exports.filter((e) => e.failedBatches > 0).length }));
