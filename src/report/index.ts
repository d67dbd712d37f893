// `step-telemetry report`: read a run folder and write its HTML report.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readRunFolder } from '../run-folder/read.js';
import { buildReport, type ReportOptions } from './build.js';

export interface WriteReportResult {
  readonly file: string;
  readonly bytes: number;
  /** Time to read the run folder and build the page. */
  readonly readMs: number;
  readonly buildMs: number;
  readonly steps: number;
  readonly attempts: number;
  readonly notes: readonly string[];
}

/** The default place of the report: `report.html` inside the run folder. */
export function defaultReportFile(folder: string): string {
  return path.join(path.resolve(folder), 'report.html');
}

/** Read `folder` and write its report to `output` (default: report.html in the folder). */
export function writeReport(folder: string, output?: string, options: ReportOptions = {}): WriteReportResult {
  const t0 = performance.now();
  const run = readRunFolder(folder, { logSample: options.maxLogRecords });
  const t1 = performance.now();
  const html = buildReport(run, options);
  const t2 = performance.now();
  const file = path.resolve(output ?? path.join(run.folder, 'report.html'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, file);
  return {
    file,
    bytes: Buffer.byteLength(html),
    readMs: t1 - t0,
    buildMs: t2 - t1,
    steps: run.steps.length,
    attempts: run.steps.reduce((s, st) => s + st.attempts.count, 0),
    notes: run.notes.map((n) => n.message),
  };
}

export { buildReport, type ReportOptions } from './build.js';
