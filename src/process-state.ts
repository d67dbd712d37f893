// The one piece of process-wide state: which step is active, and what was recorded before it
// started. Kept on globalThis so that two copies of the package in one process share it.
import type { LoggerState } from './signals/logs.js';
import type { LogMetricOptions } from './types.js';

export interface PendingMetric {
  readonly name: string;
  readonly value: number;
  readonly options?: LogMetricOptions;
}

/** What the process state needs of a step. */
export interface ActiveStep {
  readonly ended: boolean;
  log(name: string, value: number, options?: LogMetricOptions): void;
}

export interface ProcessState {
  active: ActiveStep | undefined;
  starting: Promise<unknown> | undefined;
  readonly logs: LoggerState;
  pendingMetrics: PendingMetric[];
  pendingOverflow: number;
}

const KEY = Symbol.for('step-telemetry.process-state.v1');
export const PENDING_METRICS_LIMIT = 10_000;

export function processState(): ProcessState {
  const g = globalThis as { [KEY]?: ProcessState };
  g[KEY] ??= {
    active: undefined,
    starting: undefined,
    logs: { binding: undefined, ended: false, buffer: [], overflow: 0 },
    pendingMetrics: [],
    pendingOverflow: 0,
  };
  return g[KEY];
}
