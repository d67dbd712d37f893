// The context manager that carries the active span and the mini-batch id through async code: the
// SDK's (otel/sdk.ts), and a runner worker's before its step is up (runner/worker-logging.ts).
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

let contextManagerSet = false;

/** The AsyncLocalStorage context manager, unless the program registered one. */
export function ensureContextManager(): void {
  if (contextManagerSet) return;
  contextManagerSet = true;
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
}

