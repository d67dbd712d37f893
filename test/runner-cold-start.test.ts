// The runner's start-up: what a worker and a step load before their first work, and that what ran
// before their steps were up is recorded as exactly as the rest. Real runner and step processes;
// the modules each loaded come from a preload (test/fixtures/loaded-modules.mjs).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir, runStepScript } from './helpers/run-step.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { FIXTURES, outputRows, readAllJsonl, readCsv, readJson, readJsonl, runFolder, runRunner } from './fixtures/runner/harness.js';
import { contextUse } from '../src/runner/entry-needs.js';
import { readRunFolder } from '../src/run-folder/read.js';

const PRELOAD = path.join(FIXTURES, '..', 'loaded-modules.mjs');
const TELEMETRY_FREE = path.join(FIXTURES, 'telemetry-free.mjs');
const LOGS_ONLY = path.join(FIXTURES, 'logs-only.mjs');

/** What a process with nothing configured must not load: exporters, their transports, prom-client, the logs SDK, the Prometheus endpoint. */
const UNCONFIGURED = [
  /node_modules\/@azure\//,
  /node_modules\/@opentelemetry\/exporter-/,
  /node_modules\/@opentelemetry\/otlp-/,
  /node_modules\/@opentelemetry\/sdk-node\//,
  /node_modules\/@opentelemetry\/sdk-logs\//,
  /node_modules\/@grpc\//,
  /node_modules\/protobufjs\//,
  /node_modules\/prom-client\//,
  /node_modules\/(bullmq|ioredis)\//,
  /node_modules\/csv-parse\//,
  /\/dist\/sinks\/(azure|prometheus-export)\.js$/,
];

interface Loaded {
  readonly worker: string | null;
  readonly modules: readonly string[];
}

function loadedBy(dir: string): Loaded[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readJson<Loaded>(path.join(dir, f)));
}

function unconfigured(modules: readonly string[]): string[] {
  return modules.filter((m) => UNCONFIGURED.some((re) => re.test(m)));
}

/** JSON Lines rows, two to a mini-batch of 16 bytes. */
function rows(file: string, n: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Array.from({ length: n }, (_, i) => `{"i":${i % 10}}\n`).join(''));
}

describe('parallel-run start-up', () => {
  it('a runner worker and a plain step with nothing configured load no exporter, prom-client or logs SDK (they loaded prom-client and @opentelemetry/sdk-logs for nothing); a worker whose entry script uses no telemetry runs its first mini-batch before loading winston or OpenTelemetry (each worker loaded the whole step first: cold start 3.3× a bare fork pool)', async () => {
    const dir = await useTempDir('runner-cold-');
    const seen = path.join(dir, 'loaded');
    fs.mkdirSync(seen);
    rows(path.join(dir, 'in', 'rows.jsonl'), 16);
    const r = await runRunner(['--entry-script', TELEMETRY_FREE, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '16', '--output', 'out', '--process-count-per-node', '2', '--', '--any'], {
      cwd: dir,
      env: { NODE_OPTIONS: `--import ${PRELOAD}`, LOADED_MODULES_DIR: seen },
    });
    expect(r.code, r.stderr).toBe(0);

    // the first mini-batch of each worker ran with no telemetry package loaded
    const out = outputRows(path.join(dir, 'out', 'parallel_run_step.txt'));
    expect(out).toHaveLength(16);
    const firsts = out.filter((o) => o.call === 1);
    expect(firsts.length).toBeGreaterThanOrEqual(2); // each row of a worker's first mini-batch
    for (const f of firsts) expect(f.loaded, JSON.stringify(f)).toEqual([]);
    expect(out.every((o) => o.args === 1)).toBe(true);

    // and everything is recorded as if the steps had been up from the start
    const folder = runFolder(path.join(dir, 'telemetry'));
    expect(readJson(path.join(folder, 'result.json'))).toMatchObject({ status: 'succeeded', mini_batches: { total: 8, succeeded: 8 } });
    expect(readCsv(path.join(folder, 'processed-mini-batches.csv')).map((p) => p.status)).toEqual(Array(8).fill('RUN_DONE'));
    const spans = readAllJsonl(folder, 'spans');
    const step = spans.find((s) => s.name === 'parallel-run' && s.parent_span_id === undefined)!;
    const attempts = spans.filter((s) => s.name === 'mini-batch');
    expect(attempts.map((a) => a.attributes['mini_batch.id']).sort()).toEqual(['mb-00000', 'mb-00001', 'mb-00002', 'mb-00003', 'mb-00004', 'mb-00005', 'mb-00006', 'mb-00007']);
    // spans.jsonl leaves the step's trace id off the spans in its trace (compact lines)
    const traceOf = (x: { trace_id?: string }): string | undefined => x.trace_id ?? step.trace_id;
    for (const a of attempts) {
      expect(traceOf(a)).toBe(step.trace_id);
      expect(a).toMatchObject({ parent_span_id: step.span_id });
    }
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    expect(workers).toHaveLength(2);
    for (const w of workers) {
      const n = w.process_index;
      expect(readJson(path.join(folder, `step.process-${n}.json`))).toMatchObject({ outcome: 'success', stopped_by: 'runner' });
      // the worker's step span (begun at its process's start) is the runner's step span's child, and its init() span is there, before its first mini-batch
      const own = readJsonl(path.join(folder, `spans.process-${n}.jsonl`));
      const workerStep = own.find((s) => s.attributes?.['step.kind'] === 'step')!;
      expect(traceOf(workerStep)).toBe(step.trace_id);
      expect(workerStep).toMatchObject({ parent_span_id: step.span_id });
      const init = own.find((s) => s.name === 'init')!;
      expect(init).toMatchObject({ parent_span_id: workerStep.span_id, attributes: { 'worker.id': w.worker } });
      const first = attempts.filter((a) => a.attributes['worker.id'] === w.worker).map((a) => Date.parse(a.start)).sort((a, b) => a - b)[0]!;
      expect(Date.parse(init.start)).toBeLessThanOrEqual(first);
    }

    // what each process of the runner loaded
    const procs = loadedBy(seen);
    expect(procs.filter((p) => p.worker !== null).map((p) => p.worker).sort()).toEqual(['worker-0', 'worker-1']);
    expect(procs.filter((p) => p.worker === null)).toHaveLength(1);
    for (const p of procs) expect(unconfigured(p.modules), `${p.worker ?? 'runner'}`).toEqual([]);

    // a plain step with nothing configured; with a /metrics endpoint, prom-client and the endpoint load (what the list above would catch)
    const script = path.join(dir, 'plain.mjs');
    fs.writeFileSync(
      script,
      `import { startStep } from ${JSON.stringify(path.join(FIXTURES, '..', '..', '..', 'dist', 'index.js'))};\n` +
        `const s = await startStep({ name: 'plain' });\ns.log('loss', 0.5);\ns.logger.info('hello');\n` +
        `if (process.env.STEP_TELEMETRY_PROMETHEUS_PORT) await s.prometheus.registry.metrics();\nawait s.end();\n`,
    );
    for (const [name, extra] of [['plain', {}], ['prometheus', { STEP_TELEMETRY_PROMETHEUS_PORT: '0' }]] as const) {
      const where = path.join(dir, `loaded-${name}`);
      fs.mkdirSync(where);
      const p = await runStepScript({ script, cwd: dir, nodeArgs: ['--import', PRELOAD], env: { LOADED_MODULES_DIR: where, STEP_TELEMETRY_DIR: path.join(dir, 't'), STEP_TELEMETRY_CONSOLE: 'false', ...extra } });
      expect(p.code, p.stderr).toBe(0);
      const [mods] = loadedBy(where);
      if (name === 'plain') expect(unconfigured(mods!.modules)).toEqual([]);
      else expect(unconfigured(mods!.modules).some((m) => m.includes('/prom-client/')) && unconfigured(mods!.modules).some((m) => m.endsWith('/prometheus-export.js'))).toBe(true);
    }
  });

  it('an entry script that only logs through its context gets the logger before the OpenTelemetry SDK loads: its records of init() and the first mini-batch carry their times and their attempt’s ids, and a worker that dies before its step is up leaves them on its stderr', async () => {
    const dir = await useTempDir('runner-cold-logs-');
    rows(path.join(dir, 'in', 'rows.jsonl'), 8);
    const r = await runRunner(['--entry-script', LOGS_ONLY, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '16', '--output', 'out', '--process-count-per-node', '2', '--', '--exit-first'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = outputRows(path.join(dir, 'out', 'parallel_run_step.txt'));
    expect(out).toHaveLength(8);
    const folder = runFolder(path.join(dir, 'telemetry'));
    // the slots' first workers (a worker that replaces a dead one starts its step first, by design: when
    // it is up before the survivor took every mini-batch left, its first call has the SDK)
    const firstWorkers = new Set(readCsv(path.join(folder, 'worker-summary.csv')).filter((w) => Number(w.process_index) <= 2).map((w) => Number(w.pid)));
    const firstCalls = out.filter((o) => o.call === 1 && firstWorkers.has(o.pid));
    expect(firstCalls.length).toBeGreaterThanOrEqual(1); // the survivor's first mini-batch (the other first worker died in its first)
    for (const f of firstCalls) {
      expect(f.loaded).toContain('winston');
      expect(f.loaded.filter((p: string) => /sdk-|core|resources/.test(p)), JSON.stringify(f)).toEqual([]);
    }
    const spans = readAllJsonl(folder, 'spans');
    const attempts = spans.filter((s) => s.name === 'mini-batch');
    const logs = readAllJsonl(folder, 'logs');
    // every attempt's record carries its mini-batch id and the attempt span (but the one that crashed: it is on its worker's stderr)
    const scoring = logs.filter((l) => l.message === 'scoring');
    expect(scoring.map((l) => l.mini_batch_id).sort()).toEqual(['mb-00000', 'mb-00001', 'mb-00002', 'mb-00003']);
    for (const l of scoring) {
      const a = attempts.find((x) => x.span_id === l.span_id);
      expect(a?.attributes['mini_batch.id'], JSON.stringify(l)).toBe(l.mini_batch_id);
      expect(Date.parse(l.timestamp)).toBeGreaterThanOrEqual(Date.parse(a!.start));
    }
    const crashed = readCsv(path.join(folder, 'worker-summary.csv')).find((w) => w.end_reason === 'crashed')!;
    expect(crashed).toBeDefined();
    const console_ = fs.readFileSync(path.join(folder, `console.process-${crashed.process_index}.log`), 'utf8');
    expect(console_).toMatch(/model loaded[\s\S]*\[mb-00000\] scoring/);
    expect(readCsv(path.join(folder, 'processed-mini-batches.csv')).find((p) => p.mini_batch_id === 'mb-00000')).toMatchObject({ status: 'RUN_DONE', times_picked: '2' });
    // the slots' first workers logged in init() before their steps loaded the SDK; the one that replaced the crashed worker started its step first
    // a process's logs.jsonl names its process index on its first line only (compact lines): take it from the file's name
    const logFiles = fs.readdirSync(folder).filter((f) => /^logs\.process-\d+\.jsonl$/.test(f));
    const inits = new Map(
      logFiles.flatMap((f) => readJsonl(path.join(folder, f)).filter((x) => x.message === 'model loaded').map((l) => [Number(/process-(\d+)/.exec(f)![1]), l.loaded as string] as const)),
    );
    const survivor = 3 - Number(crashed.process_index);
    expect(inits.get(survivor)).not.toMatch(/sdk-/);
    // the replacement (process 3) ran init() unless the survivor finished the job first: then with the SDK loaded
    const replacement = readCsv(path.join(folder, 'worker-summary.csv')).find((w) => w.process_index === '3');
    if (replacement?.init_seconds) expect(inits.has(3)).toBe(true);
    if (inits.has(3)) expect(inits.get(3)).toMatch(/sdk-trace-base/);
    expect([...inits.keys()].filter((k) => k !== survivor && k !== 3)).toEqual([]);
  });

  it('a slot’s first worker that dies in its first mini-batch, before its step loaded, has its step.process-N.json in the run folder (it left none)', async () => {
    const dir = await useTempDir('runner-cold-died-');
    rows(path.join(dir, 'in', 'rows.jsonl'), 8);
    const r = await runRunner(['--entry-script', LOGS_ONLY, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '16', '--output', 'out', '--process-count-per-node', '2', '--', '--exit-first'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const folder = runFolder(path.join(dir, 'telemetry'));
    const workers = readCsv(path.join(folder, 'worker-summary.csv'));
    const crashed = workers.find((w) => w.end_reason === 'crashed')!;
    expect(Number(crashed.process_index)).toBeLessThanOrEqual(2); // a slot's first worker
    const file = readJson(path.join(folder, `step.process-${crashed.process_index}.json`));
    expect(file).toMatchObject({ outcome: 'crashed', written_by: 'runner', worker: crashed.worker, exit: { code: 3, signal: null }, identity: { processIndex: Number(crashed.process_index), pid: Number(crashed.pid) } });
    expect(file.reason).toMatch(/exited with code 3 before its step started/);
    expect(Date.parse(file.ended)).toBeGreaterThanOrEqual(Date.parse(file.started));
    // every worker process has its file, which the reader reads
    const processes = readRunFolder(folder).steps[0]!.processes;
    expect(processes.map((p) => p.index)).toEqual([0, ...workers.map((w) => Number(w.process_index)).sort((a, b) => a - b)]);
    expect(processes.find((p) => p.index === Number(crashed.process_index))?.outcome).toBe('crashed');
    // the other first worker's is its step's own
    const survivor = readJson(path.join(folder, `step.process-${3 - Number(crashed.process_index)}.json`));
    expect(survivor).toMatchObject({ outcome: 'success', stopped_by: 'runner' });
    expect(survivor).not.toHaveProperty('written_by');
  });

  it('records logged before a worker’s step was up reach OTLP in their attempt’s span context and at their own time (they carried the step span’s context and the time the step started); the runner’s own records from before its step was up reach OTLP at their own time (they carried the time they were booked)', async () => {
    const dir = await useTempDir('runner-cold-otlp-');
    rows(path.join(dir, 'in', 'rows.jsonl'), 8);
    const receiver = await startOtlpReceiver();
    try {
      const r = await runRunner(['--entry-script', LOGS_ONLY, '--input', 'in', '--input-type', 'tabular', '--mini-batch-size', '16', '--output', 'out', '--process-count-per-node', '2'], {
        cwd: dir,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      });
      expect(r.code, r.stderr).toBe(0);
      // each worker's first mini-batch ran before its step loaded the SDK: its record was held
      const held = outputRows(path.join(dir, 'out', 'parallel_run_step.txt')).filter((o) => o.call === 1);
      expect(held.length).toBeGreaterThanOrEqual(2);
      for (const o of held) expect(o.loaded.filter((p: string) => /sdk-/.test(p))).toEqual([]);
      const scoring = await receiver.waitFor((x) => {
        const got = x.logs().filter((l) => l.body === 'scoring');
        return got.length === 4 && got;
      });
      const folder = runFolder(path.join(dir, 'telemetry'));
      const attempts = new Map(readAllJsonl(folder, 'spans').filter((s) => s.name === 'mini-batch').map((s) => [s.attributes['mini_batch.id'] as string, s]));
      const trace = readJson<{ trace_id: string }>(path.join(folder, 'step.json')).trace_id;
      for (const l of scoring) {
        const a = attempts.get(l.attributes.mini_batch_id as string)!;
        expect({ trace: l.traceId, span: l.spanId }, JSON.stringify(l.attributes)).toEqual({ trace: a.trace_id ?? trace, span: a.span_id });
        const t = Number(l.timeUnixNano / 1_000_000n);
        expect(t).toBeGreaterThanOrEqual(Math.floor(Date.parse(a.start)));
        expect(t).toBeLessThanOrEqual(Math.ceil(Date.parse(a.start) + a.duration_ms));
      }
      // the runner's records of its workers' start-up, held until its step was up: at the times logs.jsonl has
      const local = readJsonl(path.join(folder, 'logs.jsonl')).filter((l) => /^(started|worker-\d+ ready)/.test(l.message));
      expect(local.length).toBeGreaterThanOrEqual(4);
      const otlp = await receiver.waitFor((x) => {
        const got = x.logs().filter((l) => local.some((m) => m.message === l.body));
        return got.length === local.length && got;
      });
      const times = (rs: { message: string; t: number }[]): string[] => rs.map((r) => `${r.message} ${r.t}`).sort();
      expect(times(otlp.map((l) => ({ message: l.body as string, t: Number(l.timeUnixNano / 1_000_000n) })))).toEqual(times(local.map((l) => ({ message: l.message, t: Date.parse(l.timestamp) }))));
    } finally {
      await receiver.close();
    }
  });
});

describe('what an entry script uses of its context (the reading of its source)', () => {
  it('tells plain members, the logger and anything else apart, and counts what it cannot follow as anything', () => {
    let x: unknown;
    const cases: [(...args: never[]) => unknown, number, string][] = [
      [function run(miniBatch: unknown) { return miniBatch; } as never, 1, 'none'],
      [function init(context: { args: string[] }) { x = context.args.indexOf('--n'); } as never, 0, 'none'],
      [((mb: unknown, c: { mini_batch_id: string; failItem(i: unknown, r: unknown): void }) => { c.failItem(mb, c.mini_batch_id); }) as never, 1, 'none'],
      [async function init({ logger, args }: { logger: { info(m: string): void }; args: string[] }) { logger.info(args[0]!); } as never, 0, 'logger'],
      [function run(mb: unknown, ctx?: { logger: { info(m: string): void } }) { ctx?.logger.info(String(mb)); } as never, 1, 'logger'],
      [function run(mb: unknown, { step }: { step: unknown }) { x = step; } as never, 1, 'step'],
      [function run(mb: unknown, ctx: unknown) { return [mb, ctx]; } as never, 1, 'step'], // passed on
      [function run(mb: unknown, ctx: object) { x = { ...ctx }; } as never, 1, 'step'],
      [function run(mb: unknown, ctx: Record<string, unknown> = {}) { x = ctx.args; } as never, 1, 'step'], // a default
      [function run() { return arguments; } as never, 1, 'step'],
      [function run(mb: unknown, ctx: { args: unknown }) { x = ctx.args; }.bind(null) as never, 1, 'step'], // no source
    ];
    for (const [fn, index, expected] of cases) expect(contextUse(fn, index), String(fn)).toBe(expected);
    expect(x).toBeUndefined();
    expect(contextUse(undefined, 0)).toBe('none');
  });
});

