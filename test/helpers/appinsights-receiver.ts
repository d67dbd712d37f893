/**
 * A local Azure Application Insights ingestion endpoint ("Breeze") for tests, loopback only.
 *
 * What `@azure/monitor-opentelemetry-exporter@1.0.0-beta.42` does (read from its dist/esm):
 * - the connection string's IngestionEndpoint is forced to https:// (ConnectionStringParser.sanitizeUrl
 *   rewrites http:// → https://, strips the trailing slash), and the generated client POSTs to
 *   `${IngestionEndpoint}/v2.1/track`;
 * - the body is a JSON array of envelopes `{ ver, name, time, sampleRate, seq, iKey, tags, data: { baseType, baseData } }`,
 *   content-type application/json, not compressed (gzip is handled here anyway, for other SDKs);
 * - it expects 200/206 with a Breeze response `{ itemsReceived, itemsAccepted, errors: [{ index, statusCode, message }] }`;
 *   any other status makes the client throw (401/403/408/429/5xx are "retriable" → offline storage, or dropped
 *   with `disableOfflineStorage: true`); the HTTP pipeline itself retries 5xx/408 with exponential back-off (1 s, 2 s, ...).
 *
 * So this receiver serves HTTPS on 127.0.0.1 (a free port) with a throwaway self-signed certificate for the IP
 * 127.0.0.1 (generated with the `openssl` CLI into a temp folder that `close()` removes). A child process trusts it
 * through `NODE_EXTRA_CA_CERTS=<caFile>` (see `childEnv()`).
 */
import { assertIsolatedNetwork } from './netns.js';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  BodyTooLargeError,
  closeServer,
  decodeContentEncoding,
  ModeSwitch,
  readRequestBody,
  SocketTracker,
  WaiterSet,
  type SetModeOptions,
} from './otlp-receiver.js';

const execFileAsync = promisify(execFile);

/** A fixed, well-formed (lower-case GUID) but fake instrumentation key. */
export const FAKE_INSTRUMENTATION_KEY = '00000000-0000-4000-8000-0000000000a1';

export type AppInsightsMode = 'ok' | 'unauthorized' | 'forbidden' | 'unavailable' | 'hang';

/**
 * Status lines the real ingestion service uses (per the Application Insights SDKs' AAD handling docs:
 * "HTTP/1.1 401 Unauthorized - please provide the valid authorization token",
 * "HTTP/1.1 403 Forbidden - provided credentials do not grant the access to ingest the telemetry into the component").
 */
export const BREEZE_STATUS_MESSAGES = {
  401: 'Unauthorized - please provide the valid authorization token',
  403: 'Forbidden - provided credentials do not grant the access to ingest the telemetry into the component',
  503: 'Service Unavailable',
} as const;

export interface AppInsightsEnvelope {
  /** e.g. Microsoft.ApplicationInsights.Request / .RemoteDependency / .Message / .Exception / .Metric / .Event */
  name: string;
  time: string;
  iKey: string;
  ver: number | undefined;
  sampleRate: number | undefined;
  tags: Record<string, string>;
  data: {
    /** RequestData, RemoteDependencyData, MessageData, ExceptionData, MetricData, EventData, ... */
    baseType: string;
    baseData: Record<string, unknown>;
  };
  /** The envelope exactly as parsed from the request body. */
  raw: Record<string, unknown>;
}

export interface BreezeResponse {
  itemsReceived: number;
  itemsAccepted: number;
  errors: Array<{ index: number; statusCode: number; message: string }>;
}

export interface ReceivedAppInsightsRequest {
  seq: number;
  method: string;
  /** Path without the query string, e.g. `/v2.1/track`. */
  path: string;
  /** Node lower-cases header names. */
  headers: IncomingHttpHeaders;
  contentType: string;
  contentEncoding: string | undefined;
  /** Size on the wire (possibly compressed). */
  byteSize: number;
  decodedSize: number;
  mode: AppInsightsMode;
  /** undefined while hanging. */
  statusCode: number | undefined;
  /** True when answered 200: only those envelopes count in envelopes(). */
  accepted: boolean;
  envelopes: AppInsightsEnvelope[];
  parseError: string | undefined;
  /** The Breeze body answered (undefined for non-track paths / hanging). */
  response: BreezeResponse | undefined;
  receivedAt: Date;
}

export interface AppInsightsReceiverOptions {
  mode?: AppInsightsMode;
  /** Sent as `Retry-After` on 503 answers (the Azure HTTP pipeline's throttling policy honours it). */
  retryAfterSeconds?: number;
  maxBodyBytes?: number;
}

type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

export interface AppInsightsReceiver {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** `InstrumentationKey=<fake>;IngestionEndpoint=https://127.0.0.1:PORT/;LiveEndpoint=https://127.0.0.1:PORT/` */
  readonly connectionString: string;
  readonly instrumentationKey: string;
  /** Path of the self-signed certificate (PEM): use as NODE_EXTRA_CA_CERTS in a child process, or `ca` in-process. */
  readonly caFile: string;
  /** The mode the next request will get. */
  readonly mode: AppInsightsMode;
  /** Switch the answer mode; with `{ forRequests: n }` only for the next n requests. */
  setMode(mode: AppInsightsMode, opts?: SetModeOptions): void;
  /**
   * Environment for a child process that exports here: connection string, NODE_EXTRA_CA_CERTS, and every
   * switch that keeps the exporter's statsbeat / SDK-stats machinery from calling Azure (IMDS, statsbeat endpoints).
   */
  childEnv(): Record<string, string>;
  /** Every HTTP request in arrival order. */
  rawRequests(): ReceivedAppInsightsRequest[];
  /** Envelopes of accepted (200) track requests, in order. */
  envelopes(): AppInsightsEnvelope[];
  /** Envelopes with data.baseType RequestData (SERVER / CONSUMER spans). */
  requests(): AppInsightsEnvelope[];
  /** RemoteDependencyData (CLIENT / PRODUCER / INTERNAL spans). */
  dependencies(): AppInsightsEnvelope[];
  /** MessageData (log records, span events). */
  traces(): AppInsightsEnvelope[];
  /** ExceptionData. */
  exceptions(): AppInsightsEnvelope[];
  /** MetricData (metrics; also the `_OTELRESOURCE_` resource metric the trace exporter adds). */
  metrics(): AppInsightsEnvelope[];
  /** EventData (custom events). */
  events(): AppInsightsEnvelope[];
  waitFor<T>(predicate: (receiver: AppInsightsReceiver) => T, timeoutMs?: number): Promise<Truthy<T>>;
  clear(): void;
  /** Stops listening, destroys every socket (also hung ones) and removes the certificate folder. Idempotent. */
  close(): Promise<void>;
}

const TRACK_PATHS = new Set(['/v2.1/track', '/v2/track', '/track']);

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function toEnvelope(raw: Record<string, unknown>): AppInsightsEnvelope {
  const data = asRecord(raw['data']);
  const tags = asRecord(raw['tags']) ?? {};
  return {
    name: typeof raw['name'] === 'string' ? raw['name'] : '',
    time: typeof raw['time'] === 'string' ? raw['time'] : '',
    iKey: typeof raw['iKey'] === 'string' ? raw['iKey'] : '',
    ver: typeof raw['ver'] === 'number' ? raw['ver'] : undefined,
    sampleRate: typeof raw['sampleRate'] === 'number' ? raw['sampleRate'] : undefined,
    tags: Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, String(v)])),
    data: {
      baseType: typeof data?.['baseType'] === 'string' ? data['baseType'] : '',
      baseData: asRecord(data?.['baseData']) ?? {},
    },
    raw,
  };
}

/** Body → envelopes: a JSON array, a single JSON object, or newline-delimited JSON (older SDKs). */
export function parseTrackBody(text: string): AppInsightsEnvelope[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  let items: unknown[];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    items = Array.isArray(parsed) ? parsed : [parsed];
  } catch (err) {
    const lines = trimmed.split('\n').filter((l) => l.trim() !== '');
    if (lines.length < 2) throw err;
    items = lines.map((l) => JSON.parse(l) as unknown);
  }
  return items.map((item, i) => {
    const rec = asRecord(item);
    if (!rec) throw new Error(`envelope #${i} is not an object`);
    return toEnvelope(rec);
  });
}

class AppInsightsReceiverImpl implements AppInsightsReceiver {
  readonly url: string;
  readonly connectionString: string;
  readonly instrumentationKey = FAKE_INSTRUMENTATION_KEY;
  private readonly modes: ModeSwitch<AppInsightsMode>;
  private records: ReceivedAppInsightsRequest[] = [];
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly waiters: WaiterSet<AppInsightsReceiver>;

  constructor(
    private readonly server: Server,
    private readonly sockets: SocketTracker,
    readonly port: number,
    readonly caFile: string,
    private readonly certDir: string,
    mode: AppInsightsMode,
    private readonly retryAfterSeconds: number | undefined,
  ) {
    this.url = `https://127.0.0.1:${port}`;
    this.connectionString = `InstrumentationKey=${FAKE_INSTRUMENTATION_KEY};IngestionEndpoint=${this.url}/;LiveEndpoint=${this.url}/`;
    this.modes = new ModeSwitch<AppInsightsMode>(mode);
    this.waiters = new WaiterSet<AppInsightsReceiver>(this, () => this.summary());
  }

  get mode(): AppInsightsMode {
    return this.modes.current;
  }

  setMode(mode: AppInsightsMode, opts?: SetModeOptions): void {
    this.modes.set(mode, opts);
  }

  childEnv(): Record<string, string> {
    return {
      APPLICATIONINSIGHTS_CONNECTION_STRING: this.connectionString,
      NODE_EXTRA_CA_CERTS: this.caFile,
      // Non-essential statsbeat (read/write failure gauges).
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
      // The switch that really stops network/long-interval statsbeat (which would query the Azure IMDS endpoint
      // and export to *.in.applicationinsights.azure.com): base.js checks this legacy variable.
      APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
      // Customer SDK stats.
      APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
    };
  }

  rawRequests(): ReceivedAppInsightsRequest[] {
    return [...this.records];
  }

  envelopes(): AppInsightsEnvelope[] {
    return this.records.filter((r) => r.accepted).flatMap((r) => r.envelopes);
  }

  private byBaseType(baseType: string): AppInsightsEnvelope[] {
    return this.envelopes().filter((e) => e.data.baseType === baseType);
  }

  requests(): AppInsightsEnvelope[] {
    return this.byBaseType('RequestData');
  }

  dependencies(): AppInsightsEnvelope[] {
    return this.byBaseType('RemoteDependencyData');
  }

  traces(): AppInsightsEnvelope[] {
    return this.byBaseType('MessageData');
  }

  exceptions(): AppInsightsEnvelope[] {
    return this.byBaseType('ExceptionData');
  }

  metrics(): AppInsightsEnvelope[] {
    return this.byBaseType('MetricData');
  }

  events(): AppInsightsEnvelope[] {
    return this.byBaseType('EventData');
  }

  waitFor<T>(predicate: (receiver: AppInsightsReceiver) => T, timeoutMs?: number): Promise<Truthy<T>> {
    if (this.closed) return Promise.reject(new Error('waitFor: the App Insights receiver is closed'));
    return this.waiters.waitFor(predicate, timeoutMs);
  }

  clear(): void {
    this.records = [];
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.waiters.failAll(new Error('waitFor: the App Insights receiver was closed'));
      this.closing = closeServer(this.server, this.sockets).finally(() =>
        rm(this.certDir, { recursive: true, force: true }),
      );
    }
    return this.closing;
  }

  summary(): string {
    if (this.records.length === 0) return 'no requests';
    return `${this.records.length} request(s): ${this.records
      .map(
        (r) =>
          `#${r.seq} ${r.method} ${r.path} → ${r.statusCode ?? 'hanging'} (${r.envelopes.map((e) => e.name).join(', ') || 'no envelopes'}` +
          `${r.parseError ? `, parse error: ${r.parseError}` : ''})`,
      )
      .join('; ')}`;
  }

  async handle(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): Promise<void> {
    const mode = this.modes.take();
    const path = new URL(req.url ?? '/', 'https://127.0.0.1').pathname;
    const record: ReceivedAppInsightsRequest = {
      seq: ++this.seq,
      method: req.method ?? '',
      path,
      headers: { ...req.headers },
      contentType: req.headers['content-type'] ?? '',
      contentEncoding: req.headers['content-encoding'],
      byteSize: 0,
      decodedSize: 0,
      mode,
      statusCode: undefined,
      accepted: false,
      envelopes: [],
      parseError: undefined,
      response: undefined,
      receivedAt: new Date(),
    };

    let wire: Buffer;
    try {
      wire = await readRequestBody(req, maxBodyBytes);
    } catch (err) {
      record.parseError = err instanceof Error ? err.message : String(err);
      if (err instanceof BodyTooLargeError) this.answer(res, record, 413, { 'content-type': 'text/plain' }, err.message);
      this.record(record);
      return;
    }
    record.byteSize = wire.length;

    if (mode === 'hang' && !this.closed) {
      this.tryParse(record, wire);
      this.record(record); // never answered; close() destroys the socket
      return;
    }

    if (path.startsWith('/QuickPulseService.svc')) {
      // Live metrics (used by the distro, not by the exporter): "not subscribed", so clients stay quiet.
      this.answer(res, record, 200, { 'x-ms-qps-subscribed': 'false', 'content-type': 'application/json' }, '');
      this.record(record);
      return;
    }
    if (!TRACK_PATHS.has(path)) {
      this.answer(res, record, 404, { 'content-type': 'text/plain' }, `unknown path ${path}`);
      this.record(record);
      return;
    }
    if (record.method !== 'POST') {
      this.answer(res, record, 405, { 'content-type': 'text/plain' }, `method ${record.method} not allowed`);
      this.record(record);
      return;
    }

    const parsed = this.tryParse(record, wire);
    const n = record.envelopes.length;
    let status: number;
    let breeze: BreezeResponse;
    if (mode === 'unauthorized' || mode === 'forbidden' || mode === 'unavailable') {
      // Like the real service, auth / availability is decided before the payload is looked at.
      status = mode === 'unauthorized' ? 401 : mode === 'forbidden' ? 403 : 503;
      const message = BREEZE_STATUS_MESSAGES[status as 401 | 403 | 503];
      breeze = {
        itemsReceived: n,
        itemsAccepted: 0,
        errors: record.envelopes.map((_, index) => ({ index, statusCode: status, message })),
      };
    } else if (!parsed) {
      status = 400;
      breeze = { itemsReceived: 0, itemsAccepted: 0, errors: [{ index: 0, statusCode: 400, message: `Invalid payload: ${record.parseError ?? ''}` }] };
    } else {
      status = 200;
      breeze = { itemsReceived: n, itemsAccepted: n, errors: [] };
    }
    record.response = breeze;
    record.accepted = status === 200;
    const statusMessage = (BREEZE_STATUS_MESSAGES as Record<number, string | undefined>)[status];
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (status === 503 && this.retryAfterSeconds !== undefined) headers['retry-after'] = String(this.retryAfterSeconds);
    this.answer(res, record, status, headers, JSON.stringify(breeze), statusMessage);
    this.record(record);
  }

  private tryParse(record: ReceivedAppInsightsRequest, wire: Buffer): boolean {
    try {
      // Some SDKs gzip without saying so: sniff the gzip magic too.
      const gzipped = wire.length >= 2 && wire[0] === 0x1f && wire[1] === 0x8b;
      const body = decodeContentEncoding(wire, record.contentEncoding ?? (gzipped ? 'gzip' : undefined));
      record.decodedSize = body.length;
      record.envelopes = parseTrackBody(body.toString('utf8'));
      return true;
    } catch (err) {
      record.parseError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      return false;
    }
  }

  private answer(
    res: ServerResponse,
    record: ReceivedAppInsightsRequest,
    status: number,
    headers: Record<string, string>,
    body: string,
    statusMessage?: string,
  ): void {
    record.statusCode = status;
    const payload = Buffer.from(body, 'utf8');
    if (statusMessage) res.writeHead(status, statusMessage, { ...headers, 'content-length': String(payload.length) });
    else res.writeHead(status, { ...headers, 'content-length': String(payload.length) });
    res.end(payload);
  }

  private record(record: ReceivedAppInsightsRequest): void {
    this.records.push(record);
    this.waiters.check();
  }
}

/** Generates a throwaway self-signed certificate (EC P-256, SAN IP:127.0.0.1) with the openssl CLI. */
async function generateCertificate(dir: string): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const openssl = process.env['OPENSSL_BIN'] ?? 'openssl';
  await execFileAsync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { timeout: 20_000 },
  );
  return { keyFile, certFile };
}

/** Starts the HTTPS App Insights receiver on 127.0.0.1 (a free port). Always `close()` it. */
export async function startAppInsightsReceiver(opts: AppInsightsReceiverOptions = {}): Promise<AppInsightsReceiver> {
  assertIsolatedNetwork();
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const certDir = await mkdtemp(join(tmpdir(), 'step-telemetry-ai-receiver-'));
  try {
    const { keyFile, certFile } = await generateCertificate(certDir);
    const [key, cert] = await Promise.all([readFile(keyFile), readFile(certFile)]);
    const server = createServer({ key, cert });
    const sockets = new SocketTracker(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const receiver = new AppInsightsReceiverImpl(server, sockets, port, certFile, certDir, opts.mode ?? 'ok', opts.retryAfterSeconds);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      receiver.handle(req, res, maxBodyBytes).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        }
      });
    });
    return receiver;
  } catch (err) {
    await rm(certDir, { recursive: true, force: true });
    throw err;
  }
}
