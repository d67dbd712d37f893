// The standard OpenTelemetry configuration, as a real step reads it: OTLP/HTTP over TLS with a
// private CA (and mTLS), OTLP/gRPC against a real gRPC server (plain and TLS), the sampler and
// propagator variables, the resource detectors and the console exporter.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpGrpcReceiver } from './helpers/otlp-grpc-receiver.js';
import { freeClosedPort, startOtlpReceiver } from './helpers/otlp-receiver.js';
import { findRunFolder, marker, readRunFolder } from './helpers/run-folder.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { makeTestPki } from './helpers/tls.js';
import { BEHAVE, makeFiles, readAllJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';

const STEP = fileURLToPath(new URL('./fixtures/otel/env-step.mjs', import.meta.url));
const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
function track<T extends { close(): Promise<void> }>(server: T): T {
  servers.push(server);
  return server;
}

async function runStep(env: Record<string, string>) {
  const dir = await useTempDir('st-otel-');
  const r = await runStepScript({ script: STEP, env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-otel', STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '3000', ...env } });
  return { ...r, folder: () => readRunFolder(findRunFolder(dir)) };
}

describe('OTLP over TLS, as the OTEL_EXPORTER_OTLP_* variables say', () => {
  it('trusts a private CA named by OTEL_EXPORTER_OTLP_CERTIFICATE (regression: DEPTH_ZERO_SELF_SIGNED_CERT, nothing delivered)', async () => {
    const pki = await makeTestPki();
    const receiver = track(await startOtlpReceiver({ tls: { key: pki.read(pki.serverKeyFile), cert: pki.read(pki.serverCertFile) } }));
    const r = await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_CERTIFICATE: pki.caFile });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(receiver.spans().map((s) => s.name)).toEqual(expect.arrayContaining(['configured', 'work']));
    expect(receiver.logs().some((l) => l.body === 'working')).toBe(true);
    expect(receiver.metrics().some((m) => m.name === 'loss')).toBe(true);
  });

  it('presents the client certificate of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / CLIENT_KEY to an mTLS collector', async () => {
    const pki = await makeTestPki();
    const receiver = track(await startOtlpReceiver({ tls: { key: pki.read(pki.serverKeyFile), cert: pki.read(pki.serverCertFile), ca: pki.read(pki.caFile), requestCert: true } }));
    const without = await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_CERTIFICATE: pki.caFile, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    expect(receiver.spans()).toEqual([]);
    expect(without.stderr).toMatch(/OTLP traces export to https:\/\/127\.0\.0\.1:\d+\/v1\/traces: 1 of 1 batches failed/);
    const r = await runStep({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.caFile,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.clientCertFile,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.clientKeyFile,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    expect(r.stderr).toBe('');
    expect(receiver.spans().map((s) => s.name)).toEqual(expect.arrayContaining(['configured', 'work']));
  });
});

describe('OTLP/gRPC (OTEL_EXPORTER_OTLP_PROTOCOL=grpc; regression: grpc was refused)', () => {
  it('sends all three signals to a real gRPC server, with the headers as metadata', async () => {
    const receiver = track(await startOtlpGrpcReceiver());
    const r = await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(receiver.spans().map((s) => s.name)).toEqual(expect.arrayContaining(['configured', 'work']));
    expect(receiver.logs().some((l) => l.body === 'working')).toBe(true);
    expect(receiver.metrics().some((m) => m.name === 'loss')).toBe(true);
    expect(receiver.calls[0]!.metadata['x-tenant']).toBe('acme');
  });

  it('over TLS with the CA and client certificate of the OTEL_EXPORTER_OTLP_* variables (mTLS)', async () => {
    const pki = await makeTestPki();
    const receiver = track(await startOtlpGrpcReceiver({ tls: { key: pki.read(pki.serverKeyFile), cert: pki.read(pki.serverCertFile), ca: pki.read(pki.caFile), requestCert: true } }));
    const r = await runStep({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.caFile,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.clientCertFile,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.clientKeyFile,
    });
    expect(r.stderr).toBe('');
    expect(receiver.spans().map((s) => s.name)).toEqual(expect.arrayContaining(['configured', 'work']));
  });
});

describe('sampling (OTEL_TRACES_SAMPLER)', () => {
  it('sends only sampled spans; the run folder keeps every span, marked, and the mini-batch metrics stay exact', async () => {
    const receiver = track(await startOtlpReceiver());
    const r = await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
    expect(r.stderr).toBe('');
    expect(receiver.spans()).toEqual([]);
    const f = r.folder();
    expect(f.spans.map((s) => [s.name, s.sampled])).toEqual(expect.arrayContaining([['configured', false], ['work', false]]));
    const hist = receiver.metrics().find((m) => m.name === 'step.minibatch.duration');
    expect(hist?.count).toBe(20);
    // a traceparent of a span sampled out says so, so the next step follows the decision
    expect(marker<Record<string, string>>(r.stdout, 'CHILD_ENV').TRACEPARENT).toMatch(/-00$/);
  });

  it('always_on overrides a parent sampled out only with parentbased_* off: the parent decides by default', async () => {
    const receiver = track(await startOtlpReceiver());
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, TRACEPARENT: parent });
    expect(receiver.spans()).toEqual([]);
    await runStep({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, TRACEPARENT: parent, OTEL_TRACES_SAMPLER: 'always_on' });
    expect(receiver.spans().find((s) => s.name === 'configured')?.parentSpanId).toBe('b7ad6b7169203331');
  });
});

describe('propagation (OTEL_PROPAGATORS; TRACEPARENT, TRACESTATE and BAGGAGE from the environment)', () => {
  it('registers W3C trace context and baggage by default: outgoing calls carry traceparent (regression: injecting gave {})', async () => {
    const r = await runStep({
      TRACEPARENT: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      TRACESTATE: 'vendor=abc',
      BAGGAGE: 'tenant=acme',
    });
    expect(r.stderr).toBe('');
    const headers = marker<Record<string, string>>(r.stdout, 'HEADERS');
    expect(headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(headers.tracestate).toBe('vendor=abc');
    const env = marker<Record<string, string>>(r.stdout, 'CHILD_ENV');
    expect(env).toMatchObject({ TRACESTATE: 'vendor=abc', BAGGAGE: 'tenant=acme', STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-otel' });
    const f = r.folder();
    const work = f.spans.find((s) => s.name === 'work')!;
    expect(env.TRACEPARENT).toBe(`00-0af7651916cd43dd8448eb211c80319c-${work.span_id}-01`);
    expect(f.spans.find((s) => s.name === 'configured')!.parent_span_id).toBe('b7ad6b7169203331');
  });

  it('uses the propagators OTEL_PROPAGATORS names (b3multi), and none with none', async () => {
    const b3 = await runStep({ OTEL_PROPAGATORS: 'b3multi' });
    expect(Object.keys(marker(b3.stdout, 'HEADERS')).sort()).toEqual(['x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']);
    const none = await runStep({ OTEL_PROPAGATORS: 'none' });
    expect(marker(none.stdout, 'HEADERS')).toEqual({});
  });
});

describe('the resource', () => {
  it('merges the default resource and the detectors; values the user set are never overwritten; no command line', async () => {
    const receiver = track(await startOtlpReceiver());
    const r = await runStep({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_RESOURCE_ATTRIBUTES: 'host.name=my-host,service.instance.id=mine,deployment.environment.name=prod',
      OTEL_SERVICE_NAME: 'scoring',
    });
    expect(r.stderr).toBe('');
    const resource = receiver.spans()[0]!.resource;
    expect(resource).toMatchObject({
      'host.name': 'my-host',
      'service.instance.id': 'mine',
      'service.name': 'scoring',
      'deployment.environment.name': 'prod',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'process.pid': expect.any(Number),
      'process.runtime.name': 'nodejs',
      'step.name': 'configured',
      'pipeline.run_id': 'pr-otel',
    });
    expect(resource['process.command_args']).toBeUndefined();
    expect(r.folder().step.resource['host.name']).toBe('my-host');
  });
});

describe('other exporters and bad values', () => {
  it('OTEL_METRICS_EXPORTER=prometheus serves the step registry on OTEL_EXPORTER_PROMETHEUS_HOST/PORT', async () => {
    const port = await freeClosedPort();
    const r = await runStep({ OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1', OTEL_EXPORTER_PROMETHEUS_PORT: String(port) });
    expect(r.stderr).toBe('');
    expect(marker(r.stdout, 'ENDPOINT')).toBe(`http://127.0.0.1:${port}/metrics`);
  });

  it('OTEL_TRACES_EXPORTER=console prints spans; an unknown exporter or sampler is named at start', async () => {
    const r = await runStep({ OTEL_TRACES_EXPORTER: 'console,bogus', OTEL_TRACES_SAMPLER: 'sometimes' });
    expect(r.stdout).toMatch(/name: 'work'/);
    expect(r.stderr).toMatch(/OTEL_TRACES_EXPORTER: expected a list of otlp, zipkin, console, none \(got bogus\)/);
    expect(r.stderr).toMatch(/OTEL_TRACES_SAMPLER: expected one of always_on/);
  });
});

describe("the program's own OpenTelemetry", () => {
  it('joins global providers the program registered first: they stay, its spans join the step trace', async () => {
    const dir = await useTempDir('st-joined-');
    const r = await runStepScript({ script: fileURLToPath(new URL('./fixtures/otel/own-providers-step.mjs', import.meta.url)), env: { STEP_TELEMETRY_DIR: dir } });
    expect(r.code, r.stderr).toBe(0);
    const f = readRunFolder(findRunFolder(dir));
    expect(f.step.otel_globals).toMatchObject({ trace: false });
    const work = f.spans.find((s) => s.name === 'step-work')!;
    expect(marker(r.stdout, 'USER_SPANS')).toEqual([{ name: 'user-work', traceId: f.step.trace_id, parent: work.span_id }]);
    expect(f.spans.map((s) => s.name).sort()).toEqual(['joined', 'step-work']);
  });
});

describe('sampling of the runner mini-batch spans', () => {
  it('finished attempt spans follow the sampler: none exported with always_off, all kept locally, the metrics exact', async () => {
    const receiver = track(await startOtlpReceiver());
    const dir = await useTempDir('st-sampled-runner-');
    fs.mkdirSync(path.join(dir, 'in'));
    makeFiles(path.join(dir, 'in'), 6);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2'], {
      cwd: dir,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_off', OTEL_METRIC_EXPORT_INTERVAL: '600000', STEP_TELEMETRY_CONSOLE: 'false' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(receiver.spans()).toEqual([]);
    const attempts = readAllJsonl(runFolder(path.join(dir, 'telemetry')), 'spans').filter((s) => s.kind === 'CONSUMER');
    expect(attempts).toHaveLength(3);
    for (const a of attempts) expect(a.sampled).toBe(false);
    const mb = receiver.metrics().filter((m) => m.name === 'step.minibatch.duration');
    expect(mb.reduce((n, m) => n + (m.count ?? 0), 0)).toBe(3);
  });
});
