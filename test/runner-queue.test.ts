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
