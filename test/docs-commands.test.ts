// Every command of the README and of docs/ runs as written. The fenced `sh` blocks are taken from
// the files, in order (README.md first, then docs/ by name), and run one line at a time with `sh -c`
// in one fresh project where the packed tarball is installed, as a reader would run them. A code
// block whose first line names a file (`// score.mjs`, `// entry.ts`) is saved under that name first.
// The backends the commands name are real servers on the ports they name (the suite has a network
// namespace of its own, so those ports are free): an OTLP receiver on 4318, a Pushgateway on 9091,
// and the local Application Insights endpoint.
//
// What the test changes, and only this: `npm install` of step-telemetry or tsx (no network:
// the tarball is unpacked and our dependencies linked), the placeholder connection string
// (`InstrumentationKey=...;IngestionEndpoint=https://...`: the local endpoint's), and
// `<pipeline_run_id>` / `<another_pipeline_run_id>` (the ids of the runs the commands made).
// A block that cannot run here says so in its info string: ```sh not-run: <why>.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppInsightsReceiver, type AppInsightsReceiver } from './helpers/appinsights-receiver.js';
import { assertIsolatedNetwork } from './helpers/netns.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { installPacked, installTsx, pack, ROOT } from './helpers/packed.js';
import { startPushgateway, type LaunchedServer } from './helpers/prometheus-servers.js';
import { readRunFolder } from './helpers/run-folder.js';
import { baseChildEnv } from './helpers/run-step.js';

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly info: string;
  readonly body: string;
}

const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

function blocksOf(file: string): Block[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out: Block[] = [];
  for (const m of text.matchAll(/^```(\w*)([^\n]*)\n([\s\S]*?)^```/gm)) {
    out.push({ file, line: text.slice(0, m.index).split('\n').length, lang: m[1]!, info: m[2]!.trim(), body: m[3]! });
  }
  return out;
}

/** The command lines of a block: continuations joined, comments and blank lines left out. */
function commandsOf(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const SHELL = new Set(['sh', 'bash', 'shell']);
// asynchronous: the receivers live in this process, and must answer while a command runs
const exec = promisify(execFile);

let work: string;
let project: string;
let tarball: string;
let otlp: OtlpReceiver;
let appInsights: AppInsightsReceiver;
let pushgateway: LaunchedServer;
const ran: Array<{ file: string; command: string; stdout: string }> = [];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'st-docs-'));
  ({ tarball } = pack(work));
  project = path.join(work, 'project');
  fs.mkdirSync(project);
  // the inputs the runner's example scores: files of a few sizes
  fs.mkdirSync(path.join(project, 'images'));
  for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(project, 'images', `img-${String(i).padStart(2, '0')}.pgm`), 'x'.repeat(200 * i));
  assertIsolatedNetwork(); // the commands configure Application Insights: nothing may leave loopback
  otlp = await startOtlpReceiver({ port: 4318 });
  appInsights = await startAppInsightsReceiver();
  pushgateway = await startPushgateway(9091);
}, 120_000);

afterAll(async () => {
  await Promise.all([otlp?.close(), appInsights?.close(), pushgateway?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

/** Pipeline run ids in the project's telemetry folder, oldest first. */
function runIds(): string[] {
  const dir = path.join(project, 'telemetry');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((d) => fs.statSync(path.join(dir, d)).isDirectory())
    .sort((a, b) => fs.statSync(path.join(dir, a)).birthtimeMs - fs.statSync(path.join(dir, b)).birthtimeMs || a.localeCompare(b));
}

async function run(file: string, command: string): Promise<void> {
  const install = /^npm install(?: --save-dev)? (\S+)$/.exec(command);
  if (install) {
    if (install[1] === 'step-telemetry') installPacked(tarball, project);
    else if (install[1] === 'tsx') installTsx(project);
    else throw new Error(`${file}: \`${command}\` installs ${install[1]}, which this test cannot provide offline`);
    ran.push({ file, command, stdout: '' });
    return;
  }
  const ids = runIds();
  let line = command.replace('InstrumentationKey=...;IngestionEndpoint=https://...', appInsights.connectionString);
  if (line.includes('<pipeline_run_id>')) line = line.replaceAll('<pipeline_run_id>', ids[0]!);
  if (line.includes('<another_pipeline_run_id>')) line = line.replaceAll('<another_pipeline_run_id>', ids[1]!);
  // a command may configure Application Insights: its statsbeat stays off (and the suite's network namespace holds only loopback)
  const env = { ...baseChildEnv(), APPLICATION_INSIGHTS_NO_STATSBEAT: 'true', APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true', NODE_EXTRA_CA_CERTS: appInsights.caFile, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  try {
    const { stdout } = await exec('sh', ['-c', line], { cwd: project, env, encoding: 'utf8', timeout: 90_000, maxBuffer: 16 << 20 });
    ran.push({ file, command, stdout });
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    throw new Error(`${file}: \`${command}\` exited ${e.code}:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Save the blocks that name their file, then run the shell blocks of `file`, in order. */
async function runDoc(file: string): Promise<Block[]> {
  const blocks = blocksOf(file);
  for (const b of blocks) {
    const named = /^\/\/ ([\w.-]+\.(?:mjs|js|ts|mts))\b/.exec(b.body);
    if (named && !SHELL.has(b.lang)) fs.writeFileSync(path.join(project, named[1]!), b.body);
  }
  for (const b of blocks) {
    if (!SHELL.has(b.lang)) continue;
    if (/^not-run:/.test(b.info)) {
      expect(b.info.slice('not-run:'.length).trim(), `${file}:${b.line}: a block that is not run says why`).not.toBe('');
      continue;
    }
    for (const command of commandsOf(b.body)) await run(file, command);
  }
  return blocks;
}

describe('the commands of the README and docs/', () => {
  it(`regression: the README's TypeScript quickstart did not run (node score.ts on Node 20, top-level await under "type":"commonjs"); every README command runs as written on Node ${process.versions.node}`, async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const quickstart = /^## Quickstart\n([\s\S]*?)^## /m.exec(readme)?.[1];
    expect(quickstart, 'README.md has a "## Quickstart" section').toBeDefined();
    expect(quickstart).toMatch(/^npm init -y$/m);
    expect(quickstart).toMatch(/^npx tsx score\.ts\b/m);
    // "save the same code as score.ts"
    const code = blocksOf('README.md').find((b) => b.lang === 'js' && b.body.startsWith('// score.mjs'))!.body;
    fs.writeFileSync(path.join(project, 'score.ts'), code);
    await runDoc('README.md');
    expect(JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')).type).toBe('module');
    const commands = ran.map((r) => r.command);
    expect(commands).toEqual(expect.arrayContaining(['npm init -y', 'node score.mjs', 'npx tsx score.ts']));
    // each run of score wrote its step, the TypeScript one included; report and doctor read them
    for (const id of runIds()) {
      const step = readRunFolder(path.join(project, 'telemetry', id, 'score'));
      expect(step.step.outcome, id).toBe('success');
      expect(step.metrics.map((m) => m.name)).toContain('accuracy');
    }
    expect(runIds().some((id) => fs.existsSync(path.join(project, 'telemetry', id, 'report.html')))).toBe(true);
    // the backend lines reached their backends
    expect(otlp.spans().map((s) => s.name)).toContain('score');
    expect(appInsights.requests().some((r) => r.data.baseData.name === 'score')).toBe(true);
  }, 180_000);

  for (const file of DOCS.filter((f) => f !== 'README.md')) {
    it(`${file}: every command runs as written`, async () => {
      const before = ran.length;
      await runDoc(file);
      const mine = ran.slice(before);
      if (file === 'docs/exports.md') {
        const metrics = await (await fetch(`${pushgateway.url}/metrics`)).text();
        expect(metrics).toMatch(/step_running\{[^}]*step="score"/);
      }
      if (file === 'docs/runner.md') {
        const rows = fs.readFileSync(path.join(project, 'scores', 'parallel_run_step.txt'), 'utf8').trim().split('\n');
        expect(rows).toHaveLength(25);
        expect(rows.every((r) => /img-\d\d\.pgm,(large|small)$/.test(r))).toBe(true);
      }
      if (file === 'docs/run-folder.md') {
        expect(mine.map((r) => r.stdout).join('')).toMatch(/^7\t0\.31$/m);
      }
      if (file === 'docs/report-and-doctor.md') {
        expect(fs.existsSync(path.join(project, 'score.html'))).toBe(true);
      }
    }, 180_000);
  }
});
