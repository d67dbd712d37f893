// The runtime a step ran on: Node version, platform and the versions of the step's direct
// dependencies, recorded at start so that "works locally, fails remotely" can be compared later.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RuntimeInfo {
  node: string;
  platform: string;
  arch: string;
  cpus: number;
  memoryBytes: number;
  packageJson?: string;
  dependencies: Record<string, string | null>;
}

function findPackageJson(start: string): string | undefined {
  let dir = start;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function installedVersion(name: string, from: string): string | null {
  let dir = from;
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
      return pkg.version ?? null;
    } catch {
      // not here; look further up
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Never throws: a missing or unreadable package.json gives an empty dependency list. */
export function collectRuntimeInfo(mainScript: string | undefined = process.argv[1]): RuntimeInfo {
  const info: RuntimeInfo = {
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    dependencies: {},
  };
  try {
    const start = mainScript ? path.dirname(path.resolve(mainScript)) : process.cwd();
    const pkgPath = findPackageJson(start);
    if (!pkgPath) return info;
    info.packageJson = pkgPath;
    const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8')) as { dependencies?: Record<string, string> };
    const pkgDir = path.dirname(pkgPath);
    for (const name of Object.keys(pkg.dependencies ?? {}).sort()) info.dependencies[name] = installedVersion(name, pkgDir);
  } catch {
    // keep what we have
  }
  return info;
}
