// `step-telemetry report` (and the shared run-folder reader under both commands) without a browser:
// what it accepts and rejects, the clear messages naming the file and line, the tolerated
// half-written last line, the self-contained page, what it makes of the step.log records, the
// runner's workers, and a failed run, and the bounds for a large run.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, useTempDir, type TempDir } from './helpers/run-step.js';
import { abortedRun, cli, makeInputs, parallelRun, plainStep } from './fixtures/report/runs.js';
import { writeSyntheticRun } from './fixtures/report/synthetic-run.js';
import { rewriteWorkerStops, setWorkerEnds, type WorkerStopForm } from './fixtures/report/worker-stops.js';

/** `step-telemetry report <folder>` → the page. */
async function report(folder: string, out: string): Promise<string> {
  const r = await cli(['report', folder, '-o', out, '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  return fs.readFileSync(out, 'utf8');
}

function logData(html: string): { levels: string[]; records: unknown[][] } {
  return JSON.parse(/<script type="application\/json" id="log-data">([\s\S]*?)<\/script>/.exec(html)![1]!);
}

/** The value of a key-figure tile. */
function tile(html: string, label: string): string | undefined {
  const at = html.indexOf(`<div class="l">${label}</div>`);
  if (at < 0) return undefined;
  const head = html.slice(0, at);
  return /<div class="v">((?:(?!<div class="v">).)*)<\/div>$/.exec(head)?.[1];
}

describe('what the commands accept', () => {
  it('reject a folder that is not a run folder, and a missing one, with exit 2 and a clear message', async () => {
    const dir = await useTempDir();
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');
    for (const command of ['report', 'doctor']) {
      const r = await cli([command, dir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${dir} is not a run folder: expected step.json, logs.jsonl, metrics.jsonl or spans.jsonl`);
      const missing = await cli([command, path.join(dir, 'nope')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('nope: no such folder');
      const file = await cli([command, path.join(dir, 'notes.txt')]);
      expect(file.stderr).toMatch(/is a file; give the run folder that holds it/);
    }
    expect((await cli(['report'])).code).toBe(2);
    expect((await cli(['doctor', dir, '--bogus'])).stderr).toContain('unknown option --bogus');
  });

  it('accept a step folder, a pipeline run folder, and a telemetry root that holds one pipeline run', async () => {
    const dir = await useTempDir();
    const { folder } = await plainStep(path.join(dir, 'tel'), 'pr-1');
    for (const target of [folder, path.dirname(folder), path.join(dir, 'tel')]) {
      const out = path.join(dir, `r-${path.basename(target)}.html`);
      const r = await cli(['report', target, '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^report: .*\.html \(\d+ KiB; 1 step/);
      expect(fs.readFileSync(out, 'utf8')).toContain('prepare');
    }
    const d = await cli(['doctor', path.join(dir, 'tel')]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('(pipeline run pr-1, 1 step)');

    // a step on two nodes: <run>/<step>/node-<rank>/, read from the step folder or the run folder
    const nodes = path.join(dir, 'tel-nodes');
    for (const rank of ['0', '1']) await plainStep(nodes, 'pr-n', { STEP_TELEMETRY_NODE_COUNT: '2', STEP_TELEMETRY_NODE_RANK: rank });
    for (const target of [path.join(nodes, 'pr-n', 'prepare'), path.join(nodes, 'pr-n')]) {
      const j = await cli(['doctor', target, '--json']);
      expect(j.code).toBe(0);
      expect(JSON.parse(j.stdout).steps.map((s: { label: string }) => s.label)).toEqual(['prepare/node-0', 'prepare/node-1']);
    }
  });

  it('name the file and line of a corrupt record; tolerate a half-written last line', async () => {
    const dir = await useTempDir();
    const { folder } = await plainStep(path.join(dir, 'tel'), 'pr-c');
    const spans = path.join(folder, 'spans.jsonl');
    const good = fs.readFileSync(spans, 'utf8');
    const lines = good.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);

    // a killed step: the last line stops mid-record, without its newline
    fs.writeFileSync(spans, `${good}${lines[0]!.slice(0, 40)}`);
    const tolerated = await cli(['report', folder, '-o', path.join(dir, 'a.html')]);
    expect(tolerated.code, tolerated.stderr).toBe(0);
    expect(tolerated.stderr).toContain(`prepare/spans.jsonl:${lines.length + 1}: the last line is half-written`);
    const doc = await cli(['doctor', folder, '--json']);
    expect(doc.code).toBe(0);
    expect(JSON.parse(doc.stdout).findings.map((f: { id: string; severity: string }) => [f.id, f.severity])).toEqual([['truncated-file', 'info']]);

    // corrupt in the middle: rejected, naming file and line
    fs.writeFileSync(spans, [lines[0], '{"trace_id": "abc", broken', ...lines.slice(1)].join('\n') + '\n');
    for (const command of ['report', 'doctor']) {
      const r = await cli([command, folder]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/prepare\/spans\.jsonl:2: not a valid JSON record \(.*\): \{"trace_id": "abc", broken/);
    }
    // valid JSON that is not a span
    fs.writeFileSync(spans, `${good}{"hello":1}\n`);
    expect((await cli(['report', folder])).stderr).toContain(`prepare/spans.jsonl:${lines.length + 1}: not a span record (expected "name", "start" and "duration_ms")`);
    fs.writeFileSync(spans, good);

    // a truncated step.json
    const stepJson = path.join(folder, 'step.json');
    const sj = fs.readFileSync(stepJson, 'utf8');
    fs.writeFileSync(stepJson, sj.slice(0, 200));
    const t = await cli(['doctor', folder]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/prepare\/step\.json:\d+: not valid JSON \(truncated\?\)/);
    fs.writeFileSync(stepJson, '');
    expect((await cli(['report', folder])).stderr).toContain('prepare/step.json: the file is empty (truncated');
    fs.writeFileSync(stepJson, sj);

    // the runner's CSV report with a short row in the middle
    const header = 'mini_batch_id,times_picked,worker,pid,start_time,end_time,total_items,succeeded_items,failed_items,elapsed_seconds,run_method_seconds,status,error_category,error_message';
    const row = (id: string) => `${id},1,worker-0,1,2026-01-01T00:00:00.000Z,2026-01-01T00:00:01.000Z,2,2,0,1,0.9,RUN_DONE,,`;
    fs.writeFileSync(path.join(folder, 'processed-mini-batches.csv'), `${header}\n${row('mb-00000')}\nmb-00001,1,worker-0\n${row('mb-00002')}\n`);
    const c = await cli(['report', folder]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('prepare/processed-mini-batches.csv:3: expected 14 columns as in the header, found 3');
    // ... and cut short at the end: tolerated
    fs.writeFileSync(path.join(folder, 'processed-mini-batches.csv'), `${header}\n${row('mb-00000')}\n${row('mb-00001').slice(0, 30)}`);
    const d = await cli(['report', folder, '-o', path.join(dir, 'c.html')]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toContain('processed-mini-batches.csv:3: the last line is half-written');
  });
});

describe('the page', () => {
  it('is self-contained: inline styles and script, a CSP forbidding any fetch, no external URL to load', async () => {
    const dir = await useTempDir();
    const { folder } = await plainStep(path.join(dir, 'tel'), 'pr-s');
    const r = await cli(['report', path.dirname(folder)]);
    expect(r.code).toBe(0);
    const html = fs.readFileSync(path.join(path.dirname(folder), 'report.html'), 'utf8');
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
    expect(html).not.toMatch(/<(?:script|img|link|iframe)[^>]+(?:src|href)=/i);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/i);
    expect(html).not.toMatch(/@import/);
    // the step.log records: scalars as charts over the step index (train and validation series of
    // one stem overlaid), lists as charts, confusion matrices as heatmaps, other tables as tables
    expect(html).toContain('<b>loss</b> · 30 values');
    expect(html).toContain('<b>accuracy</b> · 30 values');
    expect(html).toMatch(/data-chart="overlay" data-stem="loss"><figcaption><b>loss<\/b>: train_loss \(last 0\.2\) · val_loss/);
    expect(html).toMatch(/data-chart="overlay" data-stem="acc"><figcaption><b>acc<\/b>: acc\/train \(last 0\.9\) · acc\/val/);
    expect(html).toMatch(/<figure class="chart small" data-chart="list"><figcaption><b>loss_curve<\/b> · list, 4 values/);
    expect(html).toMatch(/<h4>per_class <small>rows, 3 rows<\/small><\/h4>/);
    const matrices = [...html.matchAll(/data-chart="confusion"><figcaption><b>([^<]+)<\/b> · ([^<]*)<\/figcaption>/g)].map((m) => `${m[1]}: ${m[2]}`);
    expect(matrices).toEqual([
      'confusion: table, 3 rows · 3 × 3 · 3 counted · 66.7% on the diagonal',
      'confusion_counts: table, 5 rows · 3 × 3 · 100 counted · 92.0% on the diagonal',
      'confusion_square: table, 3 rows · 3 × 3 · 103 counted · 89.3% on the diagonal',
      'confusion_rows: rows · 2 × 2 · 20 counted · 80.0% on the diagonal',
    ]);
    // square, whole numbers, but three settings of three runs: not a matrix
    expect(html).toMatch(/<h4>runs <small>table, 3 rows<\/small><\/h4>/);
    expect(html).toContain('rows_read');
    // the failed block and the error log record, grouped
    expect(html).toContain('span &quot;normalise&quot;');
    expect(html).toContain('RangeError: pixel value 300 out of range 0..255');
  });

  it('stays bounded for a large run: aggregated timeline and resources, ≤ 500 latency buckets, a capped log sample', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 20_000, workers: 6, retryRate: 0.03, failRate: 0.003, legacy: true, workerSpans: true, resourcesEveryMs: 100 });
    const out = path.join(dir, 'big.html');
    const r = await cli(['report', folder, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    expect(html.length).toBeLessThan(2_000_000);
    expect(html).toContain('attempts are aggregated into 400 time slots per worker');
    const timeline = /<svg[^>]*id="timeline-svg-0"[\s\S]*?<\/svg>/.exec(html)![0];
    const rects = timeline.match(/<rect /g)!.length;
    expect(rects).toBeLessThan(6 * 400 * 3);
    expect(/Duration of attempts over the run: [^<]*/.exec(html)?.[0]).toMatch(/p50, p95 and p99 of the successful attempts per time bucket \(500 buckets of [\d.]+ s; a gap is a bucket with fewer than 2\); 717 failed attempts marked by kind in 80 time slots$/);
    // resources: 6,700 lines per process, drawn in at most 400 time slots a strip, 120 tooltip columns a worker
    const resources = /<svg[^>]*id="resources-svg-0"[\s\S]*?<\/svg>/.exec(html)![0];
    const lines = [...resources.matchAll(/<path class="strip-line" data-series="([^"]+)" d="([^"]+)"/g)];
    expect(lines.map((m) => m[1]).filter((n) => n.endsWith(' RSS'))).toEqual(['runner RSS', ...Array.from({ length: 6 }, (_, w) => `worker-${w} RSS`)]);
    for (const [, name, d] of lines) expect(d!.split(/[ML]/).length - 1, name).toBeLessThanOrEqual(2 * 400 + 2);
    expect(resources.match(/<rect class="hover/g)!.length).toBeLessThanOrEqual(7 * 120);
    expect(html).toMatch(/from resources\.jsonl, [\d,]+ samples, the longest aggregated into 400 time slots/);
    // what run() used, per worker, from the attempt spans
    expect(html).toMatch(/<h4>What the mini-batches used, per worker<\/h4>[\s\S]*?<td>worker-0<\/td><td>[\d,]+<\/td><td>[^<]+<\/td><td>[^<]+<\/td><td><b>6\d%<\/b><\/td><td>90\.0 MiB<\/td><td>\+39 KiB<\/td>/);
    const data = JSON.parse(/<script type="application\/json" id="log-data">([\s\S]*?)<\/script>/.exec(html)![1]!);
    expect(data.records.length).toBe(5000);
    expect(data.total).toBeGreaterThan(20_000);
    // every warning is kept before the info records are sampled
    const warn = data.levels.indexOf('warn');
    expect(data.records.filter((x: unknown[]) => x[1] === warn).length).toBeGreaterThan(500);
  });
});

describe("the runner's workers are parts of the job", () => {
  let tmp: TempDir;
  let base: string;
  beforeAll(async () => {
    tmp = await makeTempDir('step-telemetry-report-workers-');
    const input = makeInputs(path.join(tmp.path, 'in'), 12, (i) => `img-${String(i).padStart(3, '0')}.txt`);
    // both workers take part (the barrier), however slowly a loaded machine starts the second
    const barrier = path.join(tmp.path, 'ready');
    fs.mkdirSync(barrier);
    const run = await parallelRun({ dir: path.join(tmp.path, 'tel'), pipelineRunId: 'pr-w', stepName: 'score', input, flags: ['--mini-batch-size', '2', '--process-count-per-node', '2'], entryArgs: ['--sleep', '5', '--barrier', barrier, '--workers', '2'] });
    expect(run.result.code, run.result.stderr).toBe(0);
    base = run.folder;
  }, 120_000);
  afterAll(async () => tmp?.cleanup());

  /** A copy of the real run's step folder with its workers rewritten as `form`. */
  function variant(name: string, form: WorkerStopForm, endReason?: string | null): string {
    const folder = path.join(tmp.path, name, 'pr-w', 'score');
    fs.cpSync(base, folder, { recursive: true });
    rewriteWorkerStops(folder, form);
    if (endReason !== undefined) setWorkerEnds(folder, endReason ?? undefined);
    return folder;
  }

  function expectStoppedByRunner(html: string, workers: number): void {
    expect(html.match(/<span class="badge stopped"[^>]*>stopped by the runner<\/span>/g)?.length).toBe(workers);
    expect(tile(html, 'errors / warnings logged')).toMatch(/^0 \/ \d+$/);
    expect(html).not.toContain('Errors outside mini-batches');
    expect(html).not.toContain('id="what-failed"');
    expect(html).not.toMatch(/data-level="error"/);
    expect(html).toMatch(/<h2>Step score <span class="badge" style="background:#2f9e5f">success<\/span><\/h2>/);
  }

  it('a successful run whose workers the runner stopped shows no failed step and no errors (was: "step score failed (Terminated: received SIGTERM)" per worker and a red error count)', async () => {
    // the form from before stopped_by: terminated workers, the job succeeded, the worker summary says "stopped"
    const legacy = await report(variant('legacy', 'legacy'), path.join(tmp.path, 'legacy.html'));
    expectStoppedByRunner(legacy, 2);
    expect(legacy).toContain('2 workers stopped by the runner: what their steps recorded on the way out (2 records "step score failed", Terminated) is not an error of the run and is not counted.');
    // their records stay in the page, as info, saying why
    const data = logData(legacy);
    const stops = data.records.filter((r) => r[5] === 'step score failed');
    expect(stops.length).toBe(2);
    for (const r of stops) {
      expect(data.levels[r[1] as number]).toBe('info');
      expect(r[6]).toBe('Terminated: received SIGTERM: not an error: the runner stopped this worker');
    }
    // ... and without a worker summary: the job's own result.json says it succeeded
    expectStoppedByRunner(await report(variant('legacy-no-summary', 'legacy', null), path.join(tmp.path, 'legacy-ns.html')), 2);
  });

  it('reads "stopped_by": "runner" at a normal end and on an abort', async () => {
    expectStoppedByRunner(await report(variant('new', 'stopped-by-runner'), path.join(tmp.path, 'new.html')), 2);
    expectStoppedByRunner(await report(variant('new-abort', 'stopped-by-runner-abort', null), path.join(tmp.path, 'new-abort.html')), 2);
  });

  it('a worker that ended on its own (the runner saw it crash) stays a failure with its errors counted', async () => {
    const html = await report(variant('crashed', 'legacy', 'crashed'), path.join(tmp.path, 'crashed.html'));
    expect(html).not.toContain('stopped by the runner');
    expect(html.match(/<td><span class="badge" style="background:#e8912d">terminated<\/span><\/td>/g)?.length).toBe(2);
    expect(tile(html, 'errors / warnings logged')).toMatch(/^2 \/ \d+$/);
    expect(html).toContain('Errors outside mini-batches');
  });

  it('a run the runner aborted: its workers were stopped by the runner; the real errors are counted', async () => {
    const run = await abortedRun(path.join(tmp.path, 'tel-abort'), 'pr-a', { workers: 2, errorThreshold: 1, sleepMs: 30 });
    expect(run.result.code).toBe(1);
    const html = await report(run.folder, path.join(tmp.path, 'abort.html'));
    // both workers, also one that the runner stopped before its step wrote a step.json
    expect(html.match(/title="the runner stopped this worker when the job was aborted; [^"]*">stopped by the runner<\/span>/g)?.length).toBe(2);
    // the job's own error records: "parallel run aborted" and its step's end, not the workers'
    expect(tile(html, 'errors / warnings logged')).toMatch(/^2 \/ \d+$/);
  }, 60_000);
});

describe('one look at a failed run', () => {
  it('a failed parallel run: what failed, in which mini-batch and input, the first frame of the user\'s code, and links', async () => {
    const dir = await useTempDir();
    // one worker: the first failure is mb-00001's
    const run = await abortedRun(path.join(dir, 'tel'), 'pr-f', { workers: 1, errorThreshold: 3 });
    expect(run.result.code).toBe(1);
    const html = await report(path.dirname(run.folder), path.join(dir, 'f.html'));
    const sentence = /<section id="what-failed" class="headline"><p class="sentence">([\s\S]*?)<\/p><p class="links">([\s\S]*?)<\/p><\/section>/.exec(html);
    expect(sentence, 'the headline').not.toBeNull();
    const text = sentence![1]!.replace(/<[^>]+>/g, '');
    expect(text).toMatch(
      /^score failed \(error_threshold exceeded: 4 failed items &gt; error_threshold 3\): most often TypeError: Cannot read properties of undefined \(reading &#39;pixels&#39;\) in mini-batch mb-00001 \(inputs img-002\.txt, img-003-bad\.txt\), at run \(file:\/\/\/.*\/test\/fixtures\/report\/entry\.mjs:\d+:\d+\)\.$/,
    );
    expect(sentence![1]).toContain('<button class="mb-link" data-mb="mb-00001"');
    const anchor = /<a href="#(finding-\d+)">the finding<\/a>/.exec(sentence![2]!)![1]!;
    expect(html).toMatch(new RegExp(`<div class="finding sev-error" id="${anchor}"><div class="f-head"><span class="sev">error</span> <code>step-failed</code> score failed`));
    expect(sentence![2]).toContain('<button class="log-link" type="button" data-mb="mb-00001">its log records</button>');
  }, 60_000);

  it('a failed plain step: its error and where in the script; a successful run has no headline', async () => {
    const dir = await useTempDir();
    const { folder, result } = await plainStep(path.join(dir, 'tel'), 'pr-p', { FIXTURE_FAIL: '1' });
    expect(result.code).toBe(1);
    const html = await report(folder, path.join(dir, 'p.html'));
    const sentence = /<p class="sentence">([\s\S]*?)<\/p><p class="links">([\s\S]*?)<\/p>/.exec(html)!;
    expect(sentence[1]!.replace(/<[^>]+>/g, '')).toMatch(/^prepare failed: TypeError: shard 7 has no header row, at loadShard \(file:\/\/\/.*\/plain-step\.mjs:\d+:\d+\)\.$/);
    expect(sentence[2]).toContain('<button class="log-link" type="button" data-log-step="0" data-log-level="error">the error log records</button>');
    expect(sentence[2]).toMatch(/<a href="#finding-\d+">the finding<\/a>/);
    const ok = await plainStep(path.join(dir, 'tel'), 'pr-ok');
    expect(await report(ok.folder, path.join(dir, 'ok.html'))).not.toContain('id="what-failed"');
  });
});
