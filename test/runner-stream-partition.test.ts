// The partition streams: the first mini-batches are handed out (and run) while the rest of the
// input is cut; the totals, the percentage threshold and the files wait for the end of the cut.
// The input is 4,000,000 short JSON Lines rows (32 MB): cutting it takes far longer than a slice
// (8 ms), so the first slice is published before the end, whatever the machine's load.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from './helpers/run-step.js';
import { pathToFileURL } from 'node:url';
import { BEHAVE, ROOT, readCsv, readJson, readJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';
import { Accounting } from '../src/runner/accounting.js';
import { resolveRunConfig } from '../src/runner/config.js';
import { partition, startPartition } from '../src/runner/partition.js';
import { progressLine, type ProgressSnapshot } from '../src/runner/progress.js';
import { LocalSource } from '../src/runner/source.js';
import type * as Package from '../src/index.js';

// the built package, as a user imports it (workers are forked from dist/runner/worker.js)
const api = (await import(pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href)) as typeof Package;

const ROWS = 4_000_000;
const SIZE = '64KB';
let tmp: TempDir;
let input: string;

beforeAll(async () => {
  tmp = await makeTempDir('runner-stream-');
  input = path.join(tmp.path, 'rows.jsonl');
  // the first row is the one the runs below fail on
  const fd = fs.openSync(input, 'w');
  fs.writeSync(fd, '{"x":"first"}\n');
  const block = '{"x":1}\n'.repeat(100_000);
  for (let i = 0; i < ROWS / 100_000; i++) fs.writeSync(fd, block);
  fs.closeSync(fd);
});

afterAll(() => tmp?.cleanup());

const config = (extra: Record<string, unknown> = {}) => resolveRunConfig({ entry_script: BEHAVE, input, input_type: 'tabular', mini_batch_size: SIZE, ...extra }, {}, {}, tmp.path);

/** The mini-batches and items of the whole cut, as the runner finds them at its end. */
async function totals(): Promise<{ miniBatches: number; items: number }> {
  const whole = await partition(config());
  return { miniBatches: whole.miniBatches.length, items: whole.items };
}

/** Epoch ms from an ISO time with more than milliseconds. */
const epoch = (iso: string): number => Date.parse(iso.replace(/(\.\d{3})\d*Z$/, '$1Z'));

/** When the partition span of a run folder ends, and when its first mini-batch started (processed-mini-batches.csv). */
function cutEndAndFirstStart(folder: string): { cutEnd: number; firstStart: number } {
  const span = readJsonl(path.join(folder, 'spans.jsonl')).find((s) => s.name === 'partition')!;
  const first = readCsv(path.join(folder, 'processed-mini-batches.csv')).find((r) => r.mini_batch_id === 'mb-00000')!;
  return { cutEnd: epoch(span.start) + span.duration_ms, firstStart: Date.parse(first.start_time!) };
}

/** The processes `pid` forked that have not been reaped (Linux: /proc/<pid>/task/<tid>/children). */
function children(pid: number): number[] {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
}

describe('the partition streams', () => {
  it('hands out the first slice before the cut ends; totals grow until then, and a percentage threshold waits for them', async () => {
    const c = config({ allowed_failed_percent: 0.5 });
    const cut = startPartition(c);
    await cut.first;
    expect(cut.final).toBe(false);
    const source = new LocalSource(cut);
    const acc = new Accounting(c, source);
    const ready = source.miniBatches;
    expect(ready).toBeGreaterThan(0);
    expect(ready).toBeLessThan(200); // one failed is 0.5 % of 200: more than that of what is cut so far
    expect(source.take()?.mb.id).toBe('mb-00000');
    for (let i = 1; i < ready; i++) source.take();
    expect(source.take()).toBeUndefined(); // the rest is not cut yet
    acc.miniBatchFinished(false, 0, 8192);
    // 1 of the mini-batches cut so far is more than 0.5 %, but not of the job's: not yet decided
    expect(acc.exceeded()).toBeUndefined();
    expect(acc.complete).toBe(false);
    let grown = 0;
    cut.onGrow = () => {
      grown++;
      source.grew();
    };
    await cut.done;
    expect(cut.final).toBe(true);
    expect(grown).toBeGreaterThan(0);
    expect({ miniBatches: source.miniBatches, items: source.items }).toEqual(await totals());
    expect(source.take()?.mb.id).toBe(`mb-${String(ready).padStart(5, '0')}`);
    expect(acc.exceeded()).toBeUndefined(); // 1 of about 490
    for (let i = 0; i < 2; i++) acc.miniBatchFinished(false, 0, 8192);
    expect(acc.exceeded()).toMatch(/^allowed_failed_percent exceeded: 3 of \d+ mini-batches failed/);
  });

  it('says the totals are those so far while the input is cut: no percentage, no ETA', () => {
    const p: ProgressSnapshot = { elapsedMs: 1000, itemsTotal: 400, itemsSucceeded: 100, itemsFailed: 0, miniBatchesTotal: 40, miniBatchesDone: 10, miniBatchesFailed: 0, running: 2, retries: 0, timeouts: 0, workerRestarts: 0 };
    expect(progressLine(p)).toMatch(/^25% 100\/400 items .* ETA 0:03$/);
    expect(progressLine({ ...p, totalsPartial: true })).toBe('100/400+ items (0 failed), 10/40+ mini-batches (0 failed, 2 running, the input still being cut), 100.0 items/s, ETA ?');
  });

  it('runs the first mini-batches while the rest is cut, and ends with the totals, the manifest and a percentage threshold of the whole input', async () => {
    const dir = path.join(tmp.path, 'percent');
    fs.mkdirSync(dir);
    // mb-00000 fails: 1 of the ~490 mini-batches is under 0.5 %, 1 of those cut in the first slices is not
    const r = await runRunner(
      ['--entry-script', BEHAVE, '--input', input, '--input-type', 'tabular', '--mini-batch-size', SIZE, '--process-count-per-node', '2', '--output-action', 'summary_only', '--run-max-try', '1', '--allowed-failed-percent', '0.5', '--', '--throw', 'first'],
      { cwd: dir, timeoutMs: 120_000 },
    );
    expect(r.stderr).not.toMatch(/allowed_failed_percent exceeded/);
    expect(r.code).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const { miniBatches, items } = await totals();
    const manifest = readJsonl(path.join(folder, 'mini-batches.jsonl'));
    expect(manifest).toHaveLength(miniBatches);
    const failed = manifest[0]!.items as number; // the items of mb-00000
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', mini_batches: { total: miniBatches, failed: 1, not_processed: 0 }, items: { total: items, failed, succeeded: items - failed } });
    const { cutEnd, firstStart } = cutEndAndFirstStart(folder);
    expect(firstStart).toBeLessThan(cutEnd);
    expect(manifest.at(-1)).toMatchObject({ mini_batch_id: `mb-${String(miniBatches - 1).padStart(5, '0')}`, bytes: [expect.any(Number), fs.statSync(input).size] });
    const root = readJsonl(path.join(folder, 'spans.jsonl')).find((s) => s.attributes?.['parallel_run.items'] !== undefined)!;
    expect(root.attributes).toMatchObject({ 'parallel_run.items': items, 'parallel_run.mini_batches': miniBatches });
    expect(r.stdout).toContain(`${items} items in ${miniBatches} mini-batches`);
  });

  it('workers forked for a share the cut did not give (inputs that cannot be read) are let go when the cut ends (they idled until the job’s end)', async () => {
    const dir = path.join(tmp.path, 'let-go');
    fs.mkdirSync(path.join(dir, 'in'), { recursive: true });
    // three inputs that cannot be read, then three rows of a mini-batch each: 3 to run for 4 workers
    for (let i = 1; i <= 3; i++) fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'in', `0-missing-${i}.jsonl`));
    fs.writeFileSync(path.join(dir, 'in', 'rows.jsonl'), '{"i":1}\n{"i":2}\n{"i":3}\n');
    const go = path.join(dir, 'go');
    let cutEnded!: (pid: number) => void;
    const ended = new Promise<number>((resolve) => (cutEnded = resolve));
    const run = runRunner(
      ['--entry-script', BEHAVE, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '1', '--process-count-per-node', '4', '--allowed-failed-count', '3', '--', '--wait-file', go],
      { cwd: dir, onOutput: (stdout, _stderr, pid) => /6 items in 6 mini-batches/.test(stdout) && cutEnded(pid) },
    );
    try {
      // the totals are printed once the cut has ended; the three mini-batches run until `go` exists
      const pid = await ended;
      let forked = children(pid);
      for (const until = Date.now() + 10_000; forked.length > 3 && Date.now() < until; forked = children(pid)) await new Promise((r) => setTimeout(r, 20));
      expect(forked).toHaveLength(3);
    } finally {
      fs.writeFileSync(go, '');
    }
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', mini_batches: { total: 6, succeeded: 3, failed: 3 } });
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers.map((w) => [w.process_index, w.end_reason])).toEqual([['1', 'stopped'], ['2', 'stopped'], ['3', 'stopped']]);
    expect(workers.reduce((n, w) => n + Number(w.attempts), 0)).toBe(3);
    const files = fs.readdirSync(folder);
    expect(files.filter((f) => /^step\.process-\d+\.json$/.test(f)).sort()).toEqual(['step.process-1.json', 'step.process-2.json', 'step.process-3.json']);
    expect(files.filter((f) => f.includes('process-4'))).toEqual([]);
  });

  it('a runner with more workers than mini-batches to run (inputs that cannot be read) loads its step without waiting for those it has no work for (the first slice counted the unreadable inputs as work for a worker: the workers left without one were awaited, and the rest of the cut held behind them, the full 500 ms)', async () => {
    const dir = path.join(tmp.path, 'no-wait');
    fs.mkdirSync(path.join(dir, 'in'), { recursive: true });
    // three inputs that cannot be read, then two rows of a mini-batch each, for 4 workers
    for (let i = 1; i <= 3; i++) fs.symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'in', `0-missing-${i}.jsonl`));
    fs.writeFileSync(path.join(dir, 'in', 'rows.jsonl'), '{"i":1}\n{"i":2}\n');
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '1', '--process-count-per-node', '4', '--allowed-failed-count', '3'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', mini_batches: { total: 5, succeeded: 2, failed: 3 } });
    // five small inputs take milliseconds to cut; the cut held until the step loaded took 500 ms and more
    const span = readJsonl(path.join(folder, 'spans.jsonl')).find((s) => s.name === 'partition')!;
    expect(span.duration_ms).toBeLessThan(500);
  });

  it('a job that ends before the cut does (a signal) still writes the totals and the manifest of the whole input', async () => {
    const dir = path.join(tmp.path, 'early-end');
    fs.mkdirSync(dir);
    process.env.STEP_TELEMETRY_DIR = path.join(dir, 'telemetry');
    // a step of the caller's: the job begins right after the first slice, and the signal ends it at once
    const step = await api.startStep({ name: 'stream' });
    const controller = new AbortController();
    controller.abort();
    const result = await api.runParallel({ entry_script: BEHAVE, input, input_type: 'tabular', mini_batch_size: SIZE, output_action: 'summary_only' }, { step, signal: controller.signal, progress: 'silent' });
    await step.end();
    const { miniBatches, items } = await totals();
    expect(result).toMatchObject({ status: 'terminated', mini_batches: { total: miniBatches, succeeded: 0, not_processed: miniBatches }, items: { total: items } });
    expect(readJson(result.files.result!)).toMatchObject({ mini_batches: { total: miniBatches }, items: { total: items } });
    expect(readJsonl(path.join(step.runFolder!, 'mini-batches.jsonl'))).toHaveLength(miniBatches);
  });
});
