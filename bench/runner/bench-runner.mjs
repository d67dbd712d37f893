// Benchmark of the mini-batch runner's own cost (`npm run build` first). In one go:
//   bare pool   forked workers, the same one-file tasks over the same IPC, nothing else (the
//               baseline): a task is sent to an idle worker, as piscina and tinypool do
//   bare pool, chunks   the same, scheduled as the runner schedules (chunks, one in advance):
//               what the runner adds to this is its telemetry and bookkeeping
//   runner      `step-telemetry parallel-run` over the same files, mini_batch_size 1, summary_only
// Wall time with a no-op run() and a run() of 10 ms of CPU work (busy.mjs: a fixed number of
// iterations, calibrated here once and the same on both sides, so time lost to other processes on
// the core counts), 1 and 2 worker processes, in the steady state: from the moment a quarter of the
// mini-batches were done to the last (the runner's from its mini-batch spans' ends), so process
// start-up, init() and what start-up leaves behind (V8 compiling the loaded modules in the
// background) are out on both sides; sides alternate, several rounds, medians kept. The overhead
// per mini-batch is the extra time a worker spends per mini-batch: the difference in wall time ×
// workers ÷ mini-batches.
// Then the CPU per mini-batch of all processes together (from /proc: cutime + cstime of reaped
// children, start-up removed by subtracting a run of a tenth of the mini-batches), which a busy
// machine does not skew. Prints tables, then one JSON line with the figures.
//   node bench/runner/bench-runner.mjs [MINI_BATCHES (default 5000)]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrate } from './busy.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cli = here('../../dist/cli.js');
const n = Number(process.argv[2] ?? process.env.BENCH_RUNNER_MINIBATCHES ?? 5000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-runner-'));
const env = { ...process.env };
for (const k of Object.keys(env)) if (/^(OTEL_|APPLICATIONINSIGHTS_|STEP_TELEMETRY_|AZUREML_|VITEST)/i.test(k) || k === 'NODE_OPTIONS') delete env[k];

function makeFiles(dir, count) {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(6, '0')}`), '');
}

/** CPU time (user + system, ms) of this process's reaped children, from /proc (Linux); undefined elsewhere. */
function childCpuMs() {
  try {
    const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // after the command: state is field 3, so cutime (16) and cstime (17) are at 13 and 14
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}
let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // 100 is the Linux default
}

/** CPU ms that `fn` costs in child processes (the runner, its workers, the bare pool and its workers). */
function cpuOf(fn) {
  const before = childCpuMs();
  fn();
  const after = childCpuMs();
  return before === undefined || after === undefined ? undefined : after - before;
}

/** { steadyMs, steadyCount }: from a quarter of the tasks done to the last, and the tasks done in that time. */
function bare(dir, processes, iterations, mode = 'idle') {
  return JSON.parse(execFileSync(process.execPath, [here('./bare-pool.mjs'), dir, String(processes), String(iterations), mode], { env, encoding: 'utf8' }));
}

function runner(dir, processes, iterations, tag) {
  const telemetry = path.join(tmp, `t-${tag}`);
  execFileSync(
    process.execPath,
    [cli, 'parallel-run', '--entry-script', here('./noop-entry.mjs'), '--input', dir, '--mini-batch-size', '1', '--process-count-per-node', String(processes), '--output-action', 'summary_only', '--progress-interval', '3600', '--', '--busy-iterations', String(iterations)],
    { env: { ...env, STEP_TELEMETRY_DIR: telemetry, STEP_TELEMETRY_PIPELINE_RUN_ID: tag }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // the same window as the bare pool's, from the mini-batch spans' ends
  const spansFile = path.join(telemetry, tag, 'parallel-run', 'spans.jsonl');
  const ends = [];
  for (const line of fs.readFileSync(spansFile, 'utf8').split('\n')) {
    if (!line.includes('"name":"mini-batch"')) continue;
    const s = JSON.parse(line);
    const start = Date.parse(s.start.replace(/(\.\d{3})\d*Z$/, '$1Z')) + Number(`0.${s.start.match(/\.\d{3}(\d*)Z$/)?.[1] ?? '0'}`);
    ends.push(start + s.duration_ms);
  }
  if (ends.length !== Number(fs.readdirSync(dir).length)) throw new Error(`expected ${fs.readdirSync(dir).length} mini-batch spans, found ${ends.length}`);
  ends.sort((a, b) => a - b);
  const quarter = Math.floor(ends.length / 4);
  return { steadyMs: ends[ends.length - 1] - ends[quarter - 1], steadyCount: ends.length - quarter };
}

const rows = [];
const figures = {};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  const noopDir = path.join(tmp, 'noop');
  makeFiles(noopDir, n);
  const busyCount = Math.max(100, Math.min(400, Math.round(n / 10)));
  const busyDir = path.join(tmp, 'busy');
  makeFiles(busyDir, busyCount);
  const tenMs = calibrate(10);
  for (const [label, dir, count, busy] of [
    ['no-op run()', noopDir, n, 0],
    ['10 ms run()', busyDir, busyCount, tenMs],
  ]) {
    for (const p of [1, 2]) {
      // alternate the sides, several rounds, and keep the medians: the machine's noise hits both
      // (2 workers on 2 cores with 10 ms of work is the noisiest case: more rounds)
      const rounds = busy > 0 && p === 2 ? 6 : p === 1 ? 3 : 2;
      const base = [];
      const chunked = [];
      const run = [];
      for (let i = 0; i < rounds; i++) {
        base.push(bare(dir, p, busy));
        chunked.push(bare(dir, p, busy, 'chunks'));
        run.push(runner(dir, p, busy, `r${i}-${busy}-${p}`));
      }
      // µs a worker spends per mini-batch in the steady state: wall time × workers ÷ mini-batches
      const perMb = (r) => (r.steadyMs * 1000 * p) / r.steadyCount;
      const basePer = median(base.map(perMb));
      const chunkedPer = median(chunked.map(perMb));
      const runPer = median(run.map(perMb));
      const runMbPerS = Math.round((p * 1e6) / runPer);
      const overheadUs = runPer - basePer;
      const telemetryUs = runPer - chunkedPer;
      const pct = (us) => `${((us / 10_000) * 100).toFixed(2)}% of 10 ms`;
      const key = `${busy === 0 ? 'noop' : 'busy10ms'}_p${p}`;
      figures[key] = {
        miniBatches: count,
        rounds,
        bareUsPerMb: +basePer.toFixed(1),
        bareChunksUsPerMb: +chunkedPer.toFixed(1),
        runnerUsPerMb: +runPer.toFixed(1),
        overheadUsPerMb: +overheadUs.toFixed(1),
        overheadVsChunksUsPerMb: +telemetryUs.toFixed(1),
        runnerMbPerS: runMbPerS,
      };
      rows.push({
        case: `${label}, ${p} worker${p > 1 ? 's' : ''}`,
        'mini-batches': `${count} × ${rounds}`,
        'bare pool': `${basePer.toFixed(1)} µs/mb`,
        'bare, chunks': `${chunkedPer.toFixed(1)} µs/mb`,
        runner: `${runPer.toFixed(1)} µs/mb (${runMbPerS} mb/s)`,
        'overhead vs bare': `${overheadUs.toFixed(1)} µs/mb = ${pct(overheadUs)}`,
        'vs bare, chunks': `${telemetryUs.toFixed(1)} µs/mb = ${pct(telemetryUs)}`,
      });
    }
  }
} catch (error) {
  fs.rmSync(tmp, { recursive: true, force: true });
  throw error;
}
// CPU cost per mini-batch, all processes together (robust where wall time is not: a shared machine
// delays wake-ups, it does not add CPU). Start-up is taken out by subtracting a run of a tenth of
// the mini-batches.
let cpuRows = [];
if (childCpuMs() !== undefined) {
  const tmp2 = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-runner-cpu-'));
  try {
    const big = path.join(tmp2, 'big');
    const small = path.join(tmp2, 'small');
    makeFiles(big, n);
    makeFiles(small, Math.round(n / 10));
    const per = (f) => {
      const samples = [0, 1, 2].map(() => (cpuOf(() => f(big)) - cpuOf(() => f(small))) / (n - Math.round(n / 10)));
      return median(samples) * 1000; // µs per mini-batch
    };
    const bareCpu = per((d) => bare(d, 1, 0));
    let k = 0;
    const runnerCpu = per((d) => runner(d, 1, 0, `cpu${k++}`));
    figures.cpu_noop_p1 = { bareCpuUsPerMb: +bareCpu.toFixed(1), runnerCpuUsPerMb: +runnerCpu.toFixed(1), overheadCpuUsPerMb: +(runnerCpu - bareCpu).toFixed(1) };
    cpuRows = [
      {
        case: 'CPU per mini-batch, no-op run(), 1 worker (parent + workers)',
        'bare pool': `${bareCpu.toFixed(1)} µs`,
        runner: `${runnerCpu.toFixed(1)} µs`,
        overhead: `${(runnerCpu - bareCpu).toFixed(1)} µs = ${(((runnerCpu - bareCpu) / 10_000) * 100).toFixed(2)}% of 10 ms`,
      },
    ];
  } finally {
    fs.rmSync(tmp2, { recursive: true, force: true });
  }
}
console.table(rows);
if (cpuRows.length > 0) console.table(cpuRows);
fs.rmSync(tmp, { recursive: true, force: true });
console.log('target: overhead under 1% of a 10 ms mini-batch (100 µs), per mini-batch on its worker');
console.log(JSON.stringify(figures));
