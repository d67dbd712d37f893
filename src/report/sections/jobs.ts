// The merged jobs of multi-node steps (src/runner/merge.ts): one line each with the job's own
// verdict and counts, above the node sections, which show what each node did.
import type { RunData } from '../../run-folder/model.js';
import { badge, esc, plural } from '../html.js';

const OUTCOME: Record<string, string> = { succeeded: 'success', failed: 'failure', terminated: 'terminated' };

interface Counts {
  readonly total?: number;
  readonly succeeded?: number;
  readonly failed?: number;
  readonly not_processed?: number;
}

export function jobsSection(run: RunData): string {
  if (run.jobs.length === 0) return '';
  const lines = run.jobs.map((job) => {
    const r = job.result;
    const status = String(r.status ?? 'unknown');
    const items = (r.items ?? {}) as Counts;
    const mbs = (r.mini_batches ?? {}) as Counts;
    const cause = r.cause as { category?: string; message?: string } | undefined;
    const merged = (r.merged ?? {}) as { rows?: number; nodes?: { folder?: string; status?: string }[] };
    const nodes = (merged.nodes ?? []).map((n) => `${esc((n.folder ?? '').split(/[\\/]/).pop())} ${esc(n.status ?? '?')}`).join(', ');
    const output = typeof r.output_file === 'string' ? ` · output <code>${esc(r.output_file)}</code>${merged.rows !== undefined ? ` (${plural(merged.rows, 'row')})` : ''}` : '';
    return (
      `<p><b>${esc(job.label)}</b> ${badge(OUTCOME[status] ?? status, status)} the job of ${plural(job.nodes.length, 'node')}${nodes ? ` (${nodes})` : ''}: ` +
      `${items.succeeded ?? 0} of ${items.total ?? 0} items succeeded, ${items.failed ?? 0} failed${items.not_processed ? `, ${items.not_processed} not processed` : ''}; ` +
      `${plural(mbs.total ?? 0, 'mini-batch', 'mini-batches')}${output}${cause?.category && status !== 'succeeded' ? `<br>cause: ${esc(cause.category)}: ${esc(cause.message ?? '')}` : ''}</p>`
    );
  });
  return `<section id="jobs"><h2>${run.jobs.length === 1 ? 'The job' : 'Jobs'} (merged from the nodes)</h2>${lines.join('')}<p class="hint">From result.json beside the node folders (step-telemetry merge, or the nodes of a queue as they end); the node sections below show what each node did.</p></section>`;
}
