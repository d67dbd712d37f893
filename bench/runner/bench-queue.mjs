// Benchmark of the shared queue (`npm run build` first; needs redis-server on the PATH): the runner
// on a BullMQ queue on one Redis on loopback against the same runner without a queue, with 1 node
// and with 2 nodes (1 worker each; without a queue the 2 nodes are a static split):
//   - a no-op run(): mini-batches per second and the time a node spends per mini-batch in the
//     steady state (from a quarter to three quarters of the mini-batches done, from the mini-batch
//     spans' ends: start-up, enqueueing and the end of the job are out); the queue's cost per
//     mini-batch is the difference (its round trips to Redis: pull, commit, acknowledge);
//   - a 100 ms mini-batch (run() waits 100 ms: work that leaves the CPU to the other processes, so
//     that the loaded machine's noise stays out of it), the same window: the queue's added time
//     per mini-batch as a share of the 100 ms (target < 2%);
//   - the end of the job (from three quarters done to the last), a cost per job, not per
//     mini-batch: with a queue, what a node holds when the queue runs dry waits for that node;
//   - the CPU per mini-batch of every process (the runners and their workers, from /proc: the
//     reaped children's; start-up removed by subtracting a run of a tenth of the mini-batches;
//     no-op run() only), and redis-server's.
// Sides alternate, several rounds, medians kept. Prints tables, then one JSON line.
//   node bench/runner/bench-queue.mjs [NOOP_MINI_BATCHES (default 2000)] [SLEEP_MINI_BATCHES (default 100)]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cli = here('../../dist/cli.js');
const noopCount = Number(process.argv[2] ?? 2000);
const sleepCount = Number(process.argv[3] ?? 100);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-queue-'));
const env = { ...process.env };
for (const k of Object.keys(env)) if (/^(OTEL_|APPLICATIONINSIGHTS_|STEP_TELEMETRY_|AZUREML_|VITEST)/i.test(k) || k === 'NODE_OPTIONS') delete env[k];
let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // the Linux default
}

/** CPU ms (user + system) from a /proc stat file: `self` gives the reaped children's, a pid its own. */
function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const [u, s] = pid === 'self' ? [f[13], f[14]] : [f[11], f[12]];
  return ((Number(u) + Number(s)) * 1000) / clockTicks;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = path.join(tmp, 'redis');
  fs.mkdirSync(dir);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return { url: `redis://127.0.0.1:${port}/0`, pid: child.pid, stop: () => child.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

function makeFiles(dir, count) {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(6, '0')}`), '');
}

/** The ends (epoch ms) of the mini-batch spans under a step folder (its own, or its node folders'). */
function spanEnds(folder) {
  const ends = [];
  const files = fs.existsSync(path.join(folder, 'spans.jsonl'))
    ? [path.join(folder, 'spans.jsonl')]
    : fs.readdirSync(folder).filter((n) => /^node-\d+$/.test(n)).map((n) => path.join(folder, n, 'spans.jsonl'));
  for (const file of files) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes('"name":"mini-batch"')) continue;
      const s = JSON.parse(line);
      ends.push(Date.parse(s.start) + s.duration_ms);
    }
  }
  return ends.sort((a, b) => a - b);
}

/** One run: `nodes` runner processes (1 worker each) on the input, with or without the queue. */
async function run(dir, nodes, queueUrl, args, tag) {
  const telemetry = path.join(tmp, `t-${tag}`);
  const cpu0 = cpuMs('self');
  await Promise.all(
    Array.from({ length: nodes }, (_, rank) => {
      const flags = ['parallel-run', '--entry-script', here('./noop-entry.mjs'), '--input', dir, '--mini-batch-size', '1', '--output-action', 'summary_only', '--progress-interval', '3600', '--node-count', String(nodes), '--node-rank', String(rank)];
      if (queueUrl) flags.push('--queue', queueUrl);
      const child = spawn(process.execPath, [cli, ...flags, '--', ...args], { env: { ...env, STEP_TELEMETRY_DIR: telemetry, STEP_TELEMETRY_PIPELINE_RUN_ID: tag }, stdio: ['ignore', 'ignore', 'inherit'] });
      return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tag}: a node exited ${code}`)))));
    }),
  );
  const cpu = cpuMs('self') - cpu0;
  const ends = spanEnds(path.join(telemetry, tag, 'parallel-run'));
  const total = fs.readdirSync(dir).length;
  if (ends.length < total) throw new Error(`${tag}: expected ${total} mini-batch spans, found ${ends.length}`);
  const q1 = Math.floor(ends.length / 4);
  const q3 = Math.floor((ends.length * 3) / 4);
  return { steadyMs: ends[q3 - 1] - ends[q1 - 1], steadyCount: q3 - q1, endMs: ends[ends.length - 1] - ends[q3 - 1], cpuMs: cpu, count: ends.length };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
const figures = { cpus: os.cpus().length, load1m: +os.loadavg()[0].toFixed(2) };
const redis = await startRedis();
try {
  const noopDir = path.join(tmp, 'noop');
  makeFiles(noopDir, noopCount);
  const tenthDir = path.join(tmp, 'noop-tenth');
  makeFiles(tenthDir, Math.round(noopCount / 10));
  const sleepDir = path.join(tmp, 'sleep');
  makeFiles(sleepDir, sleepCount);
  let k = 0;
  for (const [label, dir, args, rounds] of [
    ['no-op run()', noopDir, [], noopCount > 0 ? 3 : 0],
    ['100 ms run()', sleepDir, ['--sleep-ms', '100'], sleepCount > 0 ? 5 : 0],
  ]) {
    if (rounds === 0) continue;
    for (const nodes of [1, 2]) {
      const local = [];
      const queued = [];
      const redisCpu = [];
      for (let i = 0; i < rounds; i++) {
        local.push(await run(dir, nodes, undefined, args, `local-${k++}`));
        const r0 = cpuMs(redis.pid);
        queued.push(await run(dir, nodes, redis.url, args, `queue-${k++}`));
        redisCpu.push(cpuMs(redis.pid) - r0);
      }
      // µs a node spends per mini-batch in the steady state: wall time × nodes ÷ mini-batches
      const perMb = (r) => (r.steadyMs * 1000 * nodes) / r.steadyCount;
      const localUs = median(local.map(perMb));
      const queueUs = median(queued.map(perMb));
      const addedUs = queueUs - localUs;
      const count = fs.readdirSync(dir).length;
      // CPU per mini-batch without start-up: the full runs' median less a run of a tenth of them
      let cpu;
      if (args.length === 0) {
        const tenth = fs.readdirSync(tenthDir).length;
        const perMbCpu = (full, small) => ((median(full.map((r) => r.cpuMs)) - small.cpuMs) * 1000) / (count - tenth);
        cpu = { local: Math.round(perMbCpu(local, await run(tenthDir, nodes, undefined, args, `local-${k++}`))), queue: Math.round(perMbCpu(queued, await run(tenthDir, nodes, redis.url, args, `queue-${k++}`))) };
      }
      const cpuRedis = Math.round((median(redisCpu) * 1000) / count);
      const key = `${args.length ? 'sleep100ms' : 'noop'}_nodes${nodes}`;
      figures[key] = {
        miniBatches: count,
        rounds,
        localUsPerMb: +localUs.toFixed(1),
        queueUsPerMb: +queueUs.toFixed(1),
        queueAddedUsPerMb: +addedUs.toFixed(1),
        localEndMs: Math.round(median(local.map((r) => r.endMs))),
        queueEndMs: Math.round(median(queued.map((r) => r.endMs))),
        localMbPerS: Math.round((nodes * 1e6) / localUs),
        queueMbPerS: Math.round((nodes * 1e6) / queueUs),
        cpuUsPerMb: { ...cpu, redis: cpuRedis },
      };
      rows.push({
        case: `${label}, ${nodes} node${nodes > 1 ? 's' : ''}`,
        'mini-batches': `${count} × ${rounds}`,
        local: `${localUs.toFixed(0)} µs/mb (${figures[key].localMbPerS} mb/s)`,
        queue: `${queueUs.toFixed(0)} µs/mb (${figures[key].queueMbPerS} mb/s)`,
        'queue adds': `${addedUs.toFixed(0)} µs/mb${args.length ? ` = ${((addedUs / 100_000) * 100).toFixed(2)}% of 100 ms (target < 2%)` : ''}`,
        'last quarter: local → queue': `${figures[key].localEndMs} → ${figures[key].queueEndMs} ms`,
        'CPU/mb: local → queue (+ Redis)': cpu ? `${cpu.local} → ${cpu.queue} µs (+ ${cpuRedis} µs)` : `(+ ${cpuRedis} µs Redis)`,
      });
    }
  }
} finally {
  redis.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`shared queue (one redis-server on loopback) against the runner without a queue; ${figures.cpus} CPUs, load ${figures.load1m} at the start:`);
console.table(rows);
console.log(JSON.stringify(figures));
