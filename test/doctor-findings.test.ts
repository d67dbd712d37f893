// `step-telemetry doctor` over run folders made by real runs: the runner (parallel-run) and plain
// step scripts as child processes, with an injected slow-down, a dominant failure, a tight timeout,
// a dependency mismatch, a refused credential, an empty output, a re-run and a killed step. A clean
// run produces no finding and exit code 0.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { useTempDir } from './helpers/run-step.js';
import { cli, doctorJson, makeInputs, makeProject, parallelRun, plainStep, writeLock } from './fixtures/report/runs.js';

const ids = (json: { findings: { id: string }[] }) => json.findings.map((f) => f.id);

describe('doctor on runner runs', () => {
  it('a clean run: no findings, exit 0, and the text says so', async () => {
    const dir = await useTempDir();
    const input = makeInputs(path.join(dir, 'in'), 80, (i) => `img-${String(i).padStart(3, '0')}.txt`);
    const { folder, result } = await parallelRun({ dir: path.join(dir, 'tel'), pipelineRunId: 'clean', stepName: 'score', input, flags: ['--mini-batch-size', '2', '--process-count-per-node', '2'], entryArgs: ['--sleep', '5', '--log'] });
    expect(result.code).toBe(0);
    const { json, code } = await doctorJson(path.dirname(folder));
    expect(json.findings).toEqual([]);
    expect(code).toBe(0);
    expect(json.steps).toEqual([{ label: 'score', outcome: 'success', attempts: 40, miniBatches: 40 }]);
    const text = await cli(['doctor', folder]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('No findings.');
  });

  it('an injected gradual slow-down: latency-trend with the slope and the mini-batches it rests on', async () => {
    const dir = await useTempDir();
    const input = makeInputs(path.join(dir, 'in'), 80, (i) => `img-${String(i).padStart(3, '0')}.txt`);
    // one worker whose run() gets 1.5 ms slower on every call: state that accumulates
    const { folder } = await parallelRun({ dir: path.join(dir, 'tel'), pipelineRunId: 'slow', stepName: 'score', input, flags: ['--mini-batch-size', '1'], entryArgs: ['--leak', '1.5'] });
    const { json, code } = await doctorJson(folder);
    const trend = json.findings.find((f) => f.id === 'latency-trend');
    expect(trend, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(trend!.step).toBe('score');
    expect(trend!.data.attempts).toBe(80);
    expect(trend!.data.slopeMsPerMiniBatch).toBeGreaterThan(1);
    expect(trend!.data.slopeMsPerMiniBatch).toBeLessThan(3);
    expect(trend!.data.first.from).toBe('mb-00000');
    expect(trend!.data.last.to).toBe('mb-00079');
    expect(trend!.data.ratio).toBeGreaterThan(2);
    expect(trend!.data.pValue).toBeLessThan(0.01);
    expect(trend!.evidence.join('\n')).toMatch(/Theil-Sen slope \+\d.*per mini-batch/);
    // 3× slower or more is an error (the usual case here: ~10×), less a warning
    expect(trend!.severity).toBe(trend!.data.ratio >= 3 ? 'error' : 'warning');
    expect(code).toBe(trend!.severity === 'error' ? 1 : 0);
    // nothing else is wrong with this run (its injected slow-down is a sleep: io-bound, info, may say so)
    expect(ids(json).filter((id) => id !== 'io-bound')).toEqual(['latency-trend']);
  });

  it('a dominant failure: the one cause, its share, the mini-batches and the frame in the entry script', async () => {
    const dir = await useTempDir();
    const input = makeInputs(path.join(dir, 'in'), 24, (i) => (i % 3 === 0 ? `bad-${i}.txt` : `img-${String(i).padStart(3, '0')}.txt`));
    const { folder, result } = await parallelRun({
      dir: path.join(dir, 'tel'),
      pipelineRunId: 'dominant',
      stepName: 'score',
      input,
      flags: ['--mini-batch-size', '2', '--process-count-per-node', '2', '--run-max-try', '2'],
      entryArgs: ['--throw-on', 'bad-'],
    });
    expect(result.code).toBe(0); // error_threshold -1: the job itself succeeds
    const { json, code } = await doctorJson(folder);
    const f = json.findings.find((x) => x.id === 'dominant-failure');
    expect(f, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(f!.severity).toBe('error');
    expect(f!.data.category).toBe('RunException');
    expect(f!.data.type).toBe('TypeError');
    expect(f!.data.share).toBe(1);
    expect(f!.data.finalFailures).toBe(f!.data.miniBatches);
    expect(f!.data.attempts).toBe(2 * f!.data.miniBatches);
    expect(f!.data.frame).toMatch(/entry\.mjs:\d+:\d+/);
    expect(f!.title).toMatch(/Cannot read properties of undefined/);
    expect(code).toBe(1);
    expect(ids(json)).not.toContain('flaky-retries');
  });

  it('a tight run_invocation_timeout: timeout-tight with the observed p99 and the timeouts', async () => {
    const dir = await useTempDir();
    // mini-batches take 400..600 ms against a 0.8 s timeout; two of them take 1.3 s on their first try
    const input = makeInputs(path.join(dir, 'in'), 12, (i) => (i === 3 || i === 8 ? `slow-${i}.txt` : `img-${i}.txt`), (i) => String(400 + (i % 5) * 50));
    const { folder, result } = await parallelRun({
      dir: path.join(dir, 'tel'),
      pipelineRunId: 'tight',
      stepName: 'score',
      input,
      flags: ['--mini-batch-size', '1', '--process-count-per-node', '2', '--run-invocation-timeout', '0.8', '--run-max-try', '3'],
      entryArgs: ['--from-input', '--slow-first', '1300'],
    });
    expect(result.code).toBe(0);
    const { json, code } = await doctorJson(folder);
    const f = json.findings.find((x) => x.id === 'timeout-tight');
    expect(f, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(f!.data.runInvocationTimeoutSeconds).toBe(0.8);
    expect(f!.data.source).toMatch(/^the step span \(parallel_run.run_invocation_timeout\)$|^the message of a timed-out attempt$/);
    expect(f!.data.timeouts).toBeGreaterThanOrEqual(2);
    expect(f!.data.ratio).toBeGreaterThan(0.9);
    expect(f!.data.successP99Ms).toBeGreaterThan(590);
    expect(f!.severity).toBe('error');
    expect(f!.evidence.join('\n')).toMatch(/p99 .* of the timeout/);
    expect(f!.fix).toMatch(/Raise run_invocation_timeout to about \d+ s/);
    expect(code).toBe(1);
    // the doctor can be told the timeout when the folder does not say it
    const told = await doctorJson(folder, ['--run-invocation-timeout', '10']);
    expect(told.json.findings.find((x) => x.id === 'timeout-tight')).toBeUndefined();
  });

  it('retries that mostly succeed: flaky-retries, with what failed first', async () => {
    const dir = await useTempDir();
    const input = makeInputs(path.join(dir, 'in'), 20, (i) => (i % 4 === 0 ? `flaky-${i}.txt` : `img-${i}.txt`));
    const { folder } = await parallelRun({ dir: path.join(dir, 'tel'), pipelineRunId: 'flaky', stepName: 'score', input, flags: ['--mini-batch-size', '1'], entryArgs: ['--flaky-on', 'flaky-'] });
    const { json, code } = await doctorJson(folder);
    const f = json.findings.find((x) => x.id === 'flaky-retries');
    expect(f, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(f!.data).toMatchObject({ retried: 5, recovered: 5, firstFailure: { RunException: 5 } });
    expect(f!.severity).toBe('warning');
    expect(ids(json)).not.toContain('dominant-failure'); // they all recovered
    expect(code).toBe(0); // warnings do not fail the gate by default ...
    const strict = await cli(['doctor', folder, '--fail-on', 'warning']);
    expect(strict.code).toBe(1); // ... unless asked
  });
});

describe('doctor on plain steps', () => {
  it('a dependency mismatch with a lock file and with a second run folder ("works locally, fails remotely")', async () => {
    const dir = await useTempDir();
    const remote = makeProject(path.join(dir, 'remote'), { 'fake-dep': '2.1.0', 'left-pad': '1.3.0' });
    const local = makeProject(path.join(dir, 'local'), { 'fake-dep': '1.4.0', 'left-pad': '1.3.1' });
    const a = await plainStep(path.join(dir, 'tel-remote'), 'remote-run', {}, remote);
    const b = await plainStep(path.join(dir, 'tel-local'), 'local-run', {}, local);
    expect(a.result.code, a.result.stderr).toBe(0);
    expect(b.result.code, b.result.stderr).toBe(0);
    const step = JSON.parse(fs.readFileSync(path.join(a.folder, 'step.json'), 'utf8'));
    expect(step.runtime.dependencies).toEqual({ 'fake-dep': '2.1.0', 'left-pad': '1.3.0', 'step-telemetry': expect.any(String) });

    const lock = writeLock(path.join(dir, 'package-lock.json'), { 'fake-dep': '1.4.0', 'left-pad': '1.3.0', 'step-telemetry': step.runtime.dependencies['step-telemetry'] });
    const withLock = await doctorJson(a.folder, ['--reference', lock]);
    const f = withLock.json.findings.find((x) => x.id === 'dependency-mismatch');
    expect(f, JSON.stringify(withLock.json.findings, null, 2)).toBeDefined();
    expect(f!.severity).toBe('error');
    expect(f!.data.differences).toEqual([{ name: 'fake-dep', here: '2.1.0', there: '1.4.0', diff: 'major' }]);
    expect(f!.evidence[0]).toMatch(/fake-dep: 2\.1\.0 here, 1\.4\.0 in the lock file/);
    expect(withLock.code).toBe(1);

    const withRun = await doctorJson(path.dirname(a.folder), ['--reference', path.dirname(b.folder)]);
    const g = withRun.json.findings.find((x) => x.id === 'dependency-mismatch');
    expect(g!.data.differences).toEqual([
      { name: 'fake-dep', here: '2.1.0', there: '1.4.0', diff: 'major' },
      { name: 'left-pad', here: '1.3.0', there: '1.3.1', diff: 'minor' },
    ]);
    expect(withRun.json.findings.find((x) => x.id === 'runtime-mismatch')).toBeUndefined(); // same Node, same machine

    const same = writeLock(path.join(dir, 'same-lock.json'), { 'fake-dep': '2.1.0', 'left-pad': '1.3.0', 'step-telemetry': step.runtime.dependencies['step-telemetry'] });
    fs.renameSync(same, path.join(dir, 'package-lock.json'));
    const clean = await doctorJson(a.folder, ['--reference', path.join(dir, 'package-lock.json')]);
    expect(clean.json.findings).toEqual([]);
    expect(clean.code).toBe(0);
  });

  it('a dependency declared but not installed: dependency-missing, without any reference', async () => {
    const dir = await useTempDir();
    const script = makeProject(path.join(dir, 'app'), { 'fake-dep': '2.1.0' });
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'app', 'package.json'), 'utf8'));
    pkg.dependencies['not-installed'] = '^1.0.0';
    fs.writeFileSync(path.join(dir, 'app', 'package.json'), JSON.stringify(pkg));
    const { folder } = await plainStep(path.join(dir, 'tel'), 'r1', {}, script);
    const { json, code } = await doctorJson(folder);
    expect(ids(json)).toEqual(['dependency-missing']);
    expect(json.findings[0]!.data.missing).toEqual(['not-installed']);
    expect(code).toBe(1);
  });

  it('an export refused with 401: export-failures with the credential hint, as an error', async () => {
    const dir = await useTempDir();
    const otlp = await startOtlpReceiver({ mode: 'unauthorized' });
    try {
      const { folder, result } = await plainStep(path.join(dir, 'tel'), 'r401', { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
      expect(result.code).toBe(0);
      const { json, code } = await doctorJson(folder);
      const f = json.findings.find((x) => x.id === 'export-failures');
      expect(f, JSON.stringify(json.findings, null, 2)).toBeDefined();
      expect(f!.severity).toBe('error');
      expect(f!.data.credential).toBe(true);
      expect(f!.title).toMatch(/refused the credential/);
      expect(f!.evidence.join('\n')).toMatch(/401/);
      expect(f!.fix).toMatch(/OTEL_EXPORTER_OTLP_HEADERS/);
      expect(code).toBe(1);
    } finally {
      await otlp.close();
    }
  });

  it('an output folder the step never wrote to, or never created: empty-output', async () => {
    const dir = await useTempDir();
    const empty = await plainStep(path.join(dir, 'tel'), 'run-empty', { FIXTURE_OUTPUT_DIR: path.join(dir, 'out-empty'), FIXTURE_OUTPUT_MODE: 'create' });
    const a = await doctorJson(empty.folder);
    expect(ids(a.json)).toEqual(['empty-output']);
    expect(a.json.findings[0]!.data).toMatchObject({ problem: 'empty', from: 'the tag "output"' });
    expect(a.code).toBe(1);

    const missing = await plainStep(path.join(dir, 'tel'), 'run-missing', { FIXTURE_OUTPUT_DIR: path.join(dir, 'out-missing'), FIXTURE_OUTPUT_MODE: 'none' });
    const b = await doctorJson(missing.folder);
    expect(b.json.findings[0]).toMatchObject({ id: 'empty-output', severity: 'error', data: { problem: 'missing' } });
    expect(b.json.findings[0]!.title).toMatch(/never created/);

    const written = await plainStep(path.join(dir, 'tel'), 'run-written', { FIXTURE_OUTPUT_DIR: path.join(dir, 'out-written') });
    expect((await doctorJson(written.folder)).json.findings).toEqual([]);
    // --output names an output the run folder does not know about
    const c = await doctorJson(written.folder, ['--output', path.join(dir, 'nowhere')]);
    expect(c.json.findings.map((f) => [f.id, f.data.problem])).toEqual([['empty-output', 'missing']]);
  });

  it('a step run twice into one folder (rerun) and a step killed with SIGKILL (step-not-ended)', async () => {
    const dir = await useTempDir();
    await plainStep(path.join(dir, 'tel'), 'twice');
    await plainStep(path.join(dir, 'tel'), 'twice');
    const { json } = await doctorJson(path.join(dir, 'tel', 'twice'));
    expect(ids(json)).toEqual(['rerun']);
    expect(json.findings[0]!.data.runs).toHaveLength(2);
    // an orchestrator retry that keeps the run id: two starts in one folder
    await plainStep(path.join(dir, 'tel'), 'same-id', { STEP_TELEMETRY_RUN_ID: 'run-7' });
    await plainStep(path.join(dir, 'tel'), 'same-id', { STEP_TELEMETRY_RUN_ID: 'run-7' });
    const same = await doctorJson(path.join(dir, 'tel', 'same-id'));
    expect(ids(same.json)).toEqual(['rerun']);
    expect(same.json.findings[0]!.data.starts).toHaveLength(2);
    expect(same.json.findings[0]!.evidence[0]).toMatch(/started 2 times under the same run id run-7/);

    const killed = await plainStep(path.join(dir, 'tel'), 'killed', { FIXTURE_HANG: '1' }, undefined, { signalAfter: { signal: 'SIGKILL', whenStdoutIncludes: 'READY' } });
    expect(killed.result.signal).toBe('SIGKILL');
    const k = await doctorJson(killed.folder);
    expect(k.json.findings[0]).toMatchObject({ id: 'step-not-ended', severity: 'error' });
    expect(k.code).toBe(1);
  });
});
