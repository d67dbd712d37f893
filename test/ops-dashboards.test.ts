// The Grafana dashboards: the committed JSON is exactly what the generator builds from the
// catalog, the provisioning provider finds them, and the panels the issue asks for are there,
// querying only catalog metrics by the labels every delivery path carries.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CATALOG, prometheusName } from '../src/catalog.js';
import { buildDashboards, renderDashboard } from '../src/ops/dashboards.js';
import {
  ALLOWED_LABELS,
  DASHBOARD_DIR,
  ROOT,
  allPanels,
  catalogSeriesNames,
  dashboardFiles,
  dashboardQueries,
  labelNames,
  metricNames,
  readDashboard,
  variableQueries,
} from './fixtures/ops/promql.js';

describe('generated dashboards', () => {
  it('the committed JSON equals the generator output (run `npm run dashboards` after a catalog change)', () => {
    const generated = buildDashboards();
    expect(dashboardFiles()).toEqual(generated.map((d) => d.file).sort());
    for (const d of generated) {
      expect(fs.readFileSync(`${DASHBOARD_DIR}${d.file}`, 'utf8'), `dashboards/${d.file} is stale: run npm run dashboards`).toBe(renderDashboard(d));
    }
  });

  it('are found by the provisioning provider that the compose stack mounts', () => {
    const provider = parseYaml(fs.readFileSync(`${DASHBOARD_DIR}provisioning/dashboards.yaml`, 'utf8')) as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(provider.apiVersion).toBe(1);
    expect(provider.providers).toHaveLength(1);
    expect(provider.providers[0].type).toBe('file');
    const compose = fs.readFileSync(`${ROOT}collector-config/compose/docker-compose.yaml`, 'utf8');
    expect(compose).toContain(`../../dashboards:${provider.providers[0].options.path}:ro`);
    expect(compose).toContain('../../dashboards/provisioning/dashboards.yaml:/etc/grafana/provisioning/dashboards/');
    for (const file of dashboardFiles()) {
      const d = readDashboard(file);
      expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(new Set(allPanels(d).map((p) => (p as { id?: number }).id)).size).toBe(allPanels(d).length);
    }
  });

  it('have the panels, variables and links the issue asks for', () => {
    const d = readDashboard('step-telemetry.json');
    const panels = allPanels(d);
    const titles = panels.map((p) => p.title ?? '');
    const queries = dashboardQueries();
    const q = (re: RegExp): typeof queries => queries.filter((x) => re.test(x.expr));
    const duration = prometheusName(CATALOG.minibatchDuration);

    // latency: p50/p95/p99 over time, with exemplars, and a heatmap
    for (const quantile of ['0.5', '0.95', '0.99']) expect(q(new RegExp(`histogram_quantile\\(${quantile}, .*${duration}_bucket`))).toHaveLength(1);
    expect(q(/histogram_quantile/).some((x) => x.exemplar)).toBe(true);
    const heat = panels.find((p) => p.type === 'heatmap');
    expect(heat?.targets?.[0]).toMatchObject({ format: 'heatmap', exemplar: true });
    expect(heat?.targets?.[0].expr).toContain(`${duration}_bucket`);
    // failure rates of mini-batches and items, retries/timeouts, throughput, error budget, progress
    expect(q(/step_minibatches_total\{[^}]*outcome="failure"[^}]*\}.*\/.*step_minibatches_total/)).toHaveLength(1);
    expect(q(/step_items_total\{[^}]*outcome="failure"[^}]*\}.*\/.*step_items_total/)).toHaveLength(1);
    expect(q(/step_minibatch_retries_total/)).toHaveLength(1);
    expect(q(/step_minibatch_timeouts_total/)).toHaveLength(1);
    expect(q(/rate\(step_items_total\{/).length).toBeGreaterThan(0);
    expect(q(/step_error_budget_used_ratio/).length).toBeGreaterThanOrEqual(2);
    expect(q(/step_items_expected/)).toHaveLength(1);
    expect(q(/step_progress_timestamp_seconds/)).toHaveLength(1);
    expect(titles).toEqual(expect.arrayContaining(['Mini-batch duration p50 / p95 / p99', 'Mini-batch duration heatmap', 'Failure rate', 'Items per second']));
    // the error budget panels mark the alerts' thresholds
    const budget = panels.find((p) => p.title === 'Error budget used over time') as { fieldConfig: { defaults: { thresholds: { steps: Array<{ value: number | null }> } } } };
    expect(budget.fieldConfig.defaults.thresholds.steps.map((s) => s.value)).toEqual([null, 0.8, 1]);

    // resources: memory, CPU and event loop delay per worker, selected by $worker; CPU, memory and GPUs per node
    for (const metric of ['process_memory_usage_bytes', 'v8js_memory_heap_used_bytes', 'process_cpu_time_seconds_total', 'nodejs_eventloop_delay_p99_seconds', 'nodejs_eventloop_delay_max_seconds']) {
      const found = q(new RegExp(`${metric}\\{[^}]*worker=~"\\$worker"`));
      expect(found.length, metric).toBeGreaterThan(0);
      expect(found.every((x) => /by \([^)]*worker/.test(x.expr)), metric).toBe(true);
    }
    for (const metric of ['system_cpu_utilization_ratio', 'system_memory_linux_available_bytes', 'system_cpu_load_average_1m', 'hw_gpu_utilization_ratio', 'hw_gpu_memory_usage_bytes']) {
      expect(q(new RegExp(`by \\(pipeline, step, node[^)]*\\) \\(${metric}`)).length, metric).toBeGreaterThan(0);
    }
    expect(titles).toEqual(expect.arrayContaining(['Resident memory (RSS) per worker', 'V8 heap per worker', 'CPU per worker (cores)', 'Event loop delay per worker', 'Node CPU by mode', 'GPU utilisation']));

    // variables for pipeline, step, node and worker, chained, multi-value
    const vars = variableQueries();
    expect(vars.map((v) => [v.name, v.label])).toEqual([
      ['pipeline', 'pipeline'],
      ['step', 'step'],
      ['node', 'node'],
      ['worker', 'worker'],
    ]);
    for (const v of d.templating.list.filter((x) => x.type === 'query')) expect(v).toMatchObject({ multi: true, includeAll: true });

    // links to logs filtered by step_id (dashboard link and data links on series panels)
    const dataLinks = panels.flatMap((p) => p.fieldConfig?.defaults?.links ?? []);
    expect(dataLinks.length).toBeGreaterThan(0);
    for (const link of [...dataLinks, ...(d.links ?? [])]) {
      const panes = JSON.parse(decodeURIComponent(new URL(link.url!, 'http://grafana').searchParams.get('panes')!)) as Record<string, { queries: Array<{ expr: string }> }>;
      expect(Object.values(panes)[0].queries[0].expr).toMatch(/\| step_id = `\$\{(__field\.labels\.)?step\}`/);
    }
  });

  it('query every catalog metric, only catalog metrics, by the labels every path carries', () => {
    const known = catalogSeriesNames();
    const used = new Set<string>();
    for (const x of dashboardQueries()) {
      for (const name of metricNames(x.expr)) {
        expect(known.has(name), `${x.panel} ${x.refId}: ${name}`).toBe(true);
        used.add(name);
        used.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
      for (const label of labelNames(x.expr)) expect(ALLOWED_LABELS.has(label), `${x.panel} ${x.refId}: label ${label}`).toBe(true);
      // every selector is scoped by the dashboard's variables
      for (const sel of x.expr.match(/[a-z_]+\{[^}]*\}/g) ?? []) expect(sel, x.panel).toContain('pipeline=~"$pipeline", step=~"$step", node=~"$node"');
    }
    for (const e of Object.values(CATALOG)) expect(used.has(prometheusName(e)), `${e.name} has no panel`).toBe(true);
  });
});
