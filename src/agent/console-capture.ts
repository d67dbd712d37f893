// The agent's console: console.log/info/warn/error/debug still print as they always did, and each
// line also becomes a log record of the step (level, the step dimensions, the active trace and span),
// like the run's driver log of a hosted pipeline step, without touching the script. Lines printed
// by the telemetry itself (a console exporter) are not recorded again.
import { format } from 'node:util';
import { context } from '@opentelemetry/api';
import type winston from 'winston';
import { EXPORT_HEALTH } from '../sinks/export-wire.js';

const LEVELS = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug' } as const;

/** Patches the console methods; returns the function that restores them. */
export function captureConsole(logger: () => winston.Logger | undefined): () => void {
  const originals = new Map<keyof typeof LEVELS, (...args: unknown[]) => void>();
  let inside = false;
  for (const method of Object.keys(LEVELS) as Array<keyof typeof LEVELS>) {
    const original = console[method] as (...args: unknown[]) => void;
    originals.set(method, original);
    console[method] = function (this: unknown, ...args: unknown[]): void {
      original.apply(this ?? console, args);
      if (inside || context.active().getValue(EXPORT_HEALTH) !== undefined) return;
      const target = logger();
      if (target === undefined) return;
      inside = true;
      try {
        target[LEVELS[method]](format(...args), { source: `console.${method}` });
      } catch {
        // a console line is never worth breaking the script
      } finally {
        inside = false;
      }
    };
  }
  return () => {
    for (const [method, original] of originals) console[method] = original;
  };
}
