// Regressions from issue #10 (a new user, a fault matrix, a fuzzer): what the runner got wrong,
// each through real `parallel-run` processes and named after the bug.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE, makeFiles, readJson, runFolder, runRunner } from './fixtures/runner/harness.js';

describe('parallel-run output closed', () => {
  it('parallel-run | head -2: a closed stdout or stderr stops the printing, not the job (no EPIPE crash, step.json not left running)', async () => {
    const dir = await useTempDir('runner-epipe-');
    makeFiles(path.join(dir, 'in'), 30);
    for (const [stream, close] of [
      ['stdout', { stdout: 2 }],
      ['stderr', { stderr: 1 }],
    ] as const) {
      const telemetry = path.join(dir, `t-${stream}`);
      const r = await runRunner(
        ['--entry-script', BEHAVE, '--input', 'in', '--output', `out-${stream}`, '--mini-batch-size', '1', '--progress-interval', '0.02', '--', '--sleep', '5', '--stderr-each'],
        { cwd: dir, env: { STEP_TELEMETRY_DIR: telemetry }, closeAfterLines: close },
      );
      expect(r.code, `${stream}: ${r.stderr}`).toBe(0);
      const folder = runFolder(telemetry);
      expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', items: { succeeded: 30 } });
      expect(readJson(path.join(folder, 'step.json')).outcome).toBe('success');
      expect(fs.readFileSync(path.join(dir, `out-${stream}`, 'parallel_run_step.txt'), 'utf8').trim().split('\n')).toHaveLength(30);
    }
  });
});

describe('parallel-run worker start-up', () => {
  it('a worker SIGKILLed during start-up is replaced instead of aborting the job', async () => {
    const dir = await useTempDir('runner-startup-kill-');
    makeFiles(path.join(dir, 'in'), 6);
    const r = await runRunner(['--entry-script', BEHAVE, '--input', 'in', '--output', 'out', '--mini-batch-size', '2', '--', '--init-kill-once', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/worker-0 \(pid \d+\) was killed by SIGKILL before init\(\) finished; a fresh worker takes its place/);
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', worker_restarts: 1, items: { succeeded: 6 } });
    expect(fs.existsSync(path.join(dir, 'init-killed'))).toBe(true);
  });
});
