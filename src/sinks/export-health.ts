// What each backend did: every exporter is wrapped so that a failure is counted (never thrown,
// never logged per batch) and summarised once at the end, with a hint for bad credentials.
// Exporters run with tracing suppressed and with their health in context, so the wire
// (export-wire.ts) can tell a refused connection at once and cut a hung one at the end of the
// flush bound: a dead backend cannot hold the flush or the process.
import http from 'node:http';
import https from 'node:https';
import { context } from '@opentelemetry/api';
import { ExportResultCode, suppressTracing, type ExportResult } from '@opentelemetry/core';
import { EXPORT_HEALTH, watchExportWire } from './export-wire.js';
import { describeExport } from './export-summary.js';
import type { ExportSummary } from '../types.js';
import { printable } from '../util/printable.js';
import { safeString } from '../util/safe-read.js';

/** What the step concluded about a backend, for the next process of the same step (the runner's parent). */
export type BackendVerdict = 'ok' | 'refused' | 'unauthorized' | 'silent' | 'failing';

/** Connection errors that say at once that nobody will answer. */
const REFUSALS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export class ExportHealth {
  batches = 0;
  failedBatches = 0;
  /** Spans or log records that reached this backend's export queue (spans: those the sampler kept). */
  offeredItems = 0;
  /** Of those, handed to the exporter. */
  exportedItems = 0;
  deliveredItems = 0;
  /** Handed to the exporter in batches that failed (or were given up). */
  failedItems = 0;
  /** Spans that OTEL_TRACES_SAMPLER sampled out (kept in spans.jsonl only). */
  sampledOutItems = 0;
  /** Dropped because the queue was full; counted as they are dropped (spans), or at the end (logs, see `drained`). */
  queueFullItems = 0;
  /** The log processor's shutdown completed: every record it did not hand to the exporter was dropped at a full queue. */
  drained = false;
  /** The export queue: its OTEL_B*P_MAX_QUEUE_SIZE, for the summary. */
  queue: { readonly variable: string; readonly limit: number } | undefined;
  /** Traces: the export rate policy of mini-batch spans (otel/export-rate.ts). */
  rate: { readonly sampledOut: number; readonly lowest: number } | undefined;
  /** Exports started and not yet answered. */
  inFlight = 0;
  private inFlightItems = 0;
  private idleWaiters: Array<() => void> = [];
  /** Exports counted as failed when the flush bound passed, whose late answers are not counted again. */
  private abandoned = 0;
  lastError: string | undefined;
  private lastStatus: number | undefined;

  constructor(
    readonly backend: string,
    readonly signal: string,
    readonly target: string,
    /** The variable that holds this backend's credential, for the 401/403 hint. */
    private readonly credentialVariable: string,
  ) {}

  /** Each guarded export in progress, with the function that finishes it. */
  private readonly pending = new Set<(result: ExportResult) => void>();
  /** The sockets and requests of this backend's exports, cut at the end. */
  private readonly connections = new Set<{ destroy(): unknown }>();
  private stop: (() => void) | undefined;
  /** Resolves once the step gave up on this backend: its exporter's shutdown is not awaited past it. */
  readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));
  private ending = false;
  private refusal: Error | undefined;
  /** Why the step gave up on this backend: an export started since is sent, and fails at once. */
  givenUp: Error | undefined;
  private silent = false;

  succeeded(items: number): void {
    this.batches++;
    this.deliveredItems += items;
    this.refusal = undefined;
  }

  /** @internal a guarded export starts; `finish` ends it (once) */
  hold(finish: (result: ExportResult) => void): void {
    this.pending.add(finish);
  }

  /** @internal */
  release(finish: (result: ExportResult) => void): void {
    this.pending.delete(finish);
  }

  /** @internal a socket or request of one of this backend's exports (export-wire.ts) */
  track(connection: { destroy(): unknown; once(event: 'close', listener: () => void): unknown }): void {
    this.connections.add(connection);
    connection.once('close', () => this.connections.delete(connection));
  }

  /**
   * @internal a connection of an export failed. A refusal is known at once: while the step ends,
   * the exports waiting on this backend fail now instead of retrying until their timeout.
   */
  connectFailed(error: Error & { code?: unknown }): void {
    if (typeof error.code !== 'string' || !REFUSALS.has(error.code)) return;
    this.refusal = error;
    if (this.ending) this.giveUp(error);
  }

  /** The step ends: exports still retrying a refused connection fail now. */
  beginEnding(): void {
    this.ending = true;
    if (this.refusal) this.giveUp(this.refusal);
  }

  /**
   * Every export still waiting fails now (counted once), and the exporter's shutdown is no longer
   * awaited: the flush bound passed, the backend refused, or an earlier process found it silent.
   */
  giveUp(reason: Error, silent = false): void {
    if (silent) this.silent = true;
    this.givenUp = reason;
    for (const finish of [...this.pending]) finish({ code: ExportResultCode.FAILED, error: reason });
    this.stop?.();
  }

  /** Cut every connection of this backend's exports (after the flush). */
  destroyConnections(): void {
    for (const c of this.connections) {
      try {
        c.destroy();
      } catch {
        // already gone
      }
    }
    this.connections.clear();
  }

  /** What this process found, for the next process of the step; undefined while nothing was tried. */
  get verdict(): BackendVerdict | undefined {
    if (this.lastStatus === 401 || this.lastStatus === 403) return 'unauthorized';
    if (this.refusal) return 'refused';
    if (this.silent) return 'silent';
    if (this.failedBatches > 0) return 'failing';
    return this.batches > 0 ? 'ok' : undefined;
  }

  /** An export of `items` starts; `settle(items)` must follow once it has an answer. */
  begin(items = 0): void {
    this.inFlight++;
    this.inFlightItems += items;
    this.exportedItems += items;
  }

  /** Called when an export of `items` succeeded after `ms` (the export rate policy measures throughput). */
  onDelivered: ((items: number, ms: number) => void) | undefined;

  /** An export has its answer: true when it is still to be counted, false when it was abandoned. */
  settle(items = 0): boolean {
    if (this.abandoned > 0) {
      this.abandoned--;
      return false;
    }
    this.inFlight--;
    this.inFlightItems -= items;
    if (this.inFlight === 0) this.wake();
    return true;
  }

  /** The flush bound passed: every export still waiting counts as failed, once. */
  abandonInFlight(reason: Error): void {
    this.giveUp(reason, true);
    for (let i = 0; i < this.inFlight; i++) this.failed(reason);
    this.failedItems += this.inFlightItems;
    this.abandoned += this.inFlight;
    this.inFlight = 0;
    this.inFlightItems = 0;
    this.wake();
  }

  /**
   * Run `work` once no export of this backend is running, at the start of a macrotask (so that the
   * processor's completion handlers of the last export have run, and it has started no other):
   * see otel/log-export.ts for why the log processor needs this.
   */
  whenIdle<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        if (this.inFlight > 0) {
          this.idleWaiters.push(() => setImmediate(check));
          return;
        }
        work().then(resolve, reject);
      };
      setImmediate(check);
    });
  }

  private wake(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Called on every failed batch (the step counts them in `step.export.failures`). */
  onFailure: (() => void) | undefined;

  failed(error: unknown, items = 0): void {
    this.batches++;
    this.failedBatches++;
    this.failedItems += items;
    this.onFailure?.();
    const described = describeError(error);
    if (described.status !== undefined) this.lastStatus = described.status;
    this.lastError = described.text;
  }

  /**
   * An HTTP answer seen on the wire. The Application Insights exporter reports a 401/403/5xx as
   * success when offline storage is off, so the answer itself decides: the export in progress
   * counts as failed.
   */
  sawStatus(status: number, detail?: string): void {
    if (status >= 200 && status < 300) return;
    this.lastStatus = status;
    this.lastError = `HTTP ${status}${detail ? ` ${detail}` : ''}`;
    this.wireFailure = true;
  }

  private wireFailure = false;

  /** True (once) when the wire showed a failure during the export that just finished. */
  takeWireFailure(): boolean {
    const f = this.wireFailure;
    this.wireFailure = false;
    return f;
  }

  get hint(): string | undefined {
    if (this.lastStatus === 401 || this.lastStatus === 403) {
      return `the backend refused the credential (HTTP ${this.lastStatus}${/InvalidOrExpiredToken/i.test(this.lastError ?? '') ? ' InvalidOrExpiredToken' : ''}): check that ${this.credentialVariable} holds a valid, unexpired key or token`;
    }
    if (/ECONNREFUSED/.test(this.lastError ?? '')) return 'nothing listens at that address: is the collector or backend running?';
    if (/retryable status/.test(this.lastError ?? '')) return 'the backend kept answering 429, 502, 503 or 504 until the export timeout: overloaded or unavailable';
    if (/timed out|timeout|ETIMEDOUT|socket hang up|ECONNRESET/i.test(this.lastError ?? '')) return 'the backend did not answer in time';
    return undefined;
  }

  summary(): ExportSummary {
    const base = {
      backend: this.backend,
      signal: this.signal,
      target: this.target,
      batches: this.batches,
      failedBatches: this.failedBatches,
      droppedItems: Math.max(0, this.offeredItems - this.deliveredItems),
      lastError: this.lastError,
      hint: this.hint,
      verdict: this.verdict,
    };
    if (this.signal === 'metrics') return base;
    // what the processor never handed to the exporter: dropped at a full queue (counted as it happened
    // for spans; for logs, all of it once the processor's shutdown completed), else still queued
    const neverExported = Math.max(0, this.offeredItems - this.queueFullItems - this.exportedItems);
    const queueFull = this.queueFullItems + (this.drained ? neverExported : 0);
    return {
      ...base,
      offeredItems: this.offeredItems,
      deliveredItems: this.deliveredItems,
      notExported: {
        sampledOut: this.sampledOutItems,
        rateSampledOut: this.rate?.sampledOut ?? 0,
        queueFull,
        exportFailed: this.failedItems,
        unsent: this.drained ? 0 : neverExported,
      },
      ...(this.rate && this.rate.sampledOut > 0 ? { lowestSamplingProbability: this.rate.lowest } : {}),
    };
  }

  /** One line for the end-of-step summary: what did not arrive, and why. */
  describe(): string {
    return describeExport(this.summary(), this.queue);
  }

  /** True when something did not arrive, or the export rate policy sampled mini-batch spans out. */
  get troubled(): boolean {
    return this.failedBatches > 0 || (this.offeredItems > this.deliveredItems && this.signal !== 'metrics') || this.lastStatus !== undefined || (this.rate?.sampledOut ?? 0) > 0;
  }
}

function describeError(error: unknown): { text: string; status?: number } {
  if (error === undefined || error === null) return { text: 'export failed' };
  const e = error as { code?: unknown; message?: unknown; data?: unknown; statusCode?: unknown; name?: unknown };
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  let text = typeof e.message === 'string' && e.message ? e.message : safeString(error);
  if (typeof e.code === 'string' && !text.includes(e.code)) text = `${e.code} ${text}`;
  if (status !== undefined && !text.includes(String(status))) text = `HTTP ${status} ${text}`;
  if (typeof e.data === 'string' && /InvalidOrExpiredToken/i.test(e.data)) text += ' InvalidOrExpiredToken';
  // Messages of HTTP clients may quote a URL: keep only scheme, host and path.
  text = text.replace(/\bhttps?:\/\/[^\s'"]+/g, (u) => {
    try {
      const url = new URL(u);
      return `${url.protocol}//${url.host}${url.pathname}`;
    } catch {
      return '[url]';
    }
  });
  text = printable(text);
  return { text: text.length > 300 ? `${text.slice(0, 300)}…` : text, status };
}

interface AnyExporter<T> {
  /** Some exporters are async functions (the Application Insights ones): their rejections are caught too. */
  export(items: T, resultCallback: (result: ExportResult) => void): unknown;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/**
 * Wrap an exporter: count its results, never let it throw or reject (an exporter that fails on
 * what it was given fails its batch, it does not end the process), run it with tracing suppressed
 * and its health in context. An export the health gives up on (refused, past the bound) finishes
 * as failed at once; the exporter's late answer is ignored.
 */
export function guardExporter<T, E extends AnyExporter<T>>(inner: E, health: ExportHealth, count: (items: T) => number): E {
  watchExportWire();
  const guarded = Object.create(inner) as E;
  guarded.export = (items: T, done: (result: ExportResult) => void): void => {
    const n = count(items);
    let called = false;
    const started = performance.now();
    health.begin(n);
    const finish = (result: ExportResult): void => {
      if (called) return;
      called = true;
      health.release(finish);
      if (!health.settle(n)) {
        done(result);
        return;
      }
      if (health.takeWireFailure()) {
        health.batches++;
        health.failedBatches++;
        health.failedItems += n;
        health.onFailure?.();
      } else if (result.code === ExportResultCode.SUCCESS) {
        health.succeeded(n);
        health.onDelivered?.(n, performance.now() - started);
      } else health.failed(result.error, n);
      done(result);
    };
    const failed = (error: unknown): void => finish({ code: ExportResultCode.FAILED, error: error as Error });
    health.hold(finish);
    try {
      const pending = context.with(suppressTracing(context.active()).setValue(EXPORT_HEALTH, health), () => inner.export(items, finish));
      if (pending !== undefined && typeof (pending as Promise<unknown>).then === 'function') (pending as Promise<unknown>).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
    // sent, not awaited
    if (health.givenUp) finish({ code: ExportResultCode.FAILED, error: health.givenUp });
  };
  guarded.shutdown = () => Promise.race([inner.shutdown().catch(() => undefined), health.stopped]);
  if (inner.forceFlush) guarded.forceFlush = () => Promise.race([inner.forceFlush!().catch(() => undefined), health.stopped]);
  return guarded;
}

/** HTTP agents for exporters; `destroy()` cuts every socket, in use or idle. */
export class ExporterAgents {
  readonly http = new http.Agent({ keepAlive: true, maxSockets: 4 });
  readonly https = new https.Agent({ keepAlive: true, maxSockets: 4 });

  forProtocol = (protocol: string): http.Agent => (protocol === 'https:' ? this.https : this.http);

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
