// Benchmark of resource sampling (src/resources/; `npm run build` first). In one go:
//   one sample      the CPU one sample takes in a live step (process and node, prom-client and
//                   resources.jsonl), and a worker's snapshot() and since() (what it takes around each
//                   run(): CPU, RSS, heap, run-queue wait), in a burst as short mini-batches take them
//   idle step       CPU of an idle step process over WINDOW s with sampling on (default interval)
//                   and off, side by side: the difference per minute is what sampling costs
//   runner          `step-telemetry parallel-run` with sampling on and off, alternating rounds,
//                   mini-batches of 10 ms of CPU work and no-op ones, 1 worker: the steady-state
//                   time a worker spends per mini-batch (from the mini-batch spans), and the CPU of
//                   all its processes per mini-batch (/proc: reaped children), medians
// Prints tables, then one JSON line with the figures.
//   node bench/resources.mjs [WINDOW_S (default 30)] [MINI_BATCHES (default 2000)]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrate } from './runner/busy.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cli = here('../dist/cli.js');
const windowS = Number(process.argv[2] ?? 30);
const n = Number(process.argv[3] ?? 2000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-resources-'));
const env = { ...process.env };
for (const k of Object.keys(env)) if (/^(OTEL_|APPLICATIONINSIGHTS_|STEP_TELEMETRY_|AZUREML_|VITEST)/i.test(k) || k === 'NODE_OPTIONS') delete env[k];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // the Linux default
}
/** CPU ms of this process's reaped children (Linux /proc), or NaN elsewhere. */
function childCpuMs() {
  try {
    const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return ((Number(f[13]) + Number(f[14])) * 1000) / clockTicks;
  } catch {
    return Number.NaN;
  }
}
const figures = {};

/** A child that starts a step, then waits `ms` (or measures samples) and prints one JSON line. */
function stepChild(code, extraEnv) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...env, STEP_TELEMETRY_DIR: path.join(tmp, 'steps'), STEP_TELEMETRY_CONSOLE: 'false', ...extraEnv },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (c) => (c === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`exit ${c}`))));
  });
}
const importStep = `import { startStep } from ${JSON.stringify(path.join(here('../dist'), 'index.js'))};`;

try {
  // 1. one sample, and a snapshot
  const sample = await stepChild(
    `${importStep}
    const step = await startStep({ name: 'bench-sample' });
    const s = step.resources;
    for (let i = 0; i < 200; i++) s.sample(false);
    const rounds = 2000;
    const c0 = process.cpuUsage(); const t0 = performance.now();
    for (let i = 0; i < rounds; i++) s.sample(false);
    const c = process.cpuUsage(c0); const wall = performance.now() - t0;
    let sink = 0; const k = 200_000;
    const c1 = process.cpuUsage();
    for (let i = 0; i < k; i++) sink += s.since(s.snapshot())?.[1] ?? 0;
    const c2 = process.cpuUsage(c1);
    const snap = (c2.user + c2.system) / 1000 / k; // CPU ms per pair: a shared machine's waits left out
    await step.end();
    console.log(JSON.stringify({ sampleUs: (wall * 1000) / rounds, sampleCpuUs: (c.user + c.system) / rounds, snapshotUs: snap * 1000, sink: sink > 0 }));`,
    { STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '3600000' },
  );
  figures.sample = sample;
  console.log('one resource sample (process + node, to prom-client and resources.jsonl), and what a worker takes around one run() (snapshot() + since()):');
  console.table([{ 'sample, wall': `${sample.sampleUs.toFixed(0)} µs`, 'sample, CPU': `${sample.sampleCpuUs.toFixed(0)} µs`, 'per minute at 5 s (12 samples)': `${((sample.sampleCpuUs * 12) / 1000).toFixed(2)} ms`, 'snapshot() + since()': `${sample.snapshotUs.toFixed(1)} µs` }]);

  // 2. an idle step, sampling on (default interval) and off, side by side
  const idle = (extra) =>
    stepChild(
      `${importStep}
      const step = await startStep({ name: 'bench-idle' });
      await new Promise((r) => setTimeout(r, 3000)); // start-up (module compilation) is not the cost
      const c0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, ${windowS * 1000}));
      const c = process.cpuUsage(c0);
      await step.end();
      console.log(JSON.stringify({ cpuMs: (c.user + c.system) / 1000 }));`,
      extra,
    );
  const [on, off] = await Promise.all([idle({}), idle({ STEP_TELEMETRY_RESOURCES: 'false' })]);
  const perMinute = (r) => (r.cpuMs * 60) / windowS;
  figures.idle = { onMsPerMinute: perMinute(on), offMsPerMinute: perMinute(off) };
  console.log(`\nCPU of an idle step process over ${windowS} s, per minute:`);
  console.table([
    { sampling: 'on (every 5 s)', 'CPU per minute': `${perMinute(on).toFixed(1)} ms` },
    { sampling: 'off', 'CPU per minute': `${perMinute(off).toFixed(1)} ms` },
    { sampling: 'cost', 'CPU per minute': `${(perMinute(on) - perMinute(off)).toFixed(1)} ms (${(((perMinute(on) - perMinute(off)) / 60_000) * 100).toFixed(3)} % of a core)` },
  ]);

  // 3. the runner, sampling on and off
  const files = path.join(tmp, 'in');
  fs.mkdirSync(files);
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(files, `f${String(i).padStart(6, '0')}`), '');
  const tenMs = calibrate(10);
  const runner = (tag, iterations, sampling) => {
    const telemetry = path.join(tmp, `t-${tag}`);
    const cpu0 = childCpuMs();
    execFileSync(
      process.execPath,
      [cli, 'parallel-run', '--entry-script', here('./runner/noop-entry.mjs'), '--input', files, '--mini-batch-size', '1', '--process-count-per-node', '1', '--output-action', 'summary_only', '--progress-interval', '3600', '--', '--busy-iterations', String(iterations)],
      { env: { ...env, STEP_TELEMETRY_DIR: telemetry, STEP_TELEMETRY_PIPELINE_RUN_ID: tag, STEP_TELEMETRY_RESOURCES: sampling ? 'true' : 'false' }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const ends = [];
    for (const line of fs.readFileSync(path.join(telemetry, tag, 'parallel-run', 'spans.jsonl'), 'utf8').split('\n')) {
      if (!line.includes('"name":"mini-batch"')) continue;
      const s = JSON.parse(line);
      ends.push(Date.parse(s.start.replace(/(\.\d{3})\d*Z$/, '$1Z')) + s.duration_ms);
    }
    const cpuUs = ((childCpuMs() - cpu0) * 1000) / ends.length;
    ends.sort((a, b) => a - b);
    const quarter = Math.floor(ends.length / 4);
    fs.rmSync(telemetry, { recursive: true, force: true });
    return { wallUs: ((ends[ends.length - 1] - ends[quarter - 1]) * 1000) / (ends.length - quarter), cpuUs }; // per mini-batch
  };
  const rows = [];
  figures.runner = {};
  for (const [label, iterations, count] of [
    ['10 ms of CPU', tenMs, Math.min(n, 600)],
    ['no-op run()', 0, n],
  ]) {
    const sub = path.join(tmp, `in-${iterations}`);
    fs.mkdirSync(sub);
    for (const f of fs.readdirSync(files).slice(0, count)) fs.copyFileSync(path.join(files, f), path.join(sub, f));
    const on = [];
    const off = [];
    for (let round = 0; round < 5; round++) {
      off.push(runner(`off-${iterations}-${round}`, iterations, false));
      on.push(runner(`on-${iterations}-${round}`, iterations, true));
    }
    const wall = [median(on.map((r) => r.wallUs)), median(off.map((r) => r.wallUs))];
    const cpu = [median(on.map((r) => r.cpuUs)), median(off.map((r) => r.cpuUs))];
    figures.runner[label] = { onWallUs: wall[0], offWallUs: wall[1], onCpuUs: cpu[0], offCpuUs: cpu[1], count };
    const diff = (a, b) => `${(a - b).toFixed(1)} µs (${(((a - b) / b) * 100).toFixed(2)} %)`;
    rows.push({ 'mini-batch': label, 'mini-batches': count, 'wall, on': `${wall[0].toFixed(1)} µs`, 'wall, off': `${wall[1].toFixed(1)} µs`, 'wall difference': diff(wall[0], wall[1]), 'CPU, on': `${cpu[0].toFixed(1)} µs`, 'CPU, off': `${cpu[1].toFixed(1)} µs`, 'CPU difference': diff(cpu[0], cpu[1]) });
  }
  console.log('\nthe runner, 1 worker: time a worker spends per mini-batch in the steady state, and CPU per mini-batch of all processes (whole run; medians of 5 alternating rounds):');
  console.table(rows);
  console.log(JSON.stringify(figures));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
