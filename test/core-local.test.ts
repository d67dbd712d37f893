// The embedded default: a real step script, no server, everything in the run folder.
import { assertIsolatedNetwork } from './helpers/netns.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { allText, findRunFolder, marker, readRunFolder } from './helpers/run-folder.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/steps/${name}`, import.meta.url));
const FULL = fixture('full-step.mjs');

const IDENTITY = {
  STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-2026-11-28-001',
  STEP_TELEMETRY_PIPELINE_NAME: 'mnist',
  STEP_TELEMETRY_RUN_ID: 'score-run-17',
  STEP_TELEMETRY_NODE_RANK: '1',
  STEP_TELEMETRY_NODE_COUNT: '2',
  STEP_TELEMETRY_CONSOLE: 'false',
};

describe('local run folder', () => {
  it('holds the run.log family, step-scoped logs and spans, with identity and correlation ids', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: FULL, env: { ...IDENTITY, STEP_TELEMETRY_DIR: dir } });
    expect(r.stderr).not.toMatch(/TypeError|ReferenceError/);
    expect(r.code).toBe(0);
    const ids = marker(r.stdout, 'IDS');
    expect(ids.sameStep).toBe(true);
    // <dir>/<pipeline_run_id>/<step_name>/node-<rank> when several nodes run the step
    expect(ids.runFolder).toBe(path.join(dir, 'pr-2026-11-28-001', 'score', 'node-1'));
    const run = readRunFolder(ids.runFolder);

    const dims = {
      step_id: 'score',
      step_name: 'score',
      run_id: 'score-run-17',
      pipeline_run_id: 'pr-2026-11-28-001',
      pipeline_name: 'mnist',
      node_rank: 1,
      node_count: 2,
      process_index: 0,
    };
    // metrics.jsonl: name, value, step index, time, kind (the identity is in step.json)
    const byName = (n: string) => run.metrics.filter((m) => m.name === n);
    expect(byName('accuracy')).toEqual([{ time: expect.any(String), kind: 'scalar', name: 'accuracy', value: 0.95 }]);
    expect(byName('loss')[0]).toMatchObject({ kind: 'scalar', value: 0.31, step: 7 });
    expect(Date.parse(byName('loss')[0].time)).toBeGreaterThan(Date.now() - 60_000);
    expect(byName('loss_curve')[0]).toMatchObject({ kind: 'list', value: [0.9, 0.5, 0.31] });
    expect(byName('per_class')[0]).toMatchObject({ kind: 'row', value: { digit: 3, precision: 0.97 } });
    expect(byName('confusion')[0]).toMatchObject({ kind: 'table', value: { actual: [1, 2], predicted: [1, 3] } });
    expect(run.metrics.find((m) => m.kind === 'tags')?.value).toEqual({ model: 'mnist-v2' });
    // the import-time handle recorded before and after the start
    expect(byName('early_metric').map((m) => m.value)).toEqual([42, 43]);

    // logs.jsonl: the identity on the first record only; the span id of the active span, unless it
    // is the step span (step.json has its ids), the mini-batch id
    expect(run.logs[0]).toMatchObject({ ...dims, host: expect.any(String), pid: expect.any(Number) });
    for (const record of run.logs.slice(1)) for (const k of [...Object.keys(dims), 'host', 'pid', 'trace_id']) expect(record).not.toHaveProperty(k);
    expect(run.step).toMatchObject({ trace_id: ids.traceId, span_id: ids.stepSpanId });
    const log = (msg: string) => run.logs.find((l) => l.message === msg);
    expect(log('model loaded')).toMatchObject({ level: 'info', model_path: '/models/m.json' });
    expect(log('model loaded')).not.toHaveProperty('span_id');
    expect(log('inside span')?.span_id).toBe(ids.innerSpanId);
    expect(log('slow mini-batch')).toMatchObject({ level: 'warn', mini_batch_id: 'mb-0007', seconds: 3.5 });
    expect(log('logged before startStep')).toBeDefined();
    expect(log('logged through the import-time logger')).toBeDefined();
    const err = log('could not score file');
    expect(err?.error).toMatchObject({ name: 'RangeError', message: 'pixel out of range' });
    expect(err?.error.stack).toContain('full-step.mjs');

    // spans.jsonl: the step span (SERVER), user spans under it, the error recorded with its stack
    const root = run.spans.find((s) => s.span_id === ids.stepSpanId);
    expect(root).toMatchObject({ name: 'score', kind: 'SERVER', status: { code: 'OK' } });
    // in the step's trace: its id is in step.json, not on every line
    for (const span of run.spans) expect(span).not.toHaveProperty('trace_id');
    expect(root?.attributes).toMatchObject({ 'step.outcome': 'success', 'step.tag.model': 'mnist-v2' });
    expect(root?.events.map((e: any) => e.name)).toEqual(['metric.list', 'metric.row', 'metric.table']);
    const failing = run.spans.find((s) => s.name === 'failing-block');
    expect(failing).toMatchObject({ parent_span_id: ids.stepSpanId, status: { code: 'ERROR', message: 'TypeError: bad pixel' } });
    expect(failing?.events[0].attributes['exception.stacktrace']).toContain('full-step.mjs');
    expect(run.spans.find((s) => s.name === 'load-model')?.parent_span_id).toBe(ids.stepSpanId);

    // the driver log is for people: the info records of a mini-batch are only in logs.jsonl (and the report)
    expect(run.driver).toMatch(/WARN  \[mb-0007\] slow mini-batch \{"seconds":3.5\}/);
    expect(log('scoring mini-batch')).toMatchObject({ mini_batch_id: 'mb-0007', items: 2 });
    expect(run.driver).not.toContain('scoring mini-batch');
    expect(run.driver).toMatch(/INFO  model loaded \{"model_path":"\/models\/m.json"\}/);
    expect(run.driver).toContain('step score ended: success');

    // step.json: identity, runtime, outcome
    expect(run.step).toMatchObject({ outcome: 'success', flushed: true, identity: { stepName: 'score', nodeRank: 1 }, tags: { model: 'mnist-v2' } });
    expect(run.step.runtime.node).toBe(process.versions.node);
    expect(run.step.runtime.dependencies).toHaveProperty('winston');
    const result = marker(r.stdout, 'RESULT');
    expect(result).toMatchObject({ outcome: 'success', flushed: true, exports: [] });
  });

  it('puts every step of one pipeline run in one trace, derived from the pipeline run id', async () => {
    const dir = await useTempDir();
    const env = { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_PIPELINE_RUN_ID: 'shared-run', STEP_TELEMETRY_CONSOLE: 'false' };
    const a = await runStepScript({ script: FULL, env: { ...env, FIXTURE_STEP_NAME: 'prepare' } });
    const b = await runStepScript({ script: FULL, env: { ...env, FIXTURE_STEP_NAME: 'train' } });
    const c = await runStepScript({ script: FULL, env: { ...env, STEP_TELEMETRY_PIPELINE_RUN_ID: 'other-run' } });
    const [ia, ib, ic] = [a, b, c].map((r) => marker(r.stdout, 'IDS'));
    expect(ia.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ib.traceId).toBe(ia.traceId);
    expect(ic.traceId).not.toBe(ia.traceId);
    expect(ia.stepSpanId).not.toBe(ib.stepSpanId);
  });

  it('joins the trace given in TRACEPARENT, as a child of the given span', async () => {
    const dir = await useTempDir();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await runStepScript({
      script: FULL,
      env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false', TRACEPARENT: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    const ids = marker(r.stdout, 'IDS');
    expect(ids.traceId).toBe(traceId);
    const root = readRunFolder(ids.runFolder).spans.find((s) => s.span_id === ids.stepSpanId);
    expect(root?.parent_span_id).toBe('00f067aa0ba902b7');
  });

  it('takes identity from Azure ML and OpenTelemetry variables when its own are not set', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({
      script: FULL,
      env: {
        STEP_TELEMETRY_DIR: dir,
        STEP_TELEMETRY_CONSOLE: 'false',
        AZUREML_RUN_ID: 'azureml-step-run',
        AZUREML_ROOT_RUN_ID: 'azureml-pipeline-run',
        OTEL_SERVICE_NAME: 'scoring-service',
        OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=fraud%20models,deployment.environment=prod',
        JOB_COMPLETION_INDEX: '0',
      },
    });
    expect(r.code).toBe(0);
    const run = readRunFolder(findRunFolder(dir));
    expect(run.folder).toBe(path.join(dir, 'azureml-pipeline-run', 'score'));
    expect(run.step.identity).toMatchObject({ runId: 'azureml-step-run', pipelineRunId: 'azureml-pipeline-run', pipelineName: 'fraud models' });
    expect(run.step.resource).toMatchObject({ 'service.name': 'scoring-service', 'deployment.environment': 'prod' });
    expect(run.step.resource).not.toHaveProperty('process.command_args');
  });

  it('drops each kind of bad input with one diagnostic, and keeps going', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: fixture('bad-input.mjs'), env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('[step-telemetry]'));
    const expectOnce = (re: RegExp) => expect(lines.filter((l) => re.test(l)), `${re} in\n${lines.join('\n')}`).toHaveLength(1);
    expectOnce(/log\("nan"\) dropped: the value must be a finite number \(got NaN\)/);
    expectOnce(/log\(\) dropped a value: the metric name must be a non-empty string/);
    expectOnce(/step index of "good_with_bad_step" must be a whole number >= 0 \(got -1\)/);
    expectOnce(/logList\("list"\) dropped/);
    expectOnce(/logRow\("row"\) dropped/);
    expectOnce(/logTable\("table"\) dropped: all columns must have the same length/);
    expectOnce(/setTags\(\) dropped/);
    // 3 rounds of 12 bad calls, yet one line per kind
    expect(lines.length).toBeLessThanOrEqual(8);
    const run = readRunFolder(findRunFolder(dir));
    expect(run.metrics.map((m) => m.name).sort()).toEqual(['good', 'good_with_bad_step', 'good_with_bad_step', 'good_with_bad_step']);
    expect(run.metrics.find((m) => m.name === 'good_with_bad_step')).not.toHaveProperty('step');
    const cyclic = run.logs.filter((l) => l.message === 'cyclic meta');
    expect(cyclic).toHaveLength(3);
    expect(cyclic[0].cyclic.self).toBe('[Circular]');
    // diagnostics are in the driver log and in step.json, with their repeat counts
    expect(run.driver).toContain('log("nan") dropped');
    expect(run.step.diagnostics).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'input.log.value', count: 9 })]));
  });

  it('reports a configuration error at start, naming the variable, and goes on; strict mode refuses to start', async () => {
    const dir = await useTempDir();
    const env = { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318', STEP_TELEMETRY_FLUSH_TIMEOUT_MS: 'soon' };
    const r = await runStepScript({ script: FULL, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('configuration: OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL');
    expect(r.stderr).toContain('configuration: STEP_TELEMETRY_FLUSH_TIMEOUT_MS: expected a whole number from 0 to 600000');
    expect(marker(r.stdout, 'RESULT').outcome).toBe('success');

    const strict = await runStepScript({ script: FULL, env: { ...env, STEP_TELEMETRY_STRICT: 'true' } });
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toMatch(/ConfigError: step-telemetry configuration: .*OTEL_EXPORTER_OTLP_ENDPOINT: expected an http/);
    expect(strict.stderr).toMatch(/ConfigError: step-telemetry configuration: .*STEP_TELEMETRY_FLUSH_TIMEOUT_MS: expected/);
  });

  it('reports an unwritable telemetry folder once, and the step still runs', async () => {
    const dir = await useTempDir();
    const file = path.join(dir, 'not-a-folder');
    await import('node:fs').then((fs) => fs.writeFileSync(file, 'x'));
    const r = await runStepScript({ script: FULL, env: { STEP_TELEMETRY_DIR: file, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    expect(r.stderr.match(/STEP_TELEMETRY_DIR: expected a writable folder/g)).toHaveLength(1);
    expect(marker(r.stdout, 'RESULT').outcome).toBe('success');
  });

  it('never writes a connection string or an OTLP header value to any file', async () => {
    assertIsolatedNetwork();
    const dir = await useTempDir();
    const secretKey = '0f0e0d0c-1111-4222-8333-444455556666';
    const r = await runStepScript({
      script: FULL,
      env: {
        STEP_TELEMETRY_DIR: dir,
        STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '500',
        APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${secretKey};IngestionEndpoint=https://127.0.0.1:9/`,
        APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
        APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://user:pass-secret@127.0.0.1:9/?token=query-secret',
        OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20header-secret',
      },
    });
    expect(r.code).toBe(0);
    const everything = allText(dir) + r.stdout + r.stderr;
    for (const secret of [secretKey, 'pass-secret', 'query-secret', 'header-secret']) expect(everything).not.toContain(secret);
    // the failures are still reported, with the target redacted
    expect(r.stderr).toMatch(/OTLP traces export to http:\/\/127\.0\.0\.1:9\/v1\/traces/);
  });
});
