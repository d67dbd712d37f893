// The demo pipeline (`npm start`) end to end: prepare → train → score as three processes of one
// pipeline run, into temporary folders. Needs `npm run build` (the test script's pretest does it).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { ROOT, readAllJsonl, readCsv, readJson, readJsonl } from './fixtures/runner/harness.js';

describe('the demo pipeline', () => {
  it('runs prepare, train and score in well under a minute and leaves the expected run folders', async () => {
    const dir = await useTempDir('demo-pipeline-');
    const telemetry = path.join(dir, 'telemetry');
    const out = path.join(dir, 'demo-output');
    const r = await runStepScript({
      script: path.join(ROOT, 'examples', 'demo-pipeline.mjs'),
      cwd: dir,
      env: { STEP_TELEMETRY_DIR: telemetry, DEMO_OUTPUT_DIR: out, STEP_TELEMETRY_PIPELINE_RUN_ID: 'demo-test-run' },
      timeoutMs: 60_000,
    });
    expect(r.stderr.split('\n').filter((l) => /FAILED|Error:/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.durationMs).toBeLessThan(45_000);

    // where the telemetry is, and how to send it elsewhere
    expect(r.stdout).toMatch(/pipeline run demo-test-run done in [\d.]+ s/);
    expect(r.stdout).toContain(path.join('telemetry', 'demo-test-run', 'score'));
    expect(r.stdout).toContain('OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318');
    expect(r.stdout).toContain('APPLICATIONINSIGHTS_CONNECTION_STRING=');

    const run = path.join(telemetry, 'demo-test-run');
    expect(fs.readdirSync(run).sort()).toEqual(['prepare', 'score', 'train']);
    for (const step of ['prepare', 'train', 'score']) {
      for (const f of ['step.json', 'driver.log', 'logs.jsonl', 'spans.jsonl', 'metrics.jsonl']) expect(fs.existsSync(path.join(run, step, f)), `${step}/${f}`).toBe(true);
      const stepJson = readJson(path.join(run, step, 'step.json'));
      expect(stepJson.outcome).toBe('success');
      expect(stepJson.identity).toMatchObject({ pipelineRunId: 'demo-test-run', pipelineName: 'mnist-demo', stepName: step });
    }
    // one trace for the whole pipeline run
    const traceIds = new Set(['prepare', 'train', 'score'].map((s) => readJson(path.join(run, s, 'step.json')).trace_id));
    expect(traceIds.size).toBe(1);

    // train logged loss and accuracy per epoch
    const metrics = readJsonl(path.join(run, 'train', 'metrics.jsonl'));
    const loss = metrics.filter((m) => m.name === 'loss');
    expect(loss.length).toBeGreaterThanOrEqual(2);
    expect(loss.map((m) => m.step)).toEqual(loss.map((_, i) => i + 1));
    expect(metrics.filter((m) => m.name === 'accuracy')).toHaveLength(loss.length);

    // score: the runner's reports, failures within error_threshold, append_row output
    const score = path.join(run, 'score');
    for (const f of ['result.json', 'error-summary.txt', 'processed-mini-batches.csv', 'worker-summary.csv', 'progress-overview.txt', 'mini-batches.jsonl']) {
      expect(fs.existsSync(path.join(score, f)), `score/${f}`).toBe(true);
    }
    // the workers' own files (on a loaded machine the job may end before the second worker is ready)
    expect(fs.readdirSync(score).filter((f) => /^logs\.process-\d+\.jsonl$/.test(f)).length).toBeGreaterThan(0);
    const result = readJson(path.join(score, 'result.json'));
    expect(result.status).toBe('succeeded');
    expect(result.items.failed).toBeGreaterThan(0);
    expect(result.items.failed).toBeLessThanOrEqual(result.thresholds.error_threshold);
    expect(result.items.succeeded + result.items.failed).toBe(result.items.total);
    const rows = fs.readFileSync(result.output_file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(rows).toHaveLength(result.items.succeeded);
    expect(rows[0]).toEqual({ file: expect.stringMatching(/^digit-\d+-label-\d\.pgm$/), predicted: expect.any(Number), probability: expect.any(Number), label: expect.any(Number), correct: expect.any(Boolean) });
    expect(rows.filter((x) => x.correct).length / rows.length).toBeGreaterThan(0.7);
    // every corrupt file the prepare step wrote is a failed item with its reason
    const manifest = readJson(path.join(out, 'data', 'manifest.json'));
    const summary = fs.readFileSync(path.join(score, 'error-summary.txt'), 'utf8');
    for (const c of manifest.corrupt) expect(summary).toContain(c.file);
    expect(readCsv(path.join(score, 'processed-mini-batches.csv')).every((p) => p.status === 'RUN_DONE')).toBe(true);
    const workerLogs = readAllJsonl(score, 'logs').filter((l) => l.message === 'skipped a corrupt image');
    expect(workerLogs).toHaveLength(manifest.corrupt.length);
    expect(workerLogs.every((l) => /^mb-\d+$/.test(l.mini_batch_id) && l.step_name === 'score' && l.pipeline_run_id === 'demo-test-run')).toBe(true);
    expect(readAllJsonl(score, 'spans').filter((s) => s.name === 'mini-batch' && s.kind === 'CONSUMER')).toHaveLength(result.mini_batches.total);

    // the report and the doctor read the pipeline run, steps in the order they ran
    const { readRunFolder } = await import('../src/run-folder/read.js');
    expect(readRunFolder(run).steps.map((s) => s.name)).toEqual(['prepare', 'train', 'score']);
  });
});
