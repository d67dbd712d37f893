// The run folder in trouble: two processes with one identity, a lock left by a killed process,
// a disk that fills up during the step (a small tmpfs, mounted here: the suite runs as root), and
// a folder that cannot be written at all. Real step processes; each regression named after its bug.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { allJsonLines, marker, readJsonl, readRunFolder } from './helpers/run-folder.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { cli, doctorJson } from './fixtures/report/runs.js';
import { BatchedFile } from '../src/sinks/local.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/steps/${name}`, import.meta.url));
const FULL = fixture('full-step.mjs');

/** A tmpfs of `size` at a new temp folder, unmounted and removed when the test ends. */
function smallDisk(size: string, options = ''): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-disk-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${options ? `,${options}` : ''}`, 'tmpfs', dir], { encoding: 'utf8' });
  onTestFinished(() => {
    spawnSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  if (mount.status !== 0) throw new Error(`mount -t tmpfs failed (these tests mount a small disk and need root): ${mount.stderr}`);
  return dir;
}

describe('two processes in one step folder', () => {
  it('regression: two processes with the same process index destroyed each other\'s records (20,000 of 20,000 logs lost, lines interleaved mid-line, doctor said "success")', async () => {
    const dir = await useTempDir();
    const sync = path.join(dir, 'sync');
    fs.mkdirSync(sync);
    const env = { STEP_TELEMETRY_DIR: path.join(dir, 'tel'), STEP_TELEMETRY_PIPELINE_RUN_ID: 'pr-shared', STEP_TELEMETRY_CONSOLE: 'false', SYNC_DIR: sync };
    const [a, b] = await Promise.all([runStepScript({ script: fixture('two-writers.mjs'), env }), runStepScript({ script: fixture('two-writers.mjs'), env })]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const folder = path.join(dir, 'tel', 'pr-shared', 'shared');
    const files = fs.readdirSync(folder).sort();
    // the second one to start found the folder held and wrote files of its own
    const second = [a, b].find((r) => r.stderr.includes('is being written by process'))!;
    expect(second, `${a.stderr}\n${b.stderr}`).toBeDefined();
    expect(second.stderr).toMatch(/with the same process index 0: this process writes files of its own beside them \(logs\.process-0\.pid-\d+\.jsonl/);
    const own = `.process-0.pid-${second.pid}`;
    expect(files).toEqual(['driver.log', `driver${own}.log`, 'logs.jsonl', `logs${own}.jsonl`, 'metrics.jsonl', `metrics${own}.jsonl`, 'resources.jsonl', `resources${own}.jsonl`, 'spans.jsonl', `spans${own}.jsonl`, 'step.json', `step${own}.json`]);
    allJsonLines(folder); // no line cut in two
    const records = [...readJsonl(path.join(folder, 'logs.jsonl')), ...readJsonl(path.join(folder, `logs${own}.jsonl`))].filter((l) => l.message === 'record');
    expect(records).toHaveLength(40_000);
    for (const r of [a, b]) expect(records.filter((l) => l.writer === r.pid)).toHaveLength(20_000);
    const doctor = await doctorJson(folder);
    expect(doctor.json.findings.map((f) => f.id)).toEqual(['concurrent-writers']);
    expect(doctor.json.findings[0]!.evidence[0]).toContain(`process ${[a, b].find((r) => r !== second)!.pid}`);
    expect((await cli(['report', folder])).code).toBe(0);
  });

  it('a lock left by a killed process is taken over (this host: no such process; another host: not touched for 2 minutes), a live one on another host is not', async () => {
    const dir = await useTempDir();
    const gone = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has exited
    const cases = [
      { name: 'killed-here', holder: { pid: gone, host: os.hostname() }, age: 0, takenOver: true },
      { name: 'preempted-node', holder: { pid: 1, host: 'node-that-was-lost' }, age: 10 * 60_000, takenOver: true },
      { name: 'live-node', holder: { pid: 1, host: 'node-still-writing' }, age: 0, takenOver: false },
    ];
    for (const c of cases) {
      const folder = path.join(dir, c.name, 'score');
      fs.mkdirSync(folder, { recursive: true });
      const lock = path.join(folder, 'step.lock');
      fs.writeFileSync(lock, `${JSON.stringify({ ...c.holder, run_id: 'earlier-run' })}\n`);
      const then = new Date(Date.now() - c.age);
      fs.utimesSync(lock, then, then);
      const r = await runStepScript({ script: FULL, env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_PIPELINE_RUN_ID: c.name, STEP_TELEMETRY_CONSOLE: 'false' } });
      expect(r.code).toBe(0);
      const files = fs.readdirSync(folder);
      if (c.takenOver) {
        expect(r.stderr, c.name).not.toContain('is being written by');
        expect(files.filter((f) => f.includes('.pid-') || f.endsWith('.lock')), c.name).toEqual([]); // the usual files, the lock removed at the end
        expect(files).toContain('logs.jsonl');
      } else {
        expect(r.stderr).toContain(`is being written by process 1 on node-still-writing (run earlier-run`);
        expect(files).toContain(`logs.process-0.pid-${r.pid}.jsonl`);
        expect(files).toContain('step.lock'); // the other host's, left alone
      }
    }
  });
});

describe('a full or unwritable run folder', () => {
  it('regression: on a full disk the step reported success silently, step.json stayed "running", and doctor blamed SIGKILL instead of local-files-incomplete', async () => {
    const disk = smallDisk('1m');
    const r = await runStepScript({ script: fixture('fill-disk.mjs'), env: { STEP_TELEMETRY_DIR: disk, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/cannot write logs\.jsonl \(ENOSPC: no space left on device/);
    // said again at the end, not only when it happened
    expect(r.stderr).toMatch(/the run folder .* is incomplete: writing .*logs\.jsonl.* failed from .* on \(ENOSPC/);
    expect(marker(r.stdout, 'RESULT').outcome).toBe('success'); // what the program did: telemetry does not fail the step
    const folder = path.join(disk, fs.readdirSync(disk)[0]!, 'fill');
    const run = readRunFolder(folder);
    expect(run.step.outcome).toBe('success');
    expect(run.step.local).toMatchObject({ complete: false, failures: expect.arrayContaining([expect.objectContaining({ file: 'logs.jsonl', error: expect.stringMatching(/^ENOSPC/) })]) });
    // what was written is whole: every line parses, the files end at a record
    const counts = allJsonLines(folder);
    expect(counts['logs.jsonl']).toBeGreaterThan(0);
    for (const f of fs.readdirSync(folder).filter((n) => n.endsWith('.jsonl'))) {
      const text = fs.readFileSync(path.join(folder, f), 'utf8');
      expect(text === '' || text.endsWith('}\n'), f).toBe(true);
    }
    expect(fs.readdirSync(folder).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
    const doctor = await doctorJson(folder);
    expect(doctor.json.findings.map((f) => f.id)).toEqual(['local-files-incomplete']);
    expect(doctor.code).toBe(1);
    // the report reads the incomplete folder; it is written elsewhere (the full disk may have no room left for it, and then report rightly exits 1)
    const page = path.join(await useTempDir(), 'report.html');
    expect((await cli(['report', folder, '--output', page])).code).toBe(0);
    expect(fs.statSync(page).size).toBeGreaterThan(0);
  });

  it('regression: a write cut short by a full disk, then failed again by a flush, left a run of NUL bytes in the file (the rest of the short write landed past the cut)', async () => {
    // an asynchronous batch write that the disk cuts short goes on with the rest of its bytes; a
    // synchronous flush (back-pressure, an exit path) that fails meanwhile cuts the file at the
    // batch's start: the rest then landed past the new end, leaving a hole of zeros before it
    const line = `{"pad":"${'x'.repeat(200)}"}`;
    for (let trial = 0; trial < 12; trial++) {
      const disk = smallDisk('96k');
      const file = path.join(disk, 'f.jsonl');
      let failures = 0;
      const f = new BatchedFile(file, () => failures++, '\n');
      for (let i = 0; i < 200; i++) f.append(line); // about 40 KB: fits
      f.flush();
      for (let i = 0; i < 400; i++) f.append(line); // about 80 KB more: does not
      f.flush(); // queued behind the first
      await new Promise<void>((resolve) => setImmediate(resolve));
      f.flushSync(); // the queued batch, synchronously: the disk is full
      f.close();
      // the asynchronous write's callbacks, until the file has closed
      for (let i = 0; i < 50 && (f as unknown as { fd?: number }).fd !== undefined; i++) await new Promise<void>((resolve) => setTimeout(resolve, 5));
      const bytes = fs.readFileSync(file);
      expect(bytes.indexOf(0), `trial ${trial}: a NUL byte at ${bytes.indexOf(0)} of ${bytes.length}`).toBe(-1);
      const text = bytes.toString('utf8');
      expect(text === '' || text.endsWith('}\n'), `trial ${trial}`).toBe(true);
      expect(failures).toBe(1);
    }
  });

  it('a step killed after its disk filled up: step.json says so, and doctor reports local-files-incomplete, not a SIGKILL with whole files', async () => {
    const disk = smallDisk('1m');
    const r = await runStepScript({
      script: fixture('fill-disk.mjs'),
      env: { STEP_TELEMETRY_DIR: disk, STEP_TELEMETRY_CONSOLE: 'false', FIXTURE_HANG: '1' },
      signalAfter: { signal: 'SIGKILL', whenStdoutIncludes: 'DISK_FULL' },
    });
    expect(r.stdout).toContain('DISK_FULL');
    expect(r.signal).toBe('SIGKILL');
    const folder = path.join(disk, fs.readdirSync(disk)[0]!, 'fill');
    const step = JSON.parse(fs.readFileSync(path.join(folder, 'step.json'), 'utf8'));
    expect(step).toMatchObject({ outcome: 'running', local: { complete: false } });
    const doctor = await doctorJson(folder);
    // a kill can land while another file's failed write is being cut off: its half-written last line is part of the same story
    const torn = path.join(await useTempDir(), 'fill');
    fs.cpSync(folder, torn, { recursive: true });
    fs.appendFileSync(path.join(torn, 'metrics.jsonl'), '{"time":"2026-01-01T00:00:00.000Z","kind":"sca');
    for (const { json } of [doctor, await doctorJson(torn)]) {
      expect(json.findings.map((f) => f.id)).toEqual(['local-files-incomplete']);
      expect(json.findings[0]!.evidence.find((e) => e.includes('still says "running"'))).toBeDefined();
    }
    expect((await doctorJson(torn)).json.findings[0]!.evidence.at(-1)).toMatch(/^fill\/metrics\.jsonl:\d+: the last line is half-written .*\(being written when the process stopped\)$/);
  });

  it('regression: strict mode did not throw for an unwritable STEP_TELEMETRY_DIR (a read-only disk, a path under a file)', async () => {
    const readOnly = smallDisk('64k', 'ro');
    const dir = await useTempDir();
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    for (const target of [readOnly, path.join(file, 'telemetry')]) {
      const strict = await runStepScript({ script: FULL, env: { STEP_TELEMETRY_DIR: target, STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_STRICT: 'true' } });
      expect(strict.code).not.toBe(0);
      expect(strict.stderr).toMatch(/ConfigError: step-telemetry configuration: STEP_TELEMETRY_DIR: expected a writable folder \(.*: (EROFS|ENOTDIR)\)/);
      // without strict, the step runs on without its run folder, and says so once
      const lax = await runStepScript({ script: FULL, env: { STEP_TELEMETRY_DIR: target, STEP_TELEMETRY_CONSOLE: 'false' } });
      expect(lax.code).toBe(0);
      expect(lax.stderr.match(/STEP_TELEMETRY_DIR: expected a writable folder/g)).toHaveLength(1);
    }
    expect(execFileSync('ls', ['-A', readOnly], { encoding: 'utf8' })).toBe('');
  });
});
