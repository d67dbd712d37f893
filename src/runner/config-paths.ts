// The configuration's paths: the entry script, the input, the output folder, the run folders of
// --input-failed and --resume. Each resolves against its source's base (the working directory, or
// the config file's folder) and is checked on disk before any work: what is there is named in the
// issue.
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigValues } from './config-values.js';
import { flagName } from './config-names.js';

const ENTRY_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/** entry_script: an existing JS or TS module ('' when it is missing or wrong: an issue says so). */
export function entryScriptPath(v: ConfigValues): string {
  const entry = v.str('entry_script');
  if (entry === undefined) {
    if (v.raw('entry_script') === undefined) v.issues.push({ field: 'entry_script', source: flagName('entry_script'), expected: 'the path of a JS or TS module exporting run() (and optionally init())' });
    return '';
  }
  const entryScript = path.resolve(entry.raw.base, entry.value);
  const ext = path.extname(entryScript).toLowerCase();
  if (!isFile(entryScript)) v.bad('entry_script', entry.raw, `an existing file (${entryScript} is ${describePath(entryScript)})`);
  else if (!ENTRY_EXTENSIONS.includes(ext)) v.bad('entry_script', entry.raw, `a module ending in ${ENTRY_EXTENSIONS.join(', ')}`);
  return entryScript;
}

/** input_failed: the run folder whose failed items are the input. */
export function inputFailedPath(v: ConfigValues): string | undefined {
  const failedRaw = v.str('input_failed');
  const inputFailed = failedRaw ? path.resolve(failedRaw.raw.base, failedRaw.value) : undefined;
  if (failedRaw && inputFailed && !fs.existsSync(inputFailed)) v.bad('input_failed', failedRaw.raw, `a run folder (${inputFailed} does not exist)`);
  return inputFailed;
}

/** input: existing files and folders (a dangling symlink is an input that fails with its reason); none needed with input_failed. */
export function inputPaths(v: ConfigValues, inputFailed: string | undefined): string[] {
  const inputs: string[] = [];
  const inputRaw = v.raw('input');
  if (inputRaw === undefined) {
    if (inputFailed === undefined) v.issues.push({ field: 'input', source: flagName('input'), expected: 'at least one input file or folder' });
    return inputs;
  }
  const list = Array.isArray(inputRaw.value) ? inputRaw.value : [inputRaw.value];
  if (list.length === 0) v.bad('input', inputRaw, 'at least one input file or folder');
  for (const item of list) {
    if (typeof item !== 'string' || item.trim() === '') {
      v.bad('input', { ...inputRaw, value: item }, 'a path (string)');
      continue;
    }
    const abs = path.resolve(inputRaw.base, item);
    if (!fs.existsSync(abs) && !isSymlink(abs)) v.bad('input', { ...inputRaw, value: item }, `an existing file or folder (${abs} does not exist)`);
    else inputs.push(abs);
  }
  return inputs;
}

/** output: a folder (made later if it does not exist); undefined: `output/` in the run folder. */
export function outputPath(v: ConfigValues): string | undefined {
  const out = v.str('output');
  if (!out) return undefined;
  const output = path.resolve(out.raw.base, out.value);
  if (fs.existsSync(output) && !fs.statSync(output).isDirectory()) v.bad('output', out.raw, `a folder (${output} is a file)`);
  return output;
}

/** resume: true (this run's own folder), a run folder, or false (undefined). */
export function resumeFrom(v: ConfigValues): true | string | undefined {
  const rr = v.raw('resume');
  if (rr === undefined) return undefined;
  if (rr.value === true || rr.value === 'true') return true;
  if (rr.value === false || rr.value === 'false') return undefined;
  if (typeof rr.value === 'string' && rr.value.trim() !== '') {
    const resume = path.resolve(rr.base, rr.value);
    if (!fs.existsSync(resume)) v.bad('resume', rr, `true, or a run folder to resume (${resume} does not exist)`);
    return resume;
  }
  v.bad('resume', rr, 'true, or a run folder to resume');
  return undefined;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function describePath(p: string): string {
  try {
    return fs.statSync(p).isDirectory() ? 'a folder' : 'not a regular file';
  } catch {
    return 'missing';
  }
}
