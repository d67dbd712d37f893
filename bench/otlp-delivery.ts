// OTLP delivery: what a step sent against what a local OTLP/HTTP receiver got. Nothing is asserted.
// 1. bursts recorded just before end() (600 and 10,002 log records, 600 spans): all of a burst
//    that fits the queue arrives; the rest is counted as dropped at the full queue.
// 2. a parallel-run job of no-op mini-batches (2 workers), at the runner's full rate, to a receiver
//    that answers at once and to one that answers each request after 100 ms: the attempts that must
//    be seen (failed, retried) all arrive, the others are sampled at what the backend takes, with
//    their probability stated; re-weighted by it, the exported spans count the attempts.
//   node --import tsx bench/otlp-delivery.ts [mini-batches]      (after `npm run build`)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import { baseChildEnv } from '../test/helpers/run-step.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const n = Number(process.argv[2] ?? process.env.BENCH_DELIVERY_MINIBATCHES ?? 20_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'step-telemetry-bench-delivery-'));
const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const stepJson = (dir: string, stepName: string) => {
  const run = fs.readdirSync(dir)[0]!;
  return JSON.parse(fs.readFileSync(path.join(dir, run, stepName, 'step.json'), 'utf8')) as { exports: Array<Record<string, any>> };
};
/** Runs `node args` with `env` and waits for it: the receivers answer in this process meanwhile. */
const node = (args: string[], env: Record<string, string>) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...baseChildEnv(), ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });
const reasons = (e: Record<string, any>) =>
  Object.entries(e.notExported ?? {})
    .filter(([, v]) => (v as number) > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

try {
  // 1. bursts before end()
  const bursts = [];
  for (const [signal, count] of [['logs', 600], ['logs', 10_000], ['spans', 600]] as const) {
    const receiver = await startOtlpReceiver();
    const dir = path.join(tmp, `burst-${signal}-${count}`);
    await node([here('../test/fixtures/otel/burst-step.mjs')], { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_METRICS_EXPORTER: 'none', STEP_TELEMETRY_DIR: dir, FIXTURE_BURST: signal, FIXTURE_COUNT: String(count) });
    const e = stepJson(dir, 'burst').exports.find((x) => x.signal === (signal === 'spans' ? 'traces' : 'logs'))!;
    const received = signal === 'spans' ? receiver.spans().length : receiver.logs().length;
    bursts.push({ case: `${count.toLocaleString('en-US')} ${signal === 'spans' ? 'spans' : 'log records'} before end()`, sent: e.offeredItems, received, 'received / sent': `${(received / e.offeredItems).toFixed(3)}`, 'not delivered': reasons(e) });
    await receiver.close();
  }
  console.log('OTLP delivery of a burst just before end() (the step span and start/end log lines included):');
  console.table(bursts);

  // 2. the runner's attempt spans at its full rate
  const input = path.join(tmp, 'in');
  fs.mkdirSync(input);
  const rows: string[] = [];
  for (let i = 0; i < 2 * n; i++) rows.push(JSON.stringify({ k: `${i % 500 === 250 ? 'retry' : 'ok'}-${String(i).padStart(7, '0')}` }));
  fs.writeFileSync(path.join(input, 'rows.jsonl'), `${rows.join('\n')}\n`);
  const jobs = [];
  for (const answerDelayMs of [0, 100]) {
    const receiver = await startOtlpReceiver({ answerDelayMs });
    const dir = path.join(tmp, `runner-${answerDelayMs}`);
    const t0 = performance.now();
    await node(
      [here('../dist/cli.js'), 'parallel-run', '--entry-script', here('../test/fixtures/runner/behave.mjs'), '--input', input, '--input-type', 'tabular', '--mini-batch-size', '46B', '--output-action', 'summary_only', '--process-count-per-node', '2', '--progress-interval', '3600', '--', '--throw-first', 'retry'],
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_LOGS_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '30000' },
    );
    const wallMs = performance.now() - t0;
    const run = fs.readdirSync(dir)[0]!;
    const attempts = lines(path.join(dir, run, 'parallel-run', 'spans.jsonl')).filter((s) => s.name === 'mini-batch');
    const mustSee = attempts.filter((a) => a.status.code === 'ERROR' || a.attributes['mini_batch.attempt'] > 1);
    const got = receiver.spans().filter((s) => s.name === 'mini-batch');
    const gotIds = new Set(got.map((s) => s.spanId));
    const estimate = got.reduce((sum, s) => sum + 1 / ((s.attributes['step.sampling.probability'] as number | undefined) ?? 1), 0);
    const e = stepJson(dir, 'parallel-run').exports.find((x) => x.signal === 'traces')!;
    jobs.push({
      backend: answerDelayMs === 0 ? 'answers at once' : `answers after ${answerDelayMs} ms`,
      attempts: attempts.length,
      'attempts/s (start to exit)': Math.round(attempts.length / (wallMs / 1000)),
      received: got.length,
      'failed or retried received': `${mustSee.filter((a) => gotIds.has(a.span_id)).length} of ${mustSee.length}`,
      'lowest probability': e.lowestSamplingProbability ?? 1,
      're-weighted / attempts': (estimate / attempts.length).toFixed(3),
      'not exported': reasons(e),
    });
    await receiver.close();
  }
  console.log(`\nOTLP delivery of the runner's attempt spans (${n.toLocaleString('en-US')} no-op mini-batches, 2 workers; spans.jsonl has all of them):`);
  console.table(jobs);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
