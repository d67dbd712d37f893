// The runner under trouble: hung and spinning run() calls killed at run_invocation_timeout, workers
// that exit, init() failures, the progress watchdog, and SIGTERM in the middle of a run. Real
// processes; the timeouts are short (1 s) so the whole file stays in a few seconds per case.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE, alive, makeFiles, outputRows, readAllJsonl, readCsv, readJson, runFolder, runRunner } from './fixtures/runner/harness.js';

describe('parallel-run timeouts and crashes', () => {
  it('kills a hung run() at run_invocation_timeout and retries it on a fresh worker; an event-loop spin too', async () => {
    const dir = await useTempDir('runner-hang-');
    makeFiles(path.join(dir, 'in'), 8);
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--run-invocation-timeout', '1', '--run-max-try', '2', '--process-count-per-node', '2', '--', '--hang', 'f002', '--spin', 'f005'],
      { cwd: dir },
    );
    expect(r.code).toBe(0); // error_threshold -1: failures are counted, not fatal
    expect(r.stderr).toMatch(/mb-00001 attempt 1\/2 failed on worker-\d: RunTimeout: run\(\) did not return within 1 s \(run_invocation_timeout\)/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ timeouts: 4, retries: 2, mini_batches: { failed: 2, succeeded: 2 }, items: { failed: 4, succeeded: 4 } });
    expect(result.worker_restarts).toBeGreaterThanOrEqual(2);
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    const timedOut = processed.filter((p) => p.status === 'RUN_TIMEOUT');
    expect(timedOut.map((p) => p.mini_batch_id).sort()).toEqual(['mb-00001', 'mb-00002']);
    expect(timedOut.every((p) => p.times_picked === '2' && p.error_category === 'RunTimeout')).toBe(true);
    // every attempt ran on its own process: the hung worker never got a second mini-batch
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.filter((w) => w.end_reason === 'killed-timeout')).toHaveLength(4);
    for (const w of workers) expect(alive(Number(w.pid))).toBe(false);
    const spans = readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch' && s.attributes['mini_batch.outcome'] === 'timeout');
    expect(spans).toHaveLength(4);
    expect(spans.every((s) => s.status.code === 'ERROR' && s.duration_ms >= 950)).toBe(true);
    expect(outputRows(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(4);
  });

  it('replaces a worker that calls process.exit, retries its mini-batch, and reports the crash with the exit code', async () => {
    const dir = await useTempDir('runner-exit-');
    makeFiles(path.join(dir, 'in'), 6);
    fs.mkdirSync(path.join(dir, 'markers'));
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '3', '--error-threshold', '0', '--', '--exit-once', path.join(dir, 'markers')], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/mb-00000 attempt 1\/3 failed on worker-0: WorkerCrash: worker-0 \(pid \d+\) exited with code 3 while running mb-00000 \(attempt 1\); retrying/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', retries: 2, worker_restarts: 2, items: { succeeded: 6, failed: 0 } });
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    expect(processed.every((p) => p.status === 'RUN_DONE' && p.times_picked === '2')).toBe(true);
    expect(readCsv(path.join(folder, 'worker-summary.csv')).filter((w) => w.end_reason === 'crashed' && w.exit === '3')).toHaveLength(2);
    expect(readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch' && s.attributes['mini_batch.outcome'] === 'crash')).toHaveLength(2);

    // a worker that exits every time: the mini-batch fails as PROCESS_CRASH after run_max_try
    const again = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out2', '--mini-batch-size', '3', '--run-max-try', '2', '--', '--exit', 'f004'], {
      cwd: dir,
      env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') },
    });
    expect(again.code).toBe(0);
    const f2 = runFolder(path.join(dir, 't2'));
    expect(readCsv(path.join(f2, 'processed-mini-batches.csv')).find((p) => p.mini_batch_id === 'mb-00001')).toMatchObject({ status: 'PROCESS_CRASH', failed_items: '3', error_category: 'WorkerCrash' });
  });

  it('finds the culprit when a worker hangs or crashes inside a chunk, and charges no other mini-batch', async () => {
    // one worker, short mini-batches: after the first, they go out in chunks (mb-00001..05, then
    // mb-00006..08 in advance), and the worker sends a chunk's results at its end
    const dir = await useTempDir('runner-chunks-');
    makeFiles(path.join(dir, 'in'), 12);
    for (const [tag, behaviour, outcome, known] of [
      // awaiting forever: the worker says which attempt runs, and that one is charged at once
      ['hang', ['--hang', 'f006'], 'timeout', true],
      // a blocked event loop, or a crash: which of the chunk ran is not known
      ['spin', ['--spin', 'f006'], 'timeout', false],
      ['exit', ['--exit', 'f006'], 'crash', false],
    ] as const) {
      const telemetry = path.join(dir, `t-${tag}`);
      const r = await runRunner(
        ['--entry-script', BEHAVE, '--input', 'in', '--output', `out-${tag}`, '--mini-batch-size', '1', '--run-invocation-timeout', '1', '--run-max-try', '1', '--', ...behaviour],
        { cwd: dir, env: { STEP_TELEMETRY_DIR: telemetry } },
      );
      expect(r.code, r.stderr).toBe(0);
      const unknown = /worker-0 \(pid \d+\) (did not finish within 1 s \(run_invocation_timeout\) and was killed|exited with code 3)[\s\S]* during one of 3 mini-batches sent together \(mb-00006 … mb-00008\); they run again one at a time, uncounted, to find which/;
      if (known) expect(r.stderr).not.toMatch(unknown);
      else expect(r.stderr).toMatch(unknown);
      const folder = runFolder(telemetry);
      // mb-00006 is charged once (run_max_try 1, so it failed); nothing else is
      expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ retries: 0, worker_restarts: known ? 1 : 2, mini_batches: { total: 12, succeeded: 11, failed: 1, not_processed: 0 } });
      const spans = readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch');
      expect(spans.filter((s) => (s.attributes['mini_batch.chunk'] as number) > 1).length).toBeGreaterThan(3);
      const bad = spans.filter((s) => s.attributes['mini_batch.outcome'] === outcome);
      // charged in its chunk of 3 when the worker said it ran; else when it ran alone
      expect(bad.map((s) => [s.attributes['mini_batch.id'], s.attributes['mini_batch.chunk'], s.attributes['mini_batch.attempt']])).toEqual([['mb-00006', known ? 3 : 1, 1]]);
      // its chunk-mates ran again elsewhere, as attempt 1, and succeeded; every mini-batch has one span
      for (const id of ['mb-00007', 'mb-00008']) {
        const mate = spans.filter((s) => s.attributes['mini_batch.id'] === id);
        expect(mate).toHaveLength(1);
        expect(mate[0]!.attributes).toMatchObject({ 'mini_batch.attempt': 1, 'mini_batch.outcome': 'success' });
        expect(mate[0]!.attributes['worker.pid']).not.toBe(bad[0]!.attributes['worker.pid']);
        if (!known) expect(mate[0]!.attributes['mini_batch.chunk']).toBe(1);
      }
      expect(new Set(spans.map((s) => s.attributes['mini_batch.id'])).size).toBe(spans.length);
      const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
      expect(processed).toHaveLength(12);
      expect(processed.every((p) => p.times_picked === '1')).toBe(true);
      expect(outputRows(path.join(dir, `out-${tag}`, 'parallel_run_step.txt'))).toHaveLength(11);
    }
  });

  it('aborts with the error and its stack once init() failed 3 × process_count_per_node times in a row (ParallelRunStep), instead of hanging', async () => {
    const dir = await useTempDir('runner-init-');
    makeFiles(path.join(dir, 'in'), 4);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--', '--init-throw'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /FAILED: InitFailure: init\(\) failed in worker-0 \(pid \d+\): Error: init failed on purpose: model file missing; 3 worker starts in a row failed: after 3 \(ParallelRunStep's limit, 3 × process_count_per_node\) no new worker is started, and none is left to run the job\n\s+at init \(file:\/\/.*behave\.mjs:\d+:\d+\)/,
    );
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'failed', cause: { category: 'InitFailure', type: 'Error' }, init_failures: 3, worker_restarts: 2, items: { not_processed: 4 } });
    expect(result.cause.stack).toMatch(/behave\.mjs/);
    expect(fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8')).toMatch(/Cause: InitFailure on worker-\d[\s\S]*init failed on purpose[\s\S]*at init \([\s\S]*failed worker starts: 3/);
    // each failed start is a worker of its own in the summary, with its error; each was logged
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers).toHaveLength(3);
    for (const w of workers) expect(w).toMatchObject({ end_reason: 'init-failed', exit: '1', error: 'Error: init failed on purpose: model file missing' });
    expect(readAllJsonl(folder, 'logs').filter((l) => l.level === 'warn' && /a fresh worker takes its place/.test(l.message))).toHaveLength(2);

    // init() that exits the process: the exit code and the stderr tail are the cause, after 3 starts
    const e = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--', '--init-exit'], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') } });
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/FAILED: InitFailure: worker-0 \(pid \d+\) exited with code 4 before init\(\) finished; 3 worker starts in a row failed/);

    // an entry script without run()
    fs.writeFileSync(path.join(dir, 'norun.mjs'), 'export function init() {}\nexport const other = 1;\n');
    const n = await runRunner(['--entry-script', 'norun.mjs', '--input', 'in'], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't3') } });
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(/does not export a run\(miniBatch, context\) function \(it exports: init, other\)/);
  });

  it('aborts when no mini-batch finishes within progress_update_timeout, saying what is stuck', async () => {
    const dir = await useTempDir('runner-watchdog-');
    makeFiles(path.join(dir, 'in'), 2);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--progress-update-timeout', '1', '--', '--init-hang'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED: ProgressTimeout: no mini-batch attempt finished in the last 1 s \(progress_update_timeout\); worker-0 \(pid \d+\) still in init\(\)/);
    expect(r.durationMs).toBeLessThan(15_000);
  });
});

describe('parallel-run under SIGTERM', () => {
  it('stops the workers, flushes telemetry and leaves the output and the reports consistent', async () => {
    const dir = await useTempDir('runner-sigterm-');
    makeFiles(path.join(dir, 'in'), 40);
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--process-count-per-node', '2', '--', '--sleep', '150', '--stderr-each', '--log'],
      {
        cwd: dir,
        // mid-run: once the third mini-batch has started
        signalWhen: { signal: 'SIGTERM', when: (_out, err) => (err.match(/running mb-/g) ?? []).length >= 3 },
      },
    );
    expect(r.code).toBe(143);
    expect(r.stderr).toMatch(/TERMINATED: Terminated: received SIGTERM/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const result = readJson(path.join(folder, 'result.json'));
    expect(result.status).toBe('terminated');
    expect(result.exit_code).toBe(143);
    expect(result.items.not_processed).toBeGreaterThan(0);
    // the output holds exactly the rows of the mini-batches the report calls done
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    const done = processed.filter((p) => p.status === 'RUN_DONE');
    expect(done.length).toBe(result.mini_batches.succeeded);
    const rows = outputRows(path.join(dir, 'out', 'parallel_run_step.txt'));
    expect(rows.length).toBe(result.items.succeeded);
    expect(new Set(rows.map((x) => x.mb))).toEqual(new Set(done.map((p) => p.mini_batch_id)));
    expect(processed.filter((p) => p.status === 'ABORTED').every((p) => p.error_category === 'Terminated')).toBe(true);
    // the workers are gone and ended their steps; the runner's step is recorded as terminated
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.length).toBeGreaterThanOrEqual(1);
    for (const w of workers) expect(alive(Number(w.pid))).toBe(false);
    expect(readJson(path.join(folder, 'step.json')).outcome).toBe('terminated');
    // a worker still loading when the signal came dies before its step exists; every step that started ended as terminated
    const workerSteps = workers.map((w) => path.join(folder, `step.process-${w.process_index}.json`)).filter((f) => fs.existsSync(f));
    expect(workerSteps.length).toBeGreaterThanOrEqual(1);
    for (const f of workerSteps) expect(readJson(f)).toMatchObject({ outcome: 'terminated', stopped_by: 'runner' });
    const attempts = readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch');
    expect(attempts.length).toBe(processed.length);
    expect(readAllJsonl(folder, 'logs').some((l) => l.message === 'processing mini-batch' && l.mini_batch_id)).toBe(true);
  });
});
