// Regressions from issue #10 (a new user, a fault matrix, a fuzzer): what the runner got wrong,
// each through real `parallel-run` processes and named after the bug.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE, makeFiles, readCsv, readJson, runFolder, runRunner } from './fixtures/runner/harness.js';
import { cli, doctorJson } from './fixtures/report/runs.js';
import { freeClosedPort } from './helpers/otlp-receiver.js';

describe('parallel-run output closed', () => {
  it('parallel-run | head -2: a closed stdout or stderr stops the printing, not the job (no EPIPE crash, step.json not left running)', async () => {
    const dir = await useTempDir('runner-epipe-');
    makeFiles(path.join(dir, 'in'), 30);
    for (const [stream, close] of [
      ['stdout', { stdout: 2 }],
      ['stderr', { stderr: 1 }],
    ] as const) {
      const telemetry = path.join(dir, `t-${stream}`);
      const r = await runRunner(
        ['--entry-script', BEHAVE, '--input', 'in', '--output', `out-${stream}`, '--mini-batch-size', '1', '--progress-interval', '0.02', '--', '--sleep', '5', '--stderr-each'],
        { cwd: dir, env: { STEP_TELEMETRY_DIR: telemetry }, closeAfterLines: close },
      );
      expect(r.code, `${stream}: ${r.stderr}`).toBe(0);
      const folder = runFolder(telemetry);
      expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', items: { succeeded: 30 } });
      expect(readJson(path.join(folder, 'step.json')).outcome).toBe('success');
      expect(fs.readFileSync(path.join(dir, `out-${stream}`, 'parallel_run_step.txt'), 'utf8').trim().split('\n')).toHaveLength(30);
    }
  });
});

describe('parallel-run worker start-up', () => {
  it('a worker SIGKILLed during start-up is replaced instead of aborting the job', async () => {
    const dir = await useTempDir('runner-startup-kill-');
    makeFiles(path.join(dir, 'in'), 6);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--', '--init-kill-once', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/worker-0 \(pid \d+\) was killed by SIGKILL \(what the kernel's out-of-memory killer sends, or a kill -9\) before init\(\) finished; a fresh worker takes its place/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', worker_restarts: 1, items: { succeeded: 6 } });
    expect(fs.existsSync(path.join(dir, 'init-killed'))).toBe(true);
  });
});

describe('parallel-run reports that add up', () => {
  it('after an abort, progress-overview.txt adds up to result.json, shows no ETA, and a mini-batch waiting for its retry has its row in processed-mini-batches.csv', async () => {
    const dir = await useTempDir('runner-addup-');
    makeFiles(path.join(dir, 'in'), 8);
    // mb-00001 hangs: killed at 1 s, its retry waits for the fresh worker; SIGTERM comes then
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--run-invocation-timeout', '1', '--run-max-try', '2', '--', '--hang', 'f001'], {
      cwd: dir,
      signalWhen: { signal: 'SIGTERM', when: (_out, err) => /mb-00001 attempt 1\/2 failed/.test(err) },
    });
    expect(r.code, r.stderr).toBe(143);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    const overview = fs.readFileSync(path.join(folder, 'progress-overview.txt'), 'utf8');
    const m = /mini-batches: (\d+) of 8 done \(\d+ succeeded, \d+ failed\), (\d+) not processed/.exec(overview);
    expect(m, overview).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(8);
    expect(Number(m![2])).toBe(result.mini_batches.not_processed);
    expect(overview).toMatch(new RegExp(`items: \\d+ of 8 done .*, ${result.items.not_processed} not processed`));
    expect(overview).not.toMatch(/ETA/);
    const row = readCsv(path.join(folder, 'processed-mini-batches.csv')).find((p) => p.mini_batch_id === 'mb-00001');
    expect(row).toMatchObject({ status: 'ABORTED', times_picked: '1', error_category: 'RunTimeout' });
    expect(row!.error_message).toMatch(/not finished: 1 attempt\(s\) failed, the job stopped before the next; last: run\(\) did not return within 1 s/);
    expect(Number(row!.run_method_seconds)).toBeGreaterThanOrEqual(0.9);
  });

  it('worker-summary.csv counts failed items per worker, a RUN_TIMEOUT row has its run() time, and no replacement is promised that does not happen', async () => {
    const dir = await useTempDir('runner-addup2-');
    makeFiles(path.join(dir, 'in'), 12);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--run-invocation-timeout', '1', '--run-max-try', '1', '--', '--throw', 'f00', '--hang', 'f011'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ items: { failed: 12 }, timeouts: 1, worker_restarts: 0 });
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.reduce((n, w) => n + Number(w.items_failed), 0)).toBe(12);
    const timeout = readCsv(path.join(folder, 'processed-mini-batches.csv')).find((p) => p.status === 'RUN_TIMEOUT')!;
    expect(Number(timeout.run_method_seconds)).toBeGreaterThanOrEqual(0.9);
    expect(r.stderr).not.toMatch(/replaced/);
  });
});

describe('parallel-run append_row', () => {
  it('append_row rows match the succeeded items: more elements than items fail the mini-batch, a row with a line break fails its item', async () => {
    const dir = await useTempDir('runner-rows-');
    makeFiles(path.join(dir, 'in'), 20);
    const extra = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '10', '--run-max-try', '1', '--', '--extra', '1'], { cwd: dir });
    expect(extra.code, extra.stderr).toBe(0);
    expect(extra.stderr).toMatch(/RunException: TooManyResults: run\(\) returned 11 elements for 10 items/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ items: { succeeded: 0, failed: 20 }, mini_batches: { failed: 2 } });
    expect(fs.readFileSync(path.join(dir, 'out', 'parallel_run_step.txt'), 'utf8')).toBe('');

    const nl = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out2', '--mini-batch-size', '10', '--', '--newline', 'f003'], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') } });
    expect(nl.code, nl.stderr).toBe(0);
    const f2 = runFolder(path.join(dir, 't2'));
    const result = readJson(path.join(f2, 'result.json'));
    expect(result).toMatchObject({ items: { succeeded: 19, failed: 1 } });
    const lines = fs.readFileSync(path.join(dir, 'out2', 'parallel_run_step.txt'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(19);
    expect(lines.every((l) => JSON.parse(l).item !== undefined)).toBe(true);
    expect(fs.readFileSync(path.join(f2, 'error-summary.txt'), 'utf8')).toMatch(/element 3 returned for mb-00000\tmb-00000\tItemError\tthe row holds a line break/);
  });
});

describe('doctor on a hung mini-batch', () => {
  it('doctor reads a hung mini-batch as a hang (hung-mini-batch: which, which input, how long), never as a tight timeout to raise', async () => {
    const dir = await useTempDir('runner-hung-');
    makeFiles(path.join(dir, 'in'), 20);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--run-invocation-timeout', '1', '--run-max-try', '2', '--', '--hang', 'f007'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const { json, code } = await doctorJson(folder);
    const f = json.findings.find((x) => x.id === 'hung-mini-batch');
    expect(f, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(f!.severity).toBe('error'); // it failed for good
    expect(f!.data.miniBatches).toEqual(['mb-00007']);
    expect(f!.evidence.join('\n')).toMatch(/mb-00007 \(input: .*f007\.txt\): attempt 1 on worker-0 ran 1\.\d+ s until killed; attempt 2 on worker-0 ran 1\.\d+ s until killed; failed for good/);
    expect(json.findings.map((x) => x.id)).not.toContain('timeout-tight');
    expect(code).toBe(1);
    const text = await cli(['doctor', folder]);
    expect(text.stdout).toMatch(/hung/);
    expect(text.stdout).not.toMatch(/Raise run_invocation_timeout/);
  });
});

describe('parallel-run on the terminal', () => {
  it('failure lines stop after 20 with "N more not shown"', async () => {
    const dir = await useTempDir('runner-lines-');
    makeFiles(path.join(dir, 'in'), 30);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--run-max-try', '1', '--', '--throw', 'f0'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/attempt 1\/1 failed/g)).toHaveLength(20);
    expect(r.stderr).toMatch(/20 failure lines shown; the others go to the run folder's logs and error-summary\.txt/);
    expect(r.stderr).toMatch(/\[parallel-run\] 10 more failure lines not shown: see .*error-summary\.txt/);
  });

  it('console.log in init() and run() is shown prefixed by its worker, and control bytes are printed escaped', async () => {
    const dir = await useTempDir('runner-console-');
    makeFiles(path.join(dir, 'in'), 2);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--', '--console'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('[worker-0] hello from init \\x1b[31mred\\x1b[0m');
    expect(r.stdout).toMatch(/\[worker-0\] run\(\) says mb-00000/);
    expect(r.stdout + r.stderr).not.toContain('\x1b');
    // and the copy in the run folder keeps what the worker wrote
    expect(fs.readFileSync(path.join(runFolder(path.join(dir, 'telemetry')), 'console.process-1.log'), 'utf8')).toContain('hello from init \x1b[31mred');
  });
});

describe('parallel-run over a CSV with a stray quote', () => {
  it('CSV: one stray quote (1,12" monitor) fails that row as an item naming file and line, and the other rows are read', async () => {
    const dir = await useTempDir('runner-quote-');
    fs.mkdirSync(path.join(dir, 'in'));
    const file = path.join(dir, 'in', 'products.csv');
    fs.writeFileSync(file, 'id,name\n0,keyboard\n1,12" monitor\n2,mouse\n3,"cable, usb"\n4,dock\n');
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--input-type', 'tabular', '--output', 'out', '--mini-batch-size', '20B'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ items: { total: 5, succeeded: 4, failed: 1 } });
    const rows = fs.readFileSync(path.join(dir, 'out', 'parallel_run_step.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.name).sort()).toEqual(['cable, usb', 'dock', 'keyboard', 'mouse']);
    expect(fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8')).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3\\tmb-\\d+\\tInputError\\tline 3: not valid CSV \\(Invalid Opening Quote: a quote is found on field 1, value is "12"\\)`));
  });
});

describe('parallel-run and Prometheus', () => {
  it('workers do not inherit STEP_TELEMETRY_PROMETHEUS_PORT (no EADDRINUSE): one /metrics per job, the runner\'s, with the workers\' step.log() values', async () => {
    const dir = await useTempDir('runner-prom-');
    makeFiles(path.join(dir, 'in'), 40);
    const port = await freeClosedPort();
    const run = runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '1', '--process-count-per-node', '2', '--', '--sleep', '100', '--metric'], {
      cwd: dir,
      env: { STEP_TELEMETRY_PROMETHEUS_PORT: String(port) },
    });
    let exited = false;
    void run.then(() => (exited = true));
    // the runner's endpoint shows the forwarded gauge while the job runs
    let body = '';
    while (!exited && !/^behave_items\{[^}]*\} \d+/m.test(body)) {
      body = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const r = await run;
    expect(body, r.stderr).toMatch(/^behave_items\{[^}]*step="parallel-run"[^}]*\} \d+/m);
    expect(body).toMatch(/^step_minibatches_total\{/m);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/EADDRINUSE|cannot serve \/metrics/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    for (const f of fs.readdirSync(folder).filter((x) => /^step\.process-\d+\.json$/.test(x))) {
      expect(JSON.stringify(readJson(path.join(folder, f)).diagnostics)).not.toMatch(/PROMETHEUS/);
    }
  });
});
