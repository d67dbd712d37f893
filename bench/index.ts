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

// 3. the HTML run report of a synthetic 100,000-mini-batch run: generation time and size
console.log('\nrun report of a synthetic run:');
execFileSync(process.execPath, ['--import', 'tsx', here('./report.ts')], { stdio: 'inherit', env: baseChildEnv() });

// 4. the mini-batch runner's own cost against a bare worker pool doing the same no-op tasks
console.log('\nmini-batch runner overhead:');
execFileSync(process.execPath, [here('./runner/bench-runner.mjs')], { stdio: 'inherit', env: baseChildEnv() });

// 5. resource sampling: one sample, an idle step with sampling on and off, the runner on and off
console.log('\nresource sampling:');
execFileSync(process.execPath, [here('./resources.mjs')], { stdio: 'inherit', env: baseChildEnv() });
