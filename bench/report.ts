// The HTML report of a 100,000-mini-batch run: time to read the run folder and build the page,
// the page's size, and the doctor over the same folder. A synthetic run folder in the formats the
// core and the runner write (test/fixtures/report/synthetic-run.ts). Nothing is asserted.
//   node --import tsx bench/report.ts [mini-batches]      (after `npm run build`)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeReport } from '../dist/report/index.js';
import { runDoctor } from '../dist/doctor/index.js';
import { writeSyntheticRun } from '../test/fixtures/report/synthetic-run.js';

const n = Number(process.argv[2] ?? process.env.BENCH_REPORT_MINIBATCHES ?? 100_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'step-telemetry-bench-report-'));
try {
  const g0 = performance.now();
  const folder = writeSyntheticRun(dir, { miniBatches: n, workers: 8, retryRate: 0.02, failRate: 0.002, slowdown: 1.3, logsPerMiniBatch: 1 });
  const g1 = performance.now();
  const runBytes = fs.readdirSync(folder).reduce((s, f) => s + (fs.statSync(path.join(folder, f)).isFile() ? fs.statSync(path.join(folder, f)).size : 0), 0);
  const rss0 = process.memoryUsage().rss;
  const r = writeReport(folder, path.join(dir, 'report.html'));
  const rss1 = process.memoryUsage().rss;
  const d0 = performance.now();
  const doctor = runDoctor(folder);
  const d1 = performance.now();
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
  console.log(`report of a synthetic run of ${n.toLocaleString('en-US')} mini-batches (${r.attempts.toLocaleString('en-US')} attempts, ${mb(runBytes)} of run files; written in ${((g1 - g0) / 1000).toFixed(1)} s)`);
  console.table([
    {
      'read run folder': `${(r.readMs / 1000).toFixed(2)} s`,
      'build page': `${(r.buildMs / 1000).toFixed(2)} s`,
      'report total': `${((r.readMs + r.buildMs) / 1000).toFixed(2)} s (target: seconds)`,
      'HTML size': `${mb(r.bytes)} (target: a few MB)`,
      'rss growth': mb(Math.max(0, rss1 - rss0)),
      doctor: `${((d1 - d0) / 1000).toFixed(2)} s, ${doctor.findings.length} findings`,
    },
  ]);
  console.log(JSON.stringify({ miniBatches: n, attempts: r.attempts, runBytes, readMs: Math.round(r.readMs), buildMs: Math.round(r.buildMs), htmlBytes: r.bytes, doctorMs: Math.round(d1 - d0), findings: doctor.findings.map((f) => f.id) }));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
