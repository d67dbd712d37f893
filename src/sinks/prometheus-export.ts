// The step's prom-client registry, served and pushed: an optional `/metrics` endpoint (loopback by
// default; OpenMetrics with exemplars when the scraper asks for it, else the Prometheus text
// format) and an optional Pushgateway push for short-lived steps (on an interval and at the end).
// Nothing here throws into the step: push failures are counted in an ExportHealth and summarised
// at the end like every other backend; timers and sockets are unref()'d, so they never hold the
// process open.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type client from 'prom-client';
import { redactUrl, type PrometheusExportConfig } from '../config.js';
import type { Diagnostics } from '../diagnostics.js';
import { ExportHealth, type ExporterAgents } from './export-health.js';

export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** One value line of a prom-client metric, as `getMetricsAsJSON()` gives it. */
interface PromValue {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
  exemplar?: { labelSet?: Record<string, string>; value?: number | null; timestamp?: number } | null;
}

function escapeOmText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function omNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function omLabels(labels: Record<string, string | number> | undefined): string {
  if (!labels) return '';
  const parts: string[] = [];
  let le: string | undefined;
  for (const [k, v] of Object.entries(labels)) {
    const text = k === 'le' && typeof v === 'number' ? omNumber(v) : String(v);
    if (k === 'le') le = `le="${escapeOmText(text)}"`;
    else parts.push(`${k}="${escapeOmText(text)}"`);
  }
  if (le !== undefined) parts.push(le);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

/**
 * The registry in the OpenMetrics text format, with the exemplars prom-client keeps. Rendered here
 * rather than by switching the registry's content type: prom-client's OpenMetrics mode renames
 * counters in place, which would break every later Prometheus-format scrape or push.
 */
export async function renderOpenMetrics(registry: client.Registry): Promise<string> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as Array<{ name: string; help: string; type: string; values: PromValue[] }>;
  const out: string[] = [];
  for (const m of metrics) {
    const counter = m.type === 'counter';
    const family = counter ? m.name.replace(/_total$/, '') : m.name;
    out.push(`# TYPE ${family} ${m.type === 'counter' || m.type === 'gauge' || m.type === 'histogram' || m.type === 'summary' ? m.type : 'unknown'}`);
    out.push(`# HELP ${family} ${escapeOmText(m.help)}`);
    for (const v of m.values ?? []) {
      const name = counter ? `${family}_total` : (v.metricName ?? m.name);
      let line = `${name}${omLabels(v.labels)} ${omNumber(v.value)}`;
      const ex = v.exemplar;
      if (ex && ex.labelSet && Object.keys(ex.labelSet).length > 0 && typeof ex.value === 'number') {
        line += ` # ${omLabels(ex.labelSet)} ${omNumber(ex.value)}${typeof ex.timestamp === 'number' ? ` ${ex.timestamp}` : ''}`;
      }
      out.push(line);
    }
  }
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

/** True when the scraper's Accept header asks for OpenMetrics (Prometheus asks for it first). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return typeof accept === 'string' && /application\/openmetrics-text/i.test(accept);
}

/** The grouping-key path of a step on the Pushgateway: `/metrics/job/<job>/pipeline/<p>/step/<s>/node/<n>[/process/<i>]`. */
export function pushgatewayGroupingPath(job: string, labels: Readonly<Record<string, string>>): string {
  // Values are base64url-encoded (the `@base64` form) when they are empty or hold a "/".
  const seg = (name: string, value: string): string =>
    value === '' || value.includes('/')
      ? `/${name}@base64/${Buffer.from(value, 'utf8').toString('base64url') || '='}`
      : `/${name}/${encodeURIComponent(value)}`;
  let path = `/metrics${seg('job', job)}`;
  for (const [name, value] of Object.entries(labels)) path += seg(name, value);
  return path;
}

export interface PrometheusExportOptions {
  /** The step's registry, read at scrape and push time. */
  readonly registry: () => client.Registry;
  readonly config: PrometheusExportConfig;
  /** The step dimensions (pipeline, step, node), the grouping key after `job`. */
  readonly groupingLabels: Readonly<Record<string, string>>;
  readonly diagnostics: Diagnostics;
  readonly agents: ExporterAgents;
  /** Bound on one push request, in ms. */
  readonly requestTimeoutMs: number;
  /** The program's own OpenTelemetry metrics, in the Prometheus text format, served after the registry's. */
  readonly otelText?: () => Promise<string>;
}

/** Prometheus text of OpenTelemetry's serializer, as OpenMetrics: counter families lose their `_total`. */
function otelTextAsOpenMetrics(text: string): string {
  const counters = new Set([...text.matchAll(/^# TYPE (\S+)_total counter$/gm)].map((m) => m[1]));
  return text.replace(/^# (TYPE|HELP) (\S+)_total\b/gm, (line, what: string, name: string) => (counters.has(name) ? `# ${what} ${name}` : line));
}

/** The `/metrics` endpoint and the Pushgateway pusher of one step. */
export class PrometheusExport {
  /** Health of the Pushgateway pushes, in the step's export summary; undefined without a Pushgateway. */
  readonly pushHealth: ExportHealth | undefined;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private url: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pushing: Promise<void> | undefined;
  private ended = false;
  private readonly pushUrl: URL | undefined;

  constructor(private readonly options: PrometheusExportOptions) {
    const { config } = options;
    if (config.pushgatewayUrl !== undefined) {
      const base = new URL(config.pushgatewayUrl);
      const prefix = base.pathname.replace(/\/+$/, '');
      this.pushUrl = new URL(`${prefix}${pushgatewayGroupingPath(config.pushJob, options.groupingLabels)}`, base);
      this.pushUrl.username = base.username;
      this.pushUrl.password = base.password;
      this.pushHealth = new ExportHealth('Pushgateway', 'metrics', redactUrl(this.pushUrl.toString()), 'STEP_TELEMETRY_PUSHGATEWAY_URL (its user:password)');
    }
  }

  /** `http://host:port/metrics` once the endpoint listens. */
  get endpoint(): string | undefined {
    return this.url;
  }

  /** Open the endpoint (if configured) and start the push timer. Never rejects. */
  async start(): Promise<void> {
    const { config, diagnostics } = this.options;
    if (config.port !== undefined) {
      try {
        await this.listen(config.host, config.port);
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        diagnostics.warn(
          'config.STEP_TELEMETRY_PROMETHEUS_PORT',
          `configuration: STEP_TELEMETRY_PROMETHEUS_PORT / STEP_TELEMETRY_PROMETHEUS_HOST: cannot serve /metrics on ${config.host}:${config.port} (${e.code ?? e.message}); expected a free port and a local address. The endpoint is off; other sinks go on`,
        );
      }
    }
    if (this.pushUrl !== undefined && config.pushIntervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.pushing === undefined) void this.push('PUT');
      }, config.pushIntervalMs);
      this.timer.unref();
    }
  }

  /** Push now (step.flush()); waits for a push in flight instead of overlapping it. Never rejects. */
  async pushNow(): Promise<void> {
    if (this.pushUrl === undefined || this.ended) return;
    await this.pushing;
    await this.push('PUT');
  }

  /**
   * End of the step: stop the timer, push the final values once (or delete the group with
   * `deleteOnEnd`), close the endpoint. The caller bounds the wait; never rejects.
   */
  async shutdown(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.pushUrl !== undefined) {
        await this.pushing;
        await this.push(this.options.config.deleteOnEnd ? 'DELETE' : 'PUT');
      }
    } finally {
      this.close();
    }
  }

  /** Close the endpoint and every scrape connection at once. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.server) {
      this.server.close();
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
      this.server = undefined;
    }
  }

  private listen(host: string, port: number): Promise<void> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on('connection', (socket) => {
      // A scraper keeps its connection alive between scrapes; that must not keep the step alive.
      socket.unref();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.keepAliveTimeout = 65_000;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', () => undefined);
        server.unref();
        this.server = server;
        const addr = server.address() as AddressInfo;
        const shown = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
        this.url = `http://${shown}:${addr.port}/metrics`;
        resolve();
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(path === '/' ? 'step-telemetry: metrics at /metrics\n' : 'not found\n');
        return;
      }
      const om = wantsOpenMetrics(req.headers.accept);
      const registry = this.options.registry();
      let body = om ? await renderOpenMetrics(registry) : await registry.metrics();
      const otel = (await this.options.otelText?.().catch(() => '')) ?? '';
      if (otel) body = om ? body.replace(/# EOF\n$/, `${otelTextAsOpenMetrics(otel)}# EOF\n`) : `${body}${otel}`;
      res.writeHead(200, { 'content-type': om ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_TEXT_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (error) {
      this.options.diagnostics.warn('prometheus.scrape', `the /metrics endpoint could not render the registry: ${(error as Error).message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('error\n');
    }
  }

  /** One push (PUT replaces the group) or delete; counted in pushHealth, never rejects. */
  private push(method: 'PUT' | 'DELETE'): Promise<void> {
    const url = this.pushUrl!;
    const health = this.pushHealth!;
    const run = async (): Promise<void> => {
      health.begin();
      let error: unknown;
      let ok = false;
      try {
        const body = method === 'PUT' ? await this.options.registry().metrics() : '';
        // like every exporter: its own HTTP call makes no span, whatever instrumentation is loaded
        await context.with(suppressTracing(context.active()), () => this.request(url, method, body));
        ok = true;
      } catch (e) {
        error = e;
      }
      if (!health.settle()) return; // already counted when the flush bound passed
      if (ok) health.succeeded(0);
      else health.failed(error);
    };
    const p = run().finally(() => {
      if (this.pushing === p) this.pushing = undefined;
    });
    this.pushing = p;
    return p;
  }

  private request(url: URL, method: string, body: string): Promise<void> {
    const headers: http.OutgoingHttpHeaders = { 'content-type': PROMETHEUS_TEXT_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) };
    if (url.username || url.password) {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    }
    const target = new URL(url.toString());
    target.username = '';
    target.password = '';
    return new Promise((resolve, reject) => {
      const req = (target.protocol === 'https:' ? https.request : http.request)(
        target,
        { method, headers, agent: this.options.agents.forProtocol(target.protocol), timeout: this.options.requestTimeoutMs },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (text.length < 300) text += chunk;
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(Object.assign(new Error(`HTTP ${status}${text ? ` ${text.trim().slice(0, 200)}` : ''}`), { statusCode: status }));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Pushgateway request timed out after ${this.options.requestTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

