/**
 * Launchers for the real Prometheus servers the ops tests run against (Debian's packages:
 * `prometheus`, `promtool`, `prometheus-pushgateway`, `prometheus-alertmanager`), each on
 * 127.0.0.1 with a free port and a temp folder, plus a local Alertmanager webhook receiver and a
 * tiny static exposition server. `stop()` kills the process and removes its folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freeClosedPort } from './otlp-receiver.js';

export interface LaunchedServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Its temp folder (config, data). */
  readonly dir: string;
  /** What it printed (bounded), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024;

/** Polls `${url}/-/ready` until it answers 200, the process exits, or `timeoutMs` passes. */
async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts `bin` with `args(port, dir)` on a free loopback port and waits for `/-/ready`. A port
 * taken between the check and the bind makes the binary exit: then it is tried again on another.
 */
async function launch(name: string, bin: string, args: (port: number, dir: string) => string[], setup?: (dir: string) => void, fixedPort?: number): Promise<LaunchedServer> {
  const dir = mkdtempSync(join(tmpdir(), `st-${name}-`));
  setup?.(dir);
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = fixedPort ?? (await freeClosedPort());
    const url = `http://127.0.0.1:${port}`;
    let output = '';
    const child = spawn(bin, args(port, dir), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const ready = await Promise.race([waitReady(url, child, 20_000), spawnError]);
    if (ready === true) {
      return {
        url,
        port,
        dir,
        output: () => output,
        stop: async () => {
          await kill(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await kill(child);
    if (ready instanceof Error) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${bin} could not start (${ready.message}); install it: apt-get install -y ${name === 'prometheus' ? 'prometheus' : bin}`);
    }
    lastOutput = output;
    if (fixedPort !== undefined || !/address already in use/i.test(output)) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${bin} did not become ready:\n${lastOutput.slice(-4000)}`);
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

export interface PromResponse<T = unknown> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer extends LaunchedServer {
  /** Instant query at `time` (unix seconds; default now). */
  query(expr: string, time?: number): Promise<PromResponse<{ resultType: string; result: VectorSample[] | [number, string] }>>;
  /** `/api/v1/series` for one matcher between start and end (unix seconds). */
  series(match: string, start: number, end: number): Promise<PromResponse<Array<Record<string, string>>>>;
  queryExemplars(expr: string, start: number, end: number): Promise<PromResponse<Array<{ seriesLabels: Record<string, string>; exemplars: Array<{ labels: Record<string, string>; value: string; timestamp: number }> }>>>;
  targets(): Promise<PromResponse<{ activeTargets: Array<{ labels: Record<string, string>; scrapePool: string; health: string; lastError: string }> }>>;
  alerts(): Promise<PromResponse<{ alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string>; state: string; value: string }> }>>;
  rules(): Promise<PromResponse<{ groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; type: string }> }> }>>;
}

export interface PrometheusOptions {
  /** `scrape_configs` entries (objects as in prometheus.yml). */
  scrapeConfigs: object[];
  /** Absolute paths of rule files. */
  ruleFiles?: string[];
  /** `host:port` of Alertmanagers to send alerts to. */
  alertmanagers?: string[];
  /** Default 1s. */
  scrapeInterval?: string;
  /** Default 1s. */
  evaluationInterval?: string;
}

async function getJson<T>(url: string): Promise<PromResponse<T>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as PromResponse<T>;
}

/** Prometheus with exemplar storage on, a 1 s scrape and evaluation interval by default. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const config = {
    global: {
      scrape_interval: options.scrapeInterval ?? '1s',
      scrape_timeout: options.scrapeInterval ?? '1s',
      evaluation_interval: options.evaluationInterval ?? '1s',
    },
    rule_files: options.ruleFiles ?? [],
    alerting: options.alertmanagers?.length ? { alertmanagers: [{ static_configs: [{ targets: options.alertmanagers }] }] } : undefined,
    scrape_configs: options.scrapeConfigs,
  };
  const server = await launch(
    'prometheus',
    'prometheus',
    (port, dir) => [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
      '--log.level=warn',
    ],
    (dir) => writeFileSync(join(dir, 'prometheus.yml'), toYaml(JSON.parse(JSON.stringify(config)))),
  );
  const api = (path: string, params: Record<string, string | number>): string => {
    const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
    return `${server.url}/api/v1/${path}?${q}`;
  };
  return {
    ...server,
    query: (expr, time) => getJson(api('query', time === undefined ? { query: expr } : { query: expr, time })),
    series: (match, start, end) => getJson(api('series', { 'match[]': match, start, end })),
    queryExemplars: (expr, start, end) => getJson(api('query_exemplars', { query: expr, start, end })),
    targets: () => getJson(api('targets', { state: 'active' })),
    alerts: () => getJson(api('alerts', {})),
    rules: () => getJson(api('rules', {})),
  };
}

/** A Pushgateway on loopback (no persistence file), on a free port or on `port`. */
export function startPushgateway(port?: number): Promise<LaunchedServer> {
  return launch('pushgateway', 'prometheus-pushgateway', (p) => [`--web.listen-address=127.0.0.1:${p}`, '--log.level=warn'], undefined, port);
}

/**
 * An Alertmanager on loopback that sends every alert to `webhookUrl` at once (group_wait 1s),
 * clustering off. `extraConfig` is merged over the generated configuration.
 */
export function startAlertmanager(webhookUrl: string, extraConfig: Record<string, unknown> = {}): Promise<LaunchedServer> {
  const config = {
    route: {
      receiver: 'webhook',
      group_by: ['alertname', 'pipeline', 'step', 'node'],
      group_wait: '1s',
      group_interval: '1s',
      repeat_interval: '1h',
    },
    receivers: [{ name: 'webhook', webhook_configs: [{ url: webhookUrl, send_resolved: false }] }],
    ...extraConfig,
  };
  return launch(
    'alertmanager',
    'prometheus-alertmanager',
    (port, dir) => [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    (dir) => writeFileSync(join(dir, 'alertmanager.yml'), toYaml(config)),
  );
}

// ---------------------------------------------------------------------------------------------
// Local HTTP endpoints
// ---------------------------------------------------------------------------------------------

export interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface WebhookReceiver {
  readonly url: string;
  /** Every alert of every notification, in arrival order. */
  alerts(): WebhookAlert[];
  /** Resolves with the first alert matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (a: WebhookAlert) => boolean, timeoutMs: number): Promise<WebhookAlert>;
  close(): Promise<void>;
}

/** An Alertmanager webhook receiver on loopback (`POST /alerts`). */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookAlert[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        const payload = JSON.parse(body) as { alerts?: WebhookAlert[] };
        received.push(...(payload.alerts ?? []));
      } catch {
        // ignore a body that is not JSON
      }
      res.writeHead(200).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
  return {
    url,
    alerts: () => received.slice(),
    waitFor: (predicate, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching alert within ${timeoutMs} ms; received: ${JSON.stringify(received)}`)), timeoutMs);
        const check = (): void => {
          const hit = received.find(predicate);
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface ExpositionServer {
  /** `127.0.0.1:PORT`, for a scrape target. */
  readonly target: string;
  /** Replace what `/metrics` serves. */
  set(text: string): void;
  close(): Promise<void>;
}

/** Serves a fixed Prometheus text exposition at `/metrics` (e.g. a collector's translated output). */
export async function startExpositionServer(initial = ''): Promise<ExpositionServer> {
  let text = initial;
  const server = http.createServer((req, res) => {
    res.writeHead(req.url?.startsWith('/metrics') ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    target: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (t) => {
      text = t;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// promtool
// ---------------------------------------------------------------------------------------------

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `promtool ...args` (stdin: the given text, else empty). */
export function promtool(args: string[], options: { stdin?: string; cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
