// `npm run bench`: every figure next to a baseline measured in the same run, printed as a ratio.
// Nothing here is asserted; targets are printed for the reader.
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver.js';
import { startAppInsightsReceiver } from '../test/helpers/appinsights-receiver.js';
import { baseChildEnv } from '../test/helpers/run-step.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

function runNode(script: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args], { env: { ...baseChildEnv(), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}`))));
  });
}
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').pop()!);

const N = Number(process.env.BENCH_MINIBATCHES ?? 100_000);
console.log(`step-telemetry benchmarks (node ${process.version}; loop figures: ${N} mini-batches after a warm-up of 20,000; growth is measured over the ${N})\n`);

// 1. hot path, in one process
const hot = lastJson(execFileSync(process.execPath, ['--expose-gc', here('./hot-path.mjs')], { encoding: 'utf8', env: baseChildEnv() }));
console.table(hot);

// 2. 100,000 mini-batches with the OTLP and Application Insights endpoints up, then hung
async function loop(mode: 'up' | 'hung') {
  const otlp = await startOtlpReceiver({ mode: mode === 'up' ? 'ok' : 'hang' });
  const ai = await startAppInsightsReceiver({ mode: mode === 'up' ? 'ok' : 'hang' });
  try {
    return lastJson(
      await runNode(here('./minibatch-loop.mjs'), [String(N)], {
        ...ai.childEnv(),
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '2000',
      }),
    );
  } finally {
    await otlp.close();
    await ai.close();
  }
}
const noBackend = lastJson(await runNode(here('./minibatch-loop.mjs'), [String(N)], {}));
const up = await loop('up');
const hung = await loop('hung');
const perMb = (r: { wallMs: number }) => `${((r.wallMs * 1000) / N).toFixed(2)} µs`;
type Loop = { wallMs: number; rssBefore: number; rssWarm: number; rssAfter: number; heapWarm: number; heapAfter: number; peak: number };
const heap = (r: Loop) => `${r.heapAfter - r.heapWarm} MB`;
const rss = (r: Loop, target = '') => `${r.rssAfter - r.rssWarm} MB${target} (${r.rssAfter - r.rssBefore} MB from the start)`;
console.table([
  { case: 'local files only', wall: `${Math.round(noBackend.wallMs)} ms`, 'per mini-batch': perMb(noBackend), 'rss growth': rss(noBackend), 'heap growth after gc': heap(noBackend), 'peak rss': `${noBackend.peak} MB` },
  { case: 'OTLP + App Insights up', wall: `${Math.round(up.wallMs)} ms`, 'per mini-batch': perMb(up), 'rss growth': rss(up), 'heap growth after gc': heap(up), 'peak rss': `${up.peak} MB` },
  {
    case: 'OTLP + App Insights hung',
    wall: `${Math.round(hung.wallMs)} ms (${(hung.wallMs / up.wallMs).toFixed(2)}× of up; target ≤ 1.02×)`,
    'per mini-batch': perMb(hung),
    'rss growth': rss(hung, ', target ≤ 50 MB'),
    'heap growth after gc': heap(hung),
    'peak rss': `${hung.peak} MB`,
  },
]);

// 2b. cold import with no backend against importing @opentelemetry/sdk-node alone (fresh processes)
const cold = lastJson(execFileSync(process.execPath, [here('./cold-import.mjs'), '9'], { encoding: 'utf8', env: baseChildEnv() }));
console.log('\ncold import (median of 9 fresh processes each):');
console.table([{ 'step-telemetry, no backend': `${cold.stepTelemetryMs.toFixed(0)} ms`, '@opentelemetry/sdk-node alone': `${cold.sdkNodeMs.toFixed(0)} ms`, ratio: `${cold.ratio.toFixed(2)}× (target ≤ 1.2×)` }]);

// 2c. from end() resolving to the process exit, per backend state (median of 5 runs each)
console.log('\nend() resolved → process exit, and the end() itself (flush bound 2000 ms):');
async function exitTimes(env: Record<string, string>): Promise<{ end: number; exit: number }> {
  const ends: number[] = [];
  const exits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const child = spawn(process.execPath, [here('../test/fixtures/otel/exit-step.mjs')], { env: { ...baseChildEnv(), STEP_TELEMETRY_DIR: here('../node_modules/.cache/bench-telemetry'), STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '2000', ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((resolve) => child.on('exit', resolve));
    const exited = Date.now();
    const at = (n: string) => Number(new RegExp(`^${n} (\\d+)$`, 'm').exec(out)?.[1]);
    ends.push(at('ENDED') - at('ENDING'));
    exits.push(exited - at('ENDED'));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
  return { end: med(ends), exit: med(exits) };
}
const exitRows = [];
for (const state of ['ok', 'refused', 'unauthorized', 'hang'] as const) {
  const otlp = state === 'refused' ? undefined : await startOtlpReceiver({ mode: state });
  const ai = state === 'refused' ? undefined : await startAppInsightsReceiver({ mode: state === 'unauthorized' ? 'unauthorized' : state });
  try {
    const refusedUrl = `http://127.0.0.1:1`;
    const o = await exitTimes({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp?.url ?? refusedUrl });
    const a = ai ? await exitTimes(ai.childEnv()) : await exitTimes({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-4000-8000-0000000000a1;IngestionEndpoint=https://127.0.0.1:1/' });
    exitRows.push({ backend: state, 'OTLP end()': `${o.end} ms`, 'OTLP exit after end()': `${o.exit} ms`, 'App Insights end()': `${a.end} ms`, 'App Insights exit after end()': `${a.exit} ms` });
  } finally {
    await otlp?.close();
    await ai?.close();
  }
}
console.table(exitRows);

// 2d. OTLP delivery: records sent against records a local receiver got
console.log('');
execFileSync(process.execPath, ['--import', 'tsx', here('./otlp-delivery.ts')], { stdio: 'inherit', env: baseChildEnv() });

// 3. report and doctor on synthetic run folders of 10,000 and 100,000 mini-batches (1M with --million or BENCH_SCALE_MILLION=1)
console.log('\nrun report and doctor at scale:');
execFileSync(process.execPath, ['--import', 'tsx', here('./report.ts'), ...(process.argv.includes('--million') ? ['--million'] : [])], { stdio: 'inherit', env: baseChildEnv() });

// 4. the mini-batch runner's own cost against a bare worker pool doing the same no-op tasks
console.log('\nmini-batch runner overhead:');
execFileSync(process.execPath, [here('./runner/bench-runner.mjs')], { stdio: 'inherit', env: baseChildEnv() });

// 4b. the runner at scale: 10k and 100k mini-batches (1M with `npm run bench -- --million` or
// BENCH_SCALE_MILLION=1) against a bare fork pool, the same scheduled in chunks, and piscina
console.log('\nmini-batch runner at scale:');
execFileSync(process.execPath, [here('./runner/scale.mjs'), ...(process.argv.includes('--million') ? ['--million'] : [])], { stdio: 'inherit', env: baseChildEnv() });

// 4c. the shared queue (BullMQ on one Redis on loopback) against the runner without it, 1 and 2 nodes
console.log('\nshared queue:');
try {
  execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  execFileSync(process.execPath, [here('./runner/bench-queue.mjs')], { stdio: 'inherit', env: baseChildEnv() });
} catch (error) {
  console.log(`skipped: ${(error as Error).message.split('\n')[0]} (needs redis-server on the PATH)`);
}

// 5. resource sampling: one sample, an idle step with sampling on and off, the runner on and off
console.log('\nresource sampling:');
execFileSync(process.execPath, [here('./resources.mjs')], { stdio: 'inherit', env: baseChildEnv() });
