// The package as a user gets it: `npm pack` of a clean clone (no dist/, so `prepack` must build it),
// unpacked into a fresh project's node_modules (its dependencies linked from ours: the tests run
// without a network), imported by name. (The README's and docs' commands: docs-commands.test.ts.)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, pack, ROOT } from './helpers/packed.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';

let work: string;
let tarball: string;
let packed: readonly string[];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'st-pack-'));
  ({ tarball, files: packed } = pack(work, { cleanClone: true }));
}, 120_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('packaging', () => {
  it('has exactly one version of each @opentelemetry/* package installed', () => {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts/check-otel-versions.mjs')], { cwd: ROOT, encoding: 'utf8' });
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
    installPacked(tarball, dir);
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
    expect(version.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});
