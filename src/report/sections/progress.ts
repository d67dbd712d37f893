// The runner's progress overview, its worker summary (with how each worker's own step ended: the
// runner stopping a worker is not a failure), per-worker counts when there is no summary, and the
// parallel run settings from the step span.
import type { StepProcess } from '../../run-folder/model.js';
import { formatCount, formatDuration } from '../format.js';
import { badge, cellText, esc, iso, plural, table } from '../html.js';
import type { StepView } from '../step-view.js';
import type { WorkerStop } from '../worker-stops.js';

/** How a worker process's own step ended, for the workers table. */
export function workerStepCell(p: StepProcess | undefined, stop: WorkerStop | undefined): string {
  if (stop) {
    const recorded = stop.outcome === 'unknown' ? 'its step wrote no step.json' : `its step recorded "${stop.outcome}"`;
    return `<span class="badge stopped" title="${esc(`the runner stopped this worker ${stop.why}; ${recorded}`)}">stopped by the runner</span>`;
  }
  if (!p) return '–';
  return p.outcome === 'running' ? badge('running', 'never ended') : badge(p.outcome);
}

export function progressSection(view: StepView): string {
  const { step, index: i, stops } = view;
  const parts: string[] = [];
  if (step.progressOverview) parts.push(`<pre class="overview">${esc(step.progressOverview)}</pre>`);
  const processes = new Map(step.processes.map((p) => [p.index, p]));
  if (step.workers.length > 0) {
    parts.push(`<h4>Workers</h4>${workersTable(step.workers, (index) => workerStepCell(processes.get(index), stops.byProcess.get(index)))}`);
  } else if (step.processes.length > 1) {
    const rows = step.processes
      .filter((p) => p.index > 0)
      .map((p) => [esc(String(p.index)), esc(iso(p.started)), esc(iso(p.ended)), workerStepCell(p, stops.byProcess.get(p.index))]);
    parts.push(`<h4>Worker processes</h4>${table(['process', 'started', 'ended', "worker's step"], rows, 'workers')}`);
  }
  if (step.attempts.count > 0 && !step.progressOverview) {
    const { total, succeeded } = step.attempts.fates;
    parts.push(`<p>${plural(total, 'mini-batch', 'mini-batches')}: ${formatCount(succeeded)} succeeded, ${formatCount(total - succeeded)} did not; ${plural(step.attempts.count, 'attempt')}.</p>`);
    parts.push(
      table(
        ['worker', 'attempts', 'failed attempts', 'busy'],
        [...step.attempts.byWorker.entries()].sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true })).map(([w, s]) => [esc(w), esc(String(s.attempts)), esc(String(s.failed)), esc(formatDuration(s.busyMs))]),
      ),
    );
  }
  const config = Object.entries(step.stepSpanAttributes).filter(([k]) => k.startsWith('parallel_run.'));
  if (config.length > 0) {
    parts.push(`<details><summary>parallel run settings and totals (step span)</summary>${table(['name', 'value'], config.map(([k, v]) => [esc(k.slice('parallel_run.'.length)), cellText(v)]))}</details>`);
  }
  if (parts.length === 0) return '';
  return `<section class="sub" id="progress-${i}"><h3>Progress overview</h3>${parts.join('')}</section>`;
}

const ENDS: Record<string, string> = {
  stopped: 'stopped at the end',
  aborted: 'stopped: the job was aborted',
  terminated: 'stopped: the job was terminated',
  'killed-timeout': 'killed: run() timed out',
  crashed: 'crashed',
  'init-failed': 'init() failed',
};

/** worker-summary.csv for people: durations instead of timestamps, how each worker ended, and its step. */
function workersTable(workers: readonly Readonly<Record<string, string>>[], stepCell: (processIndex: number) => string): string {
  const seconds = (v: string | undefined): string => (v && Number.isFinite(Number(v)) ? formatDuration(Number(v) * 1000) : '–');
  const known = new Set(['worker', 'process_index', 'pid', 'started', 'ended', 'end_reason', 'exit', 'init_seconds', 'attempts', 'failed_attempts', 'items_succeeded', 'items_failed', 'busy_seconds', 'utilization']);
  const extra = Object.keys(workers[0]!).filter((c) => !known.has(c));
  const rows = workers.map((w) => {
    const started = Date.parse(w.started ?? '');
    const ended = Date.parse(w.ended ?? '');
    const util = Number(w.utilization);
    return [
      esc(w.worker ?? ''),
      esc(w.process_index ?? ''),
      esc(w.pid ?? ''),
      Number.isFinite(started) && Number.isFinite(ended) ? esc(formatDuration(ended - started)) : w.ended ? '–' : 'running',
      esc(seconds(w.init_seconds)),
      esc(w.attempts ?? ''),
      Number(w.failed_attempts) > 0 ? `<span class="bad">${esc(w.failed_attempts)}</span>` : esc(w.failed_attempts ?? ''),
      esc(`${w.items_succeeded ?? ''} / ${w.items_failed ?? ''}`),
      esc(seconds(w.busy_seconds)),
      Number.isFinite(util) ? esc(`${Math.round(util * 100)}%`) : '–',
      esc(`${ENDS[w.end_reason ?? ''] ?? (w.end_reason || '–')}${w.exit ? ` (exit ${w.exit})` : ''}`),
      stepCell(Number(w.process_index)),
      ...extra.map((c) => esc(w[c] ?? '')),
    ];
  });
  return table(['worker', 'process', 'pid', 'lived', 'init', 'attempts', 'failed attempts', 'items ok / failed', 'busy', 'busy share', 'how it ended', "worker's step", ...extra.map(esc)], rows, 'workers');
}
