// What a fuzzer broke: recording calls given numbers, Symbols, BigInts, cyclic or 20,000-deep
// objects, Proxies and getters that throw, toJSON that returns nothing. Real step processes, with
// and without backends; each regression is named after the bug it was. Then the fuzzer itself.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startAppInsightsReceiver, type AppInsightsReceiver } from './helpers/appinsights-receiver.js';
import { assertIsolatedNetwork } from './helpers/netns.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { allJsonLines, findRunFolder, marker, readRunFolder } from './helpers/run-folder.js';
import { runStepScript, useTempDir } from './helpers/run-step.js';
import { cli, doctorJson } from './fixtures/report/runs.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/steps/${name}`, import.meta.url));
const HOSTILE = fixture('hostile-input.mjs');
const FUZZ = fixture('fuzz-step.mjs');
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function appInsights(): Promise<AppInsightsReceiver> {
  assertIsolatedNetwork();
  const r = await startAppInsightsReceiver();
  servers.push(r);
  return r;
}
async function otlp(): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  servers.push(r);
  return r;
}

/** The calls of hostile-input.mjs that may reject: a callback that is not a function, and the program's own error re-thrown. */
const ALLOWED = {
  "span('x', 42)": 'TypeError: step.span(name, fn): fn must be a function, got 42',
  "span('x', () => { throw proxy })": 'rethrown',
};

describe('bad span names', () => {
  it('regression: startSpan(42) with Application Insights configured crashed the process (baseData.name.substring is not a function, an unhandled rejection)', async () => {
    const receiver = await appInsights();
    const dir = await useTempDir();
    const r = await runStepScript({ script: HOSTILE, env: { ...receiver.childEnv(), STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.stderr).not.toMatch(/substring is not a function|Unhandled|TypeError: Cannot/);
    expect(r.code).toBe(0);
    expect(marker(r.stdout, 'THROWS')).toEqual(ALLOWED);
    const names = receiver.dependencies().map((d) => d.data.baseData.name);
    expect(names).toEqual(expect.arrayContaining(['42', '10', 'unnamed', 'x']));
    expect(names.every((n) => typeof n === 'string')).toBe(true);
    expect(receiver.requests().map((q) => q.data.baseData.name)).toContain('hostile'); // the step span
    expect(readRunFolder(findRunFolder(dir)).step.exports.every((e: { failedBatches: number }) => e.failedBatches === 0)).toBe(true);
  });

  it('regression: with OTLP/protobuf a null or undefined span name lost the whole span batch, the step span included', async () => {
    const receiver = await otlp();
    const dir = await useTempDir();
    const r = await runStepScript({
      script: HOSTILE,
      env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' },
    });
    expect(r.code).toBe(0);
    const run = readRunFolder(findRunFolder(dir));
    expect(run.step.exports.every((e: { failedBatches: number }) => e.failedBatches === 0)).toBe(true);
    const names = receiver.spans().map((s) => s.name);
    expect(names).toContain('hostile');
    expect(names.filter((n) => n === 'unnamed').length).toBeGreaterThanOrEqual(3 * 4); // null, undefined, cyclic, deep: three rounds
    expect(receiver.spans()).toHaveLength(run.spans.length); // every span of spans.jsonl arrived
  });
});

describe('recording calls never throw and every line parses', () => {
  it('regression: startSpan("x", null), span("x", fn, null), cyclic/BigInt/20,000-deep span names, null-prototype and Symbol mini-batch ids, throwing getters and Proxies in logger.*, setTags, logRow, logTable and the log options threw', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: HOSTILE, env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    expect(marker(r.stdout, 'THROWS')).toEqual(ALLOWED);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('[step-telemetry]'));
    // three rounds of every case, yet each kind of bad value is said once
    expect(new Set(lines).size).toBe(lines.length);
    for (const re of [
      /a span name must be a string: got 42, recorded as "42"/,
      /a span name must be a string: got a BigInt \(10n\), recorded as "10"/,
      /a span name must be a string: got an object, recorded as "unnamed"/,
      /withMiniBatch\(\) takes a string id: got a symbol; used as "mb-sym"/,
      /logger\.info\(\) could not read what it was given \(Error: getter says no\)/,
      /setTags\(\) dropped: .*reading its field "bad" threw \(Error: getter says no\)/,
      /logRow\("row"\) dropped: .*threw/,
      /logTable\("table"\) dropped: .*column says no/,
      /reading the options of "with_options" threw \(Error: step says no\); the value is kept without them/,
    ]) {
      expect(lines.filter((l) => re.test(l)), `${re} in\n${lines.join('\n')}`).toHaveLength(1);
    }
    const run = readRunFolder(findRunFolder(dir));
    const messages = run.logs.map((l) => l.message);
    // every logger call made a record, with the fields that could be read
    for (const m of ['getter meta', 'proxy meta', 'revoked meta', 'log proxy', 'deep meta', 'in a null-prototype mini-batch']) expect(messages.filter((x) => x === m)).toHaveLength(3);
    expect(run.logs.find((l) => l.message === 'getter meta')).toMatchObject({ ok: 1, bad: '[Unreadable: Error: getter says no]' });
    expect(run.logs.find((l) => l.message === 'in a symbol mini-batch')).toMatchObject({ mini_batch_id: 'mb-sym' });
    expect(run.logs.find((l) => l.message === 'in a null-prototype mini-batch')).not.toHaveProperty('mini_batch_id');
    // the log options that threw: the value kept, without them
    expect(run.metrics.filter((m) => m.name === 'with_options').map((m) => m.value)).toEqual([1, 2, 1, 2, 1, 2]);
    const inner = run.spans.find((s) => s.name === '42' && s.events?.some((e: { name: string }) => e.name === '10'));
    expect(inner, 'span.updateName(42) and addEvent(10n) inside span()').toBeDefined();
    expect(inner!.attributes).toMatchObject({ big: '10' });
  });

  it('regression: invalid JSON lines: startSpan(Symbol()) wrote "name":undefined, a meta whose toJSON returns 5 wrote a line starting with ","', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: HOSTILE, env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    const folder = findRunFolder(dir);
    allJsonLines(folder); // throws on the first line that does not parse
    const run = readRunFolder(folder);
    for (const m of ['toJSON undefined', 'toJSON 5']) expect(run.logs.filter((l) => l.message === m).map((l) => l.level)).toEqual(['info', 'info', 'info']);
    expect(run.spans.every((s) => typeof s.name === 'string')).toBe(true);
    expect((await cli(['report', folder])).code).toBe(0);
    expect((await doctorJson(path.dirname(folder))).code).toBe(0);
  });
});

describe('control characters and metric names', () => {
  it("regression: ANSI escapes and control bytes from a backend's answer or a metric name reached the terminal and step.json raw", async () => {
    // an OTLP endpoint whose HTTP reason phrase is an escape sequence, a bell and a C1 CSI
    const server = net.createServer((socket) => {
      socket.once('data', () => socket.end(Buffer.from('HTTP/1.1 400 \u001b[31mBad\u001b[0m\u0007\u009b2J\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const dir = await useTempDir();
    const port = (server.address() as net.AddressInfo).port;
    const r = await runStepScript({
      script: fixture('escapes.mjs'),
      env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false', STEP_TELEMETRY_FLUSH_TIMEOUT_MS: '3000', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('metric "\\x1b[2Jloss\\r" is exported as');
    expect(r.stderr).toContain('last error: HTTP 400 \\x1b[31mBad\\x1b[0m\\x07\\x9b2J');
    expect(r.stderr).not.toMatch(CONTROL);
    const stepJson = fs.readFileSync(path.join(findRunFolder(dir), 'step.json'), 'utf8');
    expect(JSON.stringify(JSON.parse(stepJson))).not.toMatch(/\\u001b|\\u0007|\u009b/);
  }, 60_000);

  it('regression: 2,000 distinct metric names gave 2,001 stderr lines and a 457 KB step.json, and a gauge each without bound', async () => {
    const dir = await useTempDir();
    const r = await runStepScript({ script: fixture('many-metric-names.mjs'), env: { STEP_TELEMETRY_DIR: dir, STEP_TELEMETRY_CONSOLE: 'false' } });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('[step-telemetry]'));
    expect(lines, lines.join('\n')).toHaveLength(2);
    expect(lines[0]).toMatch(/metric "loss of item 0" is exported as "loss_of_item_0"/);
    expect(lines[1]).toMatch(/more than 1000 distinct metric names: "loss of item 1000" and later new names are kept in metrics.jsonl only/);
    expect(Number(r.stdout.match(/GAUGES (\d+)/)?.[1])).toBe(1000);
    const folder = findRunFolder(dir);
    const run = readRunFolder(folder);
    expect(run.metrics).toHaveLength(4000); // nothing lost locally
    expect(run.step.diagnostics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'metric.otel-name', count: 1000 }),
        expect.objectContaining({ kind: 'metrics.gauge-cap', count: 2000 }), // the values of names past the cap, both rounds
      ]),
    );
    const { size } = fs.statSync(path.join(folder, 'step.json'));
    expect(size).toBeLessThan(20_000);
  });
});

describe('the fuzzer', () => {
  async function fuzz(seed: number, env: Record<string, string> = {}) {
    const dir = await useTempDir();
    const r = await runStepScript({ script: FUZZ, env: { STEP_TELEMETRY_DIR: dir, FUZZ_SEED: String(seed), FUZZ_CALLS: '2500', ...env } });
    const replay = `replay: FUZZ_SEED=${seed} FUZZ_CALLS=2500 node ${path.relative(process.cwd(), FUZZ)}`;
    expect(r.code, `${replay}\n${r.stderr.slice(-2000)}`).toBe(0);
    const result = marker(r.stdout, 'FUZZ');
    expect(result.throws, replay).toEqual([]);
    expect(result.outcome).toBe('success');
    // step-telemetry's own lines carry no control characters (the program's own log lines on the console are its own)
    const own = r.stderr.split('\n').filter((l) => l.startsWith('[step-telemetry]'));
    expect(own.filter((l) => CONTROL.test(l)), replay).toEqual([]);
    expect(r.stderr, replay).not.toMatch(/\[winston\]|Unhandled/);
    const folder = findRunFolder(dir);
    const counts = allJsonLines(folder);
    expect(counts['spans.jsonl']).toBeGreaterThan(100);
    const report = await cli(['report', folder]);
    expect(report.code, report.stderr).toBe(0);
    const doctor = await doctorJson(path.dirname(folder));
    expect(doctor.code, doctor.stderr).toBe(0);
    return { dir, folder };
  }

  it('2,500 random calls of every recording function with every hostile value kind: none throws, every JSONL line parses, report and doctor accept the folder', async () => {
    await fuzz(1);
  });

  it('the same with OTLP/protobuf and Application Insights configured: no exporter error reaches the process, every span arrives', async () => {
    const ai = await appInsights();
    const collector = await otlp();
    const { folder } = await fuzz(2, { ...ai.childEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', STEP_TELEMETRY_CONSOLE: 'false' });
    const run = readRunFolder(folder);
    expect(run.step.exports.every((e: { failedBatches: number }) => e.failedBatches === 0), JSON.stringify(run.step.exports)).toBe(true);
    expect(collector.spans()).toHaveLength(run.spans.length);
    expect(ai.requests().map((q) => q.data.baseData.name)).toContain('fuzz');
  });
});
