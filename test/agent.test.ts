// The zero-code agent on an unmodified script: `node --import step-telemetry/register script.mjs`
// (and NODE_OPTIONS): its console lines become the step's log records (and still print once), its
// HTTP calls CLIENT spans that send traceparent, its crash and exit code the step's outcome.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { findRunFolder, readRunFolder } from './helpers/run-folder.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/agent/plain-script.mjs', import.meta.url));
const servers: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function target(): Promise<{ url: string; traceparents: string[] }> {
  const traceparents: string[] = [];
  const server = http.createServer((req, res) => {
    traceparents.push(String(req.headers.traceparent ?? ''));
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/model`, traceparents };
}

async function runAgent(env: Record<string, string>, viaNodeOptions = false) {
  const dir = await useTempDir('st-agent-');
  const t = await target();
  const r = await runStepScript({
    script: SCRIPT,
    nodeArgs: viaNodeOptions ? [] : ['--import', 'step-telemetry/register'],
    env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-agent', TARGET_URL: t.url, ...(viaNodeOptions ? { NODE_OPTIONS: '--import step-telemetry/register' } : {}), ...env },
  });
  return { ...r, traceparents: t.traceparents, folder: () => readRunFolder(findRunFolder(dir)) };
}

describe('node --import step-telemetry/register on an unmodified script', () => {
  it('records console lines (still printed once), HTTP and fetch calls as CLIENT spans that send traceparent, and the outcome', async () => {
    const otlp = await startOtlpReceiver();
    servers.push(otlp);
    const r = await runAgent({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/hello from the script 42/g)).toHaveLength(1);
    expect(r.stderr).toContain('careful: disk almost full');
    const f = r.folder();
    expect(f.step).toMatchObject({ outcome: 'success', identity: { stepName: 'plain-script', pipelineRunId: 'pr-agent' } });
    const stepSpan = f.spans.find((s) => s.attributes['step.kind'] === 'step')!;
    const hello = f.logs.find((l) => l.message === 'hello from the script 42')!;
    // the identity on the first record; the trace (the step span's) in step.json
    expect(f.logs[0]).toMatchObject({ step_name: 'plain-script', pipeline_run_id: 'pr-agent' });
    expect(hello).toMatchObject({ level: 'info', source: 'console.log' });
    expect(stepSpan).not.toHaveProperty('trace_id');
    const traceId = f.step.trace_id;
    expect(f.logs.find((l) => l.message === 'careful: disk almost full')).toMatchObject({ level: 'warn' });
    expect(f.logs.find((l) => l.message === 'done, with a warning on stderr')).toMatchObject({ level: 'error' });
    const clients = f.spans.filter((s) => s.kind === 'CLIENT');
    expect(clients.map((s) => s.scope).sort()).toEqual(['@opentelemetry/instrumentation-http', '@opentelemetry/instrumentation-undici']);
    for (const c of clients) expect(c.parent_span_id).toBe(stepSpan.span_id);
    expect(r.traceparents).toHaveLength(2);
    for (const tp of r.traceparents) expect(tp).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(clients.map((c) => c.span_id).sort()).toEqual(r.traceparents.map((tp) => tp.split('-')[2]).sort());
    // the same telemetry reached the backend, log records with their trace context
    await otlp.waitFor((o) => o.spans().some((s) => s.kind === 3));
    expect(otlp.logs().find((l) => l.body === 'hello from the script 42')?.traceId).toBe(traceId);
  });

  it('a crash: printed as Node prints it, the step crashed, exit code 1', async () => {
    const r = await runAgent({ CRASH: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error: the model file is corrupt\n\s+at /);
    const f = r.folder();
    expect(f.step.outcome).toBe('crashed');
    const stepSpan = f.spans.find((s) => s.attributes['step.kind'] === 'step')!;
    expect(stepSpan.events.find((e: { name: string }) => e.name === 'exception').attributes['exception.message']).toBe('the model file is corrupt');
  });

  it('NODE_OPTIONS form; process.exit(3) flushes like end() and keeps the code', async () => {
    const otlp = await startOtlpReceiver();
    servers.push(otlp);
    const r = await runAgent({ EXIT_CODE: '3', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url }, true);
    expect(r.code).toBe(3);
    expect(r.folder().step).toMatchObject({ outcome: 'failure', flushed: true });
    expect(otlp.spans().some((s) => s.name === 'plain-script')).toBe(true);
  });
});
