// The wire under the exporters, whoever built them (our code or OpenTelemetry's configuration):
// every socket and HTTP request opened while an export runs is attributed to that export's backend
// (its ExportHealth is in the OpenTelemetry context, see guardExporter), so that a refused
// connection is known at once and hung connections can be cut when the flush bound passes.
// Timers created inside an export (the OTLP exporters' retry back-off, gRPC's) are unref()'d: a
// backend that is retried never holds the process open after the step has ended.
import dc from 'node:diagnostics_channel';
import { context, createContextKey } from '@opentelemetry/api';
import type { ExportHealth } from './export-health.js';

/** The ExportHealth of the export running in this context. */
export const EXPORT_HEALTH = createContextKey('step-telemetry.export-health');

interface Connection {
  destroy(): unknown;
  once(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

const KEY = Symbol.for('step-telemetry.export-wire.v1');

function exportHealth(): ExportHealth | undefined {
  return context.active().getValue(EXPORT_HEALTH) as ExportHealth | undefined;
}

function attach(connection: Connection | undefined): void {
  const health = exportHealth();
  if (health === undefined || connection === undefined) return;
  health.track(connection);
  connection.on('error', (error) => health.connectFailed(error));
}

/** Installed once per process (shared by every copy of the package). */
export function watchExportWire(): void {
  const g = globalThis as { [KEY]?: true };
  if (g[KEY]) return;
  g[KEY] = true;
  // http(s) requests (OTLP/HTTP, Application Insights): Node 20 publishes TLS sockets on neither
  // channel, but every request on this one
  dc.subscribe('http.client.request.start', (message) => attach((message as { request?: Connection }).request));
  // plain sockets, gRPC's among them
  dc.subscribe('net.client.socket', (message) => attach((message as { socket?: Connection }).socket));
  const original = globalThis.setTimeout;
  const unrefInExports = function (this: unknown, ...args: Parameters<typeof setTimeout>): NodeJS.Timeout {
    const timer = Reflect.apply(original, this, args) as NodeJS.Timeout;
    if (exportHealth() !== undefined) timer.unref?.();
    return timer;
  };
  Object.defineProperties(unrefInExports, Object.getOwnPropertyDescriptors(original));
  globalThis.setTimeout = unrefInExports as typeof setTimeout;
}
