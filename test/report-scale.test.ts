// The run-folder reader under report and doctor at scale: it reads in one pass into bounded
// memory (src/run-folder/), so what it keeps must give the same answers as the whole files would:
// folders written before the compact formats read as the new ones do; a sampled large run keeps
// its counts exact and its percentiles close; the log sample is the one all the records give; the
// CSV reader's fast path gives csv-parse's records; a mini-batch reported twice is found.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnose } from '../src/doctor/findings.js';
import { buildReport } from '../src/report/build.js';
import { kendallS, summarizeDurations } from '../src/run-folder/analysis.js';
import { AttemptCollector, WAITED_CPU_SHARE, offCpuMs } from '../src/run-folder/attempts.js';
import { IdTable } from '../src/run-folder/id-table.js';
import { forEachLine, isoMillis } from '../src/run-folder/files.js';
import { readRunFolder } from '../src/run-folder/read.js';
import { CsvLineRecords, parseCsv } from '../src/util/csv.js';
import { writeSyntheticRun } from './fixtures/report/synthetic-run.js';
import { useTempDir } from './helpers/run-step.js';

const NOW = new Date('2026-02-01T00:00:00Z');

/** The page without what depends on where and how the files are (paths, file sizes, span counts). */
function comparable(html: string): string {
  return html
    .replace(/<header>[\s\S]*?<\/header>/, '')
    .replace(/<section class="sub" id="runtime-\d+">[\s\S]*?<\/section>/g, '')
    .replaceAll(/\/tmp\/[^"<\s]*/g, '<tmp>');
}

function logData(html: string): { base: number; levels: string[]; records: unknown[][]; total: number } {
  return JSON.parse(/<script type="application\/json" id="log-data">([\s\S]*?)<\/script>/.exec(html)![1]!);
}

describe('run folders written before the compact formats', () => {
  it('read as the new ones do: the same findings, and the same page (the identity on every line, trace ids on every span)', async () => {
    const dir = await useTempDir();
    const options = { miniBatches: 3000, workers: 4, retryRate: 0.03, failRate: 0.004, slowdown: 3, seed: 7 };
    const now = writeSyntheticRun(path.join(dir, 'now'), options);
    const before = writeSyntheticRun(path.join(dir, 'before'), { ...options, legacy: true, workerSpans: true });
    // the old lines repeat the identity: the new files are smaller
    const bytes = (f: string) => fs.readdirSync(f).reduce((s, n) => s + (n.endsWith('.jsonl') ? fs.statSync(path.join(f, n)).size : 0), 0);
    expect(bytes(now)).toBeLessThan(0.75 * bytes(before));

    const a = readRunFolder(now);
    const b = readRunFolder(before);
    expect(b.steps[0]!.runIds).toEqual(a.steps[0]!.runIds);
    expect(b.steps[0]!.logs.counts).toEqual(a.steps[0]!.logs.counts);
    expect(b.steps[0]!.attempts.fates.total).toBe(3000);
    const findings = diagnose(a).findings;
    expect(findings.map((f) => f.id)).toEqual(expect.arrayContaining(['latency-trend', 'dominant-failure']));
    expect(diagnose(b).findings).toEqual(findings);
    expect(comparable(buildReport(b, { now: NOW }))).toBe(comparable(buildReport(a, { now: NOW })));
  });
});

describe('a large run, sampled', () => {
  it('keeps the counts, the failures, the fates and the findings exact, and the percentiles close', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 20_000, workers: 6, retryRate: 0.03, failRate: 0.003, slowdown: 2, resourcesEveryMs: 1000 });
    const whole = readRunFolder(folder, { light: true }).steps[0]!;
    const sampled = readRunFolder(folder, { light: true, attemptSample: 2000 }).steps[0]!;
    expect(whole.attempts.sampled).toBeUndefined();
    expect(sampled.attempts.sampled).toEqual({ of: whole.attempts.kept.filter((x) => x.attempt === 1 && x.outcome === 'success' && !whole.attempts.fates.troubled.has(x.id)).length, kept: 2000 });
    for (const k of ['count', 'retries', 'byOutcome', 'firstStart', 'lastEnd', 'byWorker', 'usage'] as const) expect(sampled.attempts[k]).toEqual(whole.attempts[k]);
    expect(sampled.attempts.failed).toEqual(whole.attempts.failed);
    expect(sampled.attempts.fates).toEqual(whole.attempts.fates);
    // each kept successful first attempt stands for the ones not kept
    expect(sampled.attempts.kept.reduce((s, x) => s + x.weight, 0)).toBeCloseTo(whole.attempts.count, 6);
    const ok = (s: typeof whole) => summarizeDurations(s.attempts.kept.filter((x) => x.outcome === 'success'));
    const exact = ok(whole);
    const estimate = ok(sampled);
    expect(estimate.n).toBe(exact.n);
    for (const p of ['p50', 'p95', 'p99'] as const) expect(Math.abs(estimate[p] / exact[p] - 1), p).toBeLessThan(0.05);
    const ids = (s: typeof whole) => diagnose({ kind: 'step', folder, pipelineRunId: 'synthetic-run', steps: [s], jobs: [], notes: [] }).findings.map((f) => `${f.id} ${f.severity}`);
    expect(ids(sampled)).toEqual(ids(whole));
    // and the page says how its figures were drawn
    const html = buildReport({ kind: 'step', folder, pipelineRunId: 'synthetic-run', steps: [readRunFolder(folder, { attemptSample: 2000 }).steps[0]!], jobs: [], notes: [] }, { now: NOW });
    expect(html).toContain('from a uniform sample of 2,000 of the');
    expect(html).toMatch(/: about [\d,]+ attempts?/);
  });

  it("sums what run() used per worker over every attempt, and keeps the 20 that waited longest off CPU", () => {
    const collector = new AttemptCollector(new IdTable(), 100);
    let seed = 3;
    const r = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const all = Array.from({ length: 5000 }, (_, i) => {
      const runMs = 1 + r() * 1000;
      return { id: `mb-${i}`, attempt: 1, items: 1, worker: `worker-${i % 3}`, start: i, durationMs: runMs + 1, outcome: 'success', runMs, cpuMs: runMs * r() * 0.6, rssBytes: i, weight: 1 };
    });
    for (const a of all) collector.add({ ...a });
    const { usage } = collector.finish('spans');
    const waited = all.filter((a) => a.cpuMs / a.runMs < WAITED_CPU_SHARE).sort((a, b) => offCpuMs(b) - offCpuMs(a));
    expect(usage.waited.count).toBe(waited.length);
    expect(usage.waited.longest.map((a) => a.id)).toEqual(waited.slice(0, 20).map((a) => a.id));
    const w0 = all.filter((a) => a.worker === 'worker-0');
    expect(usage.byWorker.get('worker-0')).toEqual({ attempts: w0.length, busyAttempts: w0.length, runMs: expect.closeTo(w0.reduce((s, a) => s + a.runMs, 0), 6), cpuMs: expect.closeTo(w0.reduce((s, a) => s + a.cpuMs, 0), 6), rssMaxBytes: 4998 });
  });

  it('draws its log sample from what the reader kept as it would from every record', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 6000, workers: 3, retryRate: 0.05, failRate: 0.01 });
    // every record, brute force, in the reader's order (files by name, lines in order, then by time)
    const files = fs.readdirSync(folder).filter((f) => /^logs(?:\.process-\d+)?\.jsonl$/.test(f)).sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
    const all = files.flatMap((f, k) =>
      fs.readFileSync(path.join(folder, f), 'utf8').trim().split('\n').map((l, line) => {
        const r = JSON.parse(l);
        return { time: Date.parse(r.timestamp), level: r.level as string, message: r.message as string, seq: k * 1e9 + line };
      }),
    ).sort((x, y) => x.time - y.time || x.seq - y.seq);
    for (const max of [5000, 700, 31]) {
      // what the report's sample takes: every error and warning first (up to 60%), then the first and the last of the others
      const severe = all.filter((r) => r.level === 'error' || r.level === 'warn');
      const rest = all.filter((r) => r.level !== 'error' && r.level !== 'warn');
      const keep = severe.slice(0, Math.floor(max * 0.6));
      const room = max - keep.length;
      const head = rest.slice(0, Math.ceil(room / 2));
      const tail = rest.slice(Math.max(head.length, rest.length - Math.floor(room / 2)));
      const expected = (all.length <= max ? all : [...keep, ...head, ...tail].sort((x, y) => x.time - y.time || x.seq - y.seq)).map((r) => `${r.time} ${r.message}`);
      const data = logData(buildReport(readRunFolder(folder, { logSample: max }), { now: NOW, maxLogRecords: max }));
      expect(data.total).toBe(all.length);
      expect(data.records.map((r) => `${data.base + (r[0] as number)} ${r[5]}`)).toEqual(expected);
    }
  });
});

describe('the reader', () => {
  it('finds the mini-batches processed-mini-batches.csv reports twice (a re-run into the folder)', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 500, workers: 2, retryRate: 0, failRate: 0 });
    const csv = path.join(folder, 'processed-mini-batches.csv');
    const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
    fs.appendFileSync(csv, `${[rows[3], rows[3], rows[10], rows[400]].join('\n')}\n`);
    const step = readRunFolder(folder).steps[0]!;
    expect(step.miniBatches.count).toBe(504);
    expect(step.miniBatches.repeated).toEqual({ count: 3, examples: ['mb-00002', 'mb-00009', 'mb-00399'] });
    const rerun = diagnose(readRunFolder(folder, { light: true })).findings.find((f) => f.id === 'rerun');
    expect(rerun?.data.duplicateMiniBatches).toBe(3);
    expect(rerun?.evidence.join('\n')).toContain('3 mini-batches were reported more than once in processed-mini-batches.csv: mb-00002, mb-00009, mb-00399');
  });

  it("cuts a CSV line without quotes where csv-parse would, and hands it the quoted records", () => {
    const lf = '\ufeffa,b,c\n1,,x y\n\n"q,1","he said ""hi""","two\nlines"\n4,5,6\n"x",y,"open\n\nstill"\n7,8,9\nbad"quote,1,2\n"cut,short';
    for (const text of [lf, lf.replaceAll('\n', '\r\n'), '7,8,9\n"never closed,1\n']) {
      const expected: unknown[] = [];
      parseCsv(Buffer.from(text), ',', 1, { record: (f, line) => expected.push([f, line]), malformed: (reason, line) => expected.push([reason, line]) });
      const got: unknown[] = [];
      const records = new CsvLineRecords(',', {
        record: (f, line) => got.push([Array.from({ length: f.length }, (_, i) => f.field(i)), line]),
        malformed: (reason, line) => got.push([reason, line]),
      });
      const lines = text.split('\n');
      lines.forEach((l, k) => records.line(l, k + 1, k < lines.length - 1));
      records.end();
      expect(got, JSON.stringify(text)).toEqual(expected);
      expect(got.length).toBeGreaterThanOrEqual(2);
    }
  });

  it('reads the times of a run folder as Date.parse does', () => {
    for (const t of ['2026-01-15T08:00:00.123456789Z', '2026-01-15T08:00:00.5Z', '2026-01-15T08:00:00Z', '2026-02-30T08:00:00.25Z', '2026-01-15T08:00:60.1Z', '2026-01-15T08:00:00.Z', '2026-01-15T08:00:00.1x2Z', '2026-01-15T08:00:00.123+01:00', 'soon']) {
      const d = Date.parse(t);
      expect(isoMillis(t), t).toBe(Number.isFinite(d) ? d : undefined);
    }
  });

  it('cuts the lines of a JSON Lines file from its chunks as it cuts them one by one: offsets in bytes, lines longer than a chunk, a half-written last line', async () => {
    const dir = await useTempDir();
    const lines = ['{"a":1}', '{"m":"héllo wörld ✓"}', '', `{"long":"${'x'.repeat(200_000)}"}`, '{"b":2}\r', ...Array.from({ length: 3000 }, (_, i) => `{"i":${i},"s":"${'é'.repeat(i % 50)}"}`), '{"half":'];
    const file = path.join(dir, 'lines.jsonl');
    fs.writeFileSync(file, lines.join('\n'));
    const cut = (slices: boolean) => {
      const got: [string, number, boolean, boolean, number][] = [];
      forEachLine(file, (...a) => got.push(a), file, slices);
      return got;
    };
    const sliced = cut(true);
    expect(sliced).toEqual(cut(false));
    const bytes = fs.readFileSync(file);
    expect(sliced.map(([text]) => text)).toEqual(lines);
    for (const [text, , , , offset] of sliced) expect(bytes.toString('utf8', offset, offset + Buffer.byteLength(text))).toBe(text);
    expect(sliced.at(-1)!.slice(2, 4)).toEqual([true, false]);
  });

  it("counts the runner's mini-batch ids and any other ids alike (the runner's are flags by number)", () => {
    const ids = new IdTable();
    const all = ['mb-00007', 'mb-7', 'mb-000007', 'mb-123456', 'mb-0123456', 'mb-99999999', 'mb-123456789', 'mb-00x07', 'node-1/mb-00007', 'mb-00007', 'mb-123456'];
    const slots = new Map<string, number>();
    for (const id of all) {
      const slot = ids.slot(id);
      if (slots.has(id)) expect(slot, id).toBe(slots.get(id));
      else {
        expect(ids.flagsAt(slot), id).toBe(0);
        ids.addFlags(slot, slots.size + 1);
        slots.set(id, slot);
      }
    }
    expect(ids.size).toBe(9);
    for (const [id, slot] of slots) expect(ids.flagsAt(slot), id).toBe([...slots.keys()].indexOf(id) + 1);
  });
});

describe("the doctor's statistics on long series", () => {
  it("gives Mann-Kendall's S in O(n log n) as the sum over every pair does, ties and all (a resource series has thousands of samples a process)", () => {
    let seed = 5;
    const r = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (const n of [0, 1, 2, 3, 8, 101, 1000]) {
      for (const levels of [1, 3, 1e6]) {
        const v = Array.from({ length: n }, () => Math.floor(r() * levels) - 1);
        let s = 0;
        for (let i = 0; i < n - 1; i++) for (let j = i + 1; j < n; j++) s += Math.sign(v[j]! - v[i]!);
        expect(kendallS(v), `${n} values of ${levels}`).toBe(s);
      }
    }
  });
});
