// `step-telemetry report` and `doctor` on run folders of 10,000 and 100,000 mini-batches (and
// 1,000,000 with --million or BENCH_SCALE_MILLION=1, as the runner's scale bench), each in a fresh process: wall time, CPU time and peak RSS,
// against the floor of reading the same files (every JSON line parsed, every CSV line cut, nothing
// kept) measured the same way; and the bytes per mini-batch of the run folder, against the same run
// in the formats of before (the identity on every line). The folders are synthetic, in the formats
// the core and the runner write (test/fixtures/report/synthetic-run.ts). Nothing is asserted.
//   node --import tsx bench/report.ts [--million] [--folder PATH ...]      (after `npm run build`)
// --folder measures report and doctor on existing run folders instead (a real runner's, say).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticRun } from '../test/fixtures/report/synthetic-run.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Measured {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly peakMb: number;
  readonly detail?: string;
}

function stepFolders(folder: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const names = fs.readdirSync(d, { withFileTypes: true });
    if (names.some((e) => e.isFile() && /^step(?:\.process-\d+)?\.json$/.test(e.name))) out.push(d);
    for (const e of names) if (e.isDirectory() && e.name !== 'output') walk(path.join(d, e.name));
  };
  walk(folder);
  return out;
}

// ---------------------------------------------------------------------------------------------
// the parent

/** One command in a fresh Node (plain: no TypeScript loader to weigh on its memory). */
function measure(what: 'floor' | 'report' | 'doctor', folder: string, out: string): Measured {
  const text = execFileSync(process.execPath, [path.join(root, 'bench/report-child.mjs'), what, folder, out], { encoding: 'utf8', cwd: root, maxBuffer: 1 << 24 });
  return JSON.parse(text.trim().split('\n').pop()!) as Measured;
}

function folderBytes(folder: string): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const dir of stepFolders(folder)) {
    for (const name of fs.readdirSync(dir)) {
      const stat = fs.statSync(path.join(dir, name));
      if (!stat.isFile()) continue;
      const kind = name.replace(/\.process-\d+/, '').replace(/\.pid-\d+/, '');
      byKind[kind] = (byKind[kind] ?? 0) + stat.size;
      total += stat.size;
    }
  }
  return { total, byKind };
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mb = (n: number): string => `${n.toFixed(0)} MB`;
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

function commands(folder: string, out: string, label: string, miniBatches?: number): Record<string, string> {
  const floor = measure('floor', folder, out);
  const report = measure('report', folder, out);
  const doctor = measure('doctor', folder, out);
  const big = miniBatches !== undefined && miniBatches >= 1_000_000;
  const target = big ? ' (target < 10 s, < 500 MB)' : '';
  return {
    run: label,
    'floor: parse every line': `${s(floor.wallMs)}, ${mb(floor.peakMb)}`,
    'report wall / CPU': `${s(report.wallMs)} / ${s(report.cpuMs)} (${ratio(report.cpuMs, floor.cpuMs)} of the floor's CPU)${target}`,
    'report peak RSS': `${mb(report.peakMb)} (${report.detail})`,
    'doctor wall / CPU': `${s(doctor.wallMs)} / ${s(doctor.cpuMs)} (${ratio(doctor.cpuMs, floor.cpuMs)})${target}`,
    'doctor peak RSS': mb(doctor.peakMb),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'step-telemetry-bench-report-'));
  try {
    const folders = args.flatMap((a, i) => (args[i - 1] === '--folder' ? [path.resolve(a)] : []));
    if (folders.length > 0) {
      console.table(folders.map((f) => commands(f, path.join(dir, 'report.html'), f)));
      return;
    }
    const sizes = (process.env.BENCH_REPORT_SIZES ?? '10000,100000').split(',').map(Number);
    if (args.includes('--million') || process.env.BENCH_SCALE_MILLION === '1') sizes.push(1_000_000);
    const rows: Record<string, string>[] = [];
    const bytes: Record<string, string>[] = [];
    for (const n of sizes) {
      // what run() used on each attempt, and a resources line per process every 5 s, as the runner writes them by default
      const options = { miniBatches: n, workers: 8, retryRate: 0.02, failRate: 0.002, slowdown: 1.3, logsPerMiniBatch: 1, resourcesEveryMs: 5000 };
      const g0 = performance.now();
      const folder = writeSyntheticRun(path.join(dir, String(n)), options);
      const wrote = performance.now() - g0;
      const now = folderBytes(folder);
      rows.push(commands(folder, path.join(dir, `${n}.html`), `${n.toLocaleString('en-US')} mini-batches (${mb(now.total / 2 ** 20)} of files, written in ${s(wrote)})`, n));
      // the same run in the formats of before the compact files (not at a million: the disk)
      if (n <= 100_000) {
        const old = folderBytes(writeSyntheticRun(path.join(dir, `${n}-before`), { ...options, legacy: true }));
        const per = (b: number | undefined): string => `${((b ?? 0) / n).toFixed(0)} B`;
        bytes.push({
          run: n.toLocaleString('en-US'),
          'bytes per mini-batch': `${per(now.total)} (before: ${per(old.total)}, ${ratio(now.total, old.total)})`,
          'spans.jsonl': `${per(now.byKind['spans.jsonl'])} (${per(old.byKind['spans.jsonl'])})`,
          'logs.jsonl (a worker record and the parent)': `${per(now.byKind['logs.jsonl'])} (${per(old.byKind['logs.jsonl'])})`,
          'processed-mini-batches.csv': per(now.byKind['processed-mini-batches.csv']),
          'output-journal.jsonl': `${per(now.byKind['output-journal.jsonl'])} (${per(old.byKind['output-journal.jsonl'])})`,
        });
        fs.rmSync(path.join(dir, `${n}-before`), { recursive: true, force: true });
      }
      fs.rmSync(path.join(dir, String(n)), { recursive: true, force: true });
    }
    console.log('report and doctor on synthetic run folders, each command in a fresh process:');
    console.table(rows);
    console.log('run-folder bytes, now (before: the identity on every log and metric line, trace ids on every span, the writer and every figure on each journal line):');
    console.table(bytes);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
