/** Reading a step's run folder in tests. */
import fs from 'node:fs';
import path from 'node:path';

export function readJsonl<T = Record<string, any>>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as T;
      } catch {
        throw new Error(`${file}:${i + 1}: not JSON: ${l.slice(0, 200)}`);
      }
    });
}

export interface RunFolder {
  folder: string;
  logs: Record<string, any>[];
  metrics: Record<string, any>[];
  spans: Record<string, any>[];
  driver: string;
  step: Record<string, any>;
}

/** The only run folder below `dir` (<dir>/<pipeline_run_id>/<step_name>). */
export function findRunFolder(dir: string, stepName?: string): string {
  const found: string[] = [];
  for (const run of fs.readdirSync(dir)) {
    for (const step of fs.readdirSync(path.join(dir, run))) {
      if (stepName === undefined || step === stepName) found.push(path.join(dir, run, step));
    }
  }
  if (found.length !== 1) throw new Error(`expected one run folder under ${dir}, found ${found.length}: ${found.join(', ')}`);
  return found[0];
}

export function readRunFolder(folder: string): RunFolder {
  return {
    folder,
    logs: readJsonl(path.join(folder, 'logs.jsonl')),
    metrics: readJsonl(path.join(folder, 'metrics.jsonl')),
    spans: readJsonl(path.join(folder, 'spans.jsonl')),
    driver: fs.existsSync(path.join(folder, 'driver.log')) ? fs.readFileSync(path.join(folder, 'driver.log'), 'utf8') : '',
    step: JSON.parse(fs.readFileSync(path.join(folder, 'step.json'), 'utf8')),
  };
}

/** Every file below a folder, as one string: for "this secret appears nowhere" checks. */
export function allText(folder: string): string {
  let out = '';
  for (const entry of fs.readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += fs.readFileSync(path.join(entry.parentPath ?? (entry as any).path, entry.name), 'utf8');
  }
  return out;
}

/** The line after a marker printed by a fixture (`IDS {...}`, `RESULT {...}`), parsed. */
export function marker<T = Record<string, any>>(stdout: string, name: string): T {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} line in stdout:\n${stdout}`);
  return JSON.parse(line.slice(name.length + 1)) as T;
}

/** Every line of every .jsonl file below `folder`, parsed (a line that does not parse throws, naming it); the record count per file. */
export function allJsonLines(folder: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of fs.readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.jsonl')) continue;
    const file = path.join(entry.parentPath ?? (entry as any).path, entry.name);
    const records = readJsonl(file);
    for (const [i, r] of records.entries()) {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new Error(`${file}:${i + 1}: not a JSON object`);
    }
    counts[path.relative(folder, file)] = records.length;
  }
  return counts;
}
