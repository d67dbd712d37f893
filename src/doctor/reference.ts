// What `doctor --reference` compares a run with: another run folder (a local run that worked, say),
// a step.json, or a lock file (package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml).
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { RunFolderError, readJsonFile } from '../run-folder/files.js';
import type { Runtime, StepRun } from '../run-folder/model.js';
import { readRunFolder } from '../run-folder/read.js';
import type { Reference } from './findings.js';

function runtimeOf(json: Record<string, unknown>): Runtime | undefined {
  const rt = json.runtime as Record<string, unknown> | undefined;
  if (!rt || typeof rt !== 'object') return undefined;
  return {
    node: typeof rt.node === 'string' ? rt.node : undefined,
    platform: typeof rt.platform === 'string' ? rt.platform : undefined,
    arch: typeof rt.arch === 'string' ? rt.arch : undefined,
    dependencies: (rt.dependencies as Record<string, string | null>) ?? {},
  };
}

/** Versions by package name from a lock file (several when the lock holds several). */
export function readLockFile(file: string): Map<string, string[]> {
  const text = fs.readFileSync(file, 'utf8');
  const base = path.basename(file);
  const versions = new Map<string, string[]>();
  const add = (name: string, version: unknown): void => {
    if (typeof version !== 'string' || version === '') return;
    const v = version.replace(/^npm:/, '').replace(/[(_].*$/, '');
    const list = versions.get(name);
    if (!list) versions.set(name, [v]);
    else if (!list.includes(v)) list.push(v);
  };
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    const lock = readJsonFile(file, base);
    if (lock.lockfileVersion === undefined) throw new RunFolderError(`${base}: a JSON file without "lockfileVersion": not a package-lock.json`, base);
    const packages = lock.packages as Record<string, { version?: string }> | undefined;
    if (packages) {
      for (const [key, entry] of Object.entries(packages)) {
        // top-level installs only: node_modules/<name>, not nested node_modules/a/node_modules/b
        const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
        if (m) add(m[1]!, entry?.version);
      }
    } else {
      for (const [name, entry] of Object.entries((lock.dependencies as Record<string, { version?: string }>) ?? {})) add(name, entry?.version);
    }
    return versions;
  }
  if (base === 'pnpm-lock.yaml' || /^lockfileVersion:/m.test(text.slice(0, 200))) {
    let doc: Record<string, unknown>;
    try {
      doc = parseYaml(text) as Record<string, unknown>;
    } catch (error) {
      const pos = (error as { linePos?: { line: number }[] }).linePos?.[0]?.line;
      throw new RunFolderError(`${base}${pos ? `:${pos}` : ''}: not valid YAML: ${(error as Error).message.split('\n')[0]}`, base, pos);
    }
    const importer = ((doc.importers as Record<string, Record<string, unknown>> | undefined)?.['.'] ?? doc) as Record<string, unknown>;
    for (const section of ['dependencies', 'devDependencies', 'optionalDependencies']) {
      for (const [name, entry] of Object.entries((importer[section] as Record<string, unknown>) ?? {})) {
        add(name, typeof entry === 'string' ? entry : (entry as { version?: string })?.version);
      }
    }
    return versions;
  }
  if (base === 'yarn.lock' || /# yarn lockfile|__metadata:/.test(text.slice(0, 500))) {
    let names: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (!/^\s/.test(line) && line.trimEnd().endsWith(':')) {
        names = line
          .trimEnd()
          .slice(0, -1)
          .split(/,\s*/)
          .map((spec) => spec.replace(/^"|"$/g, ''))
          .map((spec) => spec.slice(0, spec.indexOf('@', 1) > 0 ? spec.indexOf('@', 1) : spec.length))
          .filter((n) => n !== '__metadata');
        continue;
      }
      const m = /^\s+version:?\s+"?([^"\s]+)"?/.exec(line);
      if (m) for (const n of names) add(n, m[1]);
    }
    return versions;
  }
  throw new RunFolderError(`${base}: not a lock file this command reads (package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml)`, base);
}

/** Load a reference for `doctor --reference`. */
export function loadReference(target: string): Reference {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw new RunFolderError(`--reference ${target}: no such file or folder`);
  }
  if (stat.isDirectory()) {
    const run = readRunFolder(target, { light: true });
    return {
      kind: 'run-folder',
      label: `the reference run ${target}`,
      runtimeFor: (step: StepRun) => {
        const same = run.steps.filter((s) => s.name === step.name);
        const match = same.find((s) => s.nodeRank === step.nodeRank) ?? same[0] ?? (run.steps.length === 1 ? run.steps[0] : undefined);
        if (!match?.runtime) return undefined;
        return { runtime: match.runtime, label: `the reference run (${match.label} in ${target})` };
      },
    };
  }
  const base = path.basename(target);
  if (/\.json$/.test(base) && !/lock|shrinkwrap/.test(base)) {
    const json = readJsonFile(target, base);
    const runtime = runtimeOf(json);
    if (!runtime) throw new RunFolderError(`--reference ${target}: a JSON file without "runtime": give a step.json, a run folder or a lock file`, base);
    return { kind: 'run-folder', label: `the reference ${base}`, runtimeFor: () => ({ runtime, label: `the reference ${target}` }) };
  }
  const lock = readLockFile(target);
  return {
    kind: 'lock-file',
    label: `the lock file ${target}`,
    runtimeFor: (step: StepRun) => {
      if (!step.runtime) return undefined;
      const dependencies: Record<string, string | null> = {};
      for (const [name, installed] of Object.entries(step.runtime.dependencies)) {
        const locked = lock.get(name);
        dependencies[name] = !locked ? null : installed !== null && locked.includes(installed) ? installed : locked[0]!;
      }
      return { runtime: { dependencies }, label: `the lock file ${target}` };
    },
  };
}
