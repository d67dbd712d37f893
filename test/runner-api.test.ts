// The programmatic API: runParallel() in this process (the built package), its result object,
// configuration errors as RunnerConfigError, and stopping a run with an AbortSignal.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { pathToFileURL } from 'node:url';
import { BEHAVE, ROOT, makeFiles, readJson } from './fixtures/runner/harness.js';
import type * as RunnerApi from '../src/runner/index.js';

// the built package, as a user imports it (workers are forked from dist/runner/worker.js); typed from the source
const { RunnerConfigError, runParallel } = (await import(pathToFileURL(path.join(ROOT, 'dist', 'runner', 'index.js')).href)) as typeof RunnerApi;

describe('runParallel()', () => {
  it('returns the result that it also writes to result.json, and throws RunnerConfigError before any work', async () => {
    const dir = await useTempDir('runner-api-');
    makeFiles(path.join(dir, 'in'), 9);
    process.env.STEP_TELEMETRY_DIR = path.join(dir, 'telemetry');
    const result = await runParallel(
      { entry_script: BEHAVE, input: [path.join(dir, 'in')], output: path.join(dir, 'out'), mini_batch_size: 4, process_count_per_node: 2, step_name: 'api', arguments: ['--drop', 'f008'] },
      { progress: 'silent' },
    );
    expect(result).toMatchObject({ status: 'succeeded', exit_code: 0, items: { total: 9, succeeded: 8, failed: 1 }, mini_batches: { total: 3 } });
    expect(readJson(result.files.result!)).toEqual(JSON.parse(JSON.stringify(result)));
    expect(fs.readFileSync(result.output_file!, 'utf8').trim().split('\n')).toHaveLength(8);

    const error = await runParallel({ entry_script: BEHAVE, input: path.join(dir, 'in'), run_max_try: 0 }, { progress: 'silent' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunnerConfigError);
    expect((error as InstanceType<typeof RunnerConfigError>).issues).toEqual([{ field: 'run_max_try', source: 'runParallel(): run_max_try', expected: 'a whole number from 1 to 1000', got: '0' }]);
  });

  it('stops on an AbortSignal like on SIGTERM: workers end, status terminated', async () => {
    const dir = await useTempDir('runner-api-abort-');
    makeFiles(path.join(dir, 'in'), 30);
    process.env.STEP_TELEMETRY_DIR = path.join(dir, 'telemetry');
    fs.writeFileSync(
      path.join(dir, 'slow.mjs'),
      "import fs from 'node:fs';\nexport async function run(mb, ctx) {\n  fs.appendFileSync(process.env.STARTED_FILE, ctx.mini_batch_id + '\\n');\n  await new Promise((r) => setTimeout(r, 100));\n  return mb;\n}\n",
    );
    const controller = new AbortController();
    const logFile = path.join(dir, 'started.txt');
    // abort once the worker has started the second mini-batch (it appends to a file we watch)
    const watcher = fs.watch(dir, () => {
      if (fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').split('\n').length > 2) controller.abort();
    });
    try {
      const result = await runParallel(
        { entry_script: path.join(dir, 'slow.mjs'), input: path.join(dir, 'in'), mini_batch_size: 2, step_name: 'api-abort', environment_variables: { STARTED_FILE: logFile } },
        { progress: 'silent', signal: controller.signal, handleSignals: false },
      ).catch((e: unknown) => e);
      expect(result).toMatchObject({ status: 'terminated', exit_code: 143, cause: { category: 'Terminated' } });
      expect((result as { items: { not_processed: number } }).items.not_processed).toBeGreaterThan(0);
    } finally {
      watcher.close();
    }
  });
});
