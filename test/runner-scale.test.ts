// The runner's parent at scale: the partition holds no object per mini-batch, the manifest and the
// processed report keep their formats while written a new way, the chunk messages unpack to the
// attempts that were packed, and a worker's reader of tabular ranges keeps its file open safely.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { BEHAVE } from './fixtures/runner/harness.js';
import { resolveRunConfig } from '../src/runner/config.js';
import { partition } from '../src/runner/partition.js';
import { RunPacker, unpackRun } from '../src/runner/protocol.js';
import { FILES, ManifestWriter, PROCESSED_COLUMNS, ProcessedReport, csvCell, type ProcessedRow } from '../src/runner/reports.js';
import { LocalSource } from '../src/runner/source.js';
import { TabularReader } from '../src/runner/tabular.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function jsonLines(dir: string, rows: number): Promise<string> {
  const file = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(file, '{"x":1}\n'.repeat(rows));
  return file;
}

describe('the partition at scale', () => {
  it('regression: 200,000 mini-batches hold no object each (they took 1.4 KB apiece, a hidden class per object)', async () => {
    const dir = await useTempDir('runner-scale-');
    const file = await jsonLines(dir, 400_000);
    const config = resolveRunConfig({ entry_script: BEHAVE, input: file, input_type: 'tabular', mini_batch_size: '16B' }, {}, {}, dir);
    gc();
    const before = process.memoryUsage();
    const part = await partition(config);
    gc();
    const after = process.memoryUsage();
    expect(part.miniBatches.length).toBe(200_000);
    // columns of numbers, outside the JavaScript heap: 41 bytes a mini-batch (and room to grow)
    expect(after.heapUsed - before.heapUsed).toBeLessThan(10 * 1024 * 1024);
    expect(after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers)).toBeLessThan(200_000 * 150);
    // a mini-batch becomes an object when handed out, the same as it always was
    expect(part.miniBatches.at(199_999)).toEqual({ kind: 'tabular', index: 199_999, id: 'mb-199999', items: 2, file, format: 'jsonl', start: 3_199_984, end: 3_200_000, firstRow: 399_998, firstLine: 399_999, header: undefined });
    const source = new LocalSource(part);
    expect(source.take()?.mb.id).toBe('mb-00000');
    expect(source.notStarted).toBe(199_999);
  });

  it('gives each node its share with global ids, and a file that cannot be read one unreadable mini-batch', async () => {
    const dir = await useTempDir('runner-scale-');
    fs.writeFileSync(path.join(dir, 'a.csv'), 'id\n1\n2\n3\n');
    fs.symlinkSync(path.join(dir, 'missing.csv'), path.join(dir, 'b.csv')); // a dangling link: listed, cannot be read
    fs.writeFileSync(path.join(dir, 'c.jsonl'), '{"n":1}\n{"n":2}\n');
    const input = [path.join(dir, 'a.csv'), path.join(dir, 'b.csv'), path.join(dir, 'c.jsonl')];
    const cut = async (nodeRank: number) => {
      const part = await partition(resolveRunConfig({ entry_script: BEHAVE, input, input_type: 'tabular', mini_batch_size: '2B', node_count: 2, node_rank: nodeRank }, {}, {}, dir));
      return { part, mbs: [...part.miniBatches].map((m) => ({ id: m.id, kind: m.kind, items: m.items, ...(m.kind === 'tabular' ? { header: m.header, firstRow: m.firstRow } : {}) })) };
    };
    const [n0, n1] = [await cut(0), await cut(1)];
    expect(n0.mbs).toEqual([
      { id: 'mb-00000', kind: 'tabular', items: 1, header: ['id'], firstRow: 0 },
      { id: 'mb-00002', kind: 'tabular', items: 1, header: ['id'], firstRow: 2 },
      { id: 'mb-00004', kind: 'tabular', items: 1, header: undefined, firstRow: 0 },
    ]);
    expect(n1.mbs).toEqual([
      { id: 'mb-00001', kind: 'tabular', items: 1, header: ['id'], firstRow: 1 },
      { id: 'mb-00003', kind: 'unreadable', items: 1 },
      { id: 'mb-00005', kind: 'tabular', items: 1, header: undefined, firstRow: 1 },
    ]);
    expect(n0.part.totalMiniBatches).toBe(6);
    const source = new LocalSource(n1.part);
    expect(source.unreadable.map((m) => m.id)).toEqual(['mb-00003']);
    expect([source.take()?.mb.id, source.take()?.mb.id, source.take()]).toEqual(['mb-00001', 'mb-00005', undefined]);
  });
});

describe('run-folder files written a new way, in the formats they had', () => {
  it('writes mini-batches.jsonl between events, all of it by finish(), line for line as JSON.stringify did', async () => {
    const dir = await useTempDir('runner-scale-');
    const file = await jsonLines(dir, 5000);
    fs.writeFileSync(path.join(dir, 'q"uote.jsonl'), '{"x":1}\n');
    const part = await partition(resolveRunConfig({ entry_script: BEHAVE, input: dir, input_type: 'tabular', mini_batch_size: '16B' }, {}, {}, dir));
    const folder = path.join(dir, 'run');
    fs.mkdirSync(folder);
    const writer = new ManifestWriter(folder, part);
    writer.start();
    await new Promise((resolve) => setImmediate(resolve));
    writer.finish();
    const lines = fs.readFileSync(path.join(folder, FILES.manifest), 'utf8').trim().split('\n');
    const expected = [...part.miniBatches].map((mb) =>
      mb.kind === 'tabular' ? JSON.stringify({ mini_batch_id: mb.id, items: mb.items, file: mb.file, format: mb.format, first_row: mb.firstRow, first_line: mb.firstLine, bytes: [mb.start, mb.end] }) : '',
    );
    expect(lines).toEqual(expected);
    expect(lines).toHaveLength(2501);
    expect(lines[0]).toContain(JSON.stringify(path.join(dir, 'q"uote.jsonl')));
    expect(JSON.parse(lines[2500]!)).toMatchObject({ file, first_row: 4998, bytes: [39_984, 40_000] });
  });

  it('writes processed-mini-batches.csv rows as a cell-by-cell CSV writer would', async () => {
    const dir = await useTempDir('runner-scale-');
    const report = new ProcessedReport(dir);
    const rows: ProcessedRow[] = [
      { mini_batch_id: 'mb-00000', times_picked: 1, worker: 'worker-0', pid: 41, start_time: 1_700_000_000_123.75, end_time: 1_700_000_000_200.5, total_items: 2, succeeded_items: 2, failed_items: 0, elapsed_seconds: 0.077, run_method_seconds: 0, status: 'RUN_DONE', error_category: '', error_message: '', cpu_seconds: 0.012, rss_bytes: 81_234_567, heap_growth_bytes: -4096 },
      { mini_batch_id: 'mb-00001', times_picked: 3, worker: '', pid: '', start_time: 1_700_000_000_123.75, end_time: 1_700_000_001_000, total_items: 5, succeeded_items: 0, failed_items: 5, elapsed_seconds: 0.876, run_method_seconds: 1.5, status: 'RUN_EXCEPTION', error_category: 'RunException', error_message: 'Error: "bad", very\nbad' },
    ];
    for (const r of rows) report.add(r);
    report.close();
    const cell = (r: ProcessedRow, c: (typeof PROCESSED_COLUMNS)[number]): string => (c === 'start_time' || c === 'end_time' ? new Date(r[c]).toISOString() : csvCell(r[c]));
    const expected = [PROCESSED_COLUMNS.join(','), ...rows.map((r) => PROCESSED_COLUMNS.map((c) => cell(r, c)).join(','))].join('\n');
    expect(fs.readFileSync(path.join(dir, FILES.processed), 'utf8')).toBe(`${expected}\n`);
  });
});

describe('the wire and the worker', () => {
  it('unpacks the attempts of a chunk as they were packed, the shared parts sent once', () => {
    const packer = new RunPacker([`00-${'a'.repeat(32)}-`, '-01']);
    packer.add('mb-00000', 1, '1'.repeat(16), 2, { kind: 'tabular', file: '/d/a.csv', format: 'csv', start: 4, end: 20, firstRow: 0, firstLine: 2, header: ['id', 'v'] });
    packer.add('mb-00001', 2, '2'.repeat(16), 1, { kind: 'tabular', file: '/d/a.csv', format: 'csv', start: 20, end: 31, firstRow: 2, firstLine: 4, header: ['id', 'v'] });
    packer.add('mb-00002', 1, '3'.repeat(16), 1, { kind: 'tabular', file: '/d/b.jsonl', format: 'jsonl', start: 0, end: 8, firstRow: 0, firstLine: 1 });
    packer.add('mb-00003', 1, '4'.repeat(16), 2, { kind: 'files', files: ['/d/x', '/d/y'] });
    const keyed = { kind: 'keyed', keys: { store: '1' }, parts: [{ file: '/d/a.csv', format: 'csv', header: ['store'], ranges: [4, 12, 2] }] } as const;
    packer.add('mb-00004', 1, '5'.repeat(16), 1, keyed);
    const m = JSON.parse(JSON.stringify(packer.take()));
    expect(m.tables).toHaveLength(2);
    expect(unpackRun(m)).toEqual([
      { id: 'mb-00000', attempt: 1, traceparent: `00-${'a'.repeat(32)}-${'1'.repeat(16)}-01`, items: 2, task: { kind: 'tabular', file: '/d/a.csv', format: 'csv', start: 4, end: 20, firstRow: 0, firstLine: 2, header: ['id', 'v'] } },
      { id: 'mb-00001', attempt: 2, traceparent: `00-${'a'.repeat(32)}-${'2'.repeat(16)}-01`, items: 1, task: { kind: 'tabular', file: '/d/a.csv', format: 'csv', start: 20, end: 31, firstRow: 2, firstLine: 4, header: ['id', 'v'] } },
      { id: 'mb-00002', attempt: 1, traceparent: `00-${'a'.repeat(32)}-${'3'.repeat(16)}-01`, items: 1, task: { kind: 'tabular', file: '/d/b.jsonl', format: 'jsonl', start: 0, end: 8, firstRow: 0, firstLine: 1, header: undefined } },
      { id: 'mb-00003', attempt: 1, traceparent: `00-${'a'.repeat(32)}-${'4'.repeat(16)}-01`, items: 2, task: { kind: 'files', files: ['/d/x', '/d/y'] } },
      { id: 'mb-00004', attempt: 1, traceparent: `00-${'a'.repeat(32)}-${'5'.repeat(16)}-01`, items: 1, task: keyed },
    ]);
    expect(packer.take().attempts).toEqual([]);
  });

  it('reads ranges of several files through one open file at a time, and says when a file shrank', async () => {
    const dir = await useTempDir('runner-scale-');
    const a = path.join(dir, 'a.jsonl');
    const b = path.join(dir, 'b.csv');
    fs.writeFileSync(a, '{"n":1}\n{"n":2}\n');
    fs.writeFileSync(b, 'n\n3\n');
    const reader = new TabularReader();
    expect(reader.read(a, 'jsonl', 8, 16, 2, undefined)).toEqual([{ row: { n: 2 }, line: 2 }]);
    expect(reader.read(b, 'csv', 2, 4, 2, ['n'])).toEqual([{ row: { n: '3' }, line: 2 }]);
    expect(reader.read(a, 'jsonl', 0, 8, 1, undefined)).toEqual([{ row: { n: 1 }, line: 1 }]);
    fs.truncateSync(a, 4);
    expect(() => reader.read(a, 'jsonl', 0, 8, 1, undefined)).toThrow(/a\.jsonl is shorter than when it was scanned \(expected 8 bytes\)/);
    // after an error it opens the file again
    fs.writeFileSync(a, '{"n":9}\n');
    expect(reader.read(a, 'jsonl', 0, 8, 1, undefined)).toEqual([{ row: { n: 9 }, line: 1 }]);
    reader.close();
  });
});
