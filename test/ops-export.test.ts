// The step's Prometheus export: the /metrics endpoint (loopback by default, OpenMetrics with
// exemplars when asked, lint-free text otherwise) and Pushgateway pushes against a real
// Pushgateway, with the trouble rules of the core: configuration issues named, failures counted
// in the end-of-step summary with a hint, no credentials printed, bounded time at the end, and
// timers that never keep the process alive.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { startStep, type Step } from '../src/index.js';
import { pushgatewayGroupingPath } from '../src/sinks/prometheus-export.js';
import { closedUrl } from './helpers/otlp-receiver.js';
import { promtool, startPushgateway, type LaunchedServer } from './helpers/prometheus-servers.js';
import { marker } from './helpers/run-folder.js';
import { runStepScript } from './helpers/run-step.js';
import { parseExposition } from './fixtures/ops/exposition.js';
import { startInteractiveStep } from './fixtures/ops/interactive-step.js';

const PLAIN = fileURLToPath(new URL('./fixtures/ops/plain-step.mjs', import.meta.url));
const MINIBATCH = fileURLToPath(new URL('./fixtures/ops/minibatch-step.mjs', import.meta.url));
const QUIET = { STEP_TELEMETRY_LOCAL: 'false', STEP_TELEMETRY_CONSOLE: 'false' };

describe('configuration', () => {
  it('defaults: no endpoint, loopback host, no Pushgateway, 15 s interval, keep the group, job step-telemetry', () => {
    const c = resolveConfig({}, {}).prometheus;
    expect(c).toEqual({ port: undefined, host: '127.0.0.1', pushgatewayUrl: undefined, pushIntervalMs: 15_000, deleteOnEnd: false, pushJob: 'step-telemetry' });
  });

  it('reads every variable, options win, a port of 0 is kept, an empty variable is unset', () => {
    const env = {
      STEP_TELEMETRY_PROMETHEUS_PORT: '9464',
      STEP_TELEMETRY_PROMETHEUS_HOST: '0.0.0.0',
      STEP_TELEMETRY_PUSHGATEWAY_URL: 'https://pg.example.com:9091/prefix',
      STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '0',
      STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END: 'true',
      STEP_TELEMETRY_PUSHGATEWAY_JOB: 'batch-steps',
    };
    expect(resolveConfig({}, env).prometheus).toEqual({ port: 9464, host: '0.0.0.0', pushgatewayUrl: 'https://pg.example.com:9091/prefix', pushIntervalMs: 0, deleteOnEnd: true, pushJob: 'batch-steps' });
    expect(resolveConfig({ prometheusPort: 0, pushgatewayDeleteOnEnd: false, prometheusHost: '::1' }, env).prometheus).toMatchObject({ port: 0, deleteOnEnd: false, host: '::1' });
    expect(resolveConfig({}, { STEP_TELEMETRY_PROMETHEUS_PORT: ' ', STEP_TELEMETRY_PUSHGATEWAY_URL: '' }).prometheus).toMatchObject({ port: undefined, pushgatewayUrl: undefined });
  });

  it('reports a bad value once, naming the variable and what is expected, and uses the default', () => {
    const c = resolveConfig(
      {},
      {
        STEP_TELEMETRY_PROMETHEUS_PORT: '70000',
        STEP_TELEMETRY_PROMETHEUS_HOST: 'http://host',
        STEP_TELEMETRY_PUSHGATEWAY_URL: 'pushgateway:9091',
        STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '-5',
        STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END: 'maybe',
        STEP_TELEMETRY_PUSHGATEWAY_JOB: 'a/b',
      },
    );
    expect(c.issues.map((i) => i.variable).sort()).toEqual(
      [
        'STEP_TELEMETRY_PROMETHEUS_HOST',
        'STEP_TELEMETRY_PROMETHEUS_PORT',
        'STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END',
        'STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS',
        'STEP_TELEMETRY_PUSHGATEWAY_JOB',
        'STEP_TELEMETRY_PUSHGATEWAY_URL',
      ].sort(),
    );
    expect(c.issues.find((i) => i.variable === 'STEP_TELEMETRY_PROMETHEUS_PORT')?.expected).toBe('a whole number from 0 to 65535');
    expect(c.issues.find((i) => i.variable === 'STEP_TELEMETRY_PUSHGATEWAY_URL')?.expected).toMatch(/http:\/\/ or https:\/\/ URL/);
    expect(c.prometheus).toEqual(resolveConfig({}, {}).prometheus);
    expect(resolveConfig({ prometheusPort: 1.5 }, {}).issues[0]).toMatchObject({ variable: 'options.prometheusPort' });
  });

  it('strict mode refuses to start on a bad Pushgateway URL, naming the variable', async () => {
    const r = await runStepScript({ script: PLAIN, env: { ...QUIET, STEP_TELEMETRY_STRICT: 'true', STEP_TELEMETRY_PUSHGATEWAY_URL: 'ftp://pg' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ConfigError: step-telemetry configuration: STEP_TELEMETRY_PUSHGATEWAY_URL: expected an http:// or https:// URL');
  });

  it('grouping key: job, pipeline, step, node (process when > 0); awkward values base64-encoded', () => {
    expect(pushgatewayGroupingPath('step-telemetry', { pipeline: 'mnist', step: 'score', node: '3' })).toBe('/metrics/job/step-telemetry/pipeline/mnist/step/score/node/3');
    expect(pushgatewayGroupingPath('j', { pipeline: 'a/b', step: '', node: '0' })).toBe(
      `/metrics/job/j/pipeline@base64/${Buffer.from('a/b').toString('base64url')}/step@base64/=/node/0`,
    );
  });
});

describe('the /metrics endpoint', () => {
  let step: Step | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await step?.end();
    step = undefined;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const start = async (): Promise<Step> => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-prom-'));
    step = await startStep({ name: 'endpoint', dir, console: false, handleProcessEvents: false, prometheusPort: 0 });
    return step;
  };

  it('listens on loopback, serves the Prometheus text format that promtool finds nothing to lint in', async () => {
    const s = await start();
    expect(s.metricsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    for (const [key, value, attrs] of [
      ['minibatchDuration', 0.2, { outcome: 'success' }],
      ['minibatches', 1, { outcome: 'success' }],
      ['items', 10, { outcome: 'success' }],
      ['itemsExpected', 100, undefined],
      ['retries', 1, undefined],
      ['timeouts', 1, undefined],
      ['workerRestarts', 1, undefined],
      ['errorBudgetUsed', 0.1, undefined],
      ['progressTimestamp', 1_700_000_000, undefined],
      ['exportFailures', 1, { backend: 'OTLP', signal: 'logs' }],
    ] as const) s.instruments.record(key, value, attrs);
    s.log('train.loss', 0.5);
    s.log('val accuracy', 0.9);
    const res = await fetch(s.metricsEndpoint!);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).not.toContain('# {');
    expect(text).toContain('step_items_total{pipeline="pipeline",step="endpoint",node="0",outcome="success"} 10');
    const lint = await promtool(['check', 'metrics'], { stdin: text });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.code).toBe(0);
  });

  it('serves OpenMetrics with exemplars when the scraper asks for it (as Prometheus does)', async () => {
    const s = await start();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    s.instruments.record('minibatchDuration', 0.3, { outcome: 'success' }, { traceId, spanId: 'b7ad6b7169203331' });
    // without an explicit context: the active span's
    let inner = '';
    await s.span('minibatch mb-2', (span) => {
      inner = span.spanContext().spanId;
      s.instruments.record('minibatchDuration', 7, { outcome: 'error' });
    });
    s.instruments.record('items', 2, { outcome: 'failure' });
    const res = await fetch(s.metricsEndpoint!, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
    expect(res.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = await res.text();
    expect(text.endsWith('# EOF\n')).toBe(true);
    expect(text).toContain('# TYPE step_items counter\n# HELP step_items Input items processed, by outcome.\nstep_items_total{pipeline="pipeline",step="endpoint",node="0",outcome="failure"} 2\n');
    expect(text).toMatch(
      new RegExp(`step_minibatch_duration_seconds_bucket\\{pipeline="pipeline",step="endpoint",node="0",outcome="success",le="0.5"\\} 1 # \\{trace_id="${traceId}",span_id="b7ad6b7169203331"\\} 0.3 \\d+(\\.\\d+)?\\n`),
    );
    expect(text).toMatch(new RegExp(`outcome="error",le="10"\\} 1 # \\{trace_id="${s.rootSpan.spanContext().traceId}",span_id="${inner}"\\} 7 `));
    // a later plain scrape is unaffected (prom-client's own OpenMetrics mode would rename counters)
    expect(await (await fetch(s.metricsEndpoint!)).text()).toContain('# TYPE step_items_total counter');
  });

  it('answers HEAD, refuses other methods and paths, and closes at end()', async () => {
    const s = await start();
    const url = s.metricsEndpoint!;
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
    await s.end();
    step = undefined;
    await expect(fetch(url)).rejects.toThrow();
  });

  it('a port in use: one line naming the variable, the step goes on', async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const r = await runStepScript({ script: PLAIN, env: { ...QUIET, STEP_TELEMETRY_PROMETHEUS_PORT: String(port) } });
      expect(r.code).toBe(0);
      expect(marker(r.stdout, 'READY').endpoint).toBeNull();
      expect(r.stderr).toMatch(/STEP_TELEMETRY_PROMETHEUS_PORT .*cannot serve \/metrics on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
      expect(marker(r.stdout, 'ENDED').outcome).toBe('success');
    } finally {
      blocker.close();
    }
  });
});

describe('Pushgateway', () => {
  let pg: LaunchedServer;
  beforeAll(async () => {
    pg = await startPushgateway();
  });
  afterAll(async () => {
    await pg?.stop();
  });
  const pushed = async (pipeline: string): Promise<ReturnType<typeof parseExposition>> =>
    parseExposition(await (await fetch(`${pg.url}/metrics`)).text()).filter((s) => s.labels.pipeline === pipeline);
  const running = async (pipeline: string): Promise<number | undefined> => (await pushed(pipeline)).find((s) => s.name === 'step_running')?.value;

  it('pushes on the interval under the documented grouping key, and a last time at the end (group kept)', async () => {
    const step = await startInteractiveStep(MINIBATCH, {
      ...QUIET,
      STEP_TELEMETRY_PIPELINE_NAME: 'push-keep',
      STEP_TELEMETRY_STEP_NAME: 'score',
      STEP_TELEMETRY_NODE_RANK: '1',
      STEP_TELEMETRY_NODE_COUNT: '2',
      // credentials in the URL: sent as basic auth, never printed
      STEP_TELEMETRY_PUSHGATEWAY_URL: pg.url.replace('http://', 'http://ci:s3cret-pw@'),
      STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '200',
    });
    onTestFinished(() => step.kill());
    await step.line('READY');
    const deadline = Date.now() + 10_000;
    while ((await running('push-keep')) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const series = await pushed('push-keep');
    expect(series.find((s) => s.name === 'step_running')?.labels).toEqual({ instance: '', job: 'step-telemetry', pipeline: 'push-keep', step: 'score', node: '1' });
    expect(series.some((s) => s.name === 'step_minibatch_duration_seconds_bucket')).toBe(true);
    expect(series.some((s) => s.name === 'push_time_seconds')).toBe(true);
    step.send('end');
    const ended = await step.line('ENDED');
    expect(await step.exit).toBe(0);
    const health = (ended.exports as Array<Record<string, unknown>>).find((e) => e.backend === 'Pushgateway');
    expect(health).toMatchObject({ signal: 'metrics', failedBatches: 0, target: `${pg.url}/metrics/job/step-telemetry/pipeline/push-keep/step/score/node/1` });
    expect(health!.batches as number).toBeGreaterThanOrEqual(2);
    expect(await running('push-keep')).toBe(0); // the final push: the step has ended
    expect(step.stdout() + step.stderr()).not.toContain('s3cret-pw');
  });

  it('deletes the group at the end with STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END; a process > 0 gets its own group', async () => {
    const r = await runStepScript({
      script: PLAIN,
      env: {
        ...QUIET,
        STEP_TELEMETRY_PIPELINE_NAME: 'push-delete',
        STEP_TELEMETRY_PROCESS_INDEX: '2',
        STEP_TELEMETRY_PUSHGATEWAY_URL: pg.url,
        STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '100',
        STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END: 'true',
        FIXTURE_HOLD_MS: '600',
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const health = (marker(r.stdout, 'ENDED').exports as Array<Record<string, unknown>>).find((e) => e.backend === 'Pushgateway')!;
    expect(health.target).toBe(`${pg.url}/metrics/job/step-telemetry/pipeline/push-delete/step/plain/node/0/process/2`);
    expect(health.failedBatches).toBe(0);
    expect(health.batches as number).toBeGreaterThanOrEqual(2);
    expect(await pushed('push-delete')).toEqual([]);
  });

  it('a step that never calls end() still exits on its own, after a last push (timers are unref()ed)', async () => {
    const r = await runStepScript({
      script: PLAIN,
      timeoutMs: 20_000,
      env: { ...QUIET, FIXTURE_MODE: 'no-end', STEP_TELEMETRY_PIPELINE_NAME: 'push-no-end', STEP_TELEMETRY_PUSHGATEWAY_URL: pg.url, STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '50', STEP_TELEMETRY_PROMETHEUS_PORT: '0' },
    });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(r.durationMs).toBeLessThan(10_000);
    expect(await running('push-no-end')).toBe(0);
  });

  it.each([
    ['refuses the credential (401)', 'unauthorized', /HTTP 401.*\(the backend refused the credential \(HTTP 401\): check that STEP_TELEMETRY_PUSHGATEWAY_URL \(its user:password\) holds a valid/],
    ['is not listening', 'closed', /ECONNREFUSED.*\(nothing listens at that address/],
    ['never answers', 'hang', /(no answer within the flush bound|timed out)/],
  ])('a Pushgateway that %s costs the step nothing but a summary line, within the flush bound', async (_what, mode, message) => {
    const sockets = new Set<import('node:net').Socket>();
    const server = http.createServer((req, res) => {
      if (mode === 'unauthorized') res.writeHead(401).end('unauthorized');
      // hang: never answer
    });
    server.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = mode === 'closed' ? await closedUrl() : `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await runStepScript({
        script: PLAIN,
        env: {
          ...QUIET,
          STEP_TELEMETRY_PUSHGATEWAY_URL: url.replace('http://', 'http://ci:s3cret-pw@'),
          STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '100',
          STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '800',
          FIXTURE_HOLD_MS: '400',
        },
      });
      expect(r.code).toBe(0);
      const ended = marker(r.stdout, 'ENDED');
      expect(ended.outcome).toBe('success');
      expect(ended.endMs).toBeLessThan(2500);
      const health = (ended.exports as Array<Record<string, unknown>>).find((e) => e.backend === 'Pushgateway')!;
      expect(health.failedBatches as number).toBeGreaterThan(0);
      const line = r.stderr.split('\n').find((l) => l.includes('Pushgateway metrics export to'));
      expect(line).toMatch(message);
      expect(r.stdout + r.stderr).not.toContain('s3cret-pw');
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('STEP_TELEMETRY_DISABLED: no endpoint, no push', async () => {
    const r = await runStepScript({ script: PLAIN, env: { ...QUIET, STEP_TELEMETRY_DISABLED: 'true', STEP_TELEMETRY_PIPELINE_NAME: 'push-disabled', STEP_TELEMETRY_PUSHGATEWAY_URL: pg.url, STEP_TELEMETRY_PROMETHEUS_PORT: '0' } });
    expect(r.code).toBe(0);
    expect(marker(r.stdout, 'READY').endpoint).toBeNull();
    expect(marker(r.stdout, 'ENDED').exports).toEqual([]);
    expect(await pushed('push-disabled')).toEqual([]);
  });
});
