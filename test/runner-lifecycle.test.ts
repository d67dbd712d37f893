// The lifecycle of the runner's workers, through real runner processes: the entry script's
// shutdown() (at the end, on SIGTERM, failing or hanging without changing the verdict), init()
// retried by ParallelRunStep's rule, first_task_creation_timeout, and partition_keys on tabular input.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE, FIXTURES, makeFiles, outputRows, readAllJsonl, readCsv, readJson, readJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';

const LIFECYCLE = path.join(FIXTURES, 'lifecycle.mjs');

/** The shutdown markers lifecycle.mjs wrote in `dir`, by pid. */
function shutdowns(dir: string): Map<string, { worker: string; pid: number; items: number }> {
  const out = new Map<string, { worker: string; pid: number; items: number }>();
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('shutdown-'))) {
    const m = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { worker: string; pid: number; items: number };
    out.set(String(m.pid), m);
  }
  return out;
}

describe('parallel-run shutdown()', () => {
  it("runs once on each worker at the job's end and on SIGTERM, after init() and the worker's mini-batches", async () => {
    const dir = await useTempDir('runner-shutdown-');
    makeFiles(path.join(dir, 'in'), 8);
    const marks = path.join(dir, 'marks');
    fs.mkdirSync(marks);
    const r = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--mini-batch-size', '1', '--process-count-per-node', '2', '--', '--sleep', '150', '--shutdown', marks], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    const ready = workers.filter((w) => w.init_seconds !== '');
    expect(ready.length).toBeGreaterThanOrEqual(1);
    // every worker that was ready ran shutdown() once, in its own process, after its mini-batches
    const ran = shutdowns(marks);
    expect([...ran.keys()].sort()).toEqual(ready.map((w) => w.pid).sort());
    for (const w of ready) {
      expect(w).toMatchObject({ end_reason: 'stopped', exit: '0', shutdown: 'ok', error: '' });
      expect(ran.get(w.pid)).toMatchObject({ worker: w.worker, items: Number(w.items_succeeded) });
    }
    const spans = readAllJsonl(folder, 'spans').filter((s) => s.name === 'shutdown');
    expect(spans).toHaveLength(ready.length);
    expect(readAllJsonl(folder, 'logs').filter((l) => /^worker-\d shutdown\(\) done in/.test(l.message))).toHaveLength(ready.length);

    // SIGTERM to the runner mid-run: the workers run shutdown() before they end as terminated
    const marks2 = path.join(dir, 'marks2');
    fs.mkdirSync(marks2);
    const t = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--mini-batch-size', '1', '--', '--sleep', '5000', '--stderr-each', '--shutdown', marks2], {
      cwd: dir,
      env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') },
      signalWhen: { signal: 'SIGTERM', when: (_out, err) => /running mb-00000/.test(err) },
    });
    expect(t.code, t.stderr).toBe(143);
    const folder2 = runFolder(path.join(dir, 't2'));
    const [w] = readCsv(path.join(folder2, 'worker-summary.csv'));
    expect(w).toMatchObject({ end_reason: 'terminated', exit: '143', shutdown: 'ok' });
    expect(shutdowns(marks2).get(w!.pid)).toMatchObject({ worker: 'worker-0', items: 0 });
    expect(readJson(path.join(folder2, `step.process-${w!.process_index}.json`))).toMatchObject({ outcome: 'terminated', stopped_by: 'runner' });

    // Ctrl-C: SIGINT reaches the runner and its workers at once, and the runner's SIGTERM follows;
    // that SIGTERM must not cut a worker's shutdown() short (only the same signal twice does)
    const marks4 = path.join(dir, 'marks4');
    fs.mkdirSync(marks4);
    const c = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--mini-batch-size', '1', '--', '--sleep', '5000', '--stderr-each', '--shutdown', marks4, '--shutdown-delay', '300'], {
      cwd: dir,
      env: { STEP_TELEMETRY_DIR: path.join(dir, 't4') },
      processGroup: true,
      signalWhen: { signal: 'SIGINT', when: (_out, err) => /running mb-00000/.test(err) },
    });
    expect(c.code, c.stderr).toBe(130);
    const [cw] = readCsv(path.join(runFolder(path.join(dir, 't4')), 'worker-summary.csv'));
    expect(cw).toMatchObject({ shutdown: 'ok' });
    expect(shutdowns(marks4).get(cw!.pid)).toMatchObject({ worker: 'worker-0' });

    // SIGTERM to a worker itself (not through the runner): it too runs shutdown() before its step ends
    const marks3 = path.join(dir, 'marks3');
    fs.mkdirSync(marks3);
    const s = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--mini-batch-size', '4', '--', '--sigterm-self-once', marks3, '--shutdown', marks3], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't3') } });
    expect(s.code, s.stderr).toBe(0); // its mini-batch ran again on a fresh worker
    const pid = fs.readFileSync(path.join(marks3, 'sigterm-self'), 'utf8');
    expect(shutdowns(marks3).get(pid)).toMatchObject({ worker: 'worker-0', items: 0 });
    const folder3 = runFolder(path.join(dir, 't3'));
    const killed = readCsv(path.join(folder3, 'worker-summary.csv')).find((x) => x.pid === pid)!;
    expect(killed).toMatchObject({ end_reason: 'crashed', exit: '143', shutdown: 'ok' });
    expect(readJson(path.join(folder3, `step.process-${killed.process_index}.json`))).toMatchObject({ outcome: 'terminated' });
  });

  it("a shutdown() that throws or never returns is recorded and bounded; the job's result does not change", async () => {
    const dir = await useTempDir('runner-shutdown-fail-');
    makeFiles(path.join(dir, 'in'), 2);
    const r = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--', '--shutdown-throw'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/worker-0 \(pid \d+\) shutdown\(\) failed: Error: shutdown failed on purpose: cannot release the model; the job's result does not change/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', items: { succeeded: 2 } });
    expect(readCsv(path.join(folder, 'worker-summary.csv'))[0]).toMatchObject({ end_reason: 'stopped', exit: '0', shutdown: 'failed', error: 'Error: shutdown failed on purpose: cannot release the model' });
    const [span] = readAllJsonl(folder, 'spans').filter((s) => s.name === 'shutdown');
    expect(span).toMatchObject({ status: { code: 'ERROR' }, events: [{ name: 'exception', attributes: { 'exception.message': 'shutdown failed on purpose: cannot release the model' } }] });
    expect(readAllJsonl(folder, 'logs').some((l) => /shutdown\(\) failed: Error: shutdown failed on purpose/.test(l.message) && l.level === 'warn')).toBe(true);

    // one that never returns: the worker ends at shutdown_timeout, the job succeeds
    const h = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--shutdown-timeout', '1', '--', '--shutdown-hang'], { cwd: dir, env: { STEP_TELEMETRY_DIR: path.join(dir, 't2') }, timeoutMs: 20_000 });
    expect(h.code, h.stderr).toBe(0);
    expect(h.stderr).toMatch(/shutdown\(\) did not return within 1 s \(shutdown_timeout\); the job's result does not change/);
    const folder2 = runFolder(path.join(dir, 't2'));
    const [w] = readCsv(path.join(folder2, 'worker-summary.csv'));
    expect(w).toMatchObject({ end_reason: 'stopped', exit: '0', shutdown: 'timed out' });
    expect(Number(w!.shutdown_seconds)).toBeGreaterThanOrEqual(1);
    expect(readJson(path.join(folder2, 'result.json')).status).toBe('succeeded');
  });
});

describe('parallel-run init() retries', () => {
  it('an init() that fails twice then succeeds: a fresh worker takes each failed one’s place, every failure recorded', async () => {
    const dir = await useTempDir('runner-init-retry-');
    makeFiles(path.join(dir, 'in'), 4);
    const r = await runRunner(['--entry-script', LIFECYCLE, '--input', 'in', '--mini-batch-size', '2', '--', '--init-throw-times', '2', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/init\(\) failed in worker-0 \(pid \d+\): Error: init failed on purpose \(start 1 of 2 that fail\); a fresh worker takes its place \(1 failed start in a row; no new worker after 3 = 3 × process_count_per_node\)/);
    expect(r.stderr).toMatch(/start 2 of 2 that fail\); a fresh worker takes its place \(2 failed starts in a row/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', init_failures: 2, worker_restarts: 2, items: { succeeded: 4 } });
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.map((w) => [w.end_reason, w.exit, w.error])).toEqual([
      ['init-failed', '1', 'Error: init failed on purpose (start 1 of 2 that fail)'],
      ['init-failed', '1', 'Error: init failed on purpose (start 2 of 2 that fail)'],
      ['stopped', '0', ''],
    ]);
    const logs = readAllJsonl(folder, 'logs');
    expect(logs.filter((l) => l.level === 'warn' && /^init\(\) failed in worker-0 .*a fresh worker takes its place/.test(l.message))).toHaveLength(2);
  });
});

describe('parallel-run first_task_creation_timeout', () => {
  it('fails with a cause naming the setting when no mini-batch started in time', async () => {
    const dir = await useTempDir('runner-first-task-');
    makeFiles(path.join(dir, 'in'), 2);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--first-task-creation-timeout', '1', '--', '--init-hang'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED: FirstTaskTimeout: no mini-batch started within 1 s of the job's start \(first_task_creation_timeout\); worker-0 \(pid \d+\) still in init\(\) after \d+ s/);
    const result = readJson(path.join(runFolder(path.join(dir, 'telemetry')), 'result.json'));
    expect(result).toMatchObject({ status: 'failed', cause: { category: 'FirstTaskTimeout' }, items: { not_processed: 2 }, config: { first_task_creation_timeout: 1 } });
  });
});

describe('parallel-run partition_keys', () => {
  it('rows with equal key values form one mini-batch across files and never mix; the keys reach run(), the span and the reports', async () => {
    const dir = await useTempDir('runner-partition-keys-');
    fs.mkdirSync(path.join(dir, 'in'));
    // interleaved stores, a quoted comma and line break, a blank line; a second file with its columns in another order
    fs.writeFileSync(
      path.join(dir, 'in', 'a.csv'),
      'id,store,brand,note\r\n1,A,x,plain\r\n2,B,x,"with, comma"\r\n3,A,y,"two\r\nlines"\r\n4,A,x,plain\r\n\r\n5,C,x,plain\r\n6,B,x,plain\r\n7,A,x,last\r\n',
    );
    fs.writeFileSync(path.join(dir, 'in', 'b.csv'), 'brand,store,id,note\nx,B,8,other file\nx,D,9,d\n');
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--input-type', 'tabular', '--partition-keys', 'store,brand', '--mini-batch-size', '1B', '--output', 'out', '--process-count-per-node', '2', '--', '--check-keys', '--fail-item', '"id":"4"'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/9 items in 5 mini-batches \(one per value of partition_keys store, brand\)/);
    // one mini-batch per key group, whatever mini_batch_size says (as in Azure ML), in order of first appearance
    const groups = new Map<string, Set<string>>();
    for (const row of outputRows(path.join(dir, 'out', 'parallel_run_step.txt'))) {
      expect(row.keys).toEqual({ store: row.store, brand: row.brand });
      const ids = groups.get(row.mb) ?? new Set<string>();
      groups.set(row.mb, ids.add(row.id));
    }
    expect(Object.fromEntries([...groups].map(([mb, ids]) => [mb, [...ids].sort()]))).toEqual({
      'mb-00000': ['1', '7'],
      'mb-00001': ['2', '6', '8'],
      'mb-00002': ['3'],
      'mb-00003': ['5'],
      'mb-00004': ['9'],
    });
    const folder = runFolder(path.join(dir, 'telemetry'));
    const processed = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    expect(processed.find((p) => p.mini_batch_id === 'mb-00000')).toMatchObject({ partition_keys: '{"store":"A","brand":"x"}', total_items: '3', succeeded_items: '2', failed_items: '1' });
    expect(readJsonl(path.join(folder, 'mini-batches.jsonl')).find((m) => m.mini_batch_id === 'mb-00001')).toMatchObject({ items: 3, partition_keys: { store: 'B', brand: 'x' } });
    const spans = readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch');
    expect(spans.find((s) => s.attributes['mini_batch.id'] === 'mb-00004')!.attributes['mini_batch.partition_keys']).toBe('{"store":"D","brand":"x"}');
    // the failed row is named by its file and line, though its group's rows are not contiguous
    expect(fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8')).toMatch(/a\.csv:6\tmb-00000\tItemError/);
  });
});
