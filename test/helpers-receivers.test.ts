/**
 * Proves the test receivers are real: the actual OpenTelemetry exporters (JSON and protobuf) and the actual
 * Azure Monitor exporter (in a child process, over HTTPS) send to them, and they decode what was sent.
 */
import { request as httpsRequest } from 'node:https';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, ValueType, context, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPLogExporter as OTLPLogExporterJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPLogExporterProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as OTLPMetricExporterJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricExporterProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as OTLPTraceExporterJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPTraceExporterProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, onTestFinished, test } from 'vitest';
import { startAppInsightsReceiver, type AppInsightsReceiver } from './helpers/appinsights-receiver.js';
import {
  closedUrl,
  decodeProtobuf,
  startOtlpReceiver,
  type OtlpEncoding,
  type OtlpReceiver,
  type OtlpSpan,
} from './helpers/otlp-receiver.js';
import { makeTempDir, runStepScript, useTempDir } from './helpers/run-step.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/appinsights-export.mjs', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const RESOURCE_ATTRS = { 'service.name': 'receiver-test', 'service.version': '1.0.0', 'step.attempt': 2 };

/**
 * Cleanups run after each test in reverse registration order, so an SDK provider (registered after its
 * receiver) is shut down — and flushes — while its receiver still listens; then the receiver closes.
 */
const cleanups: Array<() => Promise<unknown> | unknown> = [];
function deferCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function otlpReceiver(...args: Parameters<typeof startOtlpReceiver>): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver(...args);
  deferCleanup(() => r.close());
  return r;
}

async function aiReceiver(...args: Parameters<typeof startAppInsightsReceiver>): Promise<AppInsightsReceiver> {
  const r = await startAppInsightsReceiver(...args);
  deferCleanup(() => r.close());
  return r;
}

/** Drops the fields that legitimately differ between the JSON and the protobuf copy of the same item. */
function strip<T extends { encoding: OtlpEncoding }>(item: T, ...more: Array<keyof T>): Omit<T, 'encoding'> {
  const copy: Partial<T> = { ...item };
  delete copy.encoding;
  for (const key of more) delete copy[key];
  return copy as Omit<T, 'encoding'>;
}

function byEncoding<T extends { encoding: OtlpEncoding }>(items: T[], encoding: OtlpEncoding): T[] {
  return items.filter((i) => i.encoding === encoding);
}

function exportOnce(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

/** The normalised form the receiver must produce for an SDK span. */
function expectedSpan(span: ReadableSpan): Partial<OtlpSpan> {
  return {
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    name: span.name,
    kind: span.kind + 1,
    startTimeUnixNano: BigInt(span.startTime[0]) * 1_000_000_000n + BigInt(span.startTime[1]),
    endTimeUnixNano: BigInt(span.endTime[0]) * 1_000_000_000n + BigInt(span.endTime[1]),
    attributes: { ...span.attributes },
    status: { code: span.status.code, message: span.status.message ?? '' },
    events: span.events.map((e) => ({
      name: e.name,
      timeUnixNano: BigInt(e.time[0]) * 1_000_000_000n + BigInt(e.time[1]),
      attributes: { ...e.attributes },
    })),
    resource: RESOURCE_ATTRS,
    scope: { name: 'receiver-test-scope', version: '1.2.3', attributes: {} },
  };
}

/** POSTs to the App Insights receiver in-process, trusting its certificate through `ca` (checks the IP SAN too). */
function postTrack(
  receiver: AppInsightsReceiver,
  ca: Buffer,
  body: string | Buffer,
): Promise<{ status: number | undefined; statusMessage: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${receiver.url}/v2.1/track`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, statusMessage: res.statusMessage, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('OTLP receiver, with the real OpenTelemetry exporters', () => {
  test('traces: JSON and protobuf (gzip) decode to the same normalised spans, matching the SDK spans', async () => {
    const receiver = await otlpReceiver();
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes(RESOURCE_ATTRS),
      spanProcessors: [
        new SimpleSpanProcessor(memory),
        new SimpleSpanProcessor(new OTLPTraceExporterJson({ url: receiver.tracesUrl, headers: { authorization: 'Bearer json-token' } })),
        new SimpleSpanProcessor(
          new OTLPTraceExporterProto({
            url: receiver.tracesUrl,
            headers: { authorization: 'Bearer proto-token' },
            compression: CompressionAlgorithm.GZIP,
          }),
        ),
      ],
    });
    deferCleanup(() => provider.shutdown());
    const tracer = provider.getTracer('receiver-test-scope', '1.2.3');

    const parent = tracer.startSpan('step.run', { kind: SpanKind.SERVER, attributes: { 'step.name': 'train' } });
    const child = tracer.startSpan(
      'step.child',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'attr.string': 'välue ✓',
          'attr.int': 42,
          'attr.negative': -5,
          'attr.big': 2 ** 40,
          'attr.double': 1.5,
          'attr.bool': false,
          'attr.strings': ['a', 'b'],
          'attr.ints': [1, 2, 3],
        },
      },
      trace.setSpan(context.active(), parent),
    );
    child.addEvent('checkpoint', { 'event.n': 7, 'event.label': 'half-way' });
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    child.end();
    parent.setStatus({ code: SpanStatusCode.OK });
    parent.end();
    await provider.forceFlush();

    await receiver.waitFor((r) => r.spans().length >= 4);
    const sdkSpans = memory.getFinishedSpans();
    expect(sdkSpans).toHaveLength(2);

    for (const encoding of ['json', 'protobuf'] as const) {
      const spans = byEncoding(receiver.spans(), encoding);
      expect(spans.map((s) => s.name).sort()).toEqual(['step.child', 'step.run']);
      for (const sdkSpan of sdkSpans) {
        const got = spans.find((s) => s.spanId === sdkSpan.spanContext().spanId);
        expect(got, `${encoding} ${sdkSpan.name}`).toMatchObject(expectedSpan(sdkSpan));
      }
    }
    const childSpan = receiver.spans().find((s) => s.name === 'step.child' && s.encoding === 'protobuf');
    expect(childSpan?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(childSpan?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(childSpan?.parentSpanId).toBe(parent.spanContext().spanId);
    expect(childSpan?.kind).toBe(3); // OTLP SPAN_KIND_CLIENT
    expect(childSpan?.attributes['attr.negative']).toBe(-5);
    expect(childSpan?.attributes['attr.big']).toBe(2 ** 40);
    expect(receiver.spans().find((s) => s.name === 'step.run')?.parentSpanId).toBeUndefined();

    // The same span through both encodings normalises to exactly the same object.
    const sortById = (a: OtlpSpan, b: OtlpSpan) => (a.spanId ?? '').localeCompare(b.spanId ?? '');
    expect(byEncoding(receiver.spans(), 'json').sort(sortById).map((s) => strip(s))).toEqual(
      byEncoding(receiver.spans(), 'protobuf').sort(sortById).map((s) => strip(s)),
    );

    // The raw requests: paths, content types, compression, headers.
    const raw = receiver.rawRequests();
    const jsonReqs = raw.filter((r) => r.encoding === 'json');
    const protoReqs = raw.filter((r) => r.encoding === 'protobuf');
    expect(jsonReqs.length).toBeGreaterThan(0);
    expect(protoReqs.length).toBeGreaterThan(0);
    for (const r of jsonReqs) {
      expect(r).toMatchObject({ method: 'POST', path: '/v1/traces', contentType: 'application/json', statusCode: 200, accepted: true });
      expect(r.headers.authorization).toBe('Bearer json-token');
      expect(r.contentEncoding).toBeUndefined();
      expect(r.byteSize).toBe(r.decodedSize);
    }
    for (const r of protoReqs) {
      expect(r).toMatchObject({ path: '/v1/traces', contentType: 'application/x-protobuf', contentEncoding: 'gzip', statusCode: 200 });
      expect(r.headers.authorization).toBe('Bearer proto-token');
      expect(r.headers['user-agent']).toMatch(/^OTel-OTLP-Exporter-JavaScript\/0\.218\.0/);
      expect(r.byteSize).toBeGreaterThan(0);
      expect(r.decodedSize).toBeGreaterThan(0);
    }
    expect(receiver.decodeErrors()).toEqual([]);
  });

  test('metrics: gauge, sums, histogram and exponential histogram decode the same over JSON and protobuf', async () => {
    const receiver = await otlpReceiver();
    const readers = [
      new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporterJson({ url: receiver.metricsUrl }), exportIntervalMillis: 3_600_000 }),
      new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporterProto({ url: receiver.metricsUrl }), exportIntervalMillis: 3_600_000 }),
    ];
    const provider = new MeterProvider({
      resource: resourceFromAttributes(RESOURCE_ATTRS),
      readers,
      views: [{ instrumentName: 'step.latency', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    });
    deferCleanup(() => provider.shutdown());
    const meter = provider.getMeter('receiver-test-meter', '0.0.1');

    meter.createGauge('step.accuracy', { unit: '1', description: 'validation accuracy' }).record(0.93, { split: 'val' });
    meter.createCounter('step.rows', { valueType: ValueType.INT }).add(42, { stage: 'load' });
    meter.createUpDownCounter('step.queue', { valueType: ValueType.INT }).add(-3);
    const duration = meter.createHistogram('step.duration', { unit: 'ms' });
    for (const v of [5, 15, 150]) duration.record(v, { step: 'train' });
    const latency = meter.createHistogram('step.latency', { unit: 's' });
    for (const v of [1, 2, 4, 8]) latency.record(v);

    await provider.forceFlush();
    await receiver.waitFor((r) => byEncoding(r.metrics(), 'json').length >= 5 && byEncoding(r.metrics(), 'protobuf').length >= 5);

    for (const encoding of ['json', 'protobuf'] as const) {
      const points = byEncoding(receiver.metrics(), encoding);
      const point = (name: string) => points.find((p) => p.name === name);
      expect(point('step.accuracy'), encoding).toMatchObject({
        type: 'gauge',
        unit: '1',
        description: 'validation accuracy',
        value: 0.93,
        valueType: 'double',
        attributes: { split: 'val' },
        resource: RESOURCE_ATTRS,
        scope: { name: 'receiver-test-meter', version: '0.0.1' },
      });
      expect(point('step.rows'), encoding).toMatchObject({
        type: 'sum',
        value: 42,
        valueType: 'int',
        isMonotonic: true,
        aggregationTemporality: 2,
        attributes: { stage: 'load' },
      });
      expect(point('step.queue'), encoding).toMatchObject({ type: 'sum', value: -3, valueType: 'int', isMonotonic: false });
      const hist = point('step.duration');
      expect(hist, encoding).toMatchObject({ type: 'histogram', unit: 'ms', count: 3, sum: 170, min: 5, max: 150, attributes: { step: 'train' } });
      expect(hist?.bucketCounts).toHaveLength((hist?.explicitBounds?.length ?? 0) + 1);
      const bucketOf = (v: number) => hist?.explicitBounds?.findIndex((b) => v <= b) ?? -1;
      for (const v of [5, 15, 150]) expect(hist?.bucketCounts?.[bucketOf(v)]).toBe(1);
      const exp = point('step.latency');
      expect(exp, encoding).toMatchObject({ type: 'exponentialHistogram', count: 4, sum: 15, min: 1, max: 8, zeroCount: 0 });
      expect(exp?.positive?.bucketCounts.reduce((a, b) => a + b, 0)).toBe(4);
      expect(typeof exp?.scale).toBe('number');
      expect(point('step.duration')?.startTimeUnixNano).toBeGreaterThan(0n);
    }

    // Same content through both encodings (collection times differ per reader).
    const comparable = (encoding: OtlpEncoding) =>
      byEncoding(receiver.metrics(), encoding)
        .map((p) => strip(p, 'timeUnixNano', 'startTimeUnixNano'))
        .sort((a, b) => a.name.localeCompare(b.name));
    expect(comparable('json')).toEqual(comparable('protobuf'));
    expect(new Set(receiver.rawRequests().map((r) => r.path))).toEqual(new Set(['/v1/metrics']));
  });

  test('logs: severity, AnyValue bodies (map, bytes, arrays), attributes and trace context over both encodings', async () => {
    const receiver = await otlpReceiver();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(RESOURCE_ATTRS),
      processors: [
        new SimpleLogRecordProcessor(new OTLPLogExporterJson({ url: receiver.logsUrl })),
        new SimpleLogRecordProcessor(new OTLPLogExporterProto({ url: receiver.logsUrl })),
      ],
    });
    deferCleanup(() => provider.shutdown());
    const logger = provider.getLogger('receiver-test-logger', '3.2.1');
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const spanId = 'b7ad6b7169203331';
    const spanContext = trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }));

    const body = {
      message: 'epoch done',
      nested: { epoch: 3, loss: 0.25, done: true, tags: ['x', 7, false] },
      raw: new Uint8Array([0, 1, 254, 255]),
    };
    logger.emit({
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      body,
      attributes: { 'step.name': 'train', 'step.epoch': 3, 'step.ratio': 0.5 },
      context: spanContext,
    });
    logger.emit({ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'plain text', context: ROOT_CONTEXT });
    await provider.forceFlush();
    await receiver.waitFor((r) => r.logs().length >= 4);

    for (const encoding of ['json', 'protobuf'] as const) {
      const logs = byEncoding(receiver.logs(), encoding);
      const warn = logs.find((l) => l.severityText === 'WARN');
      expect(warn, encoding).toMatchObject({
        severityNumber: SeverityNumber.WARN,
        body,
        attributes: { 'step.name': 'train', 'step.epoch': 3, 'step.ratio': 0.5 },
        traceId,
        spanId,
        flags: TraceFlags.SAMPLED,
        resource: RESOURCE_ATTRS,
        scope: { name: 'receiver-test-logger', version: '3.2.1' },
      });
      expect(warn?.timeUnixNano).toBeGreaterThan(0n);
      const info = logs.find((l) => l.severityText === 'INFO');
      expect(info, encoding).toMatchObject({ severityNumber: SeverityNumber.INFO, body: 'plain text', attributes: {} });
      expect(info?.traceId).toBeUndefined();
      expect(info?.spanId).toBeUndefined();
    }
    const bySeverity = (encoding: OtlpEncoding) =>
      byEncoding(receiver.logs(), encoding)
        .map((l) => strip(l))
        .sort((a, b) => a.severityNumber - b.severityNumber);
    expect(bySeverity('json')).toEqual(bySeverity('protobuf'));
  });

  test("mode 'unauthorized' answers 401 (still recording headers and payload), setMode('ok') recovers", async () => {
    const receiver = await otlpReceiver({ mode: 'unauthorized' });
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    deferCleanup(() => provider.shutdown());
    provider.getTracer('t').startSpan('denied').end();
    const spans = memory.getFinishedSpans();

    for (const Exporter of [OTLPTraceExporterJson, OTLPTraceExporterProto]) {
      const exporter = new Exporter({ url: receiver.tracesUrl, headers: { authorization: 'Bearer wrong' } });
      deferCleanup(() => exporter.shutdown());
      const result = await exportOnce(exporter, spans);
      expect(result.code).toBe(ExportResultCode.FAILED);
      expect((result.error as { code?: number } | undefined)?.code).toBe(401);
    }
    const raw = receiver.rawRequests();
    expect(raw.map((r) => [r.encoding, r.statusCode, r.accepted])).toEqual([
      ['json', 401, false],
      ['protobuf', 401, false],
    ]);
    expect(raw.every((r) => r.headers.authorization === 'Bearer wrong')).toBe(true);
    expect(raw.every((r) => r.spans[0]?.name === 'denied')).toBe(true); // decoded even though rejected
    expect(receiver.spans()).toEqual([]); // ...but not counted as received

    receiver.setMode('ok');
    const result = await exportOnce(new OTLPTraceExporterProto({ url: receiver.tracesUrl }), spans);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(receiver.spans().map((s) => s.name)).toEqual(['denied']);
  });

  test("mode 'unavailable' answers 503; mode 'hang' never answers and close() still ends it", async () => {
    const receiver = await otlpReceiver({ mode: 'unavailable' });
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    deferCleanup(() => provider.shutdown());
    provider.getTracer('t').startSpan('busy').end();

    // 503 is retryable: the first back-off (>= 800 ms) exceeds the 700 ms budget, so one attempt only.
    const unavailable = await exportOnce(new OTLPTraceExporterJson({ url: receiver.tracesUrl, timeoutMillis: 700 }), memory.getFinishedSpans());
    expect(unavailable.code).toBe(ExportResultCode.FAILED);
    expect(receiver.rawRequests().map((r) => r.statusCode)).toEqual([503]);

    receiver.setMode('hang');
    const hanging = exportOnce(new OTLPTraceExporterProto({ url: receiver.tracesUrl, timeoutMillis: 400 }), memory.getFinishedSpans());
    const hung = await receiver.waitFor((r) => r.rawRequests().find((q) => q.mode === 'hang'));
    expect(hung.statusCode).toBeUndefined();
    expect(hung.spans.map((s) => s.name)).toEqual(['busy']);
    const timedOut = await hanging;
    expect(timedOut.code).toBe(ExportResultCode.FAILED);
    expect(String(timedOut.error?.message)).toMatch(/timed out/i);

    // A hung request whose client is still waiting: close() must not wait for it.
    const pending = fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(
      (err: unknown) => err,
    );
    await receiver.waitFor((r) => r.rawRequests().length >= 3);
    const started = performance.now();
    await receiver.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await pending).toBeInstanceOf(Error);
  });

  test("setMode(mode, { forRequests }) + retryAfterSeconds: 0 → one 503, an immediate retry, then 200", async () => {
    const receiver = await otlpReceiver({ retryAfterSeconds: 0 });
    receiver.setMode('unavailable', { forRequests: 1 });
    expect(receiver.mode).toBe('unavailable');
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    deferCleanup(() => provider.shutdown());
    provider.getTracer('t').startSpan('retried').end();

    const started = performance.now();
    const result = await exportOnce(new OTLPTraceExporterProto({ url: receiver.tracesUrl }), memory.getFinishedSpans());
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(performance.now() - started).toBeLessThan(700); // no ~1 s back-off
    expect(receiver.rawRequests().map((r) => [r.mode, r.statusCode, r.headers['content-type']])).toEqual([
      ['unavailable', 503, 'application/x-protobuf'],
      ['ok', 200, 'application/x-protobuf'],
    ]);
    expect(receiver.mode).toBe('ok');
    expect(receiver.spans().map((s) => s.name)).toEqual(['retried']);
  });

  test('an address where nothing listens makes the exporter fail with ECONNREFUSED', async () => {
    const url = `${await closedUrl()}/v1/traces`;
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    deferCleanup(() => provider.shutdown());
    provider.getTracer('t').startSpan('lost').end();
    const result = await exportOnce(new OTLPTraceExporterJson({ url, timeoutMillis: 300 }), memory.getFinishedSpans());
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(String((result.error as NodeJS.ErrnoException | undefined)?.code ?? result.error?.message)).toMatch(/ECONNREFUSED/);
  });

  test('spec-style OTLP/JSON (int64 as strings, enum names, snake_case) and gzip bodies posted by hand; bad bodies are 400', async () => {
    const receiver = await otlpReceiver();
    const payload = {
      resource_spans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'by-hand' } }] },
          scope_spans: [
            {
              scope: { name: 'manual' },
              spans: [
                {
                  trace_id: '5B8EFFF798038103D269B633813FC60C',
                  span_id: 'EEE19B7EC3C1B174',
                  name: 'manual-span',
                  kind: 'SPAN_KIND_PRODUCER',
                  start_time_unix_nano: '1544712660000000000',
                  end_time_unix_nano: '1544712661000000000',
                  attributes: [
                    { key: 'huge', value: { intValue: '9007199254740993' } },
                    { key: 'small', value: { intValue: '-12' } },
                    { key: 'inf', value: { doubleValue: 'Infinity' } },
                    { key: 'blob', value: { bytesValue: Buffer.from('hi').toString('base64') } },
                    { key: 'empty', value: {} },
                  ],
                  status: { code: 'STATUS_CODE_ERROR' },
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(receiver.tracesUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(payload)),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const [span] = receiver.spans();
    expect(span).toMatchObject({
      resource: { 'service.name': 'by-hand' },
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: undefined,
      kind: 4,
      startTimeUnixNano: 1544712660000000000n,
      endTimeUnixNano: 1544712661000000000n,
      status: { code: 2, message: '' },
      attributes: { huge: 9007199254740993n, small: -12, inf: Infinity, blob: new Uint8Array([104, 105]), empty: undefined },
    });

    const bad = await fetch(receiver.tracesUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: new Uint8Array([0x0a, 0x05, 0x01]), // field 1, length 5, only 1 byte follows
    });
    expect(bad.status).toBe(400);
    expect(receiver.decodeErrors()).toEqual([expect.stringMatching(/^POST \/v1\/traces: ProtobufDecodeError: /)]);
    const unknownPath = await fetch(`${receiver.url}/v1/profiles`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unknownPath.status).toBe(404);
    const wrongType = await fetch(receiver.logsUrl, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(wrongType.status).toBe(415);
  });

  test('the protobuf decoder handles packed and unpacked repeated fields, zigzag, negative int64, unknown fields', () => {
    // ExponentialHistogramDataPoint-ish buckets: offset (sint32, zigzag) = -3, bucketCounts packed [1, 300].
    const packed = decodeProtobuf(new Uint8Array([0x08, 0x05, 0x12, 0x03, 0x01, 0xac, 0x02]), 'ExponentialBuckets');
    expect(packed).toEqual({ offset: -3, bucketCounts: [1n, 300n] });
    // Same counts unpacked, plus an unknown field 15 (varint) that must be skipped.
    const unpacked = decodeProtobuf(new Uint8Array([0x10, 0x01, 0x78, 0x7f, 0x10, 0xac, 0x02]), 'ExponentialBuckets');
    expect(unpacked).toEqual({ bucketCounts: [1n, 300n] });
    // AnyValue.int_value = -1 (ten-byte varint).
    const minusOne = decodeProtobuf(new Uint8Array([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 'AnyValue');
    expect(minusOne).toEqual({ intValue: -1n });
    // A known field with the wrong wire type is an error, not silently skipped.
    expect(() => decodeProtobuf(new Uint8Array([0x0d, 0, 0, 0, 0]), 'KeyValue')).toThrow(/wire type 5, expected 2/);
  });

  test('waitFor is event-driven: resolves with the first truthy value, times out with a summary', async () => {
    const receiver = await otlpReceiver();
    const waiting = receiver.waitFor((r) => r.spans().find((s) => s.name === 'late'), 2_000);
    await expect(receiver.waitFor((r) => r.spans().length > 0, 50)).rejects.toThrow(/within 50 ms\. Received so far: no requests/);
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    deferCleanup(() => provider.shutdown());
    provider.getTracer('t').startSpan('late').end();
    await exportOnce(new OTLPTraceExporterJson({ url: receiver.tracesUrl }), memory.getFinishedSpans());
    expect((await waiting).name).toBe('late');
    receiver.clear();
    expect(receiver.rawRequests()).toEqual([]);
  });
});

describe('Application Insights receiver, with the real Azure Monitor exporter in a child process', () => {
  test('a SERVER span arrives as a Request envelope and a log as a Message, over HTTPS to /v2.1/track', async () => {
    const receiver = await aiReceiver();
    expect(receiver.connectionString).toBe(
      `InstrumentationKey=${receiver.instrumentationKey};IngestionEndpoint=https://127.0.0.1:${receiver.port}/;LiveEndpoint=https://127.0.0.1:${receiver.port}/`,
    );
    const run = await runStepScript({ script: FIXTURE, cwd: REPO_ROOT, env: receiver.childEnv(), timeoutMs: 20_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(/^RESULT (.*)$/m.exec(run.stdout)?.[1] ?? 'null') as {
      traceId: string;
      spanId: string;
      traceResults: Array<{ code: number }>;
      logResults: Array<{ code: number }>;
    };
    expect(result.traceResults.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS]);
    expect(result.logResults.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS]);

    const [request] = receiver.requests();
    expect(request).toMatchObject({
      name: 'Microsoft.ApplicationInsights.Request',
      iKey: receiver.instrumentationKey,
      data: { baseType: 'RequestData', baseData: { name: 'step train', id: result.spanId } },
      tags: { 'ai.operation.id': result.traceId, 'ai.cloud.role': 'ai-fixture', 'ai.cloud.roleInstance': 'fixture-1' },
    });
    expect(request?.data.baseData['properties']).toMatchObject({ 'step.name': 'train', 'step.rows': '42' });
    const [message] = receiver.traces();
    expect(message).toMatchObject({
      name: 'Microsoft.ApplicationInsights.Message',
      data: { baseType: 'MessageData', baseData: { message: 'hello from the fixture', severityLevel: 'Warning' } },
      tags: { 'ai.operation.id': result.traceId, 'ai.operation.parentId': result.spanId },
    });
    expect(receiver.exceptions()).toEqual([]);
    expect(receiver.dependencies()).toEqual([]);

    const raw = receiver.rawRequests();
    expect(raw.length).toBeGreaterThanOrEqual(2);
    for (const r of raw) {
      expect(r).toMatchObject({ method: 'POST', path: '/v2.1/track', statusCode: 200, accepted: true, parseError: undefined });
      expect(r.contentType).toMatch(/^application\/json/);
      expect(r.response).toEqual({ itemsReceived: r.envelopes.length, itemsAccepted: r.envelopes.length, errors: [] });
    }
  });

  test("mode 'unauthorized' answers 401 with a Breeze body; the exporter (offline storage disabled) reports SUCCESS anyway", async () => {
    const receiver = await aiReceiver({ mode: 'unauthorized' });

    // In-process, trusting the certificate explicitly (also proves the IP SAN is right).
    const ca = await readFile(receiver.caFile);
    const envelope = { name: 'Microsoft.ApplicationInsights.Message', time: new Date().toISOString(), iKey: receiver.instrumentationKey, data: { baseType: 'MessageData', baseData: { ver: 2, message: 'x' } } };
    const answer = await postTrack(receiver, ca, gzipSync(JSON.stringify([envelope, envelope])));
    expect(answer.status).toBe(401);
    expect(answer.statusMessage).toBe('Unauthorized - please provide the valid authorization token');
    expect(JSON.parse(answer.body)).toEqual({
      itemsReceived: 2,
      itemsAccepted: 0,
      errors: [
        { index: 0, statusCode: 401, message: 'Unauthorized - please provide the valid authorization token' },
        { index: 1, statusCode: 401, message: 'Unauthorized - please provide the valid authorization token' },
      ],
    });
    expect(receiver.rawRequests()[0]?.envelopes).toHaveLength(2); // gzip sniffed without content-encoding

    receiver.setMode('forbidden', { forRequests: 1 });
    const forbidden = await postTrack(receiver, ca, JSON.stringify([envelope]));
    expect([forbidden.status, forbidden.statusMessage]).toEqual([
      403,
      'Forbidden - provided credentials do not grant the access to ingest the telemetry into the component',
    ]);
    expect(receiver.mode).toBe('unauthorized');
    receiver.clear();

    // The real exporter against 401.
    const run = await runStepScript({ script: FIXTURE, cwd: REPO_ROOT, env: receiver.childEnv(), timeoutMs: 20_000 });
    expect(run.code).toBe(0);
    const result = JSON.parse(/^RESULT (.*)$/m.exec(run.stdout)?.[1] ?? 'null') as { traceResults: Array<{ code: number }> };
    const trackRequests = receiver.rawRequests();
    expect(trackRequests.length).toBeGreaterThanOrEqual(2);
    expect(trackRequests.every((r) => r.statusCode === 401 && !r.accepted)).toBe(true);
    expect(receiver.envelopes()).toEqual([]);
    // 401 is "retriable" → persisted → with disableOfflineStorage the persister says OK → SUCCESS. Silent loss.
    expect(result.traceResults.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS]);
  });
});

describe('run-step helper', () => {
  test('strips telemetry env, reports exit code/output, signals on a stdout marker, SIGKILLs on timeout', async () => {
    const dir = await useTempDir('run-step-test-');
    const script = join(dir, 'child.mjs');
    await writeFile(
      script,
      [
        "const leaked = Object.keys(process.env).filter((k) => /^(OTEL_|APPLICATIONINSIGHTS_|STEP_TELEMETRY_|AZUREML_)/.test(k));",
        "console.log(JSON.stringify({ leaked, given: process.env.GIVEN, argv: process.argv.slice(2) }));",
        "if (process.argv[2] === 'wait') {",
        "  process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(7); });",
        "  setInterval(() => {}, 1000);",
        "  console.log('READY');",
        "}",
        "if (process.argv[2] === 'stuck') { process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); }",
        "if (process.argv[2] === 'fail') { console.error('bad'); process.exit(3); }",
      ].join('\n'),
    );
    process.env['OTEL_TEST_LEAK'] = 'x';
    process.env['AZUREML_RUN_ID'] = 'y';
    onTestFinished(() => {
      delete process.env['OTEL_TEST_LEAK'];
      delete process.env['AZUREML_RUN_ID'];
    });

    const ok = await runStepScript({ script, env: { GIVEN: 'yes', STEP_TELEMETRY_OK: '1' }, args: ['a'] });
    expect(ok).toMatchObject({ code: 0, signal: null, timedOut: false, signalSent: false });
    expect(JSON.parse(ok.stdout)).toEqual({ leaked: ['STEP_TELEMETRY_OK'], given: 'yes', argv: ['a'] });

    const failed = await runStepScript({ script, args: ['fail'] });
    expect(failed).toMatchObject({ code: 3, stderr: 'bad\n' });

    const signalled = await runStepScript({ script, args: ['wait'], signalAfter: { signal: 'SIGTERM', whenStdoutIncludes: 'READY' } });
    expect(signalled).toMatchObject({ code: 7, signalSent: true, timedOut: false });
    expect(signalled.stdout).toContain('got SIGTERM');

    const stuck = await runStepScript({ script, args: ['stuck'], timeoutMs: 300 });
    expect(stuck).toMatchObject({ code: null, signal: 'SIGKILL', timedOut: true });
    expect(stuck.durationMs).toBeGreaterThanOrEqual(250);

    const temp = await makeTempDir('run-step-manual-');
    await temp.cleanup();
    await expect(stat(temp.path)).rejects.toThrow(/ENOENT/);
  });
});
