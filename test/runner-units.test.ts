// The runner's pure parts: configuration (names, defaults, precedence, clear errors), sizes, globs,
// the tabular scanner and parser (which must agree on what a record is), and chunk sizes and lanes.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE } from './fixtures/runner/harness.js';
import { RunnerConfigError, globToRegExp, parseSize, resolveRunConfig } from '../src/runner/config.js';
import { parseParallelRunArgs } from '../src/runner/cli.js';
import { cutTabularFile, listInputFiles } from '../src/runner/partition.js';
import { readTabularRange } from '../src/runner/tabular.js';
import { cutByPartitionKeys, readKeyedRows } from '../src/runner/partition-keys.js';
import { parseCsv } from '../src/util/csv.js';
import { readCsvRecords } from '../src/run-folder/files.js';
import { CHUNK_BELOW_MS, CHUNK_TARGET_MS, HOLD_MS, Lane, MAX_CHUNK, chunkSize } from '../src/runner/lane.js';
import { progressBar } from '../src/runner/progress.js';
import { OutputJournal, readJournal } from '../src/runner/output-journal.js';

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof RunnerConfigError) return error.issues.map((i) => `${i.field}|${i.source}|${i.expected}`);
    throw error;
  }
  return [];
}

describe('runner configuration', () => {
  it("has ParallelRunConfig's defaults", async () => {
    const dir = await useTempDir('runner-cfg-');
    const c = resolveRunConfig({ entry_script: BEHAVE, input: dir }, {}, {}, dir);
    expect(c).toMatchObject({
      inputType: 'files',
      miniBatchSize: 10,
      errorThreshold: -1,
      allowedFailedCount: -1,
      allowedFailedPercent: 100,
      outputAction: 'append_row',
      appendRowFileName: 'parallel_run_step.txt',
      processCountPerNode: 1,
      nodeCount: 1,
      nodeRank: 0,
      runInvocationTimeout: 60,
      runMaxTry: 3,
      progressUpdateTimeout: 540,
      firstTaskCreationTimeout: 600,
      shutdownTimeout: 10,
      partitionKeys: [],
      loggingLevel: 'info',
      stepName: 'parallel-run',
    });
    const t = resolveRunConfig({ entry_script: BEHAVE, input: dir, input_type: 'tabular' }, {}, {}, dir);
    expect(t.miniBatchSize).toBe(1024 * 1024);
  });

  it('takes flags over the object over the file, with paths relative to where each came from', async () => {
    const dir = await useTempDir('runner-cfg-');
    fs.mkdirSync(path.join(dir, 'conf', 'data'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'conf', 'job.yml'), 'input: data\nmini_batch_size: 7\nerror_threshold: 5\nrun_max_try: 4\nlogging_level: WARNING\narguments: [--model, m.json]\nenvironment_variables: { A: "1" }\n');
    const c = resolveRunConfig({ entry_script: BEHAVE, config: 'conf/job.yml', error_threshold: 6 }, { run_max_try: '2', environment_variables: ['B=2'] }, {}, dir);
    expect(c.inputs).toEqual([path.join(dir, 'conf', 'data')]);
    expect(c).toMatchObject({ miniBatchSize: 7, errorThreshold: 6, runMaxTry: 2, loggingLevel: 'warn', arguments: ['--model', 'm.json'], environmentVariables: { B: '2' } });
  });

  it('reads partition_keys as a list, names separated by commas or a repeated flag, for tabular input only', async () => {
    const dir = await useTempDir('runner-cfg-');
    const tabular = { entry_script: BEHAVE, input: dir, input_type: 'tabular' } as const;
    expect(resolveRunConfig({ ...tabular, partition_keys: ['store', 'brand'] }, {}, {}, dir).partitionKeys).toEqual(['store', 'brand']);
    expect(resolveRunConfig(tabular, parseParallelRunArgs(['--partition-keys', 'store, brand', '--partition-keys', 'day,store']).flags, {}, dir).partitionKeys).toEqual(['store', 'brand', 'day']);
    expect(issues(() => resolveRunConfig({ entry_script: BEHAVE, input: dir, partition_keys: 'store' }, {}, {}, dir))).toEqual(['partition_keys|runParallel(): partition_keys|input_type tabular (the keys are columns of the rows)']);
    expect(issues(() => resolveRunConfig({ ...tabular, partition_keys: ' , ' }, {}, {}, dir))).toEqual(['partition_keys|runParallel(): partition_keys|at least one column name']);
  });

  it('takes the node rank from JOB_COMPLETION_INDEX or Azure ML, and names the variable when it is out of range', async () => {
    const dir = await useTempDir('runner-cfg-');
    expect(resolveRunConfig({ entry_script: BEHAVE, input: dir, node_count: 3 }, {}, { JOB_COMPLETION_INDEX: '2' }, dir).nodeRank).toBe(2);
    expect(resolveRunConfig({ entry_script: BEHAVE, input: dir }, {}, { AZ_BATCHAI_TASK_INDEX: '1', AZ_BATCHAI_NODE_COUNT: '2' }, dir)).toMatchObject({ nodeRank: 1, nodeCount: 2, appendRowFileName: 'parallel_run_step.node-1.txt' });
    expect(issues(() => resolveRunConfig({ entry_script: BEHAVE, input: dir, node_count: 2 }, {}, { JOB_COMPLETION_INDEX: '5' }, dir))).toEqual(['node_rank|JOB_COMPLETION_INDEX|a rank from 0 to node_count - 1 = 1']);
  });

  it('reports every invalid field at once with the allowed values', async () => {
    const dir = await useTempDir('runner-cfg-');
    const found = issues(() =>
      resolveRunConfig(
        // @ts-expect-error an unknown field
        { entry_script: BEHAVE, input: dir, output_action: 'append', run_max_try: 0, allowed_failed_percent: 101, logging_level: 'LOUD', input_type: 'tabular', mini_batch_size: '1 parsec', bogus: 1 },
        {},
        {},
        dir,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^bogus\|runParallel\(\)\|one of the configuration names/),
        'output_action|runParallel(): output_action|one of append_row, summary_only',
        'run_max_try|runParallel(): run_max_try|a whole number from 1 to 1000',
        'allowed_failed_percent|runParallel(): allowed_failed_percent|a number from 0 to 100',
        'logging_level|runParallel(): logging_level|one of DEBUG, INFO, WARNING, ERROR, CRITICAL',
        'mini_batch_size|runParallel(): mini_batch_size|a size such as 1MB, 256KB, 1GB or a number of bytes (input_type tabular)',
      ]),
    );
    expect(found).toHaveLength(6);
    expect(issues(() => resolveRunConfig({}, {}, {}, dir))).toEqual([
      'entry_script|--entry-script|the path of a JS or TS module exporting run() (and optionally init())',
      'input|--input|at least one input file or folder',
    ]);
  });

  it('reads sizes the way Azure ML does (powers of 1024)', () => {
    expect(parseSize('1MB')).toBe(1048576);
    expect(parseSize('256 KB')).toBe(262144);
    expect(parseSize('1.5kb')).toBe(1536);
    expect(parseSize('1GB')).toBe(1024 ** 3);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize(100)).toBe(100);
    expect(parseSize('0')).toBeUndefined();
    expect(parseSize('1 parsec')).toBeUndefined();
  });

  it('parses flags in kebab-case, repeatable inputs, and everything after -- as entry script arguments', () => {
    expect(parseParallelRunArgs(['--input', 'a', '--input=b', '--mini-batch-size', '5', '--', '--model', 'x', '--input', 'c']).flags).toEqual({
      input: ['a', 'b'],
      mini_batch_size: '5',
      arguments: ['--model', 'x', '--input', 'c'],
    });
    expect(() => parseParallelRunArgs(['--mini-batch', '5'])).toThrow(/unknown flag --mini-batch/);
    expect(() => parseParallelRunArgs(['--output'])).toThrow(/--output needs a value/);
  });

  it('matches input patterns against the base name, or the relative path when the pattern has a slash', async () => {
    expect(globToRegExp('*.{csv,jsonl}').test('a.jsonl')).toBe(true);
    expect(globToRegExp('*.csv').test('sub/a.csv')).toBe(false);
    expect(globToRegExp('**/*.csv').test('a.csv')).toBe(true);
    expect(globToRegExp('**/*.csv').test('x/y/a.csv')).toBe(true);
    expect(globToRegExp('img-?.pgm').test('img-1.pgm')).toBe(true);
    const dir = await useTempDir('runner-glob-');
    for (const f of ['b/2.pgm', 'a/1.pgm', 'a/labels.csv', '0.pgm']) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), '');
    }
    expect(listInputFiles([dir], '*.pgm').map((f) => path.relative(dir, f))).toEqual(['0.pgm', 'a/1.pgm', 'b/2.pgm']);
    expect(listInputFiles([dir], 'a/*').map((f) => path.relative(dir, f))).toEqual(['a/1.pgm', 'a/labels.csv']);
  });
});

describe('tabular scanner and parser', () => {
  it('parses RFC 4180 CSV: quotes, doubled quotes, newlines in fields, CRLF, a BOM, blank lines; a malformed record is one, with its line', () => {
    const text = '\ufeffa,b\r\n1,"x, ""y"""\r\n\r\n2,"multi\r\nline"\r\n3,\r\n4,12" monitor\r\n5,z\r\n';
    const seen: unknown[] = [];
    parseCsv(Buffer.from(text), ',', 1, {
      record: (fields, line, end, nextLine) => seen.push({ fields, line, end, nextLine }),
      malformed: (reason, line) => seen.push({ reason, line }),
    });
    expect(seen).toEqual([
      { fields: ['a', 'b'], line: 1, end: 8, nextLine: 2 },
      { fields: ['1', 'x, "y"'], line: 2, end: 22, nextLine: 3 },
      { fields: ['2', 'multi\r\nline'], line: 4, end: 41, nextLine: 6 },
      { fields: ['3', ''], line: 6, end: 45, nextLine: 7 },
      { reason: expect.stringMatching(/^Invalid Opening Quote: a quote is found on field 1, value is "12"$/), line: 7 },
      { fields: ['5', 'z'], line: 8, end: text.length + 2, nextLine: 9 },
    ]);
  });

  it('cuts mini-batches at record boundaries that the worker reads back exactly', async () => {
    const cut = async (file: string, format: 'csv' | 'jsonl', size: number) => {
      const out: { start: number; end: number; firstRow: number; firstLine: number; items: number }[] = [];
      const header = await cutTabularFile(file, format, size, (start, end, firstRow, firstLine, items) => out.push({ start, end, firstRow, firstLine, items }));
      return out.map((b) => ({ ...b, header }));
    };
    const dir = await useTempDir('runner-scan-');
    const file = path.join(dir, 't.csv');
    let csv = 'id,text\n';
    const expected: { id: string; text: string }[] = [];
    for (let i = 0; i < 200; i++) {
      const text = i % 7 === 0 ? `line one\nline "two" ${i}` : i % 5 === 0 ? '' : `plain ${'z'.repeat(i % 13)}`;
      expected.push({ id: String(i), text });
      csv += `${i},${text.includes('\n') || text.includes('"') ? `"${text.replace(/"/g, '""')}"` : text}\n`;
      if (i % 50 === 0) csv += '\n'; // blank lines are not records
    }
    fs.writeFileSync(file, csv);
    for (const size of [1, 64, 333, 10_000]) {
      const batches = await cut(file, 'csv', size);
      const rows = batches.flatMap((b) => {
        const parsed = readTabularRange(file, 'csv', b.start, b.end, b.firstLine, b.header);
        expect(parsed).toHaveLength(b.items);
        return parsed.map((p) => p.row);
      });
      expect(rows).toEqual(expected);
      if (size === 1) expect(batches).toHaveLength(200);
    }
    const jl = path.join(dir, 't.jsonl');
    fs.writeFileSync(jl, '{"a":1}\n  \n{"a":2}\r\n{"a":3}');
    const jb = await cut(jl, 'jsonl', 1);
    expect(jb.map((b) => [b.firstRow, b.firstLine, b.items])).toEqual([
      [0, 1, 1],
      [1, 3, 1],
      [2, 4, 1],
    ]);
    expect(jb.flatMap((b) => readTabularRange(jl, 'jsonl', b.start, b.end, b.firstLine, undefined).map((r) => r.row))).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
  });
});

describe('partition_keys groups', () => {
  it('hold byte ranges that the worker reads back as exactly the rows of the group, each with its file and line', async () => {
    const dir = await useTempDir('runner-keys-');
    // 200 rows over 7 keys, interleaved, with quoted line breaks, CRLF and blank lines; and a JSON Lines file
    let csv = 'k,n,note\r\n';
    for (let i = 0; i < 200; i++) csv += `${i % 7 === 3 ? 'x' : `k${(i * 5) % 7}`},${i},${i % 11 === 0 ? '"a\r\nb, ""c"""' : 'plain'}\r\n${i % 13 === 0 ? '\r\n' : ''}`;
    const a = path.join(dir, 'a.csv');
    fs.writeFileSync(a, csv);
    const b = path.join(dir, 'b.jsonl');
    fs.writeFileSync(b, Array.from({ length: 30 }, (_, i) => JSON.stringify({ k: i % 2 ? 'x' : 'y', n: 1000 + i })).join('\n'));
    const unreadable: string[] = [];
    const groups = await cutByPartitionKeys([a, b, path.join(dir, 'missing.csv')], ['k'], (f) => unreadable.push(f));
    expect(unreadable).toEqual([path.join(dir, 'missing.csv')]);
    // what a direct parse of each whole file says, by key, in order of first appearance
    const rows = [
      ...readTabularRange(a, 'csv', csv.indexOf('\n') + 1, csv.length, 2, ['k', 'n', 'note']).map((r) => ({ r, file: a })),
      ...readTabularRange(b, 'jsonl', 0, fs.statSync(b).size, 1, undefined).map((r) => ({ r, file: b })),
    ];
    const expected = new Map<string, string[]>();
    for (const { r, file } of rows) {
      const key = JSON.stringify({ k: (r.row as { k: string }).k });
      expected.set(key, [...(expected.get(key) ?? []), `${file}:${r.line}:${JSON.stringify(r.row)}`]);
    }
    expect(groups.map((g) => g.keysText)).toEqual([...expected.keys()]);
    for (const g of groups) {
      const got = readKeyedRows(g).flatMap(({ file, rows: rs }) => rs.map((r) => `${file}:${r.line}:${JSON.stringify(r.row)}`));
      expect(got).toEqual(expected.get(g.keysText));
      expect(g.items).toBe(got.length);
    }
    // a key a file does not have is a configuration error naming the file and its columns
    await expect(cutByPartitionKeys([a], ['K'], () => undefined)).rejects.toThrow(/partition_keys \(.*a\.csv\): expected columns of its header \(k, n, note\), got "K"/);
  });
});

describe('chunks and lanes', () => {
  it('sends long or unmeasured mini-batches alone, short ones about CHUNK_TARGET_MS at a time, and shrinks chunks towards the end', () => {
    expect(chunkSize(undefined, 1000, 2)).toBe(1);
    expect(chunkSize(CHUNK_BELOW_MS, 1000, 2)).toBe(1);
    expect(chunkSize(10, 1000, 2)).toBe(CHUNK_TARGET_MS / 10);
    expect(chunkSize(CHUNK_TARGET_MS / 3, 1000, 2)).toBe(3);
    expect(chunkSize(0, 100_000, 2)).toBe(MAX_CHUNK);
    // at most half a fair share of what is left: 20 left on 2 workers, 5 each
    expect(chunkSize(1, 20, 2)).toBe(5);
    expect(chunkSize(1, 3, 2)).toBe(1);
    expect(chunkSize(1, 0, 2)).toBe(1);
  });

  it('reports attempts in order, knows the chunk that may be running, and ignores answers to attempts given up', () => {
    const lane = new Lane<{ id: string; no: number; last: boolean }>();
    lane.add([{ id: 'a', no: 1, last: false }, { id: 'b', no: 1, last: false }, { id: 'c', no: 1, last: true }], 100);
    lane.add([{ id: 'd', no: 2, last: false }, { id: 'e', no: 1, last: true }], 150);
    expect([lane.busy, lane.chunks, lane.since]).toEqual([true, 2, 100]);
    expect(lane.head().map((a) => a.id)).toEqual(['a', 'b', 'c']);
    // the attempt running may have begun later than the first: its deadline waits for that
    expect(lane.deadlineSlack()).toBe(HOLD_MS + CHUNK_BELOW_MS);
    expect(lane.shift('b', 1)).toBeUndefined();
    expect(lane.shift('a', 2)).toBeUndefined();
    expect(lane.shift('a', 1)?.id).toBe('a');
    lane.reported(120);
    expect([lane.since, lane.chunks]).toEqual([120, 2]);
    expect(lane.head().map((a) => a.id)).toEqual(['b', 'c']);
    // the worker says what it runs (an attempt that awaits): only the first counts, and then only it may be running
    expect(lane.confirm('c', 1, 130)).toBe(false);
    expect(lane.confirm('b', 1, 130)).toBe(true);
    expect([lane.head().map((a) => a.id), lane.deadlineSlack(), lane.since]).toEqual([['b'], 0, 130]);
    lane.shift('b', 1);
    lane.shift('c', 1);
    expect(lane.chunks).toBe(1);
    expect(lane.head().map((a) => a.id)).toEqual(['d', 'e']);
    lane.shift('d', 2);
    expect([lane.head().map((a) => a.id), lane.deadlineSlack()]).toEqual([['e'], 0]);
    expect(lane.clear().map((a) => a.id)).toEqual(['e']);
    expect([lane.busy, lane.chunks, lane.head()]).toEqual([false, 0, []]);
  });
});

describe('the progress bar', () => {
  it('fits the terminal width and keeps the rate and the ETA at 80 columns', () => {
    const p = { elapsedMs: 60_000, itemsTotal: 1_234_567, itemsSucceeded: 600_000, itemsFailed: 1234, miniBatchesTotal: 123_457, miniBatchesDone: 60_123, miniBatchesFailed: 12, running: 4, retries: 0, timeouts: 0, workerRestarts: 0 };
    for (const columns of [200, 120, 80, 60]) {
      const line = progressBar(p, 'score-images-with-a-long-name', columns);
      expect(line.length, line).toBeLessThan(columns);
      if (columns >= 80) expect(line).toMatch(/items\/s · ETA \d+:\d\d$/);
    }
    expect(progressBar(p, 'score', 200)).toMatch(/^score \[█+░+\] 48% /);
    expect(progressBar(p, 'score-images-with-a-long-name', 80)).not.toContain('…');
  });
});

describe('the run-folder reader parses CSV with the same parser', () => {
  it('tolerates a half-written last record (no line break, or a quote never closed) and names the line of a corrupt one', async () => {
    const dir = await useTempDir('csv-read-');
    const f = path.join(dir, 'p.csv');
    const read = (text: string) => {
      fs.writeFileSync(f, text);
      const notes: { message: string }[] = [];
      const rows: { line: number; cells: string[] }[] = [];
      readCsvRecords(f, 'p.csv', notes as never[], undefined, (cells, line) => rows.push({ line, cells: Array.from({ length: cells.length }, (_, i) => cells.field(i)) }));
      return { csv: { rows }, notes: notes.map((n) => n.message) };
    };
    const ok = read('a,b\r\n1,"x\ny"\r\n2,3\r\n4,"half');
    expect(ok.csv.rows).toEqual([
      { line: 2, cells: ['1', 'x\ny'] },
      { line: 4, cells: ['2', '3'] },
    ]);
    expect(ok.notes).toEqual(['p.csv:5: the last line is half-written (the writer was stopped mid-line); ignored']);
    expect(read('a,b\n1,2\n3,').notes).toEqual(['p.csv:3: the last line is half-written (the writer was stopped mid-line); ignored']);
    expect(() => read('a,b\n1,2" x\n3,4\n')).toThrow(/^p\.csv:2: not valid CSV: Invalid Opening Quote/);
    expect(() => read('a,b\n1,2,3\n')).toThrow(/^p\.csv:2: expected 2 columns as in the header, found 3/);
  });
});

describe('output-journal.jsonl', () => {
  it('names its writer once per start and leaves out figures that are 0; a journal of before (every field on each line) reads the same', async () => {
    const dir = await useTempDir('journal-');
    const file = path.join(dir, 'output-journal.jsonl');
    const first = new OutputJournal(file, 7, '/out/rows.txt');
    first.add({ i: 0, mb: 'mb-0', o: 0, n: 12, r: 2, ok: 2, f: 0 });
    first.add({ i: 1, mb: 'mb-1', o: 12, n: 0, r: 0, ok: 0, f: 3 });
    first.close();
    const again = new OutputJournal(file, 9);
    again.add({ i: 2, mb: 'mb-2', o: 0, n: 0, r: 0, ok: 1, f: 0 });
    again.close();
    expect(fs.readFileSync(file, 'utf8')).toBe(
      '{"w":7,"output":"/out/rows.txt"}\n{"s":1,"i":0,"mb":"mb-0","n":12,"r":2,"ok":2}\n{"s":2,"i":1,"mb":"mb-1","o":12,"f":3}\n{"w":9}\n{"s":1,"i":2,"mb":"mb-2","ok":1}\n',
    );
    const entries = [
      { w: 7, s: 1, i: 0, mb: 'mb-0', o: 0, n: 12, r: 2, ok: 2, f: 0 },
      { w: 7, s: 2, i: 1, mb: 'mb-1', o: 12, n: 0, r: 0, ok: 0, f: 3 },
      { w: 9, s: 1, i: 2, mb: 'mb-2', o: 0, n: 0, r: 0, ok: 1, f: 0 },
    ];
    expect(readJournal(file)).toEqual(entries);
    const before = path.join(dir, 'before.jsonl');
    fs.writeFileSync(before, `{"w":7,"output":"/out/rows.txt"}\n${entries.map((e) => JSON.stringify(e)).join('\n')}\n{"s":3,"i":`);
    expect(readJournal(before)).toEqual(entries);
  });
});

describe("the identity of a queue's input", () => {
  it('names what differs: the cut, the files, a tabular file whose size changed', async () => {
    const { differences, inputIdentity } = await import('../src/runner/queue/input-identity.js');
    const dir = await useTempDir();
    const rows = path.join(dir, 'rows.jsonl');
    fs.writeFileSync(rows, '{"a":1}\n{"a":2}\n');
    const config = (over: Record<string, unknown> = {}) => resolveRunConfig({ entry_script: BEHAVE, input: dir, input_type: 'tabular', ...over }, {}, {}, dir);
    const job = inputIdentity(config());
    expect(differences(inputIdentity(config()), job, job.listing)).toEqual([]);
    fs.appendFileSync(rows, '{"a":3}\n');
    fs.writeFileSync(path.join(dir, 'more.csv'), 'a\n1\n');
    const now = inputIdentity(config({ mini_batch_size: '2KB' }));
    expect(differences(now, job, job.listing)).toEqual([
      `it is cut with input_type tabular, mini_batch_size 2048 (the job's: input_type tabular, mini_batch_size ${config().miniBatchSize})`,
      "2 files of 28 bytes (the job's: 1 file of 16 bytes)",
      `1 file changed size: ${rows} (24 bytes; the job's: 16 bytes)`,
      `1 file not in the job's input: ${path.join(dir, 'more.csv')}`,
    ]);
    // without the job's listing (a Redis that lost it), the totals still say it
    expect(differences(now, job, undefined)).toHaveLength(2);
  });
});

describe('the shared queue tally', () => {
  it('counters a node adds while its poll is on the way to Redis go up with the next poll (were lost)', async () => {
    const { JobTally } = await import('../src/runner/queue/job-tally.js');
    const { RedisLiveness } = await import('../src/runner/queue/redis-liveness.js');
    const { ZERO_COUNTS } = await import('../src/runner/queue/job-state.js');
    const sent: number[][] = [];
    let answer: () => void = () => {};
    const state = {
      poll: (retries: number, timeouts: number, restarts: number) => {
        sent.push([retries, timeouts, restarts]);
        return new Promise<{ counts: typeof ZERO_COUNTS; verdict: undefined }>((resolve) => {
          answer = () => resolve({ counts: ZERO_COUNTS, verdict: undefined });
        });
      },
    };
    const tally = new JobTally({
      state: state as never,
      liveness: new RedisLiveness(1000),
      hooks: { beforeCommit: () => {} },
      notice: () => {},
      refill: () => {},
      failed: (e) => {
        throw e;
      },
    });
    tally.local.retries = 2;
    const first = tally.poll();
    tally.local.retries = 3; // counted while the reply is on its way
    tally.local.timeouts = 1;
    answer();
    await first;
    const second = tally.poll();
    answer();
    await second;
    expect(sent).toEqual([
      [2, 0, 0],
      [1, 1, 0],
    ]);
  });
});

describe('pulling from the shared queue', () => {
  it('regression: a job pulled again that arrived as the node halted stayed leased to it (the release had gone by) and counted as a lost run', async () => {
    const { Fetcher } = await import('../src/runner/queue/fetcher.js');
    const { Leases } = await import('../src/runner/queue/leases.js');
    const { RedisLiveness } = await import('../src/runner/queue/redis-liveness.js');
    const back: string[] = [];
    // a job another node gave back: its second start, whose record the fetcher reads first
    const job = { id: 'mb-00009', data: { id: 'mb-00009', index: 9, kind: 'files', items: ['a'] }, attemptsStarted: 2, attemptsMade: 0, timestamp: 0, moveToWait: async () => void back.push('moveToWait') };
    let recordRead: (r: undefined) => void = () => {};
    const pulled: unknown[] = [job];
    const worker = { getNextJob: async () => pulled.shift() };
    const state = {
      record: () => new Promise<undefined>((resolve) => (recordRead = resolve)),
      released: async () => 1,
      noteReleased: async (ids: readonly string[]) => void back.push(`released ${ids.join(',')}`),
    };
    const liveness = new RedisLiveness(10_000);
    const leases = new Leases(worker as never, state as never, 10_000, liveness, () => {});
    const fetcher = new Fetcher({
      config: { processCountPerNode: 1, queueLockDuration: 10, runMaxTry: 3 } as never,
      nodeId: 'n1',
      worker: worker as never,
      state: state as never,
      leases,
      tally: { verdict: undefined, complete: () => false } as never,
      liveness,
      hooks: {},
    });
    fetcher.pump();
    await new Promise((resolve) => setImmediate(resolve)); // the pull is in admit(), reading the record
    // the job ends on this node meanwhile: nothing more is pulled, what it holds goes back
    fetcher.halt();
    await leases.release();
    recordRead(undefined);
    await fetcher.inFlight();
    expect(leases.buffer).toEqual([]);
    expect(back).toEqual(['released mb-00009', 'moveToWait']);
  });
});
