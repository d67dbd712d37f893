// One naming truth: the Prometheus names and labels prom-client serves equal those the
// OpenTelemetry Collector's OTLP-to-Prometheus translation gives the OpenTelemetry instruments,
// so one dashboard and one rule set serve the scrape, Pushgateway and collector paths.
//
// The translation is a port of the collector's Go code (test/fixtures/ops/collector-translation.ts),
// checked here against upstream's own test cases; then every catalog entry is checked against it,
// and finally a real step exports the same records both ways (OTLP from the OpenTelemetry SDK to a
// local receiver, prom-client at its /metrics endpoint) and the series must match one for one.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CATALOG, prometheusLabels, prometheusName, type CatalogEntry } from '../src/catalog.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { collectorLabelName, collectorMetricName, renderCollectorExposition, type OtlpKind } from './fixtures/ops/collector-translation.js';
import { startInteractiveStep, type InteractiveStep } from './fixtures/ops/interactive-step.js';
import { parseExposition } from './fixtures/ops/exposition.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/ops/minibatch-step.mjs', import.meta.url));
/** A stand-in nvidia-smi, so the GPU metrics exist too. */
const FAKE_GPU_PATH = fileURLToPath(new URL('./fixtures/resources/', import.meta.url));
/** Prometheus names of the resource samples: taken every interval, so the scrape and the last export hold different values. */
const RESOURCE_NAMES = new Set(Object.values(CATALOG).filter((e: CatalogEntry) => e.resource).map((e) => prometheusName(e)));
const isResource = (name: string): boolean => RESOURCE_NAMES.has(name.replace(/_(bucket|sum|count)$/, ''));

function otlpKind(e: CatalogEntry): OtlpKind {
  return e.kind === 'counter' ? 'monotonic-counter' : e.kind === 'histogram' ? 'histogram' : 'gauge';
}

describe('the port of the collector translation', () => {
  // Cases from prometheus/otlptranslator metric_namer_test.go (UnderscoreEscapingWithSuffixes, no namespace).
  it.each([
    ['requests', '', 'monotonic-counter', 'requests_total'],
    ['cpu_usage', '1', 'gauge', 'cpu_usage_ratio'],
    ['items', '1', 'monotonic-counter', 'items_total'],
    ['response_time', 'ms', 'gauge', 'response_time_milliseconds'],
    ['memory_usage', 'By', 'gauge', 'memory_usage_bytes'],
    ['requests', '1/s', 'gauge', 'requests_per_second'],
    ['throughput', 'By/s', 'gauge', 'throughput_bytes_per_second'],
    ['custom_metric', 'custom_unit', 'gauge', 'custom_metric_custom_unit'],
    ['custom_metric', '{custom}', 'gauge', 'custom_metric'],
    ['custom_metric', 'By/{custom}', 'gauge', 'custom_metric_bytes'],
    ['requests_total', '', 'monotonic-counter', 'requests_total'],
    ['cpu_usage_ratio', '1', 'gauge', 'cpu_usage_ratio'],
    ['response_time_seconds', 's', 'gauge', 'response_time_seconds'],
    ['metric__with__multiple__underscores', 'unit__multiple__underscores', 'gauge', 'metric_with_multiple_underscores_unit_multiple_underscores'],
    ['custom_metric', 'unit@with#special/chars', 'gauge', 'custom_metric_unit_with_special_per_chars'],
    ['request_duration', 's', 'histogram', 'request_duration_seconds'],
    ['request_size', 'By', 'exponential-histogram', 'request_size_bytes'],
    ['active_connections', '', 'non-monotonic-counter', 'active_connections'],
    ['uptime', 'd', 'gauge', 'uptime_days'],
    ['duration', 'h', 'gauge', 'duration_hours'],
    ['@#$%', '', 'gauge', ''],
    ['http.server.request.duration', 's', 'histogram', 'http_server_request_duration_seconds'],
    ['system.cpu.time', 's', 'monotonic-counter', 'system_cpu_time_seconds_total'],
  ] as const)('%s [%s] %s → %s', (name, unit, kind, want) => {
    expect(collectorMetricName(name, unit, kind)).toBe(want);
  });

  it.each([
    ['http.method', 'http_method'],
    ['123invalid', 'key_123invalid'],
    ['_private', 'key_private'],
    ['__reserved__', '__reserved__'],
    ['pipeline', 'pipeline'],
  ])('label %s → %s', (label, want) => {
    expect(collectorLabelName(label)).toBe(want);
  });
});

describe('every catalog entry', () => {
  it.each(Object.entries(CATALOG))('%s: prom-client name and labels = the collector translation', (_key, entry) => {
    expect(prometheusName(entry)).toBe(collectorMetricName(entry.name, entry.unit, otlpKind(entry)));
    const labels = prometheusLabels(entry);
    expect(labels.map(collectorLabelName)).toEqual(labels);
    expect(labels.slice(0, 3)).toEqual(['pipeline', 'step', 'node']);
  });
});

describe('one real step, both paths', () => {
  it('serves at /metrics exactly the series the collector would make of its OTLP export', async () => {
    const receiver = await startOtlpReceiver();
    let step: InteractiveStep | undefined;
    try {
      step = await startInteractiveStep(FIXTURE, {
        STEP_TELEMETRY_STEP_NAME: 'score',
        STEP_TELEMETRY_PIPELINE_NAME: 'mnist',
        STEP_TELEMETRY_NODE_RANK: '1',
        STEP_TELEMETRY_NODE_COUNT: '2',
        STEP_TELEMETRY_LOCAL: 'false',
        STEP_TELEMETRY_CONSOLE: 'false',
        STEP_TELEMETRY_PROMETHEUS_PORT: '0',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: receiver.metricsUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        FIXTURE_TICK_MS: '3600000', // one mini-batch, then quiet: both views hold the same values
        PATH: `${FAKE_GPU_PATH}${path.delimiter}${process.env.PATH ?? ''}`,
        STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '200',
      });
      const ready = await step.line('READY');
      // the GPU readings arrive with nvidia-smi's first lines, and the GC pauses with the sample after
      // them: a sample or two after the start
      let scraped = parseExposition(await (await fetch(ready.endpoint as string)).text());
      const sampled = (): boolean => ['hw_gpu_memory_limit_bytes', 'v8js_gc_duration_seconds_count'].every((n) => scraped.some((x) => x.name === n));
      for (let i = 0; i < 100 && !sampled(); i++) {
        await new Promise((r) => setTimeout(r, 100));
        scraped = parseExposition(await (await fetch(ready.endpoint as string)).text());
      }
      step.send('end');
      await step.line('ENDED');
      expect(await step.exit).toBe(0);

      const translated = parseExposition(renderCollectorExposition(receiver.metrics()));
      const viaCollector = translated.filter((s) => s.name !== 'target_info');
      // the collector adds the resource as job/instance and the scope as otel_scope_*; nothing else differs
      for (const s of viaCollector) {
        expect(s.labels.job).toBe('mnist/score');
        expect(s.labels.otel_scope_name).toBe('step-telemetry');
        for (const extra of ['job', 'instance', 'otel_scope_name', 'otel_scope_version']) delete s.labels[extra];
      }
      const key = (s: { name: string; labels: Record<string, string> }): string => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
      const fromPromClient = new Map(scraped.filter((s) => !isResource(s.name)).map((s) => [key(s), s.value]));
      const fromCollector = new Map(viaCollector.filter((s) => !isResource(s.name)).map((s) => [key(s), s.value]));
      expect([...fromCollector.keys()].sort()).toEqual([...fromPromClient.keys()].sort());
      // same values too, but for step_running: 1 at the scrape, 0 in the last OTLP export (after end())
      for (const [k, v] of fromPromClient) expect(fromCollector.get(k), k).toBeCloseTo(k.startsWith('step_running') ? 0 : v, 9);
      // resource samples: the same names and label names both ways (the GC kinds seen may grow after the scrape)
      const shape = (list: typeof scraped): string[] => [...new Set(list.filter((s) => isResource(s.name) && !s.name.startsWith('v8js_gc_')).map((s) => `${s.name}${JSON.stringify(Object.keys(s.labels).sort())}`))].sort();
      expect(shape(viaCollector)).toEqual(shape(scraped));
      expect(shape(scraped).length).toBeGreaterThan(15);
      // every catalog metric the fixture records is among them, with the step dimensions
      const names = new Set(scraped.flatMap((s) => [s.name, s.name.replace(/_(bucket|sum|count)$/, '')]));
      for (const e of Object.values(CATALOG)) expect(names.has(prometheusName(e)), e.name).toBe(true);
      expect(scraped.every((s) => s.labels.pipeline === 'mnist' && s.labels.step === 'score' && s.labels.node === '1')).toBe(true);
    } finally {
      step?.kill();
      await receiver.close();
    }
  });
});
