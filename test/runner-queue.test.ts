// Many nodes as one job on a shared queue (BullMQ on a real redis-server started by the test):
// all items once, a node SIGKILLed mid-run, thresholds across nodes, a late joiner, a Redis that
// goes away. Short leases (queue_lock_duration 2 s) and small inputs keep it lean.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { holdingProxy } from './helpers/holding-proxy.js';
import { startRedis } from './helpers/redis-server.js';
import { baseChildEnv, useTempDir } from './helpers/run-step.js';
import { BEHAVE, CLI, FIXTURES, makeFiles, readJson, readJsonl, runRunner, type RunnerOptions } from './fixtures/runner/harness.js';

const LOCK = '2';
const run = promisify(execFile);
const BLOCKER = path.join(FIXTURES, 'block-on-signal.mjs');

function node(dir: string, url: string, rank: number, count: number, extra: string[], options: Partial<RunnerOptions> & { lock?: string } = {}) {
  return runRunner(
    ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--queue', url, '--queue-lock-duration', options.lock ?? LOCK, '--node-count', String(count), '--node-rank', String(rank), '--progress-interval', '0.5', ...extra],
    { cwd: dir, timeoutMs: 60_000, ...options, env: { STEP_TELEMETRY_PIPELINE_RUN_ID: 'job-1', ...options.env } },
  );
}

/** The item names in the rows of every node's own output file (rows of runs that did not count included). */
function rowsOf(dir: string): string[] {
  const out = path.join(dir, 'out');
  return fs
    .readdirSync(out)
    .filter((f) => /^parallel_run_step\.node-\d+\.txt$/.test(f))
    .flatMap((f) => readJsonl(path.join(out, f)).map((r) => r.item as string));
}

/** Resolves once `test` holds on a runner's stderr (or when the runner ends first: the test's checks then say why). */
function whenStderr(test: (stderr: string) => boolean): { onOutput: (o: string, e: string) => void; seen: Promise<void> } {
  let seen!: () => void;
  const p = new Promise<void>((resolve) => (seen = resolve));
  return { onOutput: (_o, e) => test(e) && seen(), seen: p };
}

const runs = (e: string): number => (e.match(/running mb-/g) ?? []).length;

/** Mini-batches a node ran that another node had finished first (a lease lost under load): their runs do not count. */
const notCounted = (stderr: string): number => (stderr.match(/had already finished on the queue/g) ?? []).length;

/** `step-telemetry ARGS` (the CLI as built in dist/). */
async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd, env: baseChildEnv() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const stepFolder = (dir: string): string => path.join(dir, 'telemetry', 'job-1', 'parallel-run');

describe('parallel-run on a shared queue', () => {
  it('three nodes on one input: every item once, job-wide counts on every node, and one merged job', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-3-');
    const files = makeFiles(path.join(dir, 'in'), 30);
    const rs = await Promise.all([0, 1, 2].map((r) => node(dir, redis.url, r, 3, ['--', '--sleep', '30'])));
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const names = files.map((f) => path.basename(f));
    // every node's own file holds its rows; a run that did not count leaves rows there, never in the merge
    expect(new Set(rowsOf(dir))).toEqual(new Set(names));
    for (const r of [0, 1, 2]) {
      const res = readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json'));
      expect(res).toMatchObject({ status: 'succeeded', queue: redis.url, mini_batches: { total: 15, succeeded: 15 }, items: { total: 30, succeeded: 30, failed: 0 } });
    }
    const nodeMiniBatches = [0, 1, 2].map((r) => readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json')).node.mini_batches.succeeded as number);
    expect(nodeMiniBatches.reduce((a, b) => a + b, 0)).toBe(15 + rs.reduce((n, r) => n + notCounted(r.stderr), 0));
    const merged = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(merged).toMatchObject({ status: 'succeeded', items: { succeeded: 30 } });
    expect(readJsonl(merged.output_file).map((r) => r.item).sort()).toEqual(names);
  });
});

describe('parallel-run on a shared queue under trouble', () => {
  it('a node SIGKILLed mid-run: its mini-batches finish on the others, and the merged output holds each item exactly once', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-kill-');
    const files = makeFiles(path.join(dir, 'in'), 24);
    const args = ['--', '--sleep', '300', '--stderr-each'];
    // the victim starts alone (it enqueues), the others join once it runs; SIGKILL while it runs its
    // second mini-batch: its first is committed (or not: then it runs again), the second is held
    const started = whenStderr((e) => runs(e) >= 1);
    const victim = node(dir, redis.url, 2, 3, args, { onOutput: started.onOutput, signalWhen: { signal: 'SIGKILL', when: (_o, e) => runs(e) >= 2 } });
    await Promise.race([started.seen, victim]);
    const rs = await Promise.all([node(dir, redis.url, 0, 3, args), node(dir, redis.url, 1, 3, args), victim]);
    expect(rs[2]!.signal, rs[2]!.stderr).toBe('SIGKILL');
    for (const r of rs.slice(0, 2)) expect(r.code, r.stderr).toBe(0);
    const merged = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(merged).toMatchObject({ status: 'succeeded', items: { total: 24, succeeded: 24 } });
    expect(fs.existsSync(path.join(stepFolder(dir), 'node-2', 'result.json'))).toBe(false);
    expect(merged.merged.nodes.map((n: { status: string }) => n.status)).toEqual(['succeeded', 'succeeded', 'lost']);
    expect(readJsonl(merged.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
    // the lost node's lease expired and its mini-batch ran again elsewhere, counted as an attempt
    expect(rs[0]!.stderr + rs[1]!.stderr).toMatch(/was lost \(its lease of 2 s expired/);
    // doctor and report read the merged job: it succeeded, the lost node is a warning, not the verdict
    const doctor = await cli(['doctor', stepFolder(dir), '--json'], dir);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    const d = JSON.parse(doctor.stdout);
    expect(d.jobs).toEqual([{ label: 'parallel-run', status: 'succeeded', nodes: 3, itemsSucceeded: 24, itemsTotal: 24 }]);
    expect(d.findings.filter((f: { severity: string }) => f.severity === 'error')).toEqual([]);
    expect(d.findings).toContainEqual(expect.objectContaining({ id: 'step-not-ended', severity: 'warning', step: 'parallel-run/node-2' }));
    const page = path.join(dir, 'report.html');
    expect((await cli(['report', stepFolder(dir), '--output', page, '--quiet'], dir)).code).toBe(0);
    const html = fs.readFileSync(page, 'utf8');
    expect(html).toContain('<section id="jobs">');
    expect(html).not.toContain('id="what-failed"');
  });

  it('failures spread over the nodes exceed error_threshold together: every node stops with the same cause', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-threshold-');
    makeFiles(path.join(dir, 'in'), 40);
    const rs = await Promise.all([0, 1, 2].map((r) => node(dir, redis.url, r, 3, ['--error-threshold', '3', '--', '--drop', '1', '--sleep', '20'])));
    for (const r of rs) expect(r.code, r.stderr).toBe(1);
    const causes = [0, 1, 2].map((r) => readJson(path.join(stepFolder(dir), `node-${r}`, 'result.json')).cause);
    expect(causes[0]).toMatchObject({ category: 'ThresholdExceeded', message: expect.stringMatching(/^error_threshold exceeded: \d+ failed items > error_threshold 3/) });
    expect(causes[1]).toEqual(causes[0]);
    expect(causes[2]).toEqual(causes[0]);
  });

  it('a node refused by the job on the queue (--resume on another input) exits at once: its Redis connections were left open and held the process', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-refused-');
    makeFiles(path.join(dir, 'in'), 4);
    expect((await node(dir, redis.url, 0, 1, [])).code).toBe(0);
    makeFiles(path.join(dir, 'in'), 6); // the input changed under the same pipeline run id and step
    const r = await node(dir, redis.url, 0, 1, ['--resume'], { timeoutMs: 20_000 });
    expect(r.signal, 'the refused node did not exit by itself').toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/input: expected \(--resume\) the input that job job-1\.parallel-run on the queue \S+ was enqueued with, got another input: 6 files/);
  });

  it('a rerun on a changed input under the same pipeline run id and step is refused, naming what changed (it had quietly reported the finished job); on the same input it reports the finished job', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-rerun-');
    const files = makeFiles(path.join(dir, 'in'), 4);
    expect((await node(dir, redis.url, 0, 1, [])).code).toBe(0);
    const before = fs.readFileSync(path.join(dir, 'out', 'parallel_run_step.txt'), 'utf8');
    fs.renameSync(files[1]!, path.join(dir, 'in', 'new.txt'));
    fs.writeFileSync(path.join(dir, 'in', 'newer.txt'), 'new\n');
    const r = await node(dir, redis.url, 0, 1, [], { timeoutMs: 20_000 });
    expect(r.signal, 'the refused node did not exit by itself').toBeNull();
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('input: expected the input that job job-1.parallel-run on the queue');
    expect(r.stderr).toContain(`5 files (the job's: 4 files); 2 files not in the job's input: ${path.join(dir, 'in', 'new.txt')}, ${path.join(dir, 'in', 'newer.txt')}; 1 file of the job's input is missing here`);
    expect(r.stderr).toMatch(/give it a new pipeline run id \(STEP_TELEMETRY_PIPELINE_RUN_ID\).*--resume/);
    expect(r.stderr).not.toMatch(/running mb-/);
    // the input as it was: the node joins the finished job, runs nothing and says so
    fs.renameSync(path.join(dir, 'in', 'new.txt'), files[1]!);
    fs.rmSync(path.join(dir, 'in', 'newer.txt'));
    const again = await node(dir, redis.url, 0, 1, []);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr + again.stdout).toMatch(/job job-1\.parallel-run on the queue is already over \(all 2 mini-batches finished, 0 failed\): this node runs nothing/);
    expect(readJson(path.join(stepFolder(dir), 'result.json'))).toMatchObject({ status: 'succeeded', items: { total: 4, succeeded: 4 } });
    expect(fs.readFileSync(path.join(dir, 'out', 'parallel_run_step.txt'), 'utf8')).toBe(before);
  });

  it('a node refused while the job\'s last node ends leaves the job to it: the last node merges the job', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-refused-join-');
    const elsewhere = await useTempDir('queue-refused-join-other-');
    makeFiles(path.join(dir, 'in'), 4);
    makeFiles(path.join(elsewhere, 'in'), 6); // another input under the same pipeline run id and step
    const marker = path.join(dir, 'go-on');
    const started = whenStderr((e) => runs(e) >= 1);
    const last = node(dir, redis.url, 0, 2, ['--', '--wait-file', marker, '--stderr-each'], { onOutput: started.onOutput, lock: '10' });
    await Promise.race([started.seen, last]);
    // the other node reaches Redis through a proxy that holds it as it reads the job's input listing
    // (to say what differs): it stands still there, refused but not gone, while the job's last node ends
    const proxy = await holdingProxy(redis.port, ':st:input\r\n');
    const refused = node(elsewhere, `redis://127.0.0.1:${proxy.port}/0`, 1, 2, [], { lock: '10' });
    await Promise.race([proxy.held, refused]);
    fs.writeFileSync(marker, '');
    const r0 = await last;
    proxy.release();
    const r1 = await refused;
    expect(r0.code, r0.stderr).toBe(0);
    expect(r1.code, r1.stderr).toBe(2);
    expect(r1.stderr).toContain('got another input: 6 files');
    expect(r0.stdout + r0.stderr).toMatch(/job merged: 4 rows/);
    expect(readJson(path.join(stepFolder(dir), 'result.json'))).toMatchObject({ status: 'succeeded', items: { total: 4, succeeded: 4 } });
    expect(readJsonl(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(4);
  });

  it('a late-joining node takes work', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-late-');
    const files = makeFiles(path.join(dir, 'in'), 40);
    // the first node's run() waits for a file that only the late node's run() writes: the first
    // node cannot finish the job alone, whatever the machine's load
    const marker = path.join(dir, 'late-node-ran');
    const started = whenStderr((e) => runs(e) >= 1);
    const first = node(dir, redis.url, 0, 2, ['--', '--wait-file', marker, '--stderr-each'], { onOutput: started.onOutput });
    await Promise.race([started.seen, first]);
    const late = await node(dir, redis.url, 1, 2, ['--', '--touch', marker]);
    const r0 = await first;
    expect(r0.code, r0.stderr).toBe(0);
    expect(late.code, late.stderr).toBe(0);
    expect(readJson(path.join(stepFolder(dir), 'node-1', 'result.json')).node.mini_batches.succeeded).toBeGreaterThan(0);
    const merged = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(merged).toMatchObject({ status: 'succeeded', items: { total: 40, succeeded: 40 } });
    expect(readJsonl(merged.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
  });

  it('every node killed: `step-telemetry merge` still writes the job (nodes lost), and a node that joins again finishes it', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-all-lost-');
    const files = makeFiles(path.join(dir, 'in'), 20);
    const args = ['--', '--sleep', '200', '--stderr-each'];
    const killed = await Promise.all([0, 1].map((r) => node(dir, redis.url, r, 2, args, { signalWhen: { signal: 'SIGKILL', when: (_o, e) => runs(e) >= 2 } })));
    for (const k of killed) expect(k.signal, k.stderr).toBe('SIGKILL');

    const m = await cli(['merge', stepFolder(dir), '--queue', redis.url], dir);
    expect(m.code, m.stderr).toBe(0);
    const lost = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(lost).toMatchObject({ status: 'failed', cause: { category: 'WorkerCrash', type: 'NodeLost' }, merged: { counted_by: 'queue', nodes: [{ status: 'lost' }, { status: 'lost' }] } });
    expect(lost.mini_batches.total).toBe(10);
    expect(lost.mini_batches.not_processed).toBeGreaterThan(0);
    const some = readJsonl(lost.output_file).map((r) => r.item as string);
    expect(some.length).toBe(lost.items.succeeded);
    expect(new Set(some).size).toBe(some.length);
    const doctor = await cli(['doctor', stepFolder(dir), '--json'], dir);
    expect(doctor.code).toBe(1);
    expect(JSON.parse(doctor.stdout).findings).toContainEqual(expect.objectContaining({ id: 'job-failed', severity: 'error', step: 'parallel-run', data: expect.objectContaining({ type: 'NodeLost' }) }));

    // node 0 starts again: it joins the job the queue still holds; the lost leases expire and it runs the rest
    const again = await node(dir, redis.url, 0, 2, ['--', '--stderr-each']);
    expect(again.code, again.stderr).toBe(0);
    const job = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(job).toMatchObject({ status: 'succeeded', items: { total: 20, succeeded: 20 }, merged: { nodes: [{ status: 'succeeded' }, { status: 'lost' }] } });
    expect(readJsonl(job.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
  });

  it('--resume on a queue that holds a failed job: its failed mini-batches run again, none that succeeded runs twice', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-resume-');
    const files = makeFiles(path.join(dir, 'in'), 20);
    // f013 fails every attempt: with allowed_failed_count 0 the job's verdict stops both nodes
    // a long lease: a node slowed down by the machine's load keeps it (no lost run but the releases under test)
    const lock = '10';
    const first = await Promise.all([0, 1].map((r) => node(dir, redis.url, r, 2, ['--allowed-failed-count', '0', '--run-max-try', '1', '--', '--throw', 'f013', '--sleep', '50', '--stderr-each'], { lock })));
    for (const r of first) expect(r.code, r.stderr).toBe(1);
    const failedJob = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(failedJob).toMatchObject({ status: 'failed', cause: { category: 'ThresholdExceeded' } });
    const done = new Set([0, 1].flatMap((r) => readJsonl(path.join(stepFolder(dir), `node-${r}`, 'output-journal.jsonl')).filter((e) => e.mb).map((e) => e.mb as string)));

    const resumed = await Promise.all([0, 1].map((r) => node(dir, redis.url, r, 2, ['--resume', '--', '--stderr-each'], { lock })));
    for (const r of resumed) expect(r.code, r.stderr).toBe(0);
    // regression: a mini-batch a stopping node gave back counted as a lost run (BullMQ counts every start)
    for (const r of [...first, ...resumed]) expect(r.stderr).not.toMatch(/was lost/);
    const ran = resumed.flatMap((r) => [...r.stderr.matchAll(/running (mb-\d+)/g)].map((x) => x[1]!));
    expect(ran).toContain('mb-00006');
    expect(ran.filter((id) => done.has(id))).toEqual([]);
    expect(new Set(ran).size).toBe(ran.length);
    const job = readJson(path.join(stepFolder(dir), 'result.json'));
    expect(job).toMatchObject({ status: 'succeeded', mini_batches: { total: 10, succeeded: 10, failed: 0 }, items: { total: 20, succeeded: 20, failed: 0 } });
    expect(readJsonl(job.output_file).map((r) => r.item).sort()).toEqual(files.map((f) => path.basename(f)));
    expect(fs.readFileSync(path.join(stepFolder(dir), 'failed-items.jsonl'), 'utf8')).toBe('');
  });

  it('a node whose event loop is blocked past the lock duration goes on: it does not take its Redis for unreachable', async () => {
    // regression: the liveness check ran on the first timer after the block, before the replies
    // that had arrived meanwhile were read, and the node stopped with a QueueError while Redis answered
    const redis = await startRedis();
    const dir = await useTempDir('queue-blocked-');
    makeFiles(path.join(dir, 'in'), 8);
    const marker = path.join(dir, 'go-on');
    let blocked = false;
    const r = await node(dir, redis.url, 0, 1, ['--', '--wait-file', marker, '--stderr-each'], {
      env: { NODE_OPTIONS: `--import ${pathToFileURL(BLOCKER).href}`, BLOCK_MS: String(1000 * Number(LOCK) + 700) },
      onOutput: (_o, e, pid) => {
        if (blocked || runs(e) < 1) return;
        blocked = true;
        fs.writeFileSync(marker, '');
        process.kill(pid, 'SIGUSR2');
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(readJson(path.join(stepFolder(dir), 'result.json'))).toMatchObject({ status: 'succeeded', items: { total: 8, succeeded: 8 } });
  });

  it('a Redis that goes away mid-job: a clear error naming the queue, no hang, consistent local files', async () => {
    const redis = await startRedis();
    const dir = await useTempDir('queue-gone-');
    makeFiles(path.join(dir, 'in'), 40);
    let stopped = false;
    const r = await node(dir, redis.url, 0, 1, ['--', '--sleep', '100', '--stderr-each'], {
      onOutput: (_o, e) => {
        if (!stopped && runs(e) >= 3) {
          stopped = true;
          void redis.stop();
        }
      },
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/QueueError: the queue at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable/);
    const folder = path.join(dir, 'telemetry', 'job-1', 'parallel-run');
    const result = readJson(path.join(folder, 'result.json'));
    expect(result).toMatchObject({ status: 'failed', cause: { category: 'QueueError' } });
    const journal = readJsonl(path.join(folder, 'output-journal.jsonl')).filter((e) => e.mb);
    expect(readJsonl(path.join(dir, 'out', 'parallel_run_step.txt'))).toHaveLength(journal.reduce((n, e) => n + ((e.r as number | undefined) ?? 0), 0));
  });
});

describe('step-telemetry merge on a static split', () => {
  it('sums the nodes: the job\'s counts, one output with every row, the failed items of every node', async () => {
    const dir = await useTempDir('merge-static-');
    const files = makeFiles(path.join(dir, 'in'), 10);
    const base = ['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--node-count', '2'];
    const env = { STEP_TELEMETRY_PIPELINE_RUN_ID: 'split-1' };
    // f009 fails on node 0 (mb-00004), within its thresholds
    const rs = await Promise.all([0, 1].map((r) => runRunner([...base, '--node-rank', String(r), '--run-max-try', '1', '--', '--throw', 'f009'], { cwd: dir, env })));
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const folder = path.join(dir, 'telemetry', 'split-1', 'parallel-run');
    const m = await cli(['merge', folder], dir);
    expect(m.code, m.stderr).toBe(0);
    const job = readJson(path.join(folder, 'result.json'));
    expect(job).toMatchObject({ status: 'succeeded', node_count: 2, mini_batches: { total: 5, succeeded: 4, failed: 1 }, items: { total: 10, succeeded: 8, failed: 2 }, merged: { counted_by: 'journals' } });
    expect(readJsonl(job.output_file).map((r) => r.item).sort()).toEqual(files.slice(0, 8).map((f) => path.basename(f)));
    expect(readJsonl(path.join(folder, 'failed-items.jsonl')).map((f) => path.basename(f.item)).sort()).toEqual(['f008.txt', 'f009.txt']);
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
