// Configuration: options > environment > defaults, field by field. Problems are collected as
// ConfigIssues that name the variable and what was expected; the step reports them once at start
// (or throws them in strict mode) and goes on with the default for that field.
import path from 'node:path';
import { folderProblem } from './sinks/local.js';
import type { LogLevel, StepOptions } from './types.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigIssue {
  readonly variable: string;
  readonly expected: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`step-telemetry configuration: ${issues.map(formatIssue).join('; ')}`);
    this.name = 'ConfigError';
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.variable}: expected ${issue.expected}`;
}

export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';
export type Signal = 'traces' | 'metrics' | 'logs';
export const SIGNALS: readonly Signal[] = ['traces', 'metrics', 'logs'];

/** The exporter names of `OTEL_{TRACES,METRICS,LOGS}_EXPORTER` that a Node SDK knows, per signal. */
export const EXPORTER_NAMES = {
  traces: ['otlp', 'zipkin', 'console', 'none'],
  metrics: ['otlp', 'prometheus', 'console', 'none'],
  logs: ['otlp', 'console', 'none'],
} as const;
export type ExporterName = Exclude<(typeof EXPORTER_NAMES)[Signal][number], 'none'>;

/** How one signal's OTLP exporter is made; its endpoint, headers, TLS and compression it reads itself. */
export interface OtlpSignalConfig {
  readonly protocol: OtlpProtocol;
  /** Where it sends (for messages: no user info, no query). */
  readonly target: string;
  /** Export timeout: the OTEL_EXPORTER_OTLP_*TIMEOUT, capped by the flush bound. */
  readonly timeoutMs: number;
}

/** The exporters of one signal, from `OTEL_<SIGNAL>_EXPORTER` (see resolveExporters). */
export interface SignalExporters {
  readonly names: readonly ExporterName[];
  readonly otlp?: OtlpSignalConfig;
}

export interface AzureConfig {
  readonly connectionString: string;
  /** Ingestion endpoint, for messages; never the key. */
  readonly endpoint: string;
}

/** The Prometheus scrape endpoint and Pushgateway (src/sinks/prometheus-export.ts). */
export interface PrometheusExportConfig {
  /** Port of the `/metrics` endpoint (0: any free port); undefined: no endpoint. */
  readonly port?: number;
  readonly host: string;
  /** Pushgateway base URL; undefined: no push. */
  readonly pushgatewayUrl?: string;
  /** ms between pushes; 0: push only at the end. */
  readonly pushIntervalMs: number;
  readonly deleteOnEnd: boolean;
  /** The `job` of the grouping key. */
  readonly pushJob: string;
}

export interface ResolvedConfig {
  readonly disabled: boolean;
  readonly sdkDisabled: boolean;
  readonly dir: string;
  readonly local: boolean;
  readonly console: boolean;
  readonly logLevel: LogLevel;
  readonly flushTimeoutMs: number;
  readonly strict: boolean;
  readonly handleProcessEvents: boolean;
  readonly metricExportIntervalMs: number;
  readonly metricExportTimeoutMs: number;
  readonly exporters: Readonly<Record<Signal, SignalExporters>>;
  /** Opt-in to the Application Insights exporter's statsbeat and SDK stats (STEP_TELEMETRY_AZURE_STATSBEAT). */
  readonly azureStatsbeat: boolean;
  readonly azure?: AzureConfig;
  readonly prometheus: PrometheusExportConfig;
  /** Resource sampling (src/resources/): off, or its interval in ms. */
  readonly resources: { readonly enabled: boolean; readonly intervalMs: number };
  readonly issues: readonly ConfigIssue[];
}

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** Typed readers over one environment; an empty value counts as unset, an invalid one as an issue. */
export class EnvReader {
  readonly issues: ConfigIssue[] = [];
  constructor(private readonly env: Env) {}

  string(name: string): string | undefined {
    const v = this.env[name];
    if (v === undefined) return undefined;
    const t = v.trim();
    return t === '' ? undefined : t;
  }

  /** First variable of the list that is set. */
  first(names: readonly string[]): string | undefined {
    for (const n of names) {
      const v = this.string(n);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  bool(name: string): boolean | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const l = v.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(l)) return true;
    if (['false', '0', 'no', 'off'].includes(l)) return false;
    this.issue(name, 'true or false');
    return undefined;
  }

  int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.issue(name, `a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
      return undefined;
    }
    return n;
  }

  /** First of several integer variables that is set and valid. */
  firstInt(names: readonly string[], min: number, max?: number): number | undefined {
    for (const n of names) {
      const v = this.int(n, min, max);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.issue(name, `one of ${allowed.join(', ')}`);
    return undefined;
  }

  issue(variable: string, expected: string): void {
    this.issues.push({ variable, expected });
  }
}

/** Check an option value against the same rule as its variable; report under the option's name. */
function optionInt(reader: EnvReader, name: string, value: number | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    reader.issue(`options.${name}`, `a whole number from ${min}${max === undefined ? ' up' : ` to ${max}`}`);
    return undefined;
  }
  return value;
}

export function resolveConfig(options: StepOptions, env: Env): ResolvedConfig {
  const r = new EnvReader(env);
  const disabled = r.bool('STEP_TELEMETRY_DISABLED') ?? false;
  const sdkDisabled = r.bool('OTEL_SDK_DISABLED') ?? false;
  const dir = path.resolve(options.dir ?? r.string('STEP_TELEMETRY_DIR') ?? 'telemetry');
  let logLevel = options.logLevel;
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) {
    r.issue('options.logLevel', `one of ${LOG_LEVELS.join(', ')}`);
    logLevel = undefined;
  }
  const flushTimeoutMs =
    optionInt(r, 'flushTimeoutMs', options.flushTimeoutMs, 0, 600_000) ??
    r.int('STEP_TELEMETRY_FLUSH_TIMEOUT_MS', 0, 600_000) ??
    5000;
  const exporters = resolveExporters(r, flushTimeoutMs, sdkDisabled);
  const metricExportIntervalMs = r.int('OTEL_METRIC_EXPORT_INTERVAL', 1) ?? 60_000;
  const azureString = options.applicationInsightsConnectionString ?? r.string('APPLICATIONINSIGHTS_CONNECTION_STRING');
  const azure = sdkDisabled || azureString === undefined ? undefined : parseConnectionString(azureString, r);
  const local = options.local ?? r.bool('STEP_TELEMETRY_LOCAL') ?? true;
  const strict = options.strict ?? r.bool('STEP_TELEMETRY_STRICT') ?? false;
  // strict mode refuses to start without its run folder; otherwise the step goes on without it (local.ts says so)
  const dirProblem = strict && local && !disabled ? folderProblem(dir) : undefined;
  if (dirProblem !== undefined) r.issue(options.dir !== undefined ? 'options.dir' : 'STEP_TELEMETRY_DIR', `a writable folder (${dir}: ${dirProblem})`);
  return {
    disabled,
    sdkDisabled,
    dir,
    local,
    console: options.console ?? r.bool('STEP_TELEMETRY_CONSOLE') ?? true,
    logLevel: logLevel ?? r.oneOf('STEP_TELEMETRY_LOG_LEVEL', LOG_LEVELS) ?? 'info',
    flushTimeoutMs,
    strict,
    handleProcessEvents: options.handleProcessEvents ?? r.bool('STEP_TELEMETRY_HANDLE_PROCESS_EVENTS') ?? true,
    metricExportIntervalMs,
    // as sdk-node: a timeout past the interval is clamped to it
    metricExportTimeoutMs: Math.min(r.int('OTEL_METRIC_EXPORT_TIMEOUT', 1) ?? 30_000, metricExportIntervalMs),
    exporters,
    azure,
    azureStatsbeat: r.bool('STEP_TELEMETRY_AZURE_STATSBEAT') ?? false,
    prometheus: resolvePrometheusExport(options, r, exporters.metrics.names.includes('prometheus')),
    resources: {
      enabled: !disabled && (options.resources ?? r.bool('STEP_TELEMETRY_RESOURCES') ?? true),
      intervalMs: optionInt(r, 'resourcesIntervalMs', options.resourcesIntervalMs, 100, 3_600_000) ?? r.int('STEP_TELEMETRY_RESOURCES_INTERVAL_MS', 100, 3_600_000) ?? 5000,
    },
    issues: r.issues,
  };
}

const PROMETHEUS_NAME_VALUE = /^[^/]+$/;

/**
 * `OTEL_METRICS_EXPORTER=prometheus` is the step's own `/metrics` endpoint, on
 * OTEL_EXPORTER_PROMETHEUS_HOST/PORT (localhost:9464) unless step-telemetry's variables say otherwise.
 */
function resolvePrometheusExport(options: StepOptions, r: EnvReader, otelPrometheus: boolean): PrometheusExportConfig {
  const port =
    optionInt(r, 'prometheusPort', options.prometheusPort, 0, 65_535) ??
    r.int('STEP_TELEMETRY_PROMETHEUS_PORT', 0, 65_535) ??
    (otelPrometheus ? (r.int('OTEL_EXPORTER_PROMETHEUS_PORT', 0, 65_535) ?? 9464) : undefined);
  let host = options.prometheusHost ?? r.string('STEP_TELEMETRY_PROMETHEUS_HOST') ?? (otelPrometheus ? r.string('OTEL_EXPORTER_PROMETHEUS_HOST') : undefined) ?? (otelPrometheus ? 'localhost' : '127.0.0.1');
  if (typeof host !== 'string' || host.trim() === '' || /[\s/]/.test(host)) {
    r.issue(options.prometheusHost !== undefined ? 'options.prometheusHost' : 'STEP_TELEMETRY_PROMETHEUS_HOST', 'a host name or IP address to bind, such as 127.0.0.1 or 0.0.0.0');
    host = '127.0.0.1';
  }
  let pushgatewayUrl = options.pushgatewayUrl ?? r.string('STEP_TELEMETRY_PUSHGATEWAY_URL');
  if (pushgatewayUrl !== undefined && !validUrl(pushgatewayUrl)) {
    r.issue(options.pushgatewayUrl !== undefined ? 'options.pushgatewayUrl' : 'STEP_TELEMETRY_PUSHGATEWAY_URL', 'an http:// or https:// URL such as http://pushgateway:9091');
    pushgatewayUrl = undefined;
  }
  const pushIntervalMs =
    optionInt(r, 'pushgatewayIntervalMs', options.pushgatewayIntervalMs, 0, 86_400_000) ??
    r.int('STEP_TELEMETRY_PUSHGATEWAY_INTERVAL_MS', 0, 86_400_000) ??
    15_000;
  let pushJob = options.pushgatewayJob ?? r.string('STEP_TELEMETRY_PUSHGATEWAY_JOB') ?? 'step-telemetry';
  if (typeof pushJob !== 'string' || !PROMETHEUS_NAME_VALUE.test(pushJob)) {
    r.issue(options.pushgatewayJob !== undefined ? 'options.pushgatewayJob' : 'STEP_TELEMETRY_PUSHGATEWAY_JOB', 'a non-empty job name without "/"');
    pushJob = 'step-telemetry';
  }
  return {
    port,
    host: host.trim(),
    pushgatewayUrl,
    pushIntervalMs,
    deleteOnEnd: options.pushgatewayDeleteOnEnd ?? r.bool('STEP_TELEMETRY_PUSHGATEWAY_DELETE_ON_END') ?? false,
    pushJob,
  };
}

function validUrl(value: string): URL | undefined {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : undefined;
  } catch {
    return undefined;
  }
}

const OTLP_DEFAULT: Record<'grpc' | 'http', string> = { grpc: 'http://localhost:4317', http: 'http://localhost:4318' };

/**
 * The exporters of each signal, as `OTEL_<SIGNAL>_EXPORTER` names them (a Node SDK's values;
 * `none` alone turns the signal off). One deliberate exception to the specification: when the
 * variable is unset, the signal is exported over OTLP only if an OTLP endpoint is set for it
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or the signal's own), never to a default localhost:4318 that
 * nobody asked for: the run folder is the embedded default.
 */
function resolveExporters(r: EnvReader, flushTimeoutMs: number, sdkDisabled: boolean): Record<Signal, SignalExporters> {
  const base = r.string('OTEL_EXPORTER_OTLP_ENDPOINT');
  const baseProtocol = readProtocol(r, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  const baseTimeout = r.int('OTEL_EXPORTER_OTLP_TIMEOUT', 1);
  const out = {} as Record<Signal, SignalExporters>;
  for (const signal of SIGNALS) {
    const upper = signal.toUpperCase();
    const variable = `OTEL_${upper}_EXPORTER`;
    const own = r.string(`OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`);
    const listed = r.string(variable);
    let names: ExporterName[];
    if (listed === undefined) names = own !== undefined || base !== undefined ? ['otlp'] : [];
    else {
      const values = [...new Set(listed.split(',').map((v) => v.trim()).filter((v) => v !== ''))];
      const known = EXPORTER_NAMES[signal] as readonly string[];
      const unknown = values.filter((v) => !known.includes(v));
      if (unknown.length > 0) r.issue(variable, `a list of ${known.join(', ')} (got ${unknown.join(', ')})`);
      names = values.includes('none') ? [] : (values.filter((v) => known.includes(v)) as ExporterName[]);
    }
    if (sdkDisabled) names = [];
    let otlp: OtlpSignalConfig | undefined;
    if (names.includes('otlp')) {
      const protocol = readProtocol(r, `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`) ?? baseProtocol ?? 'http/protobuf';
      const grpc = protocol === 'grpc';
      let target: string;
      if (own !== undefined) target = own;
      else if (base !== undefined) target = grpc ? base : signalUrl(base, signal) ?? base;
      else target = grpc ? OTLP_DEFAULT.grpc : `${OTLP_DEFAULT.http}/v1/${signal}`;
      // gRPC also takes host:port; the HTTP exporters need a URL
      if (!grpc && !validUrl(target)) {
        r.issue(own !== undefined ? `OTEL_EXPORTER_OTLP_${upper}_ENDPOINT` : 'OTEL_EXPORTER_OTLP_ENDPOINT', `an http:// or https:// URL such as ${OTLP_DEFAULT.http}`);
        names = names.filter((n) => n !== 'otlp');
      } else {
        const timeout = r.int(`OTEL_EXPORTER_OTLP_${upper}_TIMEOUT`, 1) ?? baseTimeout ?? 10_000;
        // An export never outlives the flush bound: its retries stop by the end of the step's flush.
        otlp = { protocol, target: redactUrl(target.includes('://') ? target : `grpc://${target}`), timeoutMs: Math.max(1, Math.min(timeout, flushTimeoutMs)) };
      }
    }
    out[signal] = { names, otlp };
  }
  return out;
}

/** The base endpoint with `v1/<signal>` appended to its path (its query string, if any, kept). */
function signalUrl(base: string, signal: Signal): string | undefined {
  if (!validUrl(base)) return undefined;
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/${signal}`;
  return u.toString();
}

function readProtocol(r: EnvReader, name: string): OtlpProtocol | undefined {
  const v = r.string(name);
  if (v === undefined) return undefined;
  if (v === 'http/protobuf' || v === 'http/json' || v === 'grpc') return v;
  r.issue(name, 'grpc, http/protobuf or http/json; using http/protobuf');
  return undefined;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parse and check an Application Insights connection string; the value itself is never echoed. */
export function parseConnectionString(value: string, r: EnvReader, variable = 'APPLICATIONINSIGHTS_CONNECTION_STRING'): AzureConfig | undefined {
  const fields = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const key = fields.get('instrumentationkey');
  if (key === undefined || !GUID.test(key)) {
    r.issue(variable, 'InstrumentationKey=<a GUID>;IngestionEndpoint=https://<region>.in.applicationinsights.azure.com/ (the InstrumentationKey is missing or not a GUID)');
    return undefined;
  }
  const ingestion = fields.get('ingestionendpoint') ?? 'https://dc.services.visualstudio.com';
  const url = validUrl(ingestion);
  if (!url) {
    r.issue(variable, 'an IngestionEndpoint that is an https:// URL');
    return undefined;
  }
  return { connectionString: value, endpoint: url.origin };
}

/** A URL fit to print: no user info, no query string (either may carry a token). */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '[invalid URL]';
  }
}
