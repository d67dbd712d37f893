// Trouble: a backend that is down, hangs, refuses the credential or is unavailable costs the step
// nothing but a summary line; signals, crashes and early exits still leave complete local files.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { closedUrl, startOtlpReceiver, type OtlpReceiver, type ReceiverMode } from './helpers/otlp-receiver.js';
import { startAppInsightsReceiver, type AppInsightsMode } from './helpers/appinsights-receiver.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { findRunFolder, marker, readRunFolder, type RunFolder } from './helpers/run-folder.js';

const FULL = fileURLToPath(new URL('./fixtures/steps/full-step.mjs', import.meta.url));
const FLUSH_MS = 1500;
const BASE = { STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_FLUSH_TIMEOUT_MS: String(FLUSH_MS) };

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Everything the fixture records before it ends, whatever the ending. */
function expectComplete(run: RunFolder, outcome: string): void {
  const messages = run.logs.map((l) => l.message);
  for (const m of ['logged before startStep', 'model loaded', 'inside span', 'slow mini-batch', 'could not score file']) expect(messages).toContain(m);
  expect(run.metrics.map((m) => m.name)).toEqual(expect.arrayContaining(['accuracy', 'loss', 'loss_curve', 'per_class', 'confusion', 'early_metric']));
  expect(run.spans.map((s) => s.name)).toEqual(expect.arrayContaining(['load-model', 'failing-block']));
  expect(run.step.outcome).toBe(outcome);
}

describe('an OTLP backend in trouble', () => {
  const cases: Array<[string, ReceiverMode | 'down', RegExp]> = [
    ['refuses connections', 'down', /ECONNREFUSED.*nothing listens at that address/],
    ['hangs', 'hang', /no answer within the flush bound/],
    ['answers 401', 'unauthorized', /401.*check that OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS holds a valid, unexpired key or token/],
    ['answers 503', 'unavailable', /retryable status.*429, 502, 503 or 504/],
  ];
  it.each(cases)('%s: the step ends on time with exit 0, one summary line per signal, local files complete', async (_name, mode, why) => {
    let url: string;
    if (mode === 'down') url = await closedUrl();
    else {
      const receiver: OtlpReceiver = await startOtlpReceiver({ mode });
      servers.push(receiver);
      url = receiver.url;
    }
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: dir, OTEL_EXPORTER_OTLP_ENDPOINT: url } });
    expect(r.code).toBe(0);
    // the flush bound, plus process start-up and the fixture's own work
    expect(r.durationMs).toBeLessThan(FLUSH_MS + 4000);
    const summary = r.stderr.split('\n').filter((l) => l.startsWith('[step-telemetry] OTLP'));
    expect(summary.map((l) => l.match(/OTLP (\w+) export/)?.[1]).sort()).toEqual(['logs', 'metrics', 'traces']);
    expect(summary.find((l) => l.includes('OTLP traces'))).toMatch(why);
    const result = marker(r.stdout, 'RESULT');
    expect(result.exports.find((e: any) => e.signal === 'traces').failedBatches).toBeGreaterThan(0);
    const run = readRunFolder(marker(r.stdout, 'IDS').runFolder);
    expectComplete(run, 'success');
    expect(run.step.exports).toHaveLength(3);
  });
});

describe('an Application Insights endpoint in trouble', () => {
  const cases: Array<[string, AppInsightsMode, RegExp]> = [
    ['answers 401', 'unauthorized', /HTTP 401.*refused the credential.*APPLICATIONINSIGHTS_CONNECTION_STRING/],
    ['answers 403', 'forbidden', /HTTP 403.*refused the credential/],
    ['hangs', 'hang', /no answer within the flush bound/],
  ];
  it.each(cases)('%s: exit 0 on time, a summary with the hint, local files complete', async (_name, mode, why) => {
    const ai = await startAppInsightsReceiver({ mode });
    servers.push(ai);
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: dir, ...ai.childEnv() } });
    expect(r.code).toBe(0);
    expect(r.durationMs).toBeLessThan(FLUSH_MS + 4000);
    const traces = r.stderr.split('\n').find((l) => l.startsWith('[step-telemetry] Application Insights traces'));
    expect(traces).toMatch(why);
    expectComplete(readRunFolder(marker(r.stdout, 'IDS').runFolder), 'success');
  });
});

describe('process endings', () => {
  it('SIGTERM mid-step: local files complete, the backend flushed, exit code 143', async () => {
    const receiver = await startOtlpReceiver();
    servers.push(receiver);
    const dir = await useTempDir();
    const r = await runStepScript({
      script: FULL,
      env: { ...BASE, STEP_TELEMETRY_DIR: dir, FIXTURE_MODE: 'sigterm', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
      signalAfter: { signal: 'SIGTERM', whenStdoutIncludes: 'READY' },
    });
    expect(r.signalSent).toBe(true);
    expect(r.code).toBe(143);
    const run = readRunFolder(marker(r.stdout, 'IDS').runFolder);
    expectComplete(run, 'terminated');
    expect(run.logs.filter((l) => /^working \d+$/.test(l.message))).toHaveLength(50);
    const root = run.spans.find((s) => s.kind === 'SERVER');
    expect(root).toMatchObject({ status: { code: 'ERROR' }, attributes: { 'step.outcome': 'terminated' } });
    expect(root?.events.some((e: any) => e.name === 'exception' && /received SIGTERM/.test(e.attributes['exception.message']))).toBe(true);
    // what was recorded also reached the backend before the exit
    expect(receiver.spans().find((s) => s.kind === 2)?.attributes['step.outcome']).toBe('terminated');
    expect(receiver.logs().filter((l) => /^working \d+$/.test(String(l.body)))).toHaveLength(50);
  });

  it('SIGINT mid-step: local files complete, exit code 130', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({
      script: FULL,
      env: { ...BASE, STEP_TELEMETRY_DIR: dir, FIXTURE_MODE: 'sigterm' },
      signalAfter: { signal: 'SIGINT', whenStdoutIncludes: 'READY' },
    });
    expect(r.code).toBe(130);
    const run = readRunFolder(marker(r.stdout, 'IDS').runFolder);
    expectComplete(run, 'terminated');
    expect(run.logs.filter((l) => /^working \d+$/.test(l.message))).toHaveLength(50);
  });

  it.each([
    ['an uncaught exception', 'uncaught', /Error: unexpected failure in step/],
    ['an unhandled rejection', 'rejection', /Error: unhandled rejection in step/],
  ])('%s: printed, recorded on the step span and flushed, exit code 1', async (_name, mode, error) => {
    const receiver = await startOtlpReceiver();
    servers.push(receiver);
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: dir, FIXTURE_MODE: mode, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(error);
    const run = readRunFolder(marker(r.stdout, 'IDS').runFolder);
    expectComplete(run, 'crashed');
    expect(run.logs.find((l) => l.level === 'error' && l.message === 'step score failed')?.error.message).toMatch(/unexpected failure|unhandled rejection/);
    const root = receiver.spans().find((s) => s.kind === 2);
    expect(root?.status.code).toBe(2);
    expect(root?.events.find((e) => e.name === 'exception')?.attributes['exception.stacktrace']).toContain('full-step.mjs');
  });

  it('process.exit() before end(): local files complete, exit code kept', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: dir, FIXTURE_MODE: 'exit' } });
    expect(r.code).toBe(3);
    const run = readRunFolder(findRunFolder(dir));
    expectComplete(run, 'failure');
    expect(run.logs.map((l) => l.message)).toContain('about to call process.exit(3)');
    expect(run.step.reason).toBe('process.exit(3) before step.end()');
  });

  it('a script that returns without end() is ended for it; a non-zero exitCode is kept and makes it a failure', async () => {
    const dir = await useTempDir();
    const ok = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: `${dir}/a`, FIXTURE_MODE: 'noend' } });
    expect(ok.code).toBe(0);
    expectComplete(readRunFolder(findRunFolder(`${dir}/a`)), 'success');
    const failed = await runStepScript({ script: FULL, env: { ...BASE, STEP_TELEMETRY_DIR: `${dir}/b`, FIXTURE_MODE: 'exitcode' } });
    expect(failed.code).toBe(4);
    expectComplete(readRunFolder(findRunFolder(`${dir}/b`)), 'failure');
  });
});
