// In-process checks of the public API: names, the metric catalog, and regressions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CATALOG, metric, prometheusName, startStep, type Step } from '../src/index.js';

let step: Step | undefined;
let dir: string | undefined;
afterEach(async () => {
  await step?.end();
  step = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function start(name = 'api'): Promise<Step> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-api-'));
  step = await startStep({ name, dir, console: false, handleProcessEvents: false });
  return step;
}

describe('the metric catalog', () => {
  it('maps every OpenTelemetry instrument to the Prometheus name the collector gives it', () => {
    const names = Object.fromEntries(Object.values(CATALOG).map((e) => [e.name, prometheusName(e)]));
    expect(names).toEqual({
      'step.minibatch.duration': 'step_minibatch_duration_seconds',
      'step.minibatches': 'step_minibatches_total',
      'step.items': 'step_items_total',
      'step.items.expected': 'step_items_expected',
      'step.minibatch.retries': 'step_minibatch_retries_total',
      'step.minibatch.timeouts': 'step_minibatch_timeouts_total',
      'step.worker.restarts': 'step_worker_restarts_total',
      'step.error_budget.used': 'step_error_budget_used_ratio',
      'step.progress.timestamp': 'step_progress_timestamp_seconds',
      'step.running': 'step_running',
      'step.export.failures': 'step_export_failures_total',
      // resources: the semantic conventions' names
      'process.cpu.time': 'process_cpu_time_seconds_total',
      'process.cpu.utilization': 'process_cpu_utilization_ratio',
      'process.memory.usage': 'process_memory_usage_bytes',
      'step.process.memory.limit': 'step_process_memory_limit_bytes',
      'step.process.memory.external': 'step_process_memory_external_bytes',
      'process.disk.io': 'process_disk_io_bytes_total',
      'v8js.memory.heap.used': 'v8js_memory_heap_used_bytes',
      'v8js.memory.heap.limit': 'v8js_memory_heap_limit_bytes',
      'step.process.heap.size_limit': 'step_process_heap_size_limit_bytes',
      'v8js.gc.duration': 'v8js_gc_duration_seconds',
      'nodejs.eventloop.delay.p50': 'nodejs_eventloop_delay_p50_seconds',
      'nodejs.eventloop.delay.p99': 'nodejs_eventloop_delay_p99_seconds',
      'nodejs.eventloop.delay.max': 'nodejs_eventloop_delay_max_seconds',
      'nodejs.eventloop.utilization': 'nodejs_eventloop_utilization_ratio',
      'system.cpu.utilization': 'system_cpu_utilization_ratio',
      'step.node.cpus': 'step_node_cpus',
      'system.cpu.load_average.1m': 'system_cpu_load_average_1m',
      'system.memory.limit': 'system_memory_limit_bytes',
      'system.memory.linux.available': 'system_memory_linux_available_bytes',
      'hw.gpu.utilization': 'hw_gpu_utilization_ratio',
      'hw.gpu.memory.usage': 'hw_gpu_memory_usage_bytes',
      'hw.gpu.memory.limit': 'hw_gpu_memory_limit_bytes',
    });
    expect(prometheusName({ name: 'http.server.request.duration', kind: 'histogram', unit: 'ms' })).toBe('http_server_request_duration_milliseconds');
    expect(prometheusName({ name: 'queue.size', kind: 'gauge', unit: 'By' })).toBe('queue_size_bytes');
  });

  it('exposes catalog metrics and run.log gauges in the prom-client registry with bounded labels', async () => {
    const s = await start('score');
    s.log('accuracy', 0.95);
    s.log('train.loss', 0.5, { step: 1 });
    s.instruments.record('minibatchDuration', 0.2, { outcome: 'success' });
    s.instruments.record('items', 10, { outcome: 'failure' });
    const text = await s.prometheus.registry.metrics();
    expect(text).toContain('accuracy{pipeline="pipeline",step="score",node="0"} 0.95');
    expect(text).toContain('train_loss{pipeline="pipeline",step="score",node="0"} 0.5');
    expect(text).toContain('step_minibatch_duration_seconds_bucket{le="0.25",pipeline="pipeline",step="score",node="0",outcome="success"} 1');
    expect(text).toContain('step_items_total{pipeline="pipeline",step="score",node="0",outcome="failure"} 10');
    expect(text).not.toMatch(/run_id|mini_batch/);
  });

  it('regression: a NaN recorded into a histogram is dropped, not counted (OpenTelemetry keeps the same test)', async () => {
    const s = await start();
    s.instruments.record('minibatchDuration', Number.NaN, { outcome: 'success' });
    s.instruments.record('minibatchDuration', 0.1, { outcome: 'success' });
    const text = await s.prometheus.registry.metrics();
    expect(text).toContain('step_minibatch_duration_seconds_count{pipeline="pipeline",step="api",node="0",outcome="success"} 1');
    expect(text).toContain('step_minibatch_duration_seconds_sum{pipeline="pipeline",step="api",node="0",outcome="success"} 0.1');
  });

  it('keeps a prom-client label error from reaching the caller', async () => {
    const s = await start();
    expect(() => s.instruments.record('items', -1, { outcome: 'success' })).not.toThrow();
  });
});

describe('export failures', () => {
  it('are counted in step_export_failures_total by backend and signal', async () => {
    const { closedUrl } = await import('./helpers/otlp-receiver.js');
    const previous = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${await closedUrl()}/v1/traces`;
    try {
      const s = await start('exports');
      await s.span('one', () => undefined);
      await s.flush();
      const text = await s.prometheus.registry.metrics();
      expect(text).toMatch(/step_export_failures_total\{pipeline="pipeline",step="exports",node="0",backend="OTLP",signal="traces"\} [1-9]/);
    } finally {
      if (previous === undefined) delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = previous;
    }
  });

  it('regression: a run.log name that is not a valid instrument name gets the same name on the Prometheus and OTLP paths', async () => {
    const { otelInstrumentName } = await import('../src/signals/metrics.js');
    expect(otelInstrumentName('loss curve')).toBe('loss_curve');
    expect(otelInstrumentName('1st-epoch')).toBe('m_1st-epoch');
    const s = await start();
    s.log('loss curve', 1);
    s.log('1st-epoch', 2);
    const text = await s.prometheus.registry.metrics();
    expect(text).toContain('loss_curve{');
    expect(text).toContain('m_1st_epoch{');
  });
});

describe('export accounting', () => {
  it('regression: an export abandoned at the flush bound counts as one failure, not again when its answer comes late', async () => {
    const { ExportHealth, guardExporter } = await import('../src/sinks/export-health.js');
    const { ExportResultCode } = await import('@opentelemetry/core');
    const health = new ExportHealth('OTLP', 'traces', 'http://127.0.0.1:1/v1/traces', 'OTEL_EXPORTER_OTLP_HEADERS');
    let failures = 0;
    health.onFailure = () => failures++;
    let answer: ((r: { code: number; error?: Error }) => void) | undefined;
    const hung = { export: (_items: unknown[], done: (r: { code: number; error?: Error }) => void) => (answer = done), shutdown: async () => undefined };
    const exporter = guardExporter(hung, health, (items: unknown[]) => items.length);
    const results: number[] = [];
    exporter.export([1, 2, 3], (r) => results.push(r.code));
    expect(health.inFlight).toBe(1);
    health.abandonInFlight(new Error('no answer within the flush bound'));
    answer!({ code: ExportResultCode.FAILED, error: new Error('socket hang up') });
    expect(results).toEqual([ExportResultCode.FAILED]); // the SDK still gets its answer
    expect(health.summary()).toMatchObject({ batches: 1, failedBatches: 1, lastError: 'no answer within the flush bound' });
    expect(failures).toBe(1);
    expect(health.inFlight).toBe(0);
  });
});

describe('exporters that reject', () => {
  it('regression: an exporter that is an async function and throws (the Application Insights one, on a numeric span name) reached the process as an unhandled rejection', async () => {
    const { ExportHealth, guardExporter } = await import('../src/sinks/export-health.js');
    const { ExportResultCode } = await import('@opentelemetry/core');
    const health = new ExportHealth('Application Insights', 'traces', 'https://127.0.0.1:1', 'APPLICATIONINSIGHTS_CONNECTION_STRING');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const throwing = {
        async export(_items: unknown[], _done: unknown): Promise<void> {
          throw new TypeError('baseData.name.substring is not a function');
        },
        shutdown: async () => undefined,
      };
      const exporter = guardExporter(throwing, health, (items: unknown[]) => items.length);
      const result = await new Promise<{ code: number }>((resolve) => exporter.export([1], resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(result.code).toBe(ExportResultCode.FAILED);
      expect(health.summary()).toMatchObject({ batches: 1, failedBatches: 1, lastError: 'baseData.name.substring is not a function' });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('the step logger', () => {
  it("regression: a child logger's fields were dropped (the fast path logged through the parent)", async () => {
    const s = await start('child-logger');
    const child = s.logger.child({ request_id: 'r-1' });
    child.info('from the child', { a: 1 });
    child.info('from the child, no fields');
    s.logger.info('from the parent');
    await s.end();
    const lines = fs.readFileSync(path.join(s.runFolder!, 'logs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const by = (m: string) => lines.find((l) => l.message === m);
    expect(by('from the child')).toMatchObject({ request_id: 'r-1', a: 1, step_name: 'child-logger' });
    expect(by('from the child, no fields')).toMatchObject({ request_id: 'r-1' });
    expect(by('from the parent')).not.toHaveProperty('request_id');
  });


  it('is a real winston logger: a transport the program adds sees every record with the step dimensions', async () => {
    const { default: Transport } = await import('winston-transport');
    const seen: Array<Record<string, unknown>> = [];
    class Collect extends Transport {
      override log(info: Record<string, unknown>, next: () => void): void {
        seen.push(info);
        next();
      }
    }
    const s = await start('logs');
    s.logger.info('before add', { a: 1 });
    const collect = new Collect();
    s.logger.add(collect);
    s.logger.info('after add', { a: 2 });
    s.logger.debug('below the level');
    await s.span('inner', async () => s.logger.warn('in span'));
    s.logger.remove(collect);
    s.logger.info('after remove');
    expect(seen.map((r) => r.message)).toEqual(['after add', 'in span']);
    expect(seen[0]).toMatchObject({ level: 'info', a: 2, step_name: 'logs', run_id: s.identity.runId, trace_id: s.rootSpan.spanContext().traceId });
    await s.end();
    const lines = fs.readFileSync(path.join(s.runFolder!, 'logs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const own = lines.filter((l) => /add|span|remove/.test(l.message));
    // the same fields whichever path a record took (fast path before/after, winston's streams in between)
    expect(own.map((l) => l.message)).toEqual(['before add', 'after add', 'in span', 'after remove']);
    for (const l of own) expect(Object.keys(l).filter((k) => !['a'].includes(k)).sort()).toEqual(Object.keys(own[3]).sort());
  });
});

describe('startStep', () => {
  it('answers a second call with the same step, and a call naming another step with a clear error', async () => {
    const s = await start('one');
    await expect(startStep({ name: 'one' })).resolves.toBe(s);
    await expect(startStep()).resolves.toBe(s);
    await expect(startStep({ name: 'two' })).rejects.toThrow('step "one" is already running in this process; end it before starting "two"');
  });

  it('a metric handle taken before the start records into the step once it has started', async () => {
    const handle = metric('early');
    handle.log(1, { step: 0 });
    const s = await start();
    handle.log(2, { step: 1 });
    await s.end();
    const lines = fs
      .readFileSync(path.join(s.runFolder!, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.name === 'early').map((l) => [l.value, l.step])).toEqual([
      [1, 0],
      [2, 1],
    ]);
  });

  it('a new step can start after the previous one ended', async () => {
    const first = await start('first');
    await first.end();
    const second = await startStep({ name: 'second', dir, console: false, handleProcessEvents: false });
    step = second;
    expect(second).not.toBe(first);
    expect(second.identity.stepName).toBe('second');
  });
});
