// The operations kit against real servers: a real Prometheus (Debian's 2.42) scrapes three real
// steps, each delivering its metrics by one path: the step's own /metrics endpoint, the real
// Pushgateway, and OTLP (the OpenTelemetry SDK's export, received and served the way the
// collector's prometheus exporter serves it). Then every PromQL expression of every dashboard and
// alert rule must be accepted by that Prometheus and return data on every path, the latency
// exemplars must carry the mini-batch trace ids, and a burst of failures must make the error
// budget alerts fire and reach a local webhook through a real Alertmanager.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeClosedPort, startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import {
  promtool,
  startAlertmanager,
  startExpositionServer,
  startPrometheus,
  startPushgateway,
  startWebhookReceiver,
  type ExpositionServer,
  type LaunchedServer,
  type PrometheusServer,
  type VectorSample,
  type WebhookReceiver,
} from './helpers/prometheus-servers.js';
import { renderCollectorExposition } from './fixtures/ops/collector-translation.js';
import { startInteractiveStep, type InteractiveStep } from './fixtures/ops/interactive-step.js';
import { RULES_FILE, alertRules, dashboardQueries, substitute, variableQueries, withBoolComparisons } from './fixtures/ops/promql.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/ops/minibatch-step.mjs', import.meta.url));
/** A stand-in nvidia-smi on the steps' PATH, so the GPU panels have data too. */
const FAKE_GPU_PATH = fileURLToPath(new URL('./fixtures/resources/', import.meta.url));
let rulesDir: string | undefined;

/**
 * The committed rules, but StepDisappeared without its `for: 5m` hold (its expression is what is
 * under test here; promtool's unit tests check the hold): so the kill at the end fires in seconds.
 */
function rulesWithoutHold(): string {
  rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-rules-'));
  const text = fs.readFileSync(RULES_FILE, 'utf8');
  const at = text.indexOf('- alert: StepDisappeared');
  const hold = text.indexOf('for: 5m', at);
  if (at < 0 || hold < 0) throw new Error('StepDisappeared and its for: 5m not found in the rules');
  const file = path.join(rulesDir, 'rules.yaml');
  fs.writeFileSync(file, `${text.slice(0, hold)}for: 0s${text.slice(hold + 'for: 5m'.length)}`);
  return file;
}
const PATHS = ['scrape-path', 'push-path', 'otlp-path'] as const;
type PathName = (typeof PATHS)[number];

let prometheus: PrometheusServer;
let pushgateway: LaunchedServer;
let alertmanager: LaunchedServer;
let webhook: WebhookReceiver;
let receiver: OtlpReceiver;
let exposition: ExpositionServer;
let translate: NodeJS.Timeout | undefined;
const steps = new Map<PathName, InteractiveStep>();
const ready = new Map<PathName, Record<string, unknown>>();

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

async function vector(expr: string, time?: number): Promise<VectorSample[]> {
  const r = await prometheus.query(expr, time);
  if (r.status !== 'success') throw new Error(`${r.errorType}: ${r.error} in ${expr}`);
  return r.data.result as VectorSample[];
}

beforeAll(async () => {
  webhook = await startWebhookReceiver();
  [pushgateway, alertmanager, receiver, exposition] = await Promise.all([
    startPushgateway(),
    startAlertmanager(webhook.url),
    startOtlpReceiver(),
    startExpositionServer(),
  ]);
  const scrapePort = await freeClosedPort();
  prometheus = await startPrometheus({
    scrapeConfigs: [
      { job_name: 'step', static_configs: [{ targets: [`127.0.0.1:${scrapePort}`] }] },
      { job_name: 'pushgateway', honor_labels: true, static_configs: [{ targets: [`127.0.0.1:${pushgateway.port}`] }] },
      { job_name: 'otel-collector', honor_labels: true, static_configs: [{ targets: [exposition.target] }] },
    ],
    ruleFiles: [rulesWithoutHold()],
    alertmanagers: [`127.0.0.1:${alertmanager.port}`],
  });
  // what the collector's prometheus exporter would serve for the OTLP it received
  translate = setInterval(() => exposition.set(renderCollectorExposition(receiver.metrics())), 250);

  const common = {
    STEP_TELEMETRY_STEP_NAME: 'score',
    STEP_TELEMETRY_LOCAL: 'false',
    STEP_TELEMETRY_CONSOLE: 'false',
    FIXTURE_ERROR_THRESHOLD: '500',
    FIXTURE_TICK_MS: '200',
    // quotes and a backslash in the HELP text: the OpenMetrics escaping must satisfy Prometheus's parser
    FIXTURE_ODD_NAME: 'eval "top-1" \\ accuracy',
    // resources: sampled often, GPUs from the stand-in, minor GCs early (a small young generation)
    STEP_TELEMETRY_RESOURCES_INTERVAL_MS: '500',
    PATH: `${FAKE_GPU_PATH}${path.delimiter}${process.env.PATH ?? ''}`,
    NODE_OPTIONS: '--max-semi-space-size=1',
  };
  const env: Record<PathName, Record<string, string>> = {
    'scrape-path': { STEP_TELEMETRY_PROMETHEUS_PORT: String(scrapePort) },
    'push-path': { STEP_TELEMETRY_PUSHGATEWAY_URL: pushgateway.url, STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS: '500' },
    'otlp-path': { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: receiver.metricsUrl, OTEL_METRIC_EXPORT_INTERVAL: '500' },
  };
  await Promise.all(
    PATHS.map(async (p) => {
      const step = await startInteractiveStep(FIXTURE, { ...common, ...env[p], STEP_TELEMETRY_PIPELINE_NAME: p });
      steps.set(p, step);
      ready.set(p, await step.line('READY'));
    }),
  );
  // enough scrapes on every path for the rate() windows: several changing samples each
  await until(
    'samples of every path',
    async () => {
      const rows = await vector('count_over_time(step_minibatches_total{outcome="success"}[1m])');
      const counts = new Map(rows.map((r) => [r.metric.pipeline, Number(r.value[1])]));
      return PATHS.every((p) => (counts.get(p) ?? 0) >= 5) ? true : undefined;
    },
    30_000,
  );
}, 90_000);

afterAll(async () => {
  if (translate) clearInterval(translate);
  for (const step of steps.values()) step.send('end');
  await Promise.all(
    [...steps.values()].map((s) =>
      Promise.race([s.exit, new Promise((r) => setTimeout(r, 10_000))]).then(() => s.kill()),
    ),
  );
  await Promise.all([prometheus?.stop(), pushgateway?.stop(), alertmanager?.stop(), receiver?.close(), exposition?.close(), webhook?.close()]);
  if (rulesDir) fs.rmSync(rulesDir, { recursive: true, force: true });
}, 60_000);

describe('a real Prometheus scraping three steps, one per delivery path', () => {
  it('scrapes the step, the Pushgateway and the collector exposition; the step serves OpenMetrics with exemplars', async () => {
    const targets = (await prometheus.targets()).data.activeTargets;
    expect(targets.map((t) => [t.scrapePool, t.health]).sort()).toEqual([
      ['otel-collector', 'up'],
      ['pushgateway', 'up'],
      ['step', 'up'],
    ]);
    // run.log scalars arrive as gauges, an awkward name (quotes, backslash in its HELP) included
    expect(await vector('train_loss{pipeline="scrape-path"}')).toHaveLength(1);
    expect(await vector('eval_top_1_accuracy{pipeline="scrape-path"}')).toHaveLength(1);
    // the latency exemplars carry the trace (and span) id of sample mini-batches
    const now = Date.now() / 1000;
    const ex = await prometheus.queryExemplars('step_minibatch_duration_seconds_bucket{pipeline="scrape-path"}', now - 120, now);
    expect(ex.status).toBe('success');
    const exemplars = ex.data.flatMap((s) => s.exemplars);
    expect(exemplars.length).toBeGreaterThan(0);
    for (const e of exemplars) {
      expect(e.labels.trace_id).toBe(ready.get('scrape-path')!.traceId);
      expect(e.labels.span_id).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('promtool check metrics finds nothing to lint in what the step serves', async () => {
    const text = await (await fetch(ready.get('scrape-path')!.endpoint as string, { headers: { accept: 'text/plain' } })).text();
    expect(text).toContain('step_minibatch_duration_seconds_bucket');
    const r = await promtool(['check', 'metrics'], { stdin: text });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.each(PATHS)('every dashboard query is accepted and returns data on the %s', async (path) => {
    const time = Date.now() / 1000;
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(15);
    const empty: string[] = [];
    for (const q of queries) {
      const expr = substitute(q.expr, { pipeline: path, step: 'score', node: '0' });
      const rows = await vector(expr, time);
      if (rows.length === 0) empty.push(`${q.panel} ${q.refId}: ${expr}`);
    }
    expect(empty).toEqual([]);
    for (const v of variableQueries()) {
      const selector = substitute(v.selector, { pipeline: path, step: 'score', node: '0' });
      const r = await prometheus.series(selector, time - 60, time);
      expect(r.status).toBe('success');
      const want = { pipeline: path, step: 'score', node: '0', worker: 'main' }[v.label];
      expect(r.data.map((s) => s[v.label]), `${v.name}: ${selector}`).toContain(want);
    }
  });

  it('loads every alert rule healthy, and each rule expression returns data for the paths it watches', async () => {
    await until(
      'rules evaluated',
      async () => {
        const groups = (await prometheus.rules()).data.groups;
        const rules = groups.flatMap((g) => g.rules);
        return rules.length === alertRules().length && rules.every((r) => r.health === 'ok') ? true : undefined;
      },
      10_000,
    );
    const time = Date.now() / 1000;
    for (const rule of alertRules()) {
      // the comparisons made `bool`: a sample per watched series whether or not the alert holds
      const rows = await vector(withBoolComparisons(rule.expr), time);
      const pipelines = new Set(rows.map((r) => r.metric.pipeline));
      // StepDisappeared selects steps that report nothing: while all run, only its Pushgateway branch has data
      const watched = rule.alert === 'StepDisappeared' || rule.expr.includes('push_time_seconds') ? ['push-path'] : PATHS;
      for (const p of watched) expect(pipelines.has(p), `${rule.alert} on ${p}`).toBe(true);
      const labels = rule.alert === 'WorkerMemoryNearLimit' ? ['pipeline', 'step', 'node', 'worker'] : ['pipeline', 'step', 'node'];
      expect(rows.every((r) => Object.keys(r.metric).every((l) => labels.includes(l))), rule.alert).toBe(true);
    }
  });

  it('a burst of failures raises the warning before the threshold and the critical alert at it, delivered by Alertmanager', async () => {
    const step = steps.get('scrape-path')!;
    const ofStep = (name: string) => (a: { status: string; labels: Record<string, string> }) =>
      a.status === 'firing' && a.labels.alertname === name && a.labels.pipeline === 'scrape-path' && a.labels.step === 'score' && a.labels.node === '0';

    step.send('burst 0.9');
    expect(await step.line('BURST')).toMatchObject({ budget: 0.9 });
    const warning = await webhook.waitFor(ofStep('StepErrorBudgetNearlyUsed'), 20_000);
    expect(warning.labels.severity).toBe('warning');
    // 90 %, plus the odd failed item the step keeps recording meanwhile
    expect(warning.annotations.summary).toMatch(/^Step score \(pipeline scrape-path, node 0\) has used 9\d(\.\d+)?% of its error budget$/);
    expect(warning.annotations.description).toMatch(/Runbook: /);
    // not yet critical
    const active = (await prometheus.alerts()).data.alerts;
    expect(active.some((a) => a.labels.alertname === 'StepErrorBudgetExceeded')).toBe(false);
    expect(webhook.alerts().some(ofStep('StepErrorBudgetExceeded'))).toBe(false);

    step.send('burst 1.2');
    await until('the second burst', async () => (step.stdout().split('\n').filter((l) => l.startsWith('BURST ')).length === 2 ? true : undefined), 5000);
    const critical = await webhook.waitFor(ofStep('StepErrorBudgetExceeded'), 20_000);
    expect(critical.labels.severity).toBe('critical');
    expect(critical.annotations.summary).toMatch(/^Step score \(pipeline scrape-path, node 0\) has used up its error budget \(12\d(\.\d+)?%\)$/);
    // the other paths stayed within their budget
    expect(webhook.alerts().filter((a) => a.labels.alertname?.startsWith('StepErrorBudget')).every((a) => a.labels.pipeline === 'scrape-path')).toBe(true);
  });

  it('a step killed with SIGKILL on the scrape path: StepDisappeared fires for it alone', async () => {
    const step = steps.get('scrape-path')!;
    step.kill();
    await step.exit;
    const disappeared = await until(
      'StepDisappeared firing',
      async () => (await prometheus.alerts()).data.alerts.find((a) => a.labels.alertname === 'StepDisappeared' && a.state === 'firing'),
      30_000,
    );
    expect(disappeared.labels).toMatchObject({ pipeline: 'scrape-path', step: 'score', node: '0', severity: 'critical' });
    expect(disappeared.annotations.summary).toBe('Step score (pipeline scrape-path, node 0) stopped reporting while it was running');
    // the steps that still run (and report) stay quiet
    const all = (await prometheus.alerts()).data.alerts.filter((a) => a.labels.alertname === 'StepDisappeared');
    expect(all.map((a) => a.labels.pipeline)).toEqual(['scrape-path']);
  });
});
