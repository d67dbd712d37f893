// Coexistence with the user's own OpenTelemetry: the packed tarball installed (no flag, from the npm
// cache) into a project that already depends on the newest OpenTelemetry 2.x, one copy of the API,
// and the user's counter, tracer and instrumentation in the step's telemetry.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installScenario, versionsOf } from './helpers/install-scenario.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { findRunFolder, marker, readJsonl } from './helpers/run-folder.js';
import { runStepScript } from './helpers/run-step.js';

const USER_SCRIPT = `
import http from 'node:http';
import { createRequire } from 'node:module';
import { metrics, trace } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });
const { startStep } = await import('step-telemetry');
const step = await startStep({ name: 'coexist', console: false, prometheusPort: 0 });
const counter = metrics.getMeter('user-app').createCounter('user.requests', { description: 'the user own counter' });
counter.add(3, { route: '/work' });
await trace.getTracer('user-app').startActiveSpan('user-work', async (span) => {
  const instrumented = createRequire(import.meta.url)('node:http');
  await new Promise((resolve, reject) => instrumented.get(process.env.TARGET_URL, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject));
  span.end();
});
const scraped = await (await fetch(step.metricsEndpoint)).text();
console.log('SCRAPE ' + JSON.stringify(scraped));
await step.end();
`;

describe('coexistence with the newest OpenTelemetry 2.x', () => {
  it('installs with no flag, dedupes the API and the SDK, and the user telemetry joins the step', async () => {
    const project = await installScenario('otel-2x-latest');
    const tree = await project.ls();
    expect([...versionsOf(tree, '@opentelemetry/api')]).toEqual(['1.9.1']);
    // step-telemetry resolves every OpenTelemetry package to the user's copy (upstream pins siblings
    // exactly, so the Application Insights exporter keeps 0.218 logs packages nested under it)
    for (const name of ['@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-metrics']) expect(versionsOf(tree, name), name).toEqual(new Set(['2.12.0']));
    const ours = path.join(project.dir, 'node_modules', 'step-telemetry');
    const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(ours, 'package.json'), 'utf8')).dependencies as Record<string, string>);
    const nested = deps.filter((d) => d.startsWith('@opentelemetry/') && fs.existsSync(path.join(ours, 'node_modules', d)));
    expect(nested).toEqual([]);

    const target = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const receiver = await startOtlpReceiver();
    try {
      const script = path.join(project.dir, 'user.mjs');
      fs.writeFileSync(script, USER_SCRIPT);
      const dir = path.join(project.dir, 'telemetry');
      const r = await runStepScript({
        script,
        cwd: project.dir,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, STEP_TELEMETRY_DIR: dir, TARGET_URL: `http://127.0.0.1:${(target.address() as AddressInfo).port}/` },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');

      const spans = receiver.spans();
      const stepSpan = spans.find((s) => s.name === 'coexist')!;
      const userSpan = spans.find((s) => s.name === 'user-work')!;
      const client = spans.find((s) => s.kind === 3 && s.scope.name.includes('instrumentation-http'))!;
      expect(stepSpan && userSpan && client, spans.map((s) => s.name).join(', ')).toBeTruthy();
      expect(userSpan.traceId).toBe(stepSpan.traceId);
      expect(userSpan.parentSpanId).toBe(stepSpan.spanId);
      expect(client.parentSpanId).toBe(userSpan.spanId);
      const counter = receiver.metrics().find((m) => m.name === 'user.requests');
      expect(counter?.value).toBe(3);

      // the run folder and /metrics have them too
      const folder = findRunFolder(dir, 'coexist');
      const local = readJsonl(path.join(folder, 'spans.jsonl'));
      expect(local.map((s) => s.name)).toEqual(expect.arrayContaining(['coexist', 'user-work', client.name]));
      // in the step's trace, whose id is in step.json (not on each line)
      expect(local.find((s) => s.name === 'user-work')).not.toHaveProperty('trace_id');
      expect(JSON.parse(fs.readFileSync(path.join(folder, 'step.json'), 'utf8')).trace_id).toBe(stepSpan.traceId);
      const metrics = readJsonl(path.join(folder, 'metrics.jsonl'));
      expect(metrics.find((m) => m.name === 'user.requests')).toMatchObject({ kind: 'otel', value: 3, attributes: { route: '/work' } });
      expect(marker<string>(r.stdout, 'SCRAPE')).toMatch(/^user_requests_total\{[^}]*route="\/work"[^}]*\} 3$/m);
    } finally {
      await receiver.close();
      await new Promise((resolve) => target.close(resolve));
    }
  });
});
