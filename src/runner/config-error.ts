// The error parallel-run's configuration is refused with, before any work (config.ts), naming each
// field, where its value came from and what is expected.
export interface RunnerConfigIssue {
  /** The config name, e.g. `mini_batch_size`. */
  readonly field: string;
  /** Where the bad value came from: `--mini-batch-size`, `config.yaml`, `runParallel()`, an env variable. */
  readonly source: string;
  readonly expected: string;
  readonly got?: string;
}

/** Thrown before any work when the configuration cannot run. */
export class RunnerConfigError extends Error {
  constructor(readonly issues: readonly RunnerConfigIssue[]) {
    super(`invalid parallel-run configuration:\n${issues.map((i) => `  - ${formatRunnerIssue(i)}`).join('\n')}`);
    this.name = 'RunnerConfigError';
  }
}

export function formatRunnerIssue(issue: RunnerConfigIssue): string {
  const where = issue.source === issue.field ? '' : ` (${issue.source})`;
  return `${issue.field}${where}: expected ${issue.expected}${issue.got !== undefined ? `, got ${issue.got}` : ''}`;
}
