// Resource sampling (src/resources/) in real step processes: resources.jsonl one sample a line with
// the last one written on every exit path JavaScript runs on, GPUs through a stand-in nvidia-smi
// (CUDA_VISIBLE_DEVICES marked, the process gone with the step), nothing without nvidia-smi or with
// STEP_TELEMETRY_RESOURCES=false, a bad interval named at start, the decimation of long runs, and
// the cheap RSS reader a runner worker uses around each run() (/proc/self/statm).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ResidentMemory } from '../src/resources/proc.js';
import { ResourceLog } from '../src/resources/resource-log.js';
import { readJsonl } from './fixtures/runner/harness.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';

const STEP = fileURLToPath(new URL('./fixtures/resources/step.mjs', import.meta.url));
const FAKE_GPU_PATH = fileURLToPath(new URL('./fixtures/resources/', import.meta.url));

async function sampled(env: Record<string, string>, extra: Partial<Parameters<typeof runStepScript>[0]> = {}) {
  const dir = await useTempDir();
  const result = await runStepScript({
    script: STEP,
    env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_PIPELINE_RUN_ID: 'r1', STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '100', ...env },
    cwd: path.dirname(STEP),
    ...extra,
  });
  const folder = path.join(dir, 'r1', 'sampled');
  const file = path.join(folder, 'resources.jsonl');
  return { dir, folder, result, lines: fs.existsSync(file) ? readJsonl(file) : undefined };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('resource sampling', () => {
  it('resources.jsonl: one sample a line, the last marked final on end(), on process.exit() and on SIGTERM', async () => {
    const ended = await sampled({});
    expect(ended.result.code).toBe(0);
    const lines = ended.lines!;
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const last = lines[lines.length - 1]!;
    expect(last).toMatchObject({ worker: 'main', pid: ended.result.pid, final: true });
    for (const field of ['cpu_user_s', 'cpu_system_s', 'cpu_utilization', 'rss_bytes', 'heap_used_bytes', 'heap_total_bytes', 'heap_limit_bytes', 'external_bytes', 'array_buffers_bytes', 'eventloop_delay_p50_s', 'eventloop_delay_p99_s', 'eventloop_delay_max_s', 'eventloop_utilization', 'handles', 'period_s']) {
      expect(typeof last[field], field).toBe('number');
    }
    expect(Object.keys(last.gc_s)).toEqual(['major', 'minor', 'incremental', 'weakcb']);
    expect(last.heap_used_bytes).toBeGreaterThan(5 * 1.6e6); // the 5 arrays it keeps
    if (process.platform === 'linux') expect(typeof last.disk_write_bytes).toBe('number');
    // process index 0 samples its node too
    expect(last.node).toMatchObject({ cpus: expect.any(Number), memory_total_bytes: expect.any(Number), memory_available_bytes: expect.any(Number), cpu_utilization: expect.any(Number) });
    expect(last.gpus).toBeUndefined(); // no nvidia-smi on this PATH
    expect(lines.filter((l) => l.final)).toHaveLength(1);
    // every line's utilisation is a share of the CPUs; the first one's covers the time since the
    // process started (was: the CPU since then over the 2 ms since the sampler started, 8000 %)
    for (const l of lines) expect(l.cpu_utilization, JSON.stringify(l)).toBeLessThanOrEqual(1.5);
    expect(lines[0]!.period_s).toBeGreaterThan(0.05);
    // cumulative counters never go back
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.cpu_user_s).toBeGreaterThanOrEqual(lines[i - 1]!.cpu_user_s);

    const exited = await sampled({ FIXTURE_END: 'exit' });
    expect(exited.result.code).toBe(3);
    expect(exited.lines![exited.lines!.length - 1]!.final).toBe(true);

    const terminated = await sampled({ FIXTURE_END: 'sigterm' }, { signalAfter: { signal: 'SIGTERM', whenStdoutIncludes: 'READY' } });
    expect(terminated.result.code).toBe(143);
    expect(terminated.lines![terminated.lines!.length - 1]!.final).toBe(true);
  });

  it('GPUs through nvidia-smi on the PATH: per device, CUDA_VISIBLE_DEVICES marked, on /metrics; the nvidia-smi process ends with the step', async () => {
    const log = path.join(await useTempDir(), 'gpu.log');
    const run = await sampled({
      PATH: `${FAKE_GPU_PATH}${path.delimiter}${process.env.PATH ?? ''}`,
      CUDA_VISIBLE_DEVICES: '1',
      FAKE_GPU_LOG: log,
      STEP_TELEMETRY_PROMETHEUS_PORT: '0',
      FIXTURE_SCRAPE: '1',
    });
    expect(run.result.code).toBe(0);
    const withGpus = run.lines!.filter((l) => l.gpus);
    expect(withGpus.length).toBeGreaterThan(0);
    const gpus = withGpus[withGpus.length - 1]!.gpus;
    expect(gpus).toEqual([
      { index: 0, uuid: 'GPU-11111111-2222-3333-4444-555555555555', name: 'NVIDIA Fake A100', utilization: expect.any(Number), memory_used_bytes: 2048 * 1024 * 1024, memory_total_bytes: 40960 * 1024 * 1024, visible: false },
      { index: 1, uuid: 'GPU-66666666-7777-8888-9999-000000000000', name: 'NVIDIA Fake A100', utilization: 0.07, memory_total_bytes: 40960 * 1024 * 1024, visible: true }, // memory.used [N/A]: left out
    ]);
    expect(run.lines![0]!.cuda_visible_devices).toBe('1');
    const scrape = JSON.parse(run.result.stdout.split('\n').find((l) => l.startsWith('SCRAPE '))!.slice(7)) as string;
    expect(scrape).toMatch(/^hw_gpu_memory_limit_bytes\{pipeline="pipeline",step="sampled",node="0",hw_id="1"\} 42949672960$/m);
    expect(scrape).toMatch(/^process_memory_usage_bytes\{pipeline="pipeline",step="sampled",node="0",worker="main"\} \d+$/m);
    expect(scrape).toMatch(/^v8js_gc_duration_seconds_count\{pipeline="pipeline",step="sampled",node="0",worker="main",v8js_gc_type="minor"\} \d+$/m);
    // one nvidia-smi for the step, gone with it
    const starts = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(starts).toHaveLength(1);
    const pid = Number(starts[0]!.split(' ')[1]);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });

  it('STEP_TELEMETRY_RESOURCES=false samples nothing; a bad interval is named at start and the default used', async () => {
    const off = await sampled({ STEP_TELEMETRY_RESOURCES: 'false' });
    expect(off.result.code).toBe(0);
    expect(off.lines).toBeUndefined();
    expect(fs.existsSync(path.join(off.folder, 'logs.jsonl'))).toBe(true);

    const bad = await sampled({ STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '5 s' });
    expect(bad.result.code).toBe(0);
    expect(bad.result.stderr).toContain('STEP_TELEMETRY_RESOURCES_INTERVAL_MS: expected a whole number from 100 to 3600000');
    expect(bad.lines!.length).toBeGreaterThanOrEqual(2); // the first sample and the last
  });

  // /proc/self/statm exists on Linux only; elsewhere the reader is not used (RSS comes from process.memoryUsage)
  it.skipIf(process.platform !== 'linux')('the per-attempt RSS reader: a kept-open /proc/self/statm reads what rss() does', () => {
    const rss = new ResidentMemory();
    const keep = Buffer.alloc(64 * 1024 * 1024, 1); // 64 MiB resident
    const mine = rss.bytes();
    const node = process.memoryUsage.rss();
    expect(Math.abs(mine - node) / node, `${mine} vs ${node}`).toBeLessThan(0.02);
    expect(mine).toBeGreaterThan(keep.length);
    rss.close();
    expect(Math.abs(rss.bytes() - process.memoryUsage.rss()) / node).toBeLessThan(0.02); // closed: rss() itself
  });

  it('a long run stays bounded: every sample for 720 lines, then each line stands for twice as many; a new memory high is written at once', async () => {
    const file = path.join(await useTempDir(), 'resources.jsonl');
    const log = new ResourceLog(file, (e) => {
      throw e;
    });
    let written = 0;
    let rss = 100;
    // a week at 5 s, memory flat
    for (let tick = 0; tick < 7 * 24 * 720; tick++) {
      if (log.due(rss, 50)) {
        log.write('{}\n', rss, 50);
        written++;
      }
    }
    expect(written).toBeGreaterThan(3000);
    expect(written).toBeLessThan(4000);
    expect(log.samplesPerLine).toBe(256); // the cap: a line per 21 minutes at 5 s
    // memory climbs 15 % in one sample: written whatever the stride
    rss = 115;
    expect(log.due(rss, 50)).toBe(true);
    log.write('{}\n', rss, 50);
    expect(log.due(rss, 50)).toBe(false);
    log.close();
    expect(fs.readFileSync(file, 'utf8').split('\n').length - 1).toBe(written + 1);
  });
});
