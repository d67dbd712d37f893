// parallel-run's config file (`--config`, ParallelRunConfig.config): YAML or JSON, a mapping of the
// configuration names (dashes or underscores) to values. Each value keeps the file's name as its
// source, and its folder as the base of its relative paths; problems are issues.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { RunnerConfigIssue } from './config-error.js';
import { CONFIG_FIELDS } from './config-names.js';
import { show, type Raw } from './config-values.js';

/** Read a config file (YAML or JSON) into raw values; problems become issues. */
export function readConfigFile(file: string, issues: RunnerConfigIssue[]): Map<string, Raw> {
  const out = new Map<string, Raw>();
  const abs = path.resolve(file);
  const label = path.basename(abs);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (error) {
    issues.push({ field: 'config', source: 'config', expected: 'a readable YAML or JSON file', got: `${show(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
    return out;
  }
  let doc: unknown;
  try {
    // loaded only when a config file is given: the library's import path stays light
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    doc = parse(text);
  } catch (error) {
    issues.push({ field: 'config', source: label, expected: 'valid YAML or JSON', got: (error as Error).message.split('\n')[0] });
    return out;
  }
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    issues.push({ field: 'config', source: label, expected: 'a mapping of ParallelRunConfig names to values', got: Array.isArray(doc) ? 'a list' : typeof doc });
    return out;
  }
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const field = key.replace(/-/g, '_');
    if (!(CONFIG_FIELDS as readonly string[]).includes(field) || field === 'config') {
      issues.push({ field: key, source: label, expected: `one of the configuration names (${CONFIG_FIELDS.filter((f) => f !== 'config').join(', ')})` });
      continue;
    }
    out.set(field, { value, source: `${label}: ${field}`, base: path.dirname(abs) });
  }
  return out;
}
