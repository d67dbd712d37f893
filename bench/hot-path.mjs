// Hot-path figures of the core, each against a baseline measured in this same process.
// Printed as ratios; nothing is asserted. Run through `npm run bench`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { SpanKind } from '@opentelemetry/api';
import { startStep } from 'step-telemetry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'st-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => process.hrtime.bigint();

/** Median ns per call over `rounds` rounds of `n` calls. */
function perCall(fn, n, rounds = 7) {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    for (let i = 0; i < n; i++) fn(i);
    out.push(Number(now() - t0) / n);
  }
  return median(out);
}

/** Median and 99th percentile of single calls (timed in groups of `group`), and the mean over all calls. */
function distribution(fn, n, group = 1) {
  const samples = new Float64Array(Math.floor(n / group));
  const all0 = now();
  let i = 0;
  for (let s = 0; s < samples.length; s++) {
    const t0 = now();
    for (let g = 0; g < group; g++) fn(i++);
    samples[s] = Number(now() - t0) / group;
  }
  const mean = Number(now() - all0) / n;
  samples.sort();
  return { median: samples[Math.floor(samples.length / 2)], p99: samples[Math.floor(samples.length * 0.99)], mean };
}

const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const rows = [];
const report = (name, value, baseline, target) =>
  rows.push({ figure: name, value: fmt(value), baseline: baseline === undefined ? '' : fmt(baseline), ratio: baseline ? `${(value / baseline).toFixed(2)}×` : '', target });

// 1. a bare winston logger: JSON format, one file transport
const bareFile = path.join(tmp, 'bare.jsonl');
const bare = winston.createLogger({
  level: 'info',
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.Stream({ stream: fs.createWriteStream(bareFile) })],
});
const meta = { item: 'digit-00042.pgm', score: 0.93 };
perCall((i) => bare.info('scored', meta), 20_000, 2); // warm up
const bareNs = perCall(() => bare.info('scored', meta), 20_000);

const step = await startStep({ name: 'bench', dir: tmp, console: false, handleProcessEvents: false });
perCall(() => step.logger.info('scored', meta), 20_000, 2);
const stepNs = perCall(() => step.logger.info('scored', meta), 20_000);
report('step.logger.info (dims, trace ids, logs.jsonl + driver.log)', stepNs, bareNs, '≤ 1.0× bare winston');

// 2. step.log per call: the median call, and the mean including the batched writes of metrics.jsonl
const emptyCall = distribution(() => {}, 200_000, 16);
distribution((i) => step.log('loss', i * 0.001, { step: i }), 100_000, 16);
const logDist = distribution((i) => step.log('loss', i * 0.001, { step: i }), 200_000, 16);
report('step.log(name, value, {step}): median call', logDist.median - emptyCall.median, undefined, '≤ 1 µs median');
report('step.log: 99th percentile call', logDist.p99, undefined, '');
report('step.log: mean, batched metrics.jsonl writes included', logDist.mean, undefined, '');

// 3. a mini-batch-shaped record against the same loop uninstrumented
let sink = 0;
const work = (i) => {
  for (let k = 0; k < 50; k++) sink += Math.sqrt(i + k);
};
const instrumented = (i) => {
  const t0 = performance.now();
  const span = step.startSpan('minibatch', { kind: SpanKind.CONSUMER, attributes: { 'minibatch.id': i, 'minibatch.items': 10 } });
  work(i);
  span.end();
  const seconds = (performance.now() - t0) / 1000;
  step.instruments.record('minibatchDuration', seconds, { outcome: 'success' });
  step.instruments.record('minibatches', 1, { outcome: 'success' });
  step.instruments.record('items', 10, { outcome: 'success' });
  step.logger.info('mini-batch done', { mini_batch: i, items: 10 });
};
perCall(instrumented, 20_000, 2);
const baseDist = distribution(work, 40_000);
const instDist = distribution(instrumented, 40_000);
report('mini-batch record: median added per mini-batch (span, histogram, 2 counters, log line)', instDist.median - baseDist.median, undefined, '≤ 10 µs median');
report('mini-batch record: mean added, batched file writes included', instDist.mean - baseDist.mean, undefined, '');

await step.end();
fs.rmSync(tmp, { recursive: true, force: true });
void sink;
console.log(JSON.stringify(rows));
