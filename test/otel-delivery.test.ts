// What reaches a healthy OTLP receiver, counted: bursts before end() arrive whole, a full queue is
// named as the cause of what did not, and step.json's exports say per reason what was not exported.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
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
