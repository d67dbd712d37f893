// What reaches a healthy OTLP receiver, counted: bursts before end() arrive whole, a full queue is
// named as the cause of what did not, and step.json's exports say per reason what was not exported.
// At runner rates against a slow backend, the export rate policy samples the mini-batch spans
// (docs/exports.md): every one that must be seen arrives, the others state their probability.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BEHAVE, readJson, readJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { findRunFolder, marker, readRunFolder } from './helpers/run-folder.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';

const BURST = fileURLToPath(new URL('./fixtures/otel/burst-step.mjs', import.meta.url));
const receivers: OtlpReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function burst(env: Record<string, string>) {
  const receiver = await startOtlpReceiver();
  receivers.push(receiver);
  const dir = await useTempDir('st-burst-');
  const r = await runStepScript({
    script: BURST,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_METRICS_EXPORTER: 'none', STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '10000', ...env },
  });
  expect(r.code, r.stderr).toBe(0);
  const result = marker<{ exports: Array<Record<string, any>> }>(r.stdout, 'RESULT');
  const exported = (signal: string) => result.exports.find((e) => e.signal === signal)!;
  return { r, receiver, exported, folder: () => readRunFolder(findRunFolder(dir)) };
}

describe('a burst before end() reaches a healthy receiver whole', () => {
  it('600 log records recorded at once all arrive (regression: only the first 512 did, the summary blamed the queue)', async () => {
    const { r, receiver, exported, folder } = await burst({ FIXTURE_BURST: 'logs', FIXTURE_COUNT: '600' });
    // the burst, the "started" and the "ended" lines, each once
    const bodies = receiver.logs().map((l) => String(l.body));
    expect(bodies).toHaveLength(602);
    expect(new Set(bodies).size).toBe(602);
    expect(r.stderr).toBe('');
    expect(exported('logs')).toMatchObject({ offeredItems: 602, deliveredItems: 602, droppedItems: 0, notExported: { queueFull: 0, exportFailed: 0, unsent: 0 } });
    expect(folder().step.exports.find((e: { signal: string }) => e.signal === 'logs')).toMatchObject({ deliveredItems: 602 });
  });

  it('1,500 log records right after a step.flush() that was not awaited arrive once each (regression: the end closed the exporter under the flush)', async () => {
    const { receiver } = await burst({ FIXTURE_BURST: 'logs', FIXTURE_COUNT: '1500', FIXTURE_FLUSH: '1' });
    const bodies = receiver.logs().map((l) => String(l.body));
    expect(bodies).toHaveLength(1502);
    expect(new Set(bodies).size).toBe(1502);
  });

  it('600 spans ended at once all arrive', async () => {
    const { r, receiver, exported } = await burst({ FIXTURE_BURST: 'spans', FIXTURE_COUNT: '600' });
    expect(receiver.spans()).toHaveLength(601);
    expect(r.stderr).toBe('');
    expect(exported('traces')).toMatchObject({ offeredItems: 601, deliveredItems: 601, droppedItems: 0, notExported: { sampledOut: 0, queueFull: 0, exportFailed: 0, unsent: 0 } });
  });

  it('a burst larger than the queue: what did not arrive is counted as dropped at the full queue, named with its variable', async () => {
    const { r, receiver, exported } = await burst({ FIXTURE_BURST: 'logs', FIXTURE_COUNT: '2000', OTEL_BLRP_MAX_QUEUE_SIZE: '300', OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '100' });
    const logs = exported('logs');
    expect(logs.notExported.queueFull).toBeGreaterThan(0);
    expect(logs.deliveredItems).toBe(receiver.logs().length);
    expect(logs.deliveredItems + logs.notExported.queueFull).toBe(2002);
    expect(logs).toMatchObject({ failedBatches: 0, droppedItems: logs.notExported.queueFull, notExported: { exportFailed: 0, unsent: 0 } });
    expect(r.stderr).toContain(`${logs.notExported.queueFull} of 2002 log records not delivered: ${logs.notExported.queueFull} dropped because the export queue was full (OTEL_BLRP_MAX_QUEUE_SIZE=300`);
  });
});

describe('mini-batch spans at runner rates, to a backend slower than the runner', () => {
  it('exports every failed, retried, timed-out and slow attempt, samples the rest at a stated probability, and counts it all; spans.jsonl and the metrics stay exact', async () => {
    // 128 spans answered every 150 ms: at most 850 spans a second, far below the runner's rate
    const receiver = await startOtlpReceiver({ answerDelayMs: 150 });
    receivers.push(receiver);
    const dir = await useTempDir('st-rate-');
    fs.mkdirSync(path.join(dir, 'in'));
    const rows: string[] = [];
    for (let i = 0; i < 16_000; i++) {
      const tag = i % 4000 === 1234 ? 'retry' : i % 4000 === 2345 ? 'fail' : i === 9000 ? 'hang' : i % 3000 === 2999 ? 'slow' : 'ok';
      rows.push(JSON.stringify({ k: `${tag}-${i}` }));
    }
    fs.writeFileSync(path.join(dir, 'in', 'rows.jsonl'), `${rows.join('\n')}\n`);
    const r = await runRunner(
      [
        ...['--entry-script', BEHAVE, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '40B', '--output-action', 'summary_only'],
        ...['--process-count-per-node', '2', '--run-invocation-timeout', '1', '--run-max-try', '2', '--error-threshold', '-1', '--progress-interval', '3600'],
        ...['--', '--throw-first', 'retry', '--throw', 'fail', '--hang', 'hang', '--slow', 'slow'],
      ],
      {
        cwd: dir,
        env: {
          // a pipeline sampled upstream at a half: its trace context says so
          TRACEPARENT: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          TRACESTATE: 'ot=th:8',
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '128',
          OTEL_METRIC_EXPORT_INTERVAL: '600000',
          OTEL_LOGS_EXPORTER: 'none',
          STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '20000',
          STEP_TELEMETRY_CONSOLE: 'false',
        },
        timeoutMs: 90_000,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const miniBatches = readJsonl(path.join(folder, 'mini-batches.jsonl')).length;
    const spans = readJsonl(path.join(folder, 'spans.jsonl'));
    const attempts = spans.filter((s) => s.name === 'mini-batch');
    // spans.jsonl has every attempt of every mini-batch
    expect(new Set(attempts.map((a) => a.attributes['mini_batch.id'])).size).toBe(miniBatches);
    const mustSee = attempts.filter((a) => a.status.code === 'ERROR' || a.attributes['mini_batch.attempt'] > 1 || a.duration_ms >= 50);
    const outcomes = (o: string) => mustSee.filter((a) => a.attributes['mini_batch.outcome'] === o).length;
    // 4 retried after a first failed attempt, 4 failed in both, and one that hung twice
    expect([outcomes('error'), outcomes('timeout')]).toEqual([4 + 2 * 4, 2]);
    const received = receiver.spans().filter((s) => s.resource['step.process_index'] === 0);
    const receivedIds = new Set(received.map((s) => s.spanId));
    for (const a of mustSee) expect(receivedIds.has(a.span_id), `${a.attributes['mini_batch.id']} attempt ${a.attributes['mini_batch.attempt']}`).toBe(true);

    // the policy sampled: each attempt not exported is marked in spans.jsonl, and counted
    const traces = readJson(path.join(folder, 'step.json')).exports.find((e: { signal: string }) => e.signal === 'traces');
    const notSampled = attempts.filter((a) => a.sampled === false).length;
    expect(notSampled).toBeGreaterThan(0);
    expect(traces.notExported.rateSampledOut).toBe(notSampled);
    const n = traces.notExported;
    expect(traces.offeredItems).toBe(traces.deliveredItems + n.queueFull + n.exportFailed + n.unsent);
    expect(traces.deliveredItems).toBe(received.length);
    expect(traces.offeredItems + n.rateSampledOut + n.sampledOut).toBe(spans.length);
    expect(r.stderr).toMatch(new RegExp(`${n.rateSampledOut} mini-batch spans sampled out at the rate the backend sustained`));

    // each exported attempt states the probability it was kept with in the tracestate (`ot=th:`),
    // with the pipeline's own sampling upstream (th:8, a half) multiplied in; those the policy
    // sampled say so in the attribute too, with a randomness `rv` that the threshold keeps
    const receivedAttempts = received.filter((s) => s.name === 'mini-batch');
    let estimate = 0;
    let variance = 0;
    for (const s of receivedAttempts) {
      const ot = /(?:^|,)ot=([^,]*)/.exec(s.traceState)![1]!;
      const th = /th:([0-9a-f]+)/.exec(ot)![1]!;
      const p = 1 - parseInt(th.padEnd(14, '0'), 16) / 2 ** 56;
      const stated = s.attributes['step.sampling.probability'] as number | undefined;
      if (stated === undefined) expect(th).toBe('8');
      else {
        expect(stated).toBe(p);
        expect(parseInt(/rv:([0-9a-f]{14})/.exec(ot)![1]!, 16)).toBeGreaterThanOrEqual(parseInt(th.padEnd(14, '0'), 16));
      }
      estimate += 1 / p;
      variance += (1 - p) / (p * p);
    }
    // re-weighted, the exported spans count the attempts (twice: the pipeline was sampled at a
    // half): within 5 standard deviations (Horvitz-Thompson), give or take what a full queue dropped
    const dropped = n.queueFull / ((traces.lowestSamplingProbability ?? 1) / 2);
    expect(Math.abs(estimate - 2 * attempts.length)).toBeLessThanOrEqual(5 * Math.sqrt(variance) + dropped);

    // the metrics are exact
    const histogram = receiver.metrics().filter((m) => m.name === 'step.minibatch.duration' && m.resource['step.process_index'] === 0);
    expect(histogram.reduce((sum, m) => sum + (m.count ?? 0), 0)).toBe(attempts.length);
  }, 120_000);
});
