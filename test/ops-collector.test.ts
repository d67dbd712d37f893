// The collector sidecar configuration, its Kubernetes Job and the docker-compose stack. The
// collector binary cannot run here: its YAML is parsed, merged the way `otelcol --config=a
// --config=b` merges (maps deep, lists replaced), and checked for the components and keys that
// matter. The compose stack's Prometheus and Alertmanager configurations are checked by the real
// promtool and amtool.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { promtool } from './helpers/prometheus-servers.js';
import { ROOT } from './fixtures/ops/promql.js';

type Yaml = Record<string, any>;
const CC = `${ROOT}collector-config/`;
const read = (file: string): Yaml => parseYaml(fs.readFileSync(`${CC}${file}`, 'utf8')) as Yaml;

/** confmap's merge of several --config files: maps merge recursively, other values (lists) are replaced. */
function merge(base: Yaml, over: Yaml): Yaml {
  const out: Yaml = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' && !Array.isArray(out[k]) ? merge(out[k], v) : v;
  }
  return out;
}

/** `${env:NAME}` or `${env:NAME:-default}` → the default (or '' when none), as with NAME unset. */
function withEnvUnset(value: string): string {
  return value.replace(/\$\{env:[A-Z0-9_]+(?::-([^}]*))?\}/g, (_m, d: string | undefined) => d ?? '');
}

function walk(node: unknown, visit: (key: string, value: unknown, at: string) => void, at = ''): void {
  if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      visit(k, v, `${at}.${k}`);
      walk(v, visit, `${at}.${k}`);
    }
  }
}

const ENV_ONLY = /^\$\{env:[A-Z][A-Z0-9_]*(?::-[^}]*)?\}$/;
const SECRET_OR_ENDPOINT = /(^|_)endpoint$|^connection_string$|^instrumentation_key$|^authorization$|^api_key$|^password$|^token$/i;

function checkCollector(config: Yaml, expected: Record<string, string[]>): void {
  const service = config.service;
  // every pipeline: OTLP in, memory_limiter first, batch, the expected exporters
  expect(Object.keys(service.pipelines).sort()).toEqual(['logs', 'metrics', 'traces']);
  for (const [name, p] of Object.entries<Yaml>(service.pipelines)) {
    expect(p.receivers, name).toEqual(['otlp']);
    expect(p.processors[0], `${name}: memory_limiter must come first`).toBe('memory_limiter');
    expect(p.processors, name).toContain('batch');
    expect([...p.exporters].sort(), name).toEqual([...expected[name]].sort());
    for (const c of [...p.receivers, ...p.processors, ...p.exporters]) {
      const kind = p.receivers.includes(c) ? 'receivers' : p.processors.includes(c) ? 'processors' : 'exporters';
      expect(config[kind][c], `${name} uses ${c}, which ${kind} does not define`).toBeDefined();
    }
  }
  expect(config.processors.memory_limiter.check_interval).toMatch(/^\d+(ms|s)$/);
  expect(config.processors.memory_limiter.limit_percentage ?? config.processors.memory_limiter.limit_mib).toBeGreaterThan(0);
  expect(Object.keys(config.receivers.otlp.protocols).sort()).toEqual(['grpc', 'http']);

  // health check on all interfaces (the default is localhost since v0.104), listed in service.extensions
  expect(service.extensions).toContain('health_check');
  expect(withEnvUnset(config.extensions.health_check.endpoint)).toBe('0.0.0.0:13133');
  // a persistent queue on every pushing exporter, in a file_storage that creates its folder
  const storages = Object.keys(config.extensions).filter((k) => k.split('/')[0] === 'file_storage');
  expect(storages.length).toBeGreaterThan(0);
  for (const s of storages) {
    expect(service.extensions).toContain(s);
    expect(config.extensions[s].create_directory, s).toBe(true);
    expect(config.extensions[s].directory).toMatch(ENV_ONLY);
  }
  const used = new Set(Object.values<Yaml>(service.pipelines).flatMap((p) => p.exporters as string[]));
  for (const name of used) {
    const type = name.split('/')[0];
    if (type === 'prometheus' || type === 'debug') continue;
    expect(config.exporters[name].sending_queue, name).toMatchObject({ enabled: true });
    expect(storages, `${name}: sending_queue.storage`).toContain(config.exporters[name].sending_queue.storage);
  }
  // the Prometheus exporter keeps the default translation: the catalog's names
  const prom = config.exporters.prometheus;
  expect(prom.add_metric_suffixes ?? true).toBe(true);
  expect(prom.translation_strategy ?? 'UnderscoreEscapingWithSuffixes').toBe('UnderscoreEscapingWithSuffixes');
  expect(prom.namespace ?? '').toBe('');
  expect(prom.resource_to_telemetry_conversion?.enabled ?? false).toBe(false);
  expect(config.exporters.debug).toBeDefined();

  // every endpoint and secret comes from the environment
  walk(config, (key, value, at) => {
    if (SECRET_OR_ENDPOINT.test(key) && typeof value !== 'object') expect(String(value), at).toMatch(ENV_ONLY);
  });
}

describe('collector sidecar configuration', () => {
  const base = read('otelcol.yaml');
  const azure = read('azuremonitor.yaml');

  it('otelcol.yaml alone: OTLP in; OTLP backend and Prometheus out; memory_limiter, batch, persistent queue, health check', () => {
    checkCollector(base, { traces: ['otlphttp'], metrics: ['otlphttp', 'prometheus'], logs: ['otlphttp'] });
  });

  it('with azuremonitor.yaml merged: Application Insights too, its sending queue switched on and on disk', () => {
    const merged = merge(base, azure);
    checkCollector(merged, {
      traces: ['otlphttp', 'azuremonitor'],
      metrics: ['otlphttp', 'prometheus', 'azuremonitor'],
      logs: ['otlphttp', 'azuremonitor'],
    });
    expect(merged.exporters.azuremonitor.connection_string).toBe('${env:APPLICATIONINSIGHTS_CONNECTION_STRING}');
    expect(merged.exporters.azuremonitor.sending_queue).toMatchObject({ enabled: true, storage: 'file_storage/queue' });
  });

  it('names the collector version it targets, and links the upstream reason of the health_check workaround', () => {
    const text = fs.readFileSync(`${CC}otelcol.yaml`, 'utf8');
    expect(text).toMatch(/otelcol-contrib v0\.\d+\.\d+/);
    expect(text).toMatch(/v0\.104[\s\S]{0,300}https:\/\/github\.com\/open-telemetry\//);
  });
});

describe('Kubernetes Indexed Job with the collector as a native sidecar', () => {
  const job = parseYaml(fs.readFileSync(`${CC}kubernetes/minibatch-job.yaml`, 'utf8')) as Yaml;
  const kustomization = read('kustomization.yaml');
  const spec = job.spec.template.spec;

  it('runs N ranked pods: Indexed completion, rank from JOB_COMPLETION_INDEX, node count = completions', () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.kind).toBe('Job');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.parallelism).toBe(job.spec.completions);
    expect(spec.restartPolicy).toBe('Never');
    const runner = spec.containers[0];
    const env = Object.fromEntries(runner.env.map((e: Yaml) => [e.name, e]));
    expect(Number(env.STEP_TELEMETRY_NODE_COUNT.value)).toBe(job.spec.completions);
    // the rank: step-telemetry reads JOB_COMPLETION_INDEX, which Kubernetes sets; nothing overrides it
    expect(env.STEP_TELEMETRY_NODE_RANK).toBeUndefined();
    expect(fs.readFileSync(`${ROOT}src/identity.ts`, 'utf8')).toContain("'JOB_COMPLETION_INDEX'");
    expect(runner.command.join(' ')).toContain('step-telemetry parallel-run');
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT.value).toBe('http://localhost:4318');
  });

  it('has the collector as an init container with restartPolicy Always, probed on its health check', () => {
    const sidecar = spec.initContainers.find((c: Yaml) => c.name === 'otel-collector');
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.image).toMatch(/^otel\/opentelemetry-collector-contrib:0\.\d+\.\d+$/);
    const env = Object.fromEntries(sidecar.env.map((e: Yaml) => [e.name, e]));
    expect(env.OTELCOL_OTLP_HTTP_ENDPOINT.value).toBe('localhost:4318');
    const healthPort = sidecar.ports.find((p: Yaml) => p.name === 'health').containerPort;
    expect(env.OTELCOL_HEALTH_CHECK_ENDPOINT.value).toBe(`0.0.0.0:${healthPort}`);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) expect(sidecar[probe].httpGet.port, probe).toBe('health');
    // secrets from a Secret, never inline
    for (const name of ['OTLP_BACKEND_ENDPOINT', 'OTLP_BACKEND_AUTHORIZATION', 'APPLICATIONINSIGHTS_CONNECTION_STRING']) expect(env[name].valueFrom.secretKeyRef, name).toBeDefined();
    // both configuration files, from the ConfigMap that kustomize generates from this folder
    const files = sidecar.args.map((a: string) => path.basename(a.replace(/^--config=/, '')));
    expect(files).toEqual(['otelcol.yaml', 'azuremonitor.yaml']);
    const generator = kustomization.configMapGenerator[0];
    expect(generator.files).toEqual(files);
    for (const f of generator.files) expect(fs.existsSync(`${CC}${f}`), f).toBe(true);
    const configVolume = spec.volumes.find((v: Yaml) => v.configMap);
    expect(configVolume.configMap.name).toBe(generator.name);
    const mount = sidecar.volumeMounts.find((m: Yaml) => m.name === configVolume.name);
    expect(sidecar.args[0]).toBe(`--config=${mount.mountPath}/otelcol.yaml`);
    const queue = sidecar.volumeMounts.find((m: Yaml) => m.name === 'otelcol-queue');
    expect(env.OTELCOL_QUEUE_DIR.value).toBe(queue.mountPath);
    expect(kustomization.resources).toEqual(['kubernetes/minibatch-job.yaml']);
  });
});

describe('Kubernetes Indexed Job on a shared queue (the Redis variant)', () => {
  const docs = fs
    .readFileSync(`${CC}kubernetes/minibatch-job-queue.yaml`, 'utf8')
    .split(/^---$/m)
    .map((d) => parseYaml(d) as Yaml);
  const base = parseYaml(fs.readFileSync(`${CC}kubernetes/minibatch-job.yaml`, 'utf8')) as Yaml;

  it('adds a Redis Service the runner pods reach through STEP_TELEMETRY_QUEUE_URL, and keeps the Job otherwise as minibatch-job.yaml', () => {
    const service = docs.find((d) => d.kind === 'Service')!;
    const deployment = docs.find((d) => d.kind === 'Deployment')!;
    const job = docs.find((d) => d.kind === 'Job')!;
    expect(deployment.spec.template.spec.containers[0].image).toMatch(/^redis:7\./);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    const runner = job.spec.template.spec.containers[0];
    const env = Object.fromEntries(runner.env.map((e: Yaml) => [e.name, e]));
    const url = new URL(env.STEP_TELEMETRY_QUEUE_URL.value);
    expect(url.hostname).toBe(service.metadata.name);
    expect(Number(url.port)).toBe(service.spec.ports[0].port);
    // the nodes share the pipeline run id that names the job on the queue
    expect(env.STEP_TELEMETRY_PIPELINE_RUN_ID.valueFrom.fieldRef).toBeDefined();
    expect(job.spec.completionMode).toBe('Indexed');
    expect(Number(env.STEP_TELEMETRY_NODE_COUNT.value)).toBe(job.spec.completions);
    // the sidecar and the rest are those of the static-split Job
    expect(job.spec.template.spec.initContainers).toEqual(base.spec.template.spec.initContainers);
    expect(runner.command).toEqual(base.spec.template.spec.containers[0].command);
  });
});

describe('docker-compose stack', () => {
  const compose = read('compose/docker-compose.yaml');
  const services = compose.services as Record<string, Yaml>;

  it('runs the collector, Prometheus, Alertmanager, Pushgateway, Grafana and a trace backend, on loopback ports', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['otel-collector', 'prometheus', 'alertmanager', 'pushgateway', 'grafana', 'tempo', 'loki']));
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) expect(String(p), name).toMatch(/^127\.0\.0\.1:/);
      for (const v of s.volumes ?? []) {
        const host = String(v).split(':')[0];
        if (host.startsWith('.')) expect(fs.existsSync(path.resolve(`${CC}compose`, host)), `${name}: ${host}`).toBe(true);
      }
    }
    const collectorArgs = services['otel-collector'].command as string[];
    expect(collectorArgs.map((a) => path.basename(a))).toEqual(['otelcol.yaml', 'otelcol-local.yaml']);
    const local = merge(read('otelcol.yaml'), read('compose/otelcol-local.yaml'));
    checkCollector(local, { traces: ['otlphttp'], metrics: ['prometheus'], logs: ['otlphttp'] });
    expect(services['otel-collector'].environment.OTELCOL_OTLP_HTTP_ENDPOINT).toBe('0.0.0.0:4318');
  });

  it('provisions Grafana with Prometheus (exemplars to Tempo), Tempo and Loki, and the dashboards', () => {
    const ds = read('compose/grafana-datasources.yaml').datasources as Yaml[];
    const uids = new Set(ds.map((d) => d.uid));
    const prom = ds.find((d) => d.type === 'prometheus')!;
    expect(prom.uid).toBe('prometheus');
    for (const dest of prom.jsonData.exemplarTraceIdDestinations) {
      expect(dest.name).toBe('trace_id');
      expect(uids.has(dest.datasourceUid)).toBe(true);
    }
    expect(ds.map((d) => d.type).sort()).toEqual(['loki', 'prometheus', 'tempo']);
    const image = String(services.grafana.image);
    expect(image).toMatch(/^grafana\/grafana:11\.6\./);
  });

  it('its Prometheus configuration passes promtool check config, with the rule file it mounts', async () => {
    const prom = read('compose/prometheus.yaml');
    const mount = (services.prometheus.volumes as string[]).find((v) => v.includes('alerts/'))!;
    const [hostPath, containerPath] = mount.split(':');
    expect(prom.rule_files).toEqual([containerPath]);
    for (const job of prom.scrape_configs as Yaml[]) if (/collector|pushgateway/.test(job.job_name)) expect(job.honor_labels, job.job_name).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-compose-'));
    try {
      fs.copyFileSync(path.resolve(`${CC}compose`, hostPath), path.join(dir, 'rules.yaml'));
      fs.writeFileSync(path.join(dir, 'prometheus.yaml'), toYaml({ ...prom, rule_files: [path.join(dir, 'rules.yaml')] }));
      const r = await promtool(['check', 'config', path.join(dir, 'prometheus.yaml')]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toContain('SUCCESS: 8 rules found');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('its Alertmanager configuration passes amtool check-config, with the warning muted under the critical alert', () => {
    const r = spawnSync('amtool', ['check-config', `${CC}compose/alertmanager.yaml`], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const am = read('compose/alertmanager.yaml');
    expect(am.inhibit_rules[0]).toMatchObject({ equal: ['pipeline', 'step', 'node'] });
  });
});
