// The doctor's resource findings on real runner runs (`step-telemetry parallel-run` as a child
// process, resources sampled every 100 ms): a worker that leaks, one past --max-old-space-size, one
// killed by the kernel's out-of-memory killer in a memory cgroup, sleeping (I/O-bound) and computing
// (CPU-bound) mini-batches, a blocked event loop. A run that does none of it gets none of them.
// What each worker measured around run() (CPU, RSS, heap growth) is checked on the attempt spans
// and in processed-mini-batches.csv.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { baseChildEnv, useTempDir } from './helpers/run-step.js';
import { CLI, cli, doctorJson, makeInputs } from './fixtures/report/runs.js';
import { readCsv, readJson, readJsonl } from './fixtures/runner/harness.js';

const ENTRY = fileURLToPath(new URL('./fixtures/resources/entry.mjs', import.meta.url));
const RESOURCE_CHECKS = ['memory-growth', 'out-of-memory', 'io-bound', 'cpu-saturated', 'event-loop-blocked'];

interface Spec {
  dir: string;
  name: string;
  inputs: number;
  flags?: string[];
  entryArgs: string[];
  env?: Record<string, string>;
}

async function run(spec: Spec): Promise<{ folder: string; stdout: string; code: number | null }> {
  const input = makeInputs(path.join(spec.dir, `in-${spec.name}`), spec.inputs, (i) => `f${String(i).padStart(3, '0')}.txt`);
  const r = await cli(
    ['parallel-run', '--entry-script', ENTRY, '--input', input, '--step-name', spec.name, '--mini-batch-size', '1', '--progress-interval', '60', ...(spec.flags ?? []), '--', ...spec.entryArgs],
    { STEP_TELEMETRY_DIR: path.join(spec.dir, 'tel'), STEP_TELEMETRY_PIPELINE_RUN_ID: spec.name, STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '100', ...spec.env },
    120_000,
  );
  const folder = path.join(spec.dir, 'tel', spec.name, spec.name);
  if (!fs.existsSync(path.join(folder, 'step.json'))) throw new Error(`no run folder (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return { folder, stdout: r.stdout + r.stderr, code: r.code };
}

const ids = (json: { findings: { id: string }[] }): string[] => json.findings.map((f) => f.id);

/** The attributes of the mini-batch attempt spans, by mini-batch id. */
function attemptSpans(folder: string): Map<string, Record<string, any>> {
  const spans = readJsonl(path.join(folder, 'spans.jsonl')).filter((s) => s.name === 'mini-batch');
  return new Map(spans.map((s) => [s.attributes['mini_batch.id'] as string, s.attributes as Record<string, any>]));
}
const LINUX = process.platform === 'linux';
const find = (json: { findings: { id: string; data: Record<string, any>; evidence: string[]; title: string; fix: string; severity: string }[] }, id: string) => json.findings.find((f) => f.id === id);

/** A memory cgroup we may create (root, cgroup v1 or v2 with the memory controller), or undefined. */
function memoryCgroupRoot(): { dir: string; limitFile: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const v1 = own.find((l) => /^\d+:memory:/.test(l));
    if (v1) {
      const dir = path.join('/sys/fs/cgroup/memory', v1.split(':')[2]!);
      if (fs.existsSync(path.join(dir, 'memory.limit_in_bytes'))) return { dir, limitFile: 'memory.limit_in_bytes' };
    }
    const v2 = own.find((l) => l.startsWith('0::'));
    if (v2) {
      const dir = path.join('/sys/fs/cgroup', v2.slice(3));
      if (fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').includes('memory')) return { dir, limitFile: 'memory.max' };
    }
  } catch {
    // no cgroup file system we can use
  }
  return undefined;
}
const CGROUP = memoryCgroupRoot();

describe('doctor on resources', () => {
  it('a worker that keeps 3 MiB per mini-batch: memory-growth with the slope per mini-batch and the time to the heap limit; latency-trend says memory grows with it', async () => {
    const dir = await useTempDir();
    // each call waits 2 ms more than the last: over 80 mini-batches (10 groups for latency-trend) a
    // trend that the noise of a loaded machine does not hide (1 ms over 60 was lost in it)
    const { folder } = await run({ dir, name: 'leak', inputs: 80, flags: ['--process-count-per-node', '1'], entryArgs: ['--leak', '3', '--wait-per-kept', '2', '--sleep', '5'] });
    // the worker's samples: one a line, the last written on its way out
    const lines = readJsonl(path.join(folder, 'resources.process-1.jsonl'));
    expect(lines.length).toBeGreaterThan(8);
    expect(lines.every((l) => l.worker === 'worker-0' && typeof l.rss_bytes === 'number' && typeof l.heap_limit_bytes === 'number' && typeof l.eventloop_delay_p99_s === 'number')).toBe(true);
    expect(lines[lines.length - 1]!.final).toBe(true);
    // the main thread's run-queue wait, cumulative (Linux: /proc/self/schedstat)
    if (LINUX) for (let i = 1; i < lines.length; i++) expect(lines[i]!.cpu_wait_s).toBeGreaterThanOrEqual(lines[i - 1]!.cpu_wait_s);
    expect(lines[lines.length - 1]!.heap_used_bytes - lines[0]!.heap_used_bytes).toBeGreaterThan(100 * 1024 * 1024);
    // each attempt span and report row carries what run() used: CPU, RSS at its end, heap growth
    const spans = attemptSpans(folder);
    expect(spans.size).toBe(80);
    for (const a of spans.values()) {
      expect(a['mini_batch.cpu_ms']).toBeGreaterThanOrEqual(0);
      expect(a['mini_batch.rss_bytes']).toBeGreaterThan(20 * 1024 * 1024);
      expect(Number.isInteger(a['mini_batch.heap_growth_bytes'])).toBe(true);
    }
    const rows = readCsv(path.join(folder, 'processed-mini-batches.csv'));
    const last = rows.find((r) => r.mini_batch_id === 'mb-00079')!;
    expect(Number(last.rss_bytes)).toBe(spans.get('mb-00079')!['mini_batch.rss_bytes']);
    expect(Number(last.cpu_seconds)).toBeCloseTo(spans.get('mb-00079')!['mini_batch.cpu_ms'] / 1000, 3);
    expect(Number(last.heap_growth_bytes)).toBe(spans.get('mb-00079')!['mini_batch.heap_growth_bytes']);
    // the worker's RSS at the end of its last mini-batch holds the 240 MiB it kept
    expect(Number(last.rss_bytes)).toBeGreaterThan(150 * 1024 * 1024);

    const { json } = await doctorJson(folder);
    const growth = find(json, 'memory-growth');
    expect(growth, JSON.stringify(json.findings, null, 2)).toBeDefined();
    const p = growth!.data.processes[0];
    expect(p).toMatchObject({ worker: 'worker-0', process: 1 });
    expect(p.bytesPerMiniBatch / 1024 / 1024).toBeGreaterThan(2.5);
    expect(p.bytesPerMiniBatch / 1024 / 1024).toBeLessThan(3.5);
    expect(p.secondsToLimit).toBeGreaterThan(0);
    expect(p.miniBatchesToLimit).toBeGreaterThan(100);
    expect(growth!.evidence.join('\n')).toMatch(/per mini-batch over \d+ mini-batches.*\n.*heap grew across run\(\) by a median \+.* per attempt.*\n.*reaches the V8 heap limit of .* in about/);
    // the worker's own figure, across each run(): the 3 MiB it keeps, and the garbage it made meanwhile
    expect(p.heapGrowthPerAttemptBytes / 1024 / 1024).toBeGreaterThan(2.5);
    const latency = find(json, 'latency-trend');
    expect(latency, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(latency!.data.memoryGrowth).toBe(true);
    expect(latency!.evidence.join('\n')).toMatch(/memory grows over the same run \(memory-growth\): worker-0 \(heap .*per mini-batch/);
  });

  it('the same run without the leak: no resource finding (and no latency-trend)', async () => {
    const dir = await useTempDir();
    const { folder } = await run({ dir, name: 'steady', inputs: 60, flags: ['--process-count-per-node', '1'], entryArgs: ['--sleep', '25'] });
    const { json, code } = await doctorJson(folder);
    expect(json.findings, JSON.stringify(json.findings, null, 2)).toEqual([]);
    expect(code).toBe(0);
    // memory-growth was judged, not skipped for want of samples
    expect(json.skipped.map((s) => s.id)).not.toContain('memory-growth');
  });

  it("a worker past --max-old-space-size: out-of-memory names the mini-batch and its heap limit; result.json and error-summary.txt name V8's 'JavaScript heap out of memory', not its native frames (issue 10 item 11)", async () => {
    const dir = await useTempDir();
    // error_threshold 0: the out-of-memory failure is what fails the job, so result.json carries it as the cause
    const { folder, code } = await run({ dir, name: 'heap', inputs: 12, flags: ['--run-max-try', '1', '--error-threshold', '0'], entryArgs: ['--oom-on', 'f005', '--sleep', '5'], env: { NODE_OPTIONS: '--max-old-space-size=48' } });
    expect(code).toBe(1);
    const cause = readJson(path.join(folder, 'result.json')).cause as { message: string };
    const summary = fs.readFileSync(path.join(folder, 'error-summary.txt'), 'utf8');
    expect(cause.message).toMatch(/WorkerCrash × 1 item \(first: worker-0 \(pid \d+\) ran out of JavaScript heap memory \(V8: "FATAL ERROR: /);
    expect(summary).toMatch(/ran out of JavaScript heap memory \(V8: "FATAL ERROR: .*JavaScript heap out of memory"; the heap limit is --max-old-space-size\) while running mb-00005/);
    for (const text of [cause.message, summary]) expect(text).not.toMatch(/\d+: 0x[0-9a-f]+ /); // V8's native frames stay in console.process-N.log
    expect(fs.readFileSync(path.join(folder, 'console.process-1.log'), 'utf8')).toMatch(/\d+: 0x[0-9a-f]+ /);
    expect(summary).toContain('OutOfMemory: worker-');
    const { json } = await doctorJson(folder);
    const oom = find(json, 'out-of-memory');
    expect(oom, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(oom!.severity).toBe('error');
    expect(oom!.data.cases).toHaveLength(1);
    expect(oom!.data.cases[0]).toMatchObject({ kind: 'v8-heap', miniBatch: 'mb-00005', attempt: 1 });
    // the limit V8 derives from --max-old-space-size=48 on this Node (old space plus the young
    // generation: about 112 MiB on Node 20, 240 MiB on Node 24), far below the default of gigabytes
    const limit = Number(execFileSync(process.execPath, ['--max-old-space-size=48', '-p', 'require("v8").getHeapStatistics().heap_size_limit'], { encoding: 'utf8' }));
    expect(oom!.data.cases[0].lastSample.heapLimitBytes).toBe(limit);
    expect(oom!.title).toContain('mb-00005');
    expect(oom!.evidence[0]).toMatch(/running mb-00005 \(attempt 1\): V8 stopped it at its heap limit.*V8 heap limit/);
    expect(oom!.fix).toContain('--max-old-space-size');
  });

  // skipped only where this process may not create a memory cgroup (not root, or no cgroup v1/v2 memory controller): without a limit of its own the kernel OOM killer can only be provoked by exhausting the whole machine
  it.skipIf(CGROUP === undefined)('a worker killed by the kernel out-of-memory killer in a 250 MiB memory cgroup: out-of-memory with the cgroup limit and its last memory', async () => {
    const dir = await useTempDir();
    const group = path.join(CGROUP!.dir, `step-telemetry-test-${process.pid}-${Date.now()}`);
    fs.mkdirSync(group);
    try {
      fs.writeFileSync(path.join(group, CGROUP!.limitFile), String(250 * 1024 * 1024));
      // the runner (and its workers) start inside the cgroup: a shell moves itself there, then execs node
      const input = makeInputs(path.join(dir, 'in'), 12, (i) => `f${String(i).padStart(3, '0')}.txt`);
      const wrapper = path.join(dir, 'in-cgroup.sh');
      fs.writeFileSync(wrapper, `#!/bin/sh\necho $$ > '${path.join(group, 'cgroup.procs')}'\nexec "$@"\n`, { mode: 0o755 });
      const env = { ...baseChildEnv(), STEP_TELEMETRY_DIR: path.join(dir, 'tel'), STEP_TELEMETRY_PIPELINE_RUN_ID: 'rss', STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '100' };
      const args = [CLI, 'parallel-run', '--entry-script', ENTRY, '--input', input, '--step-name', 'rss', '--mini-batch-size', '1', '--progress-interval', '60', '--run-max-try', '1', '--', '--rss-on', 'f005', '--sleep', '5'];
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('/bin/sh', [wrapper, process.execPath, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const folder = path.join(dir, 'tel', 'rss', 'rss');
      const { json } = await doctorJson(folder);
      const oom = find(json, 'out-of-memory');
      expect(oom, JSON.stringify(json.findings, null, 2)).toBeDefined();
      expect(oom!.data.cases[0]).toMatchObject({ kind: 'sigkill', miniBatch: 'mb-00005' });
      expect(oom!.data.cases[0].lastSample.memoryLimitBytes).toBe(250 * 1024 * 1024);
      expect(oom!.evidence[0]).toMatch(/killed by SIGKILL; last sample .* RSS \d+ MiB of the 250 MiB cgroup limit/);
      expect(oom!.fix).toMatch(/kernel's out-of-memory killer/);
    } finally {
      for (let i = 0; i < 50 && fs.existsSync(group); i++) {
        try {
          fs.rmdirSync(group);
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // its last processes are still leaving
        }
      }
    }
  });

  it('sleeping mini-batches: io-bound', async () => {
    const dir = await useTempDir();
    // one of them spins 200 ms first: on a CPU (or queued for one) for most of its run()
    const { folder } = await run({ dir, name: 'io', inputs: 30, flags: ['--process-count-per-node', '1'], entryArgs: ['--sleep', '180', '--block-on', 'f010', '--block-ms', '200'] });
    const { json } = await doctorJson(folder);
    expect(ids(json).sort(), JSON.stringify(json.findings, null, 2)).toEqual(['io-bound']);
    const io = find(json, 'io-bound')!;
    expect(io.data.ratio).toBeLessThan(0.3);
    expect(io.data.miniBatches).toBe(30);
    expect(io.data.basis).toBe('attempts');
    // which mini-batches waited: every one that slept (the one that spun too, when a loaded machine gave it little CPU)
    const sleepers = Array.from({ length: 30 }, (_, i) => `mb-${String(i).padStart(5, '0')}`).filter((id) => id !== 'mb-00010');
    expect(io.data.waited.count).toBeGreaterThanOrEqual(29);
    expect(new Set(io.data.waited.miniBatches).size).toBe(20); // the first 20, the longest waits first
    expect(io.evidence[1]).toMatch(/^(?:29|30) of them spent under 30% of run\(\) on a CPU; the longest waits: mb-\d{5} \d+ ms in run\(\), [\d.]+ (?:ms|µs) of CPU;/);
    // what each run() used: the spinning one far more CPU than those that slept
    const spans = attemptSpans(folder);
    const slept = sleepers.map((id) => spans.get(id)!['mini_batch.cpu_ms'] as number).sort((a, b) => a - b);
    expect(spans.get('mb-00010')!['mini_batch.cpu_ms']).toBeGreaterThan(5 * slept[Math.floor(slept.length / 2)]!);
    for (const id of sleepers) expect(spans.get(id)!['mini_batch.cpu_ms'] / spans.get(id)!['mini_batch.run_ms']).toBeLessThan(0.3);
  });

  // apart from the sleeping run above: a 1.5 s spin in 6 s of sleeps is CPU enough, with the time it
  // waits for a core on a loaded machine, to make the run no longer I/O-bound as a whole
  it('one mini-batch that spins 1.5 s: event-loop-blocked names that mini-batch', async () => {
    const dir = await useTempDir();
    const { folder } = await run({ dir, name: 'blocked', inputs: 30, flags: ['--process-count-per-node', '1'], entryArgs: ['--sleep', '20', '--block-on', 'f010'] });
    const { json } = await doctorJson(folder);
    const blocked = find(json, 'event-loop-blocked');
    expect(blocked, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(blocked!.data.longestSeconds).toBeGreaterThan(1.3);
    expect(blocked!.data.miniBatches).toEqual(['mb-00010']);
  });

  it('computing mini-batches on twice as many workers as cores: cpu-saturated, and not io-bound', async () => {
    const dir = await useTempDir();
    const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    const { folder } = await run({ dir, name: 'cpu', inputs: 20 * cores, flags: ['--process-count-per-node', String(2 * cores)], entryArgs: ['--compute', '80'] });
    const { json } = await doctorJson(folder);
    const saturated = find(json, 'cpu-saturated');
    expect(saturated, JSON.stringify(json.findings, null, 2)).toBeDefined();
    expect(saturated!.data).toMatchObject({ cpus: cores, workers: 2 * cores });
    // run() was on a CPU (per attempt) or its worker queued for one (its run-queue wait) nearly all the time: the spin is ready to run throughout
    if (LINUX) {
      expect(saturated!.data.cpuShare + saturated!.data.cpuWaitShare, JSON.stringify(saturated!.data)).toBeGreaterThan(0.7);
      expect(saturated!.evidence[2]).toMatch(/^while run\(\) ran, a mini-batch was on a CPU \d+% of the time \(measured around each of \d+ run\(\)s\) and waited for one \d+% .*run\(\) took about [\d.]+× as long/);
    }
    expect(ids(json)).not.toContain('io-bound');
    expect(ids(json).filter((id) => RESOURCE_CHECKS.includes(id))).toEqual(['cpu-saturated']);
  });
});
