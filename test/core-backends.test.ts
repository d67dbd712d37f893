// The same real step script, exporting to a real OTLP/HTTP receiver (JSON and protobuf) and to a
// local Application Insights ingestion endpoint, one at a time and both at once.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { startAppInsightsReceiver, type AppInsightsReceiver } from './helpers/appinsights-receiver.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { marker, readRunFolder } from './helpers/run-folder.js';

const FULL = fileURLToPath(new URL('./fixtures/steps/full-step.mjs', import.meta.url));
const IDENTITY = {
  STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-backends',
  STEP_TELEMETRY_PIPELINE_NAME: 'mnist',
  STEP_TELEMETRY_RUN_ID: 'score-run-3',
  STEP_TELEMETRY_CONSOLE: 'false',
};

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function otlp(): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  servers.push(r);
  return r;
}
async function appInsights(): Promise<AppInsightsReceiver> {
  const r = await startAppInsightsReceiver();
  servers.push(r);
  return r;
}

describe.each(['http/protobuf', 'http/json'] as const)('OTLP over %s', (protocol) => {
  it('receives spans, logs and metrics with the identity and correlation ids', async () => {
    const receiver = await otlp();
    const dir = await useTempDir();
    const r = await runStepScript({
      script: FULL,
      env: {
        ...IDENTITY,
        STEP_TELEMETRY_DIR: dir,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20test-token',
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ids = marker(r.stdout, 'IDS');
    const encoding = protocol === 'http/json' ? 'json' : 'protobuf';
    expect(receiver.rawRequests().every((q) => q.encoding === encoding && q.headers.authorization === 'Bearer test-token')).toBe(true);

    const root = receiver.spans().find((s) => s.spanId === ids.stepSpanId);
    expect(root).toMatchObject({ name: 'score', kind: 2, traceId: ids.traceId, status: { code: 1 } });
    expect(root?.resource).toMatchObject({
      'service.name': 'score',
      'service.namespace': 'mnist',
      'step.run_id': 'score-run-3',
      'pipeline.run_id': 'pr-backends',
    });
    expect(receiver.spans().find((s) => s.name === 'failing-block')).toMatchObject({ parentSpanId: ids.stepSpanId, status: { code: 2 } });

    const logs = receiver.logs();
    expect(logs.length).toBeGreaterThanOrEqual(8);
    expect(logs.every((l) => l.traceId === ids.traceId)).toBe(true);
    const log = (body: string) => logs.find((l) => l.body === body);
    expect(log('inside span')).toMatchObject({ traceId: ids.traceId, spanId: ids.innerSpanId, severityText: 'INFO' });
    expect(log('slow mini-batch')?.attributes).toMatchObject({ mini_batch_id: 'mb-0007', step_id: 'score', run_id: 'score-run-3', seconds: 3.5 });
    expect(log('could not score file')?.attributes).toMatchObject({
      'exception.type': 'RangeError',
      'exception.message': 'pixel out of range',
      'exception.stacktrace': expect.stringContaining('full-step.mjs'),
    });

    const points = receiver.metrics();
    const accuracy = points.find((p) => p.name === 'accuracy');
    expect(accuracy).toMatchObject({ type: 'gauge', value: 0.95, attributes: { pipeline: 'mnist', step: 'score', node: '0' } });
    expect(points.find((p) => p.name === 'step.running')?.value).toBe(0);
    // the local files are written as well
    expect(readRunFolder(ids.runFolder).spans.length).toBeGreaterThanOrEqual(3);
  });
});

describe('Application Insights', () => {
  it('files the step under requests, user spans under dependencies, logs under traces, errors under exceptions', async () => {
    const ai = await appInsights();
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...IDENTITY, STEP_TELEMETRY_DIR: dir, ...ai.childEnv() } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ids = marker(r.stdout, 'IDS');

    const request = ai.requests().find((e) => e.data.baseData.name === 'score');
    expect(request?.tags['ai.operation.id']).toBe(ids.traceId);
    expect(request?.tags['ai.cloud.role']).toBe('mnist.score');
    // run.log lists, rows and tables travel as events of the step span
    expect(ai.traces().find((e) => e.data.baseData.message === 'metric.table')?.tags['ai.operation.parentId']).toBe(ids.stepSpanId);
    expect(request?.data.baseData).toMatchObject({ success: true, properties: expect.objectContaining({ step_id: 'score', run_id: 'score-run-3', pipeline_run_id: 'pr-backends' }) });
    const dependency = ai.dependencies().find((e) => e.data.baseData.name === 'load-model');
    expect(dependency?.tags['ai.operation.parentId']).toBe(ids.stepSpanId);
    expect(dependency?.data.baseData.properties).toMatchObject({ step_name: 'score', node_rank: '0' });

    const message = ai.traces().find((e) => e.data.baseData.message === 'slow mini-batch');
    expect(message?.data.baseData.properties).toMatchObject({ mini_batch_id: 'mb-0007', step_id: 'score', pipeline_name: 'mnist' });
    expect(message?.tags['ai.operation.id']).toBe(ids.traceId);
    const exception = ai.exceptions().find((e) => JSON.stringify(e.data.baseData).includes('pixel out of range'));
    expect(exception, JSON.stringify(ai.exceptions().map((e) => e.data.baseData))).toBeDefined();
    expect(JSON.stringify(exception?.data.baseData)).toContain('RangeError');

    const metric = ai.metrics().find((e) => JSON.stringify(e.data.baseData).includes('"accuracy"'));
    expect(metric?.data.baseData).toMatchObject({ metrics: [expect.objectContaining({ name: 'accuracy', value: 0.95 })] });
  });

  it('works with OTLP at the same time: both receive the same trace', async () => {
    const ai = await appInsights();
    const receiver = await otlp();
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...IDENTITY, STEP_TELEMETRY_DIR: dir, ...ai.childEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    expect(r.code).toBe(0);
    const ids = marker(r.stdout, 'IDS');
    expect(receiver.spans().find((s) => s.spanId === ids.stepSpanId)).toBeDefined();
    expect(ai.requests().find((e) => e.tags['ai.operation.id'] === ids.traceId)).toBeDefined();
    expect(marker(r.stdout, 'RESULT').exports).toHaveLength(6);
  });
});

describe('switches', () => {
  it('OTEL_SDK_DISABLED stops every export while the local files go on; OTEL_TRACES_EXPORTER=none stops one signal', async () => {
    const receiver = await otlp();
    const dir = await useTempDir();
    const off = await runStepScript({ script: FULL, env: { ...IDENTITY, STEP_TELEMETRY_DIR: `${dir}/a`, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: 'true' } });
    expect(off.code).toBe(0);
    expect(receiver.rawRequests()).toHaveLength(0);
    expect(readRunFolder(marker(off.stdout, 'IDS').runFolder).spans.length).toBeGreaterThan(0);

    const noTraces = await runStepScript({ script: FULL, env: { ...IDENTITY, STEP_TELEMETRY_DIR: `${dir}/b`, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_EXPORTER: 'none' } });
    expect(noTraces.code).toBe(0);
    expect(new Set(receiver.rawRequests().map((q) => q.signal))).toEqual(new Set(['logs', 'metrics']));
  });

  it('STEP_TELEMETRY_DISABLED writes nothing and sends nothing; the logger still prints', async () => {
    const receiver = await otlp();
    const dir = await useTempDir();
    const r = await runStepScript({
      script: FULL,
      env: { STEP_TELEMETRY_DIR: `${dir}/off`, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, STEP_TELEMETRY_DISABLED: 'true' },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('model loaded');
    expect(receiver.rawRequests()).toHaveLength(0);
    expect((await import('node:fs')).existsSync(`${dir}/off`)).toBe(false);
  });
});
