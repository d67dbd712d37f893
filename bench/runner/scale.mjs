// The runner at scale (`npm run build` first): N mini-batches of tabular JSON Lines (2 rows each),
// a no-op run(), on `step-telemetry parallel-run` with 1 and 2 workers, and the same tasks on three
// baselines in the same run (scale-pool.mjs): a bare fork pool over the runner's IPC dispatching one
// task to an idle worker, the same pool scheduling as the runner does (chunks, one in advance), and
// piscina. Per case: wall time from launch to exit, and the CPU time of all its processes (Linux);
// mini-batches/s in the steady state (from a
// quarter of the mini-batches done to the last, from the runner's processed-mini-batches.csv);
// launch to the first finished mini-batch; peak RSS of the parent (getrusage, bench/runner/
// peak-rss.mjs) and its CPU; the partition's time (cutting) and the first mini-batch's start from
// the partition span's end (negative: it started while the rest was being cut);
// run-folder bytes. Sides alternate, several rounds, medians kept: the machine is shared. Prints
// tables, each round's ratio to the first side of the same round, then one JSON line with the figures.
//   node bench/runner/scale.mjs [SIZES (default 10000,100000)] [--million] [--rounds R] [--workers 1,2] [--sides runner,piscina]
//   (--million, or BENCH_SCALE_MILLION=1, adds 1,000,000 mini-batches: minutes, not seconds)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const cli = here('../../dist/cli.js');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const sizes = (args.find((a, i) => /^\d[\d,_]*$/.test(a) && !['--rounds', '--workers'].includes(args[i - 1])) ?? '10000,100000').split(',').map((s) => Number(s.replace(/_/g, '')));
if (flag('--million') || process.env.BENCH_SCALE_MILLION === '1') sizes.push(1_000_000);
const roundsFor = (n) => Number(option('--rounds') ?? (n >= 1_000_000 ? 1 : n >= 100_000 ? 2 : 3));
const ROW = '{"x":1}\n'; // 8 bytes: a mini-batch of 16 bytes holds 2 rows
const BYTES = 2 * ROW.length;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
const env = { ...process.env };
for (const k of Object.keys(env)) if (/^(OTEL_|APPLICATIONINSIGHTS_|STEP_TELEMETRY_|AZUREML_|VITEST)/i.test(k) || k === 'NODE_OPTIONS') delete env[k];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function makeInput(n) {
  const file = path.join(tmp, `rows-${n}.jsonl`);
  const block = ROW.repeat(2 * 8192);
  const fd = fs.openSync(file, 'w');
  for (let left = 2 * n; left > 0; left -= 2 * 8192) fs.writeSync(fd, left >= 2 * 8192 ? block : ROW.repeat(left));
  fs.closeSync(fd);
  return file;
}

/** CPU time (ms) of the children this process has waited for, with theirs (/proc/self/stat cutime + cstime; Linux). */
function childrenCpuMs() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * 10; // fields 16 and 17, in clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

function exec(argv, extraEnv) {
  return new Promise((resolve, reject) => {
    const cpuBefore = childrenCpuMs();
    const launched = Date.now();
    const child = spawn(process.execPath, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve({ out, launched, wallMs: Date.now() - launched, treeCpuMs: childrenCpuMs() - cpuBefore }) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

function folderBytes(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) total += e.isDirectory() ? folderBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size;
  return total;
}

async function pool(file, n, p, mode) {
  const { out, launched, wallMs, treeCpuMs } = await exec([here('./scale-pool.mjs'), file, String(n), String(BYTES), String(p), mode], {});
  const r = JSON.parse(out.trim().split('\n').pop());
  return { wallMs, treeCpuMs, firstMs: r.first - launched, perS: (r.steadyCount * 1000) / r.steadyMs, rssMb: r.peakRssKb / 1024, folderBytes: 0 };
}

let tag = 0;
async function runner(file, n, p) {
  const telemetry = path.join(tmp, `t${tag}`);
  const id = `r${tag++}`;
  const rssFile = path.join(tmp, `${id}.rss`);
  const { launched, wallMs, treeCpuMs } = await exec(
    ['--import', here('./peak-rss.mjs'), cli, 'parallel-run', '--entry-script', here('./noop-entry.mjs'), '--input', file, '--input-type', 'tabular', '--mini-batch-size', String(BYTES), '--process-count-per-node', String(p), '--output-action', 'summary_only', '--progress-interval', '3600'],
    { STEP_TELEMETRY_DIR: telemetry, STEP_TELEMETRY_PIPELINE_RUN_ID: id, BENCH_PEAK_RSS_FILE: rssFile },
  );
  const folder = path.join(telemetry, id, 'parallel-run');
  // the finished mini-batches' ends, in the order the runner booked them
  const ends = new Float64Array(n);
  let k = 0;
  let firstStart = Infinity;
  const lines = readline.createInterface({ input: fs.createReadStream(path.join(folder, 'processed-mini-batches.csv')) });
  let header = true;
  for await (const line of lines) {
    if (header) {
      header = false;
      continue;
    }
    // mini_batch_id,times_picked,worker,pid,start_time,end_time,...: no quoted field before end_time
    const cells = line.split(',', 6);
    ends[k++] = Date.parse(cells[5]);
    if (k <= 1000) firstStart = Math.min(firstStart, Date.parse(cells[4]));
  }
  // the partition span: written when the cut ends (the first mini-batches' spans may come before it)
  let part;
  const spans = readline.createInterface({ input: fs.createReadStream(path.join(folder, 'spans.jsonl')) });
  for await (const line of spans) {
    if (!line.includes('"name":"partition"')) continue;
    part = JSON.parse(line);
    break;
  }
  spans.close();
  const partitionEnd = Date.parse(part.start.replace(/(\.\d{3})\d*Z$/, '$1Z')) + part.duration_ms;
  if (k !== n) throw new Error(`expected ${n} rows in processed-mini-batches.csv, found ${k}`);
  const q = Math.floor(n / 4);
  const bytes = folderBytes(telemetry);
  const usage = JSON.parse(fs.readFileSync(rssFile, 'utf8'));
  fs.rmSync(telemetry, { recursive: true, force: true });
  return {
    wallMs,
    treeCpuMs,
    firstMs: ends[0] - launched,
    perS: ((n - q) * 1000) / Math.max(1, ends[n - 1] - ends[q - 1]),
    rssMb: usage.maxRssKb / 1024,
    cpuUs: (usage.cpuMs * 1000) / n,
    // the time spent cutting (the span also holds the waits between slices when the cut streams)
    partitionMs: part.attributes['partition.busy_ms'] ?? part.duration_ms,
    toFirstStartMs: firstStart - partitionEnd,
    folderBytes: bytes,
  };
}

const ALL_SIDES = [
  ['bare fork pool', (f, n, p) => pool(f, n, p, 'idle')],
  ['bare fork pool, chunks', (f, n, p) => pool(f, n, p, 'chunks')],
  ['piscina', (f, n, p) => pool(f, n, p, 'piscina')],
  ['runner', runner],
];
// --sides runner,piscina and --workers 2: a subset, while iterating
const SIDES = option('--sides') ? ALL_SIDES.filter(([name]) => option('--sides').split(',').some((s) => name.startsWith(s))) : ALL_SIDES;
const WORKERS = (option('--workers') ?? '1,2').split(',').map(Number);
const figures = {};
const roundLines = [];
try {
  for (const n of sizes) {
    const file = makeInput(n);
    const rounds = roundsFor(n);
    const rows = [];
    for (const p of WORKERS) {
      const got = SIDES.map(() => []);
      for (let r = 0; r < rounds; r++) for (let s = 0; s < SIDES.length; s++) got[s].push(await SIDES[s][1](file, n, p));
      const med = got.map((runs) => ({
        wallMs: median(runs.map((x) => x.wallMs)),
        treeCpuMs: median(runs.map((x) => x.treeCpuMs)),
        firstMs: median(runs.map((x) => x.firstMs)),
        firstEach: runs.map((x) => Math.round(x.firstMs)),
        perS: median(runs.map((x) => x.perS)),
        rssMb: median(runs.map((x) => x.rssMb)),
        rssMaxMb: Math.max(...runs.map((x) => x.rssMb)),
        folderBytes: median(runs.map((x) => x.folderBytes)),
        cpuUs: median(runs.map((x) => x.cpuUs ?? 0)),
        partitionMs: median(runs.map((x) => x.partitionMs ?? 0)),
        toFirstStartMs: median(runs.map((x) => x.toFirstStartMs ?? 0)),
      }));
      const base = med[0];
      // each round's ratio to the first side of the same round (run just before it)
      const perRound = (s) => got[s].map((x, r) => (x.perS / got[0][r].perS).toFixed(2)).join(' ');
      if (rounds > 1) for (let s = 1; s < SIDES.length; s++) roundLines.push(`${n.toLocaleString('en-US')}, ${p} worker${p > 1 ? 's' : ''}, ${SIDES[s][0]}: mini-batches/s per round against the ${SIDES[0][0]}: ${perRound(s)}; wall ${got[s].map((x) => (x.wallMs / 1000).toFixed(2)).join(' ')} s against ${got[0].map((x) => (x.wallMs / 1000).toFixed(2)).join(' ')} s`);
      for (let s = 0; s < SIDES.length; s++) {
        const m = med[s];
        const name = SIDES[s][0];
        figures[`${name.replace(/\W+/g, '_')}_${n}_p${p}`] = { ...m, rounds, perRound: got[s].map((x) => Math.round(x.perS)), perS: Math.round(m.perS), firstMs: Math.round(m.firstMs), wallMs: Math.round(m.wallMs), rssMb: Math.round(m.rssMb) };
        rows.push({
          case: `${name}, ${p} worker${p > 1 ? 's' : ''}`,
          wall: `${(m.wallMs / 1000).toFixed(2)} s`,
          'cpu (all processes)': `${(m.treeCpuMs / 1000).toFixed(2)} s`,
          'mini-batches/s': `${Math.round(m.perS)}${s > 0 ? ` (${(m.perS / base.perS).toFixed(2)}×)` : ''}`,
          'first finished': `${Math.round(m.firstMs)} ms${s > 0 ? ` (${(m.firstMs / base.firstMs).toFixed(2)}×)` : ''}`,
          'parent peak rss': `${Math.round(m.rssMb)} MB${rounds > 1 ? ` (max ${Math.round(m.rssMaxMb)})` : ''}`,
          'run folder': m.folderBytes ? `${(m.folderBytes / 1e6).toFixed(1)} MB (${Math.round(m.folderBytes / n)} B/mb)` : '',
          'parent cpu/mb': m.cpuUs ? `${m.cpuUs.toFixed(1)} µs` : '',
          // negative: the first mini-batch started before the cut ended (it streams)
          'partition; first start - its end': m.folderBytes ? `${Math.round(m.partitionMs)} ms; ${Math.round(m.toFirstStartMs)} ms` : '',
        });
      }
    }
    fs.rmSync(file, { force: true });
    console.log(`\n${n.toLocaleString('en-US')} mini-batches of 2 JSON Lines rows, no-op run() (median of ${rounds} round${rounds > 1 ? 's' : ''}, sides alternating; ratios against the bare fork pool):`);
    console.table(rows);
    for (const line of roundLines.splice(0)) console.log(line);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log('targets: parent peak rss < 300 MB at 1,000,000 mini-batches; the first mini-batch starts within 1 s of the partition; runner ≥ 0.9× the bare fork pool with 2 workers (steady state); first finished ≤ 2× the bare pool\n(parent cpu/mb: all of the parent\'s CPU, start-up included, per mini-batch; cpu (all processes): the parent\'s and its workers\', from launch to exit)');
console.log(JSON.stringify(figures));
