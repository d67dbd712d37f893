/**
 * The package as a user gets it: the packed tarball, installed into a fresh project the way npm
 * would (unpacked into node_modules, bin links made), its dependencies linked from ours because
 * the tests run without a network.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Packed {
  /** Path of the .tgz. */
  readonly tarball: string;
  /** The files in it. */
  readonly files: readonly string[];
}

/**
 * `npm pack` into `dest`. With `cleanClone`, of a copy of the working tree without what .gitignore
 * keeps out (no dist/: prepack must build it, as on a clean clone); else of this checkout as built
 * by pretest, without running prepack again.
 */
export function pack(dest: string, options: { cleanClone?: boolean } = {}): Packed {
  let from = ROOT;
  if (options.cleanClone) {
    from = path.join(dest, 'clone');
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!fs.existsSync(path.join(ROOT, f))) continue; // deleted in the working tree
      fs.mkdirSync(path.dirname(path.join(from, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(from, f));
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(from, 'node_modules'));
  }
  const args = ['pack', '--json', '--pack-destination', dest, ...(options.cleanClone ? [] : ['--ignore-scripts'])];
  const json = execFileSync('npm', args, { cwd: from, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [info] = JSON.parse(json) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: path.join(dest, info!.filename), files: info!.files.map((f) => f.path) };
}

/** Install the tarball into `project` as npm would: unpacked, dependencies linked from ours, bin links made. */
export function installPacked(tarball: string, project: string): void {
  const modules = path.join(project, 'node_modules');
  fs.mkdirSync(path.join(modules, 'step-telemetry'), { recursive: true });
  fs.mkdirSync(path.join(modules, '.bin'), { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', path.join(modules, 'step-telemetry'), '--strip-components=1']);
  for (const entry of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry === '.bin' || entry === 'step-telemetry' || entry.startsWith('.')) continue;
    if (!fs.existsSync(path.join(modules, entry))) fs.symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  const cli = path.join(modules, 'step-telemetry', 'dist', 'cli.js');
  fs.chmodSync(cli, 0o755);
  fs.symlinkSync('../step-telemetry/dist/cli.js', path.join(modules, '.bin', 'step-telemetry'));
}

/** `npm install --save-dev tsx`, offline: the tsx of our own dependencies. */
export function installTsx(project: string): void {
  fs.mkdirSync(path.join(project, 'node_modules', '.bin'), { recursive: true });
  if (!fs.existsSync(path.join(project, 'node_modules', 'tsx'))) fs.symlinkSync(path.join(ROOT, 'node_modules', 'tsx'), path.join(project, 'node_modules', 'tsx'));
  fs.symlinkSync('../tsx/dist/cli.mjs', path.join(project, 'node_modules', '.bin', 'tsx'));
}
