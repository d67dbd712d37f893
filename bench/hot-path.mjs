// Hot-path figures of the core, each against a baseline measured in this same process, printed as
// ratios; nothing is asserted. Run through `npm run bench`, or `node bench/hot-path.mjs [rounds]`
// after `npm run build`.
//
// The loops yield to the event loop every 1,000 calls, as a step does between its batches, so the
// batched file writes and the exports happen as they would. A figure is the CPU time of the whole
// process (every thread: serialisation, file writes, exports, GC) per call, including the flush at
// the end of the round, less the same loop doing nothing; the median of the rounds, the two sides
// alternating within each round. The calling thread's own time per call is shown beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import client from 'prom-client';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTimeToMilliseconds, hrTimeToTimeStamp } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { startStep } from 'step-telemetry';

const ROUNDS = Number(process.argv[2] ?? 7);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'st-bench-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => process.hrtime.bigint();
const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** One round of `n` calls of `fn` in chunks of 1,000 with a yield between, then `flush`: { cpu, thread } ns per call. */
async function round(fn, n, flush) {
  const cpu0 = cpuNs();
  let thread = 0n;
  for (let i = 0; i < n; ) {
    const t0 = now();
    for (const end = Math.min(n, i + 1000); i < end; i++) fn(i);
    thread += now() - t0;
    await tick();
  }
  await flush?.();
  return { cpu: (cpuNs() - cpu0) / n, thread: Number(thread) / n };
}

/** Medians over the rounds of each case's figures (less `empty`'s), the cases alternating within a round. */
async function compare(cases, n, empty = () => {}) {
  const figures = Object.fromEntries(Object.keys(cases).map((k) => [k, { cpu: [], thread: [] }]));
  for (const c of Object.values(cases)) await round(c.fn, n, c.flush); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const base = await round(empty, n);
    for (const [k, c] of Object.entries(cases)) {
      const f = await round(c.fn, n, c.flush);
      figures[k].cpu.push(f.cpu - base.cpu);
      figures[k].thread.push(f.thread - base.thread);
    }
  }
  return Object.fromEntries(Object.entries(figures).map(([k, f]) => [k, { cpu: median(f.cpu), thread: median(f.thread) }]));
}

const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const rows = [];
const report = (figure, value, baseline, target) =>
  rows.push({
    figure,
    'cpu per call': fmt(value.cpu),
    'calling thread': fmt(value.thread),
    baseline: baseline === undefined ? '' : fmt(baseline.cpu),
    ratio: baseline ? `${(value.cpu / baseline.cpu).toFixed(2)}×` : '',
    target,
  });

const step = await startStep({ name: 'bench', dir: tmp, console: false, handleProcessEvents: false });
const flushStep = () => step.flush();

// 1. step.logger.info against a bare winston logger: JSON format, one file transport
const bare = winston.createLogger({
  level: 'info',
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.Stream({ stream: fs.createWriteStream(path.join(tmp, 'bare.jsonl')) })],
});
const meta = { item: 'digit-00042.pgm', score: 0.93 };
const logs = await compare({ step: { fn: () => step.logger.info('scored', meta), flush: flushStep }, winston: { fn: () => bare.info('scored', meta) } }, 20_000);
report('step.logger.info (dims, trace ids, logs.jsonl + driver.log) | bare winston to a file', logs.step, logs.winston, '≤ 1.0×');

// 2. step.log against prom-client's gauge.set
const registry = new client.Registry();
const gauge = new client.Gauge({ name: 'loss', help: 'loss', registers: [registry] });
const metric = await compare({ step: { fn: (i) => step.log('loss', i * 0.001, { step: i }), flush: flushStep }, prom: { fn: (i) => gauge.set(i * 0.001) } }, 100_000);
report('step.log(name, value, {step}) (metrics.jsonl, gauges) | prom-client gauge.set', metric.step, metric.prom, '< 500 ns');

// 3. a mini-batch record: the OpenTelemetry SDK used directly (a span, a histogram sample and a log
// record, to JSON Lines files through its batch processors, sized as the step's file batches)
// against the step's (the span, the histogram sample, two counters and the log line), both with a
// live span and with the runner's finished span
const jsonLines = (file, line) => {
  const out = fs.createWriteStream(file);
  return {
    export(items, done) {
      let text = '';
      for (const item of items) text += `${JSON.stringify(line(item))}\n`;
      out.write(text, () => done({ code: 0 }));
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => new Promise((resolve) => out.end(resolve)),
  };
};
const batch = { maxQueueSize: 1 << 20, maxExportBatchSize: 1024, scheduledDelayMillis: 200 };
const resource = resourceFromAttributes({ 'service.name': 'bench', 'step.name': 'bench', 'pipeline.run_id': 'bench' });
const spanExporter = jsonLines(path.join(tmp, 'otel-spans.jsonl'), (s) => ({
  trace_id: s.spanContext().traceId,
  span_id: s.spanContext().spanId,
  parent_span_id: s.parentSpanContext?.spanId,
  name: s.name,
  kind: s.kind,
  start: hrTimeToTimeStamp(s.startTime),
  duration_ms: hrTimeToMilliseconds(s.duration),
  status: s.status,
  attributes: s.attributes,
}));
const logExporter = jsonLines(path.join(tmp, 'otel-logs.jsonl'), (r) => ({
  time: hrTimeToTimeStamp(r.hrTime),
  severity: r.severityText,
  body: r.body,
  trace_id: r.spanContext?.traceId,
  span_id: r.spanContext?.spanId,
  attributes: r.attributes,
}));
const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(spanExporter, batch)] });
const metricReader = new PeriodicExportingMetricReader({
  exporter: { export: (m, done) => done({ code: 0 }), selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE, forceFlush: () => Promise.resolve(), shutdown: () => Promise.resolve() },
  exportIntervalMillis: 60_000,
});
const meterProvider = new MeterProvider({ resource, readers: [metricReader] });
const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor(logExporter, batch)] });
const tracer = tracerProvider.getTracer('bench');
const histogram = meterProvider.getMeter('bench').createHistogram('step.minibatch.duration', { unit: 's' });
const otelLogger = loggerProvider.getLogger('bench');

let sink = 0;
const work = (i) => {
  for (let k = 0; k < 50; k++) sink += Math.sqrt(i + k);
};
const otelRecord = (i) => {
  const t0 = performance.now();
  const span = tracer.startSpan('mini-batch', { kind: SpanKind.CONSUMER, attributes: { 'mini_batch.id': i, 'mini_batch.items': 10 } });
  work(i);
  span.setStatus({ code: SpanStatusCode.OK });
  span.end();
  histogram.record((performance.now() - t0) / 1000, { outcome: 'success' });
  otelLogger.emit({ severityText: 'INFO', body: 'mini-batch done', attributes: { mini_batch: i, items: 10 } });
};
const stepCounters = (seconds, sc) => {
  step.instruments.record('minibatchDuration', seconds, { outcome: 'success' }, sc);
  step.instruments.record('minibatches', 1, { outcome: 'success' });
  step.instruments.record('items', 10, { outcome: 'success' });
};
const liveRecord = (i) => {
  const t0 = performance.now();
  const span = step.startSpan('mini-batch', { kind: SpanKind.CONSUMER, attributes: { 'mini_batch.id': i, 'mini_batch.items': 10 } });
  work(i);
  span.setStatus({ code: SpanStatusCode.OK });
  span.end();
  stepCounters((performance.now() - t0) / 1000, span.spanContext());
  step.logger.info('mini-batch done', { mini_batch: i, items: 10 });
};
const stepParent = step.rootSpan.spanContext();
const finishedRecord = (i) => {
  const spanId = step.newSpanId();
  const exportProbability = step.sampleForExport?.();
  const start = performance.timeOrigin + performance.now();
  work(i);
  const end = performance.timeOrigin + performance.now();
  const sc = step.recordSpan({
    name: 'mini-batch',
    kind: SpanKind.CONSUMER,
    spanId,
    parent: stepParent,
    startTime: start,
    endTime: end,
    attributes: { 'mini_batch.id': i, 'mini_batch.items': 10 },
    status: { code: SpanStatusCode.OK },
    exportProbability,
  });
  stepCounters((end - start) / 1000, sc ?? { traceId: stepParent.traceId, spanId });
  step.logger.info('mini-batch done', { mini_batch: i, items: 10 });
};
const flushOtel = () => Promise.all([tracerProvider.forceFlush(), loggerProvider.forceFlush()]);
const records = await compare(
  { otel: { fn: otelRecord, flush: flushOtel }, live: { fn: liveRecord, flush: flushStep }, finished: { fn: finishedRecord, flush: flushStep } },
  20_000,
  work,
);
report('mini-batch record, live span (span, histogram, 2 counters, log line) | OpenTelemetry SDK directly (span, histogram, log record)', records.live, records.otel, '≤ 1.2×');
report("mini-batch record, the runner's finished span | OpenTelemetry SDK directly", records.finished, records.otel, '≤ 1.2×');

await step.end();
await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown(), loggerProvider.shutdown()]);
fs.rmSync(tmp, { recursive: true, force: true });
void sink;
console.log(JSON.stringify(rows));
