// The package as a user gets it: `npm pack`, unpacked into a fresh node_modules, imported by name.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runStepScript, useTempDir } from './helpers/run-step.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('packaging', () => {
  it('has exactly one version of each @opentelemetry/* package installed', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'scripts/check-otel-versions.mjs')], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/one version each/);
  });

  it('packs only dist and the README, and the tarball imports and runs by its name', async () => {
    const dir = await useTempDir('st-pack-');
    const json = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [info] = JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli.js');
    expect(files.every((f) => /^(dist\/|README\.md$|package\.json$|LICENSE$)/.test(f)), files.join(', ')).toBe(true);

    // a consumer project: the unpacked tarball, its dependencies linked from ours
    const modules = path.join(dir, 'consumer', 'node_modules');
    fs.mkdirSync(path.join(modules, 'step-telemetry'), { recursive: true });
    execFileSync('tar', ['-xzf', path.join(dir, info.filename), '-C', path.join(modules, 'step-telemetry'), '--strip-components=1']);
    for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
      if (entry === '.bin' || entry === 'step-telemetry' || entry.startsWith('.')) continue;
      fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry));
    }
    const script = path.join(dir, 'consumer', 'step.mjs');
    fs.writeFileSync(
      script,
      `import { startStep, CATALOG } from 'step-telemetry';
const step = await startStep({ name: 'packed', dir: ${JSON.stringify(path.join(dir, 'tel'))}, console: false });
step.log('ok', 1);
const r = await step.end();
console.log('PACKED', r.outcome, Object.keys(CATALOG).length);`,
    );
    const r = await runStepScript({ script, cwd: path.join(dir, 'consumer') });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/PACKED success \d+/);
    const version = execFileSync(process.execPath, [path.join(modules, 'step-telemetry', 'dist', 'cli.js'), 'version'], { encoding: 'utf8' });
    expect(version.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });
});
