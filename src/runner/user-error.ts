// An error of the entry script as its worker sends it to the runner: serialized, its stack cut
// where the runner's own frames begin.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serializeError, type SerializedError } from './protocol.js';

/** This package's compiled (or source) folder: stack frames from here on are the runner's, not the user's. */
const OWN_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The error with its stack cut where the runner's own frames begin. */
export function userError(error: unknown): SerializedError {
  const e = serializeError(error);
  if (!e.stack) return e;
  const lines = e.stack.split('\n');
  const cut = lines.findIndex((l, i) => i > 0 && /^\s+at /.test(l) && (l.includes(OWN_DIR) || l.includes('node:async_hooks') || l.includes('@opentelemetry')));
  return cut > 0 ? { ...e, stack: lines.slice(0, cut).join('\n') } : e;
}
