// The report and the doctor on a fixed run folder give the page and the findings they gave before
// the reader was made faster (#13 item 4): digests of both, taken on main before the change. A
// change meant to alter either updates the digests here, and says so in its commit.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { diagnose } from '../src/doctor/findings.js';
import { buildReport } from '../src/report/build.js';
import { readRunFolder } from '../src/run-folder/read.js';
import { writeSyntheticRun } from './fixtures/report/synthetic-run.js';
import { useTempDir } from './helpers/run-step.js';

const NOW = new Date('2026-02-01T00:00:00Z');
const digest = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 24);

describe('report and doctor on a fixed run folder', () => {
  it('give the same page and the same findings (sampled attempts, retries, failures, logs, resources)', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 30_000, workers: 5, retryRate: 0.03, failRate: 0.004, slowdown: 2, logsPerMiniBatch: 1, resourcesEveryMs: 2000, seed: 11 });
    const page = buildReport(readRunFolder(folder, { attemptSample: 4000, logSample: 300 }), { now: NOW, maxLogRecords: 300 }).replaceAll(dir, '<dir>');
    const doctor = JSON.stringify(diagnose(readRunFolder(folder, { light: true, attemptSample: 4000 }))).replaceAll(dir, '<dir>');
    expect({ page: digest(page), doctor: digest(doctor), findings: (JSON.parse(doctor).findings as { id: string }[]).map((f) => f.id) }).toEqual({
      page: 'f6c6ab8e5cdefbf1ae33d92f',
      doctor: '85e1d626ad3f1c90cc1ba8ea',
      findings: ['dominant-failure', 'latency-trend', 'flaky-retries'],
    });
  });
});
