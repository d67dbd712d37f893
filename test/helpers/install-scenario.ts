/**
 * Installs the packed step-telemetry tarball into a fresh project beside one of the dependency sets
 * of test/install/scenarios.mjs, from the npm cache only (`--offline`: the suite has no network;
 * `pretest` filled the cache, see scripts/warm-offline-cache.mjs).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { INSTALL_SCENARIOS } from '../install/scenarios.mjs';
import { useTempDir } from './run-step.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

export interface InstalledScenario {
  /** The project folder (its node_modules holds step-telemetry and the scenario's dependencies). */
  readonly dir: string;
  /** `npm ls --all --json` of the project. */
  ls(): Promise<NpmTree>;
}

export interface NpmTree {
  version?: string;
  dependencies?: Record<string, NpmTree>;
}

/** Every version of `name` in the tree. */
export function versionsOf(tree: NpmTree, name: string): Set<string> {
  const out = new Set<string>();
  (function walk(deps: Record<string, NpmTree> | undefined): void {
    for (const [n, info] of Object.entries(deps ?? {})) {
      if (n === name && info.version) out.add(info.version);
      walk(info.dependencies);
    }
  })(tree.dependencies);
  return out;
}

export async function installScenario(name: string): Promise<InstalledScenario> {
  const scenario = INSTALL_SCENARIOS.find((s) => s.name === name);
  if (!scenario) throw new Error(`no install scenario "${name}" in test/install/scenarios.mjs`);
  const tmp = await useTempDir(`st-install-${name}-`);
  // dist/ is built (the test script's pretest): `prepack` would rebuild it in place under the other tests' feet
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: root });
  const [info] = JSON.parse(stdout) as Array<{ filename: string }>;
  const dir = path.join(tmp, 'project');
  fs.mkdirSync(dir);
  const dependencies = { ...scenario.dependencies, 'step-telemetry': `file:${path.join(tmp, info.filename)}` };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `scenario-${name}`, private: true, type: 'module', dependencies }, null, 2));
  try {
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, maxBuffer: 16 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`npm install --offline failed for the scenario "${name}" (is the npm cache filled? run: node scripts/warm-offline-cache.mjs --force):\n${e.stderr ?? e.message}`);
  }
  return {
    dir,
    async ls() {
      const r = await run('npm', ['ls', '--all', '--json'], { cwd: dir, maxBuffer: 64 << 20 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '{}' }));
      return JSON.parse(r.stdout) as NpmTree;
    },
  };
}
