// The process exits as soon as its records are flushed: no timer, socket or exporter of ours keeps
// it alive after end(), whatever the backend does. A refused connection or a 401 ends the flush at
// once; only a backend that does not answer costs the bound, on the end() path and on the path of a
// script that returns without end() (regression: 20-29 s after returning, and never against a
// backend that drips a byte a second).
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_INSTRUMENTATION_KEY, startAppInsightsReceiver } from './helpers/appinsights-receiver.js';
import { closedUrl, freeClosedPort, startOtlpReceiver, type ReceiverMode } from './helpers/otlp-receiver.js';
import { baseChildEnv, useTempDir } from './helpers/run-step.js';
import { BEHAVE, makeFiles, readJson, runFolder, runRunner } from './fixtures/runner/harness.js';
import fs from 'node:fs';
import path from 'node:path';

const STEP = fileURLToPath(new URL('./fixtures/otel/exit-step.mjs', import.meta.url));
const BOUND = 3000;
/** What a loaded 2-core machine may take to tear a process down; far below the 20 s of the bug. */
const PROMPT = 2000;
/**
 * An end() that knew at once (a refusal, a 401, a healthy backend) took less than this: it did not
 * wait for the bound. Not a speed figure: an export with TLS on a machine at load 10 took 1.5 s.
 */
const NOT_THE_BOUND = BOUND - 500;

const servers: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Runs the fixture; times are of this machine's clock (Date.now() on both sides). */
async function run(env: Record<string, string>, end: 'end' | 'return' = 'end'): Promise<{ code: number | null; stderr: string; endMs: number; exitAfterMs: number }> {
  const dir = await useTempDir('st-exit-');
  const child = spawn(process.execPath, [STEP], { env: { ...baseChildEnv(), STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_FLUSH_TIMEOUT_MS: String(BOUND), FIXTURE_END: end, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const exitedAt = Date.now();
  clearTimeout(killer);
  const at = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(stdout)?.[1] ?? NaN);
  if (end === 'return') return { code, stderr, endMs: NaN, exitAfterMs: exitedAt - at('RETURNED') };
  return { code, stderr, endMs: at('ENDED') - at('ENDING'), exitAfterMs: exitedAt - at('ENDED') };
}

/** A backend that misbehaves below the HTTP status: resets the connection, or answers 200 one byte a second and never ends. */
async function faultServer(kind: 'reset' | 'drip' | 429): Promise<string> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    req.resume();
    if (kind === 'reset') req.socket.destroy();
    else if (kind === 429) res.writeHead(429, { 'retry-after': '1' }).end();
    else {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      const t = setInterval(() => res.write('x'), 1000);
      timers.add(t);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function otlpUrl(state: ReceiverMode | 'refused'): Promise<string> {
  if (state === 'refused') return closedUrl();
  const r = await startOtlpReceiver({ mode: state });
  servers.push(r);
  return r.url;
}

describe('time from end() to process exit, OTLP', () => {
  it.each(['ok', 'refused', 'unauthorized', 'hang'] as const)('backend %s', async (state) => {
    const r = await run({ OTEL_EXPORTER_OTLP_ENDPOINT: await otlpUrl(state) });
    expect(r.code, r.stderr).toBe(0);
    if (state === 'hang') expect(r.endMs).toBeLessThan(BOUND + PROMPT);
    else expect(r.endMs, 'a refusal or a 401 is known at once: the flush does not wait for the bound').toBeLessThan(NOT_THE_BOUND);
    expect(r.exitAfterMs, 'nothing of ours keeps the process alive after end()').toBeLessThan(PROMPT);
    if (state !== 'ok') expect(r.stderr).toMatch(/OTLP traces export/);
  });
});

describe('time from end() to process exit, Application Insights', () => {
  it.each(['ok', 'refused', 'unauthorized', 'hang'] as const)('backend %s', async (state) => {
    let env: Record<string, string>;
    if (state === 'refused') env = { APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${FAKE_INSTRUMENTATION_KEY};IngestionEndpoint=https://127.0.0.1:${await freeClosedPort()}/` };
    else {
      const ai = await startAppInsightsReceiver({ mode: state });
      servers.push(ai);
      env = ai.childEnv();
    }
    const r = await run(env);
    expect(r.code, r.stderr).toBe(0);
    if (state === 'hang') expect(r.endMs).toBeLessThan(BOUND + PROMPT);
    else expect(r.endMs, 'the flush does not wait for the bound').toBeLessThan(NOT_THE_BOUND);
    expect(r.exitAfterMs, 'no statsbeat, sender or retry timer keeps the process (regression: about 20 s)').toBeLessThan(PROMPT);
  });
});

describe('a script that returns without end(): the flush bound holds', () => {
  it.each(['refused', 'hang', 429, 'unavailable', 'reset', 'drip'] as const)('backend %s', async (state) => {
    const url = state === 'refused' || state === 'hang' || state === 'unavailable' ? await otlpUrl(state) : await faultServer(state);
    const r = await run({ OTEL_EXPORTER_OTLP_ENDPOINT: url }, 'return');
    expect(r.code, r.stderr).toBe(0);
    expect(r.exitAfterMs).toBeLessThan(BOUND + PROMPT);
  });
});

describe('no traffic the user did not ask for', () => {
  it('with Application Insights at its default settings, connects to nothing but the ingestion endpoint (regression: statsbeat probed 169.254.169.254 and Microsoft hosts)', async () => {
    const ai = await startAppInsightsReceiver();
    servers.push(ai);
    const env = ai.childEnv();
    // the exporter's own defaults: the test sets no statsbeat variable
    delete env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED;
    delete env.APPLICATION_INSIGHTS_NO_STATSBEAT;
    const dir = await useTempDir('st-traffic-');
    const child = spawn(process.execPath, ['--import', fileURLToPath(new URL('./fixtures/otel/record-connections.mjs', import.meta.url)), STEP], {
      env: { ...baseChildEnv(), ...env, STEP_TELEMETRY_DIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((resolve) => child.on('exit', resolve));
    const seen = JSON.parse(/^CONNECTIONS (.*)$/m.exec(stderr)![1]!) as string[];
    const port = new URL(ai.url).port;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((s) => !s.includes(`127.0.0.1:${port}`)), seen.join('\n')).toEqual([]);
    expect(ai.envelopes().length).toBeGreaterThan(0);
  });
});

describe('parallel-run against a silent backend', () => {
  it('the parent does not wait again for a backend its workers found silent (regression: 2.6 s became 11.4 s)', async () => {
    const dir = await useTempDir('st-verdict-');
    fs.mkdirSync(path.join(dir, 'in'));
    makeFiles(path.join(dir, 'in'), 4);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--process-count-per-node', '2'], {
      cwd: dir,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: await otlpUrl('hang'), STEP_TELEMETRY_FLUSH_TIMEOUT_MS: String(BOUND), STEP_TELEMETRY_CONSOLE: 'false' },
    });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const worker = readJson(path.join(folder, 'step.process-1.json'));
    expect(worker.exports.find((e: { signal: string }) => e.signal === 'traces').verdict).toBe('silent');
    const parent = readJson(path.join(folder, 'step.json'));
    const traces = parent.exports.find((e: { signal: string }) => e.signal === 'traces');
    expect(traces).toMatchObject({ verdict: 'silent', lastError: expect.stringMatching(/not awaited: an earlier process of this step found the backend silent/) });
    // the workers waited the bound once (in parallel); the parent, which ends after them, did not
    // wait it again: from the last worker's end to its own is less than the bound (its step.json's
    // "ended" is written after its flush). Not the whole run's time: on a loaded machine starting
    // three processes alone can take seconds.
    const workerFiles = fs.readdirSync(folder).filter((f) => /^step\.process-\d+\.json$/.test(f));
    expect(workerFiles.length).toBeGreaterThan(0);
    const workersEnded = Math.max(...workerFiles.map((f) => Date.parse(readJson(path.join(folder, f)).ended)));
    expect(Date.parse(parent.ended) - workersEnded).toBeLessThan(BOUND);
  });
});
