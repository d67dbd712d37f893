// The mini-batch runner end to end: real `step-telemetry parallel-run` processes, real worker
// processes, real files. Failure modes that need timeouts, crashes or signals are in
// runner-faults.test.ts (run in parallel with this file).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { startAppInsightsReceiver } from './helpers/appinsights-receiver.js';
import { BEHAVE, FIXTURES, makeFiles, outputRows, readAllJsonl, readCsv, readJson, readJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';
import { BOUNDED_ATTRIBUTES } from '../src/catalog.js';

describe('parallel-run over files', () => {
  it('runs every mini-batch, writes append_row output that maps back to the inputs, and the reports', async () => {
    const dir = await useTempDir('runner-ok-');
    const files = makeFiles(path.join(dir, 'in'), 23);
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '5', '--process-count-per-node', '2', '--', '--log'],
      { cwd: dir },
    );
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[parallel-run\] succeeded: 23 of 23 items succeeded, 0 failed; 5 mini-batches/);

    const rows = outputRows(path.join(dir, 'out', 'parallel_run_step.txt'));
    expect(rows.map((x) => x.item).sort()).toEqual(files.map((f) => path.basename(f)));
    const folder = runFolder(path.join(dir, 'telemetry'));
    // every row's mini-batch holds its input, per the manifest
    const manifest = new Map(readJsonl(path.join(folder, 'mini-batches.jsonl')).map((m) => [m.mini_batch_id, m.files.map((f: string) => path.basename(f))]));
    for (const row of rows) expect(manifest.get(row.mb)).toContain(row.item);

    for (const f of ['result.json', 'error-summary.txt', 'processed-mini-batches.csv', 'worker-summary.csv', 'progress-overview.txt', 'mini-batches.jsonl', 'step.json', 'logs.jsonl', 'spans.jsonl']) {
      expect(fs.existsSync(path.join(folder, f)), f).toBe(true);
    }
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'succeeded', exit_code: 0, mini_batches: { total: 5, succeeded: 5, failed: 0, not_processed: 0 }, items: { total: 23, succeeded: 23, failed: 0 } });
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    expect(processed.map((p) => p.mini_batch_id).sort()).toEqual(['mb-00000', 'mb-00001', 'mb-00002', 'mb-00003', 'mb-00004']);
    expect(processed.every((p) => p.status === 'RUN_DONE' && p.times_picked === '1' && /^worker-[01]$/.test(p.worker!))).toBe(true);
    expect(processed.reduce((n, p) => n + Number(p.succeeded_items), 0)).toBe(23);
    expect(fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8')).toMatch(/No errors\./);
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.length).toBeGreaterThanOrEqual(1);
    expect(workers.every((w) => w.end_reason === 'stopped' && w.exit === '0')).toBe(true);
    // the runner stopped them with a message at the end: their steps ended as a success, by the runner
    // (a worker still starting when the job ended has no step of its own: no init_seconds)
    for (const w of workers.filter((x) => x.init_seconds !== '')) expect(readJson(path.join(folder, `step.process-${w.process_index}.json`))).toMatchObject({ outcome: 'success', stopped_by: 'runner' });
    expect(readJson(path.join(folder, 'step.json')).stopped_by).toBeUndefined();
    expect(fs.readFileSync(path.join(folder, 'progress-overview.txt'), 'utf8')).toMatch(/status: succeeded[\s\S]*items: 23 of 23 done/);

    // one CONSUMER span per mini-batch attempt under the step span
    const spans = readAllJsonl(folder, 'spans');
    const step = spans.find((s) => s.kind === 'SERVER' && s.name === 'parallel-run' && s.parent_span_id === undefined)!;
    expect(step).toBeDefined();
    const attempts = spans.filter((s) => s.name === 'mini-batch');
    expect(attempts).toHaveLength(5);
    for (const a of attempts) {
      expect(a).toMatchObject({ kind: 'CONSUMER', parent_span_id: step.span_id, trace_id: step.trace_id, status: { code: 'OK' } });
      expect(a.attributes).toMatchObject({ 'mini_batch.attempt': 1, 'mini_batch.outcome': 'success', 'mini_batch.items_succeeded': expect.any(Number) });
      expect(a.attributes['mini_batch.run_ms']).toBeGreaterThanOrEqual(0);
    }
    // user logs inside run() (in a worker process) carry the mini-batch id and the attempt span, and land in the run folder
    const logs = readAllJsonl(folder, 'logs');
    const userLogs = logs.filter((l) => l.message === 'processing mini-batch');
    expect(userLogs).toHaveLength(5);
    for (const l of userLogs) {
      const a = attempts.find((x) => x.attributes['mini_batch.id'] === l.mini_batch_id)!;
      expect(l).toMatchObject({ trace_id: step.trace_id, span_id: a.span_id, step_name: 'parallel-run' });
      expect(l.process_index).toBeGreaterThanOrEqual(1);
    }
    // each worker's own step span is a child of the runner's step span: one trace. It is INTERNAL,
    // so Application Insights lists one request for the step, not one per worker
    const workerSteps = spans.filter((s) => s.attributes['step.kind'] === 'step' && s.parent_span_id === step.span_id);
    expect(workerSteps.length).toBeGreaterThanOrEqual(1);
    for (const w of workerSteps) expect(w.kind).toBe('INTERNAL');
  });

  it('counts missing results as failed items and exits 0 while error_threshold holds', async () => {
    const dir = await useTempDir('runner-fewer-');
    makeFiles(path.join(dir, 'in'), 20);
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '4', '--error-threshold', '3', '--', '--drop', 'f003', '--fail-item', 'f011'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'succeeded', items: { total: 20, succeeded: 18, failed: 2 }, mini_batches: { failed: 0 }, thresholds: { error_threshold: 3 } });
    expect(outputRows(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(18);
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    expect(processed.find((p) => p.mini_batch_id === 'mb-00000')).toMatchObject({ status: 'RUN_DONE', succeeded_items: '3', failed_items: '1', error_category: 'MissingResults' });
    expect(processed.find((p) => p.mini_batch_id === 'mb-00002')).toMatchObject({ failed_items: '1', error_category: 'ItemError' });
    const summary = fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8');
    expect(summary).toMatch(/MissingResults: 1 failed item/);
    expect(summary).toMatch(/f011\.txt\tmb-00002\tItemError\tError: unusable item/);
  });

  it('aborts with exit 1 once failed items exceed error_threshold, and says why on stderr and in the files', async () => {
    const dir = await useTempDir('runner-threshold-');
    makeFiles(path.join(dir, 'in'), 30);
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '3', '--error-threshold', '2', '--run-max-try', '2', '--', '--throw', 'f004'],
      { cwd: dir },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED: ThresholdExceeded: error_threshold exceeded: 3 failed items > error_threshold 2/);
    expect(r.stderr).toMatch(/RunException × 3 items \(first: cannot score f004\.txt\)/);
    expect(r.stderr).toMatch(/mb-00001 attempt 1\/2 failed on worker-0: RunException: Error: cannot score f004\.txt; retrying/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'failed', exit_code: 1, cause: { category: 'ThresholdExceeded' }, mini_batches: { failed: 1 }, items: { failed: 3 }, retries: 1 });
    expect(result.items.not_processed).toBeGreaterThan(0);
    const summary = fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8');
    expect(summary).toMatch(/^Result: failed \(exit code 1\)$/m);
    expect(summary).toMatch(/RunException: 2 failed attempts, 3 failed items/);
    expect(summary).toMatch(/at (Object\.)?run \(file:\/\/.*behave\.mjs/); // the user's stack frame, not the runner's
    expect(summary).toMatch(/f004\.txt\tmb-00001\tRunException/);
    expect(readJson(path.join(folder, 'step.json')).outcome).toBe('failure');
  });

  it('retries a throwing run() and succeeds on the last try', async () => {
    const dir = await useTempDir('runner-retry-');
    makeFiles(path.join(dir, 'in'), 6);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '3', '--error-threshold', '0', '--', '--throw-attempts', '2'], { cwd: dir });
    expect(r.code).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', retries: 4, items: { succeeded: 6, failed: 0 } });
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    expect(processed.map((p) => [p.status, p.times_picked])).toEqual([
      ['RUN_DONE', '3'],
      ['RUN_DONE', '3'],
    ]);
    expect(processed[0]!.error_message).toMatch(/succeeded after: RunException: Error: transient failure on attempt 2/);
    const attempts = readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch');
    expect(attempts.map((a) => `${a.attributes['mini_batch.attempt']}:${a.status.code}`).sort()).toEqual(['1:ERROR', '1:ERROR', '2:ERROR', '2:ERROR', '3:OK', '3:OK']);
    expect(outputRows(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(6); // failed attempts wrote nothing
  });

  it('fails an unreadable input file as an item with its reason, and finishes an empty input cleanly', async () => {
    const dir = await useTempDir('runner-unreadable-');
    makeFiles(path.join(dir, 'in'), 4);
    fs.symlinkSync(path.join(dir, 'gone.txt'), path.join(dir, 'in', 'f001b.txt'));
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '10', '--error-threshold', '1'], { cwd: dir });
    expect(r.code).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ items: { total: 5, succeeded: 4, failed: 1 } });
    expect(fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8')).toMatch(/f001b\.txt\tmb-00000\tInputError\tENOENT: no such file or directory/);

    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const e = await runRunner(['--entry-script', BEHAVE, '--input', 'empty', '--output', 'out2'], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') } });
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/succeeded: 0 of 0 items succeeded/);
    const ef = runFolder(path.join(dir, 't2'));
    expect(readJson(path.join(ef, 'result.json'))).toMatchObject({ status: 'succeeded', mini_batches: { total: 0 }, items: { total: 0 } });
    expect(fs.readFileSync(path.join(dir, 'out2', 'parallel_run_step.txt'), 'utf8')).toBe('');
  });

  it('runs a TypeScript entry script without a build step and passes it the extra arguments', async () => {
    const dir = await useTempDir('runner-ts-');
    makeFiles(path.join(dir, 'in'), 3);
    fs.writeFileSync(path.join(dir, 'job.yaml'), `entry_script: ${path.join(FIXTURES, 'entry-ts.ts')}\ninput: in\nmini_batch_size: 2\noutput_action: append_row\nappend_row_file_name: typed.txt\n`);
    const r = await runRunner(['--config', 'job.yaml', '--output', 'out', '--step-name', 'typed', '--', 'hello'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out', 'typed.txt'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['hello:f000.txt', 'hello:f001.txt', 'hello:f002.txt']);
    expect(fs.existsSync(path.join(runFolder(path.join(dir, 'telemetry'), 'typed'), 'result.json'))).toBe(true);
  });

  it('rejects an invalid configuration before any work, naming each field and the allowed values', async () => {
    const dir = await useTempDir('runner-config-');
    makeFiles(path.join(dir, 'in'), 2);
    fs.writeFileSync(path.join(dir, 'job.yaml'), 'mini_batch_sise: 3\noutput_action: append\n');
    const r = await runRunner(['--config', 'job.yaml', '--entry-script', 'missing.mjs', '--input', 'in', '--error-threshold', '-2', '--node-count', '2', '--node-rank', '2', '--mini-batch-size', 'ten'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mini_batch_sise \(job\.yaml\): expected one of the configuration names/);
    expect(r.stderr).toMatch(/output_action \(job\.yaml: output_action\): expected one of append_row, summary_only, got "append"/);
    expect(r.stderr).toMatch(/entry_script \(--entry-script\): expected an existing file/);
    expect(r.stderr).toMatch(/error_threshold \(--error-threshold\): expected a whole number from -1 up, got "-2"/);
    expect(r.stderr).toMatch(/node_rank \(--node-rank\): expected a rank from 0 to node_count - 1 = 1, got 2/);
    expect(r.stderr).toMatch(/mini_batch_size \(--mini-batch-size\): expected a whole number of files from 1 up/);
    expect(fs.existsSync(path.join(dir, 'telemetry'))).toBe(false);

    const u = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--mini-batch', '3'], { cwd: dir });
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown flag --mini-batch; the flags are .*--mini-batch-size/);
  });
});

describe('parallel-run over tabular files', () => {
  it('splits CSV and JSON Lines by size without crossing a file, and fails malformed rows as items', async () => {
    const dir = await useTempDir('runner-tabular-');
    fs.mkdirSync(path.join(dir, 'in'));
    let csv = 'id,name,note\r\n';
    for (let i = 0; i < 60; i++) csv += `${i},"name ${i}","two\nlines, ""quoted"" ${i}"\r\n`;
    csv += '60,too,many,fields\r\n';
    fs.writeFileSync(path.join(dir, 'in', 'a.csv'), csv);
    let jsonl = '';
    for (let i = 0; i < 45; i++) jsonl += `${JSON.stringify({ id: 100 + i, pad: 'x'.repeat(40) })}\n`;
    jsonl += '{not json\n\n';
    jsonl += `${JSON.stringify({ id: 200 })}`; // no final newline
    fs.writeFileSync(path.join(dir, 'in', 'b.jsonl'), jsonl);
    fs.writeFileSync(path.join(dir, 'in', 'README.md'), 'not an input');
    fs.symlinkSync(path.join(dir, 'nowhere.csv'), path.join(dir, 'in', 'c.csv')); // unreadable: one failed item, not a crash
    const size = 600;
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--input-pattern', '*.{csv,jsonl}', '--input-type', 'tabular', '--mini-batch-size', `${size}B`, '--output', 'out', '--process-count-per-node', '2', '--error-threshold', '3'],
      { cwd: dir },
    );
    expect(r.stderr).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const manifest = readJsonl(path.join(folder, 'mini-batches.jsonl')).filter((m) => m.unreadable === undefined);
    for (const m of manifest) {
      expect(m.bytes[1] - m.bytes[0]).toBeLessThanOrEqual(size);
      expect(['csv', 'jsonl']).toContain(m.format);
    }
    // a file's mini-batches tile its rows: no gap, no overlap, no batch spanning two files
    for (const file of ['a.csv', 'b.jsonl']) {
      const own = manifest.filter((m) => path.basename(m.file) === file).sort((x, y) => x.first_row - y.first_row);
      let next = 0;
      for (const m of own) {
        expect(m.first_row).toBe(next);
        next += m.items;
      }
      expect(next).toBe(file === 'a.csv' ? 61 : 47);
      expect(own.length).toBeGreaterThan(2);
    }
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ items: { total: 109, succeeded: 106, failed: 3 }, mini_batches: { failed: 1 } });
    expect(readCsv(path.join(folder, 'processed-mini-batches.csv')).find((p) => p.status === 'INPUT_ERROR')).toMatchObject({ total_items: '1', failed_items: '1', error_category: 'InputError', times_picked: '0' });
    const rows = outputRows(path.join(dir, 'out', 'parallel_run_step.txt'));
    const ids = rows.map((x) => Number(x.id)).sort((a, b) => a - b);
    expect(ids).toEqual([...Array.from({ length: 60 }, (_, i) => i), ...Array.from({ length: 45 }, (_, i) => 100 + i), 200]);
    expect(rows.find((x) => x.id === '7')).toMatchObject({ name: 'name 7', note: 'two\nlines, "quoted" 7' });
    const summary = fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8');
    expect(summary).toMatch(/a\.csv:122\tmb-\d+\tInputError\tline 122: 4 fields, the header has 3/);
    expect(summary).toMatch(/b\.jsonl:46\tmb-\d+\tInputError\tline 46: not valid JSON/);
    expect(summary).toMatch(/c\.csv\tmb-\d+\tInputError\tENOENT: no such file or directory/);
  });
});

describe('parallel-run on several nodes', () => {
  it('gives each rank its own share, so two ranks cover the input exactly once, in separate run folders', async () => {
    const dir = await useTempDir('runner-nodes-');
    const files = makeFiles(path.join(dir, 'in'), 37);
    const common = ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '4', '--node-count', '2'];
    const env = { STEP_TELEMETRY_PIPELINE_RUN_ID: 'sharded-run' };
    const [a, b] = await Promise.all([
      runRunner([...common, '--node-rank', '0'], { cwd: dir, env }),
      runRunner(common, { cwd: dir, env: { ...env, JOB_COMPLETION_INDEX: '1' } }), // a Kubernetes Indexed Job
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const r0 = outputRows(path.join(dir, 'out', 'parallel_run_step.node-0.txt'));
    const r1 = outputRows(path.join(dir, 'out', 'parallel_run_step.node-1.txt'));
    expect(r0.length).toBeGreaterThan(0);
    expect(r1.length).toBeGreaterThan(0);
    expect([...r0, ...r1].map((x) => x.item).sort()).toEqual(files.map((f) => path.basename(f)));
    const t = path.join(dir, 'telemetry');
    const res0 = readJson(path.join(runFolder(t, 'parallel-run', 0), 'result.json'));
    const res1 = readJson(path.join(runFolder(t, 'parallel-run', 1), 'result.json'));
    expect([res0.node_rank, res1.node_rank]).toEqual([0, 1]);
    expect(res0.items.total + res1.items.total).toBe(37);
    const ids0 = readCsv(path.join(runFolder(t, 'parallel-run', 0), 'processed-mini-batches.csv')).map((p) => p.mini_batch_id);
    const ids1 = readCsv(path.join(runFolder(t, 'parallel-run', 1), 'processed-mini-batches.csv')).map((p) => p.mini_batch_id);
    expect(ids0.filter((id) => ids1.includes(id))).toEqual([]);
    expect(ids0.length + ids1.length).toBe(10);
  });
});

describe('parallel-run telemetry through OTLP', () => {
  it('sends CONSUMER spans per attempt, the catalog metrics with bounded labels, and logs with mini_batch_id', async () => {
    const dir = await useTempDir('runner-otlp-');
    makeFiles(path.join(dir, 'in'), 12);
    const receiver = await startOtlpReceiver();
    try {
      const r = await runRunner(
        ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '4', '--step-name', 'score', '--', '--log', '--throw-attempts', '1', '--drop', 'f005'],
        { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', STEP_TELEMETRY_PIPELINE_NAME: 'demo' } },
      );
      expect(r.code).toBe(0);
      const spans = receiver.spans();
      const attempts = spans.filter((s) => s.name === 'mini-batch');
      expect(attempts).toHaveLength(6); // 3 mini-batches, each failed once
      expect(attempts.every((s) => s.kind === 5)).toBe(true); // CONSUMER: a request in Application Insights
      expect(attempts.filter((s) => s.status.code === 2)).toHaveLength(3);
      expect(attempts.filter((s) => s.status.code === 1)).toHaveLength(3);
      const step = spans.find((s) => s.name === 'score' && s.parentSpanId === undefined)!;
      expect(attempts.every((s) => s.parentSpanId === step.spanId)).toBe(true);
      // exceptions thrown by run() in a worker are on the attempt span, with the worker's stack
      const failedAttempt = attempts.find((s) => s.status.code === 2)!;
      expect(failedAttempt.events.find((e) => e.name === 'exception')?.attributes).toMatchObject({ 'exception.message': 'transient failure on attempt 1', 'exception.stacktrace': expect.stringMatching(/behave\.mjs/) });

      const metrics = receiver.metrics();
      const byName = (n: string) => metrics.filter((m) => m.name === n);
      const duration = byName('step.minibatch.duration');
      expect(duration.find((m) => m.attributes.outcome === 'success')?.count).toBe(3);
      expect(duration.find((m) => m.attributes.outcome === 'error')?.count).toBe(3);
      expect(byName('step.minibatches').find((m) => m.attributes.outcome === 'success')?.value).toBe(3);
      expect(byName('step.items').find((m) => m.attributes.outcome === 'success')?.value).toBe(11);
      expect(byName('step.items').find((m) => m.attributes.outcome === 'failure')?.value).toBe(1);
      expect(byName('step.minibatch.retries')[0]?.value).toBe(3);
      expect(byName('step.items.expected')[0]?.value).toBe(12);
      for (const m of metrics.filter((x) => x.name.startsWith('step.'))) {
        for (const key of Object.keys(m.attributes)) expect(BOUNDED_ATTRIBUTES).toContain(key);
      }
      const userLogs = receiver.logs().filter((l) => l.body === 'processing mini-batch');
      expect(userLogs).toHaveLength(6);
      expect(userLogs.every((l) => /^mb-0000[0-2]$/.test(String(l.attributes.mini_batch_id)))).toBe(true);
      expect(userLogs.every((l) => attempts.some((a) => a.spanId === l.spanId && a.traceId === l.traceId))).toBe(true);
      const retryLogs = receiver.logs().filter((l) => String(l.body).includes('retrying'));
      expect(retryLogs.every((l) => typeof l.attributes.mini_batch_id === 'string')).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('files every mini-batch attempt under Application Insights requests, with success, duration and the step as parent', async () => {
    const dir = await useTempDir('runner-ai-');
    makeFiles(path.join(dir, 'in'), 40);
    const ai = await startAppInsightsReceiver();
    try {
      // short mini-batches go out in chunks; the first attempt of mb-00003 throws
      const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--step-name', 'score', '--', '--throw-first', 'f003'], {
        cwd: dir,
        env: { ...ai.childEnv(), STEP_TELEMETRY_PIPELINE_NAME: 'demo' },
      });
      expect(r.code, r.stderr).toBe(0);
      const step = ai.requests().find((e) => e.data.baseData.name === 'score');
      expect(step).toBeDefined();
      const attempts = ai.requests().filter((e) => e.data.baseData.name === 'mini-batch');
      expect(attempts).toHaveLength(41);
      const spans = readAllJsonl(runFolder(path.join(dir, 'telemetry'), 'score'), 'spans').filter((s) => s.name === 'mini-batch');
      expect(spans.some((s) => (s.attributes['mini_batch.chunk'] as number) > 1)).toBe(true);
      for (const a of attempts) {
        expect(a.tags['ai.operation.id']).toBe(step!.tags['ai.operation.id']);
        expect(a.tags['ai.operation.parentId']).toBe(step!.data.baseData.id);
        expect(a.data.baseData.duration).toMatch(/^\d\d:\d\d:\d\d\.\d+$/);
        expect(a.data.baseData.properties).toMatchObject({ 'worker.id': expect.stringMatching(/^worker-\d$/), step_name: 'score' });
        // the same span, with the same id, in spans.jsonl
        const local = spans.find((s) => s.span_id === a.data.baseData.id);
        expect(local?.attributes['mini_batch.id']).toBe((a.data.baseData.properties as Record<string, string>)['mini_batch.id']);
      }
      const failed = attempts.filter((a) => a.data.baseData.success === false);
      const properties = (a: (typeof failed)[number]) => a.data.baseData.properties as Record<string, string>;
      expect(failed.map((a) => [properties(a)['mini_batch.id'], properties(a)['mini_batch.attempt']])).toEqual([['mb-00003', '1']]);
      // its exception, with the worker's stack, under exceptions, in the attempt's operation
      const exception = ai.exceptions().find((e) => e.tags['ai.operation.parentId'] === failed[0]!.data.baseData.id);
      expect(JSON.stringify(exception?.data.baseData)).toMatch(/transient failure on attempt 1[\s\S]*behave\.mjs/);
    } finally {
      await ai.close();
    }
  });

  it('cuts the attempt span\'s strings to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, as the SDK does for live spans', async () => {
    const dir = await useTempDir('runner-limits-');
    makeFiles(path.join(dir, 'in'), 4);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--', '--throw-first', 'f002'], {
      cwd: dir,
      env: { OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '12' },
    });
    expect(r.code, r.stderr).toBe(0);
    const spans = readAllJsonl(runFolder(path.join(dir, 'telemetry')), 'spans');
    const failed = spans.find((s) => s.name === 'mini-batch' && s.status.code === 'ERROR')!;
    expect(failed.attributes['mini_batch.id']).toBe('mb-00002');
    const exception = failed.events!.find((e: { name: string }) => e.name === 'exception')!;
    expect(exception.attributes).toEqual({ 'exception.type': 'Error', 'exception.message': 'transient fa', 'exception.stacktrace': 'Error: trans' });
    // the step span (a live SDK span) is held to the same limit
    const step = spans.find((s) => s.name === 'parallel-run')!;
    expect(String(step.attributes['parallel_run.entry_script']).length).toBe(12);
  });
});
