// Instrumentations for the zero-code agent, named by OTEL_NODE_ENABLED_INSTRUMENTATIONS and
// OTEL_NODE_DISABLED_INSTRUMENTATIONS as @opentelemetry/auto-instrumentations-node names them (`http`
// is @opentelemetry/instrumentation-http, `undici` @opentelemetry/instrumentation-undici, `pg`
// @opentelemetry/instrumentation-pg, ...). They are not our dependencies: each is enabled when its
// package is installed where the script runs (a named one that is missing is reported once). ESM
// scripts need import-in-the-middle's loader hook, registered here (module.register) only when an
// instrumentation is enabled, in the way auto-instrumentations-node and EDOT register it.
import { createRequire, register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EnvReader } from '../config.js';
import type { Diagnostics } from '../diagnostics.js';

/** Enabled when OTEL_NODE_ENABLED_INSTRUMENTATIONS is unset (and installed). */
const DEFAULT_NAMES = ['http', 'undici'];

interface Instrumentation {
  enable(): void;
  setTracerProvider?(provider: unknown): void;
}

type Resolver = (request: string) => string;

/** Resolves from the script's folder first (the program's dependencies), then from this package. */
function resolvers(): Resolver[] {
  const base = process.argv[1] ? path.dirname(path.resolve(process.argv[1])) : process.cwd();
  return [createRequire(path.join(base, 'noop.js')).resolve, createRequire(path.join(process.cwd(), 'noop.js')).resolve, createRequire(import.meta.url).resolve];
}

function resolve(request: string): string | undefined {
  for (const r of resolvers()) {
    try {
      return r(request);
    } catch {
      // next
    }
  }
  return undefined;
}

/** The names to enable, from the two variables (sdk-node's and auto-instrumentations-node's reading). */
export function instrumentationNames(r: EnvReader): { names: string[]; explicit: boolean } {
  const list = (name: string) => r.string(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  const enabled = list('OTEL_NODE_ENABLED_INSTRUMENTATIONS');
  const disabled = new Set(list('OTEL_NODE_DISABLED_INSTRUMENTATIONS') ?? []);
  const names = (enabled ?? DEFAULT_NAMES).filter((n) => !disabled.has(n) && n !== 'none');
  return { names: enabled?.includes('none') ? [] : [...new Set(names)], explicit: enabled !== undefined };
}

/**
 * Loads and enables the named instrumentations that are installed, after registering the ESM
 * loader hook they need. Returns their names.
 */
export async function enableInstrumentations(names: readonly string[], explicit: boolean, diagnostics: Diagnostics): Promise<string[]> {
  const found = names.map((n) => ({ name: n, file: resolve(`@opentelemetry/instrumentation-${n}`) }));
  for (const f of found) {
    if (!f.file && explicit) diagnostics.warn(`agent.instrumentation:${f.name}`, `OTEL_NODE_ENABLED_INSTRUMENTATIONS names "${f.name}", but @opentelemetry/instrumentation-${f.name} is not installed: npm install @opentelemetry/instrumentation-${f.name}`);
  }
  const present = found.filter((f): f is { name: string; file: string } => f.file !== undefined);
  if (present.length === 0) return [];
  // the loader hook of the import-in-the-middle copy that @opentelemetry/instrumentation uses
  const base = resolve('@opentelemetry/instrumentation');
  let wait: (() => Promise<void>) | undefined;
  if (base) {
    try {
      const iitm = createRequire(base)('import-in-the-middle') as { createAddHookMessageChannel(): { registerOptions: object; waitForAllMessagesAcknowledged(): Promise<void> } };
      const { registerOptions, waitForAllMessagesAcknowledged } = iitm.createAddHookMessageChannel();
      register(pathToFileURL(createRequire(base).resolve('import-in-the-middle/hook.mjs')).href, import.meta.url, registerOptions);
      wait = waitForAllMessagesAcknowledged;
    } catch (error) {
      diagnostics.warn('agent.loader', `the ESM loader hook could not be registered (${(error as Error).message}): ES modules the script imports are not instrumented`);
    }
  }
  const instances: Instrumentation[] = [];
  const enabled: string[] = [];
  for (const { name, file } of present) {
    try {
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      const cls = Object.entries(mod).find(([k, v]) => /Instrumentation$/.test(k) && typeof v === 'function')?.[1] as (new () => Instrumentation) | undefined;
      if (!cls) throw new Error('no *Instrumentation class exported');
      instances.push(new cls());
      enabled.push(name);
    } catch (error) {
      diagnostics.warn(`agent.instrumentation:${name}`, `@opentelemetry/instrumentation-${name} could not be enabled: ${(error as Error).message}`);
    }
  }
  if (base && instances.length > 0) {
    const { registerInstrumentations } = (await import(pathToFileURL(base).href)) as { registerInstrumentations(o: { instrumentations: Instrumentation[] }): void };
    registerInstrumentations({ instrumentations: instances });
  }
  await wait?.();
  return enabled;
}
