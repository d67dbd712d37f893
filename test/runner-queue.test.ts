// Many nodes as one job on a shared queue (BullMQ on a real redis-server started by the test):
// all items once, a node SIGKILLed mid-run, thresholds across nodes, a late joiner, a Redis that
// goes away. Short leases (queue_lock_duration 2 s) and small inputs keep it lean.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startRedis } from './helpers/redis-server.js';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE, makeFiles, readJson, readJsonl, runRunner, type RunnerOptions } from './fixtures/runner/harness.js';

const LOCK = '2';

function node(dir: string, url: string, rank: number, count: number, extra: string[], options: Partial<RunnerOptions> = {}) {
  return runRunner(
    ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--queue', url, '--queue-lock-duration', LOCK, '--node-count', String(count), '--node-rank', String(rank), '--progress-interval', '0.5', ...extra],
    { cwd: dir, env: { STEP_TELEMETRY_PIPELINE_RUN_ID: 'job-1', ...(options.env ?? {}) }, timeoutMs: 60_000, ...options },
  );
}

/** The item names in the rows of every node's own output file. */
function rowsOf(dir: string): string[] {
  const out = path.join(dir, 'out');
  return fs
    .readdirSync(out)
    .filter((f) => /^parallel_run_step\.node-\d+\.txt$/.test(f))
    .flatMap((f) => readJsonl(path.join(out, f)).map((r) => r.item as string));
}

const stepFolder = (dir: string): string => path.join(dir, 'telemetry', 'job-1', 'parallel-run');

describe('parallel-run on a shared queue', () => {
  it('three nodes on one input: every item once, job-wide counts on every node, and one merged job', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-3-');
    const files = makeFiles(path.join(dir, 'in'), 30);
    const rs = await Promise.all([0, 1, 2].map((r) => node(dir, redis.url, r, 3, ['--', '--sleep', '30'])));
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    expect(rowsOf(dir).sort()).toEqual(files.map((f) => path.basename(f)));
    for (const r of [0, 1, 2]) {
      const res = readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json'));
      expect(res).toMatchObject({ status: 'succeeded', queue: redis.url, mini_batches: { total: 15, succeeded: 15 }, items: { total: 30, succeeded: 30, failed: 0 } });
    }
    const nodeItems = [0, 1, 2].map((r) => readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json')).node.items.succeeded as number);
    expect(nodeItems.reduce((a, b) => a + b, 0)).toBe(30);
    const merged = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(merged).toMatchObject({ status: 'succeeded', items: { succeeded: 30 } });
    expect(readJsonl(merged.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
  });
});

describe('parallel-run on a shared queue under trouble', () => {
  it('a node SIGKILLed mid-run: its mini-batches finish on the others, and the merged output holds each item exactly once', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-kill-');
    const files = makeFiles(path.join(dir, 'in'), 24);
    const args = ['--', '--sleep', '300', '--stderr-each'];
    // SIGKILL while it runs its second mini-batch: its first is committed, the second is held
    const victim = node(dir, redis.url, 2, 3, args, { signalWhen: { signal: 'SIGKILL', when: (_o, e) => (e.match(/running mb-/g) ?? []).length >= 2 } });
    const rs = await Promise.all([node(dir, redis.url, 0, 3, args), node(dir, redis.url, 1, 3, args), victim]);
    expect(rs[2]!.signal).toBe('SIGKILL');
    for (const r of rs.slice(0, 2)) expect(r.code, r.stderr).toBe(0);
    const merged = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(merged).toMatchObject({ status: 'succeeded', items: { total: 24, succeeded: 24 } });
    expect(fs.existsSync(path.join(stepFolder(dir), 'node-2', 'result.json'))).toBe(false);
    expect(readJsonl(merged.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
    // the lost node's lease expired and its mini-batch ran again elsewhere, counted as an attempt
    expect(rs[0]!.stderr + rs[1]!.stderr).toMatch(/was lost \(its lease of 2 s expired/);
  });

  it('failures spread over the nodes exceed error_threshold together: every node stops with the same cause', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-threshold-');
    makeFiles(path.join(dir, 'in'), 40);
    const rs = await Promise.all([0, 1, 2].map((r) => node(dir, redis.url, r, 3, ['--error-threshold', '3', '--', '--drop', '1', '--sleep', '20'])));
    const causes = [0, 1, 2].map((r) => readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json')).cause);
    for (const r of rs) expect(r.code).toBe(1);
    expect(causes[0]).toMatchObject({ category: 'ThresholdExceeded', message: expect.stringMatching(/^error_threshold exceeded: \d+ failed items > error_threshold 3/) });
    expect(causes[1]).toEqual(causes[0]);
    expect(causes[2]).toEqual(causes[0]);
  });

  it('a late-joining node takes work', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-late-');
    makeFiles(path.join(dir, 'in'), 40);
    const first = node(dir, redis.url, 0, 2, ['--', '--sleep', '100', '--stderr-each']);
    await new Promise((r) => setTimeout(r, 1500));
    const late = await node(dir, redis.url, 1, 2, ['--', '--sleep', '100']);
    const r0 = await first;
    expect(r0.code).toBe(0);
    expect(late.code).toBe(0);
    expect(readJson(path.join(stepFolder(dir), 'node-1', 'result.json')).node.mini_batches.succeeded).toBeGreaterThan(0);
  });

  it('a Redis that goes away mid-job: a clear error naming the queue, no hang, consistent local files', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-gone-');
    makeFiles(path.join(dir, 'in'), 40);
    let stopped = false;
    const r = await node(dir, redis.url, 0, 1, ['--', '--sleep', '100', '--stderr-each'], {
      signalWhen: { signal: 'SIGCONT', when: (_o, e) => !stopped && (e.match(/running mb-/g) ?? []).length >= 3 && ((stopped = true), void redis.stop(), true) },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/QueueError: the queue at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable/);
    const folder = path.join(dir, 'telemetry', 'job-1', 'parallel-run');
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'failed', cause: { category: 'QueueError' } });
    const journal = readJsonl(path.join(folder, 'output-journal.jsonl')).filter((e) => e.mb);
    expect(readJsonl(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(journal.reduce((n, e) => n + e.r, 0));
  });
});

describe('resume and re-drive (the local runner)', () => {
  it('--resume after an abort runs only what was left, and --input-failed runs only the failed items', async () => {
    const dir = await useTempDir('resume-');
    const files = makeFiles(path.join(dir, 'in'), 20);
    const base = ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2'];
    const env = { STEP_TELEMETRY_PIPELINE_RUN_ID: 'run-r' };
    // f013 fails every attempt: with allowed_failed_count 0 the job aborts after some mini-batches
    const first = await runRunner([...base, '--allowed-failed-count', '0', '--run-max-try', '1', '--', '--throw', 'f013', '--stderr-each'], { cwd: dir, env });
    expect(first.code, first.stdout + first.stderr).toBe(1);
    const folder = path.join(dir, 'telemetry', 'run-r', 'parallel-run');
    const done = readJsonl(path.join(folder, 'output-journal.jsonl')).filter((e) => e.mb).map((e) => e.mb as string);
    const failed = readJsonl(path.join(folder, 'failed-items.jsonl'));
    expect(failed.map((f) => path.basename(f.item)).sort()).toEqual(['f012.txt', 'f013.txt']);
    expect(failed[0]).toMatchObject({ mini_batch_id: 'mb-00006', category: 'RunException', attempts: 1 });

    // --input-failed: exactly the failed items of the aborted run, in a run of its own
    const redo = await runRunner(['--entry-script', BEHAVE, '--input-failed', folder, '--output', 'out2', '--', '--stderr-each'], { cwd: dir, env: { STEP_TELEMETRY_PIPELINE_RUN_ID: 'run-f' } });
    expect(redo.code, redo.stderr).toBe(0);
    expect(readJsonl(path.join(dir, 'out2', 'parallel_run_step.txt')).map((r) => r.item).sort()).toEqual(['f012.txt', 'f013.txt']);

    // resume: the succeeded mini-batches are skipped, the rest run (now without the failure)
    const again = await runRunner([...base, '--resume', '--', '--stderr-each'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    const ran = [...again.stderr.matchAll(/running (mb-\d+)/g)].map((m) => m[1]);
    expect(ran.filter((id) => done.includes(id!))).toEqual([]);
    expect(ran.length).toBe(10 - done.length);
    expect(readJsonl(path.join(dir, 'out', 'parallel_run_step.txt')).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', items: { total: 20, succeeded: 20 } });

  });
});
