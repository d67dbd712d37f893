// The report's colours: outcomes, percentiles, and a palette for overlaid series.

export const COLORS = {
  success: '#2f9e5f',
  error: '#d64545',
  timeout: '#e8912d',
  crash: '#8e44ad',
  aborted: '#9aa0a6',
  running: '#7aa6d8',
  stopped: '#8a94a3',
  other: '#5f6b7a',
  p50: '#2f6fbf',
  p95: '#e8912d',
  p99: '#d64545',
  line: '#2f6fbf',
  band: '#2f6fbf',
  grid: '#e3e6ea',
  axis: '#5f6b7a',
} as const;

/** Series overlaid in one chart: blue, orange, green, purple, ... (distinct in print and for most colour vision). */
export const PALETTE = ['#2f6fbf', '#e8912d', '#2f9e5f', '#8e44ad', '#d64545', '#17a2b8', '#8c6d31', '#e377c2'] as const;

export function outcomeColor(outcome: string): string {
  switch (outcome) {
    case 'success':
      return COLORS.success;
    case 'failure':
    case 'error':
      return COLORS.error;
    case 'timeout':
    case 'terminated':
      return COLORS.timeout;
    case 'crash':
    case 'crashed':
      return COLORS.crash;
    case 'aborted':
      return COLORS.aborted;
    case 'running':
      return COLORS.running;
    case 'stopped':
      return COLORS.stopped;
    default:
      return COLORS.other;
  }
}

/** The runner's attempt outcomes, in legend order. */
export const ATTEMPT_OUTCOMES = ['success', 'error', 'timeout', 'crash', 'aborted'] as const;
