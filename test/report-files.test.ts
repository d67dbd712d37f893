// `step-telemetry report` (and the shared run-folder reader under both commands) without a browser:
// what it accepts and rejects, the clear messages naming the file and line, the tolerated
// half-written last line, the self-contained page, and the bounds for a large run.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from './helpers/run-step.js';
import { cli, plainStep } from './fixtures/report/runs.js';
import { writeSyntheticRun } from './fixtures/report/synthetic-run.js';

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
    // the step.log records: scalars as charts over the step index, the rest as tables
    expect(html).toContain('<b>loss</b> · 30 values');
    expect(html).toContain('<b>accuracy</b> · 30 values');
    expect(html).toMatch(/<h4>per_class <small>rows, 3 rows<\/small><\/h4>/);
    expect(html).toMatch(/<h4>confusion <small>table, 3 rows<\/small><\/h4>/);
    expect(html).toMatch(/<h4>loss_curve <small>list, 4 values<\/small><\/h4>/);
    expect(html).toContain('rows_read');
    // the failed block and the error log record, grouped
    expect(html).toContain('span &quot;normalise&quot;');
    expect(html).toContain('RangeError: pixel value 300 out of range 0..255');
  });

  it('stays bounded for a large run: aggregated timeline, ≤ 500 latency buckets, a capped log sample', async () => {
    const dir = await useTempDir();
    const folder = writeSyntheticRun(dir, { miniBatches: 20_000, workers: 6, retryRate: 0.03, failRate: 0.003 });
    const out = path.join(dir, 'big.html');
    const r = await cli(['report', folder, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    expect(html.length).toBeLessThan(2_000_000);
    expect(html).toContain('attempts are aggregated into 400 time slots per worker');
    const timeline = /<svg[^>]*id="timeline-svg-0"[\s\S]*?<\/svg>/.exec(html)![0];
    const rects = timeline.match(/<rect /g)!.length;
    expect(rects).toBeLessThan(6 * 400 * 3);
    expect(html).toMatch(/500 time buckets of/);
    const data = JSON.parse(/<script type="application\/json" id="log-data">([\s\S]*?)<\/script>/.exec(html)![1]!);
    expect(data.records.length).toBe(5000);
    expect(data.total).toBeGreaterThan(20_000);
    // every warning is kept before the info records are sampled
    const warn = data.levels.indexOf('warn');
    expect(data.records.filter((x: unknown[]) => x[1] === warn).length).toBeGreaterThan(500);
  });
});
