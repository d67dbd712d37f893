// The package as a user gets it: `npm pack` of a clean clone (no dist/, so `prepack` must build it),
// unpacked into a fresh project's node_modules (its dependencies linked from ours: the tests run
// without a network), imported by name, and the README's quickstart run as written.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseChildEnv, runStepScript, useTempDir } from './helpers/run-step.js';
import { readRunFolder } from './helpers/run-folder.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let work: string;
let tarball: string;
let packed: string[];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'st-pack-'));
  // a clean clone of the working tree: tracked and new files, nothing that .gitignore keeps out (dist/, node_modules/)
  const clone = path.join(work, 'clone');
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    if (!fs.existsSync(path.join(root, f))) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(clone, f));
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
  const json = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: clone, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [info] = JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(work, info.filename);
  packed = info.files.map((f) => f.path);
}, 120_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A fresh project folder with the tarball installed as npm would: unpacked, dependencies linked from ours, bin links made. */
function installPacked(project: string): void {
  const modules = path.join(project, 'node_modules');
  fs.mkdirSync(path.join(modules, 'step-telemetry'), { recursive: true });
  fs.mkdirSync(path.join(modules, '.bin'), { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', path.join(modules, 'step-telemetry'), '--strip-components=1']);
  for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (entry === '.bin' || entry === 'step-telemetry' || entry.startsWith('.')) continue;
    fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry));
  }
  const cli = path.join(modules, 'step-telemetry', 'dist', 'cli.js');
  fs.chmodSync(cli, 0o755);
  fs.symlinkSync('../step-telemetry/dist/cli.js', path.join(modules, '.bin', 'step-telemetry'));
}

describe('packaging', () => {
  it('has exactly one version of each @opentelemetry/* package installed', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'scripts/check-otel-versions.mjs')], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/one version each/);
  });

  it('regression: npm pack of a clean clone packed 3 files and no dist; prepack builds it, and the collector configuration, dashboards and alert rules ship', () => {
    expect(packed).toContain('dist/index.js');
    expect(packed).toContain('dist/index.d.ts');
    expect(packed).toContain('dist/cli.js');
    for (const f of ['collector-config/otelcol.yaml', 'collector-config/compose/docker-compose.yaml', 'collector-config/kubernetes/minibatch-job.yaml', 'dashboards/step-telemetry.json', 'dashboards/provisioning/dashboards.yaml', 'alerts/step-telemetry-rules.yaml']) {
      expect(packed).toContain(f);
    }
    expect(packed.every((f) => /^(dist\/|collector-config\/|dashboards\/|alerts\/|README\.md$|package\.json$|LICENSE$)/.test(f)), packed.join(', ')).toBe(true);
    expect(packed.some((f) => f.endsWith('.map') || f.startsWith('dist/ops/'))).toBe(false);
  });

  it('the tarball imports and runs by its name', async () => {
    const dir = await useTempDir('st-consumer-');
    installPacked(dir);
    const script = path.join(dir, 'step.mjs');
    fs.writeFileSync(
      script,
      `import { startStep, CATALOG } from 'step-telemetry';
const step = await startStep({ name: 'packed', dir: ${JSON.stringify(path.join(dir, 'tel'))}, console: false });
step.log('ok', 1);
const r = await step.end();
console.log('PACKED', r.outcome, Object.keys(CATALOG).length);`,
    );
    const r = await runStepScript({ script, cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/PACKED success \d+/);
    const version = execFileSync(process.execPath, [path.join(dir, 'node_modules', 'step-telemetry', 'dist', 'cli.js'), 'version'], { encoding: 'utf8' });
    expect(version.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  it(`regression: the README's TypeScript quickstart did not run (node score.ts on Node 20, top-level await under "type":"commonjs"); its commands run as written on Node ${process.versions.node}`, async () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const quickstart = /^## Quickstart\n([\s\S]*?)^## /m.exec(readme)?.[1];
    expect(quickstart, 'README.md has a "## Quickstart" section').toBeDefined();
    const blocks = [...quickstart!.matchAll(/^```(\w+)\n([\s\S]*?)^```/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
    const code = blocks.find((b) => b.lang === 'js')?.body;
    expect(code).toContain("from 'step-telemetry'");
    const commands = blocks.filter((b) => b.lang === 'sh').flatMap((b) => b.body.split('\n')).map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    expect(commands).toEqual(expect.arrayContaining(['npm init -y', 'npx tsx score.ts', 'node score.mjs']));

    const project = await useTempDir('st-quickstart-');
    fs.writeFileSync(path.join(project, 'score.mjs'), code!);
    fs.writeFileSync(path.join(project, 'score.ts'), code!); // "save the same code as score.ts"
    const env = { ...baseChildEnv(), npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    const ran: string[] = [];
    for (const command of commands) {
      if (/^\w+=/.test(command)) continue; // the backend examples: they need a backend
      const install = /^npm install(?: --save-dev)? (\S+)$/.exec(command);
      if (install) {
        // no network here: the packed tarball, and tsx from our own dependencies
        if (install[1] === 'step-telemetry') installPacked(project);
        else if (install[1] === 'tsx') fs.symlinkSync('../tsx/dist/cli.mjs', path.join(project, 'node_modules', '.bin', 'tsx'));
        else throw new Error(`the quickstart installs ${install[1]}, which this test cannot provide offline`);
        continue;
      }
      try {
        execFileSync('sh', ['-c', command], { cwd: project, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        throw new Error(`\`${command}\` failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
      }
      ran.push(command);
    }
    expect(ran).toEqual(expect.arrayContaining(['npx tsx score.ts', 'node score.mjs']));
    expect(JSON.parse(fs.readFileSync(path.join(project, 'package.json'), 'utf8')).type).toBe('module');
    // both runs wrote the step (the TypeScript one included), and report and doctor read them
    const telemetry = path.join(project, 'telemetry');
    const runs = fs.readdirSync(telemetry).filter((d) => fs.statSync(path.join(telemetry, d)).isDirectory());
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      const step = readRunFolder(path.join(telemetry, run, 'score'));
      expect(step.step.outcome).toBe('success');
      expect(step.metrics.map((m) => m.name)).toContain('accuracy');
    }
    expect(runs.filter((run) => fs.existsSync(path.join(telemetry, run, 'report.html')))).toHaveLength(1); // the README's report command, after the first
  });
});
