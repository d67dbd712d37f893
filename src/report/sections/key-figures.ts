// The figures at the top of a step: outcome, duration, mini-batches and items, retries,
// timeouts, latency percentiles, and the errors logged (real errors only: not what a worker's step
// wrote when the runner stopped it).
import { durationsOf } from '../../run-folder/analysis.js';
import { formatCount, formatDuration } from '../format.js';
import { badge, esc, tiles } from '../html.js';
import type { StepView } from '../step-view.js';

interface ResultCounts {
  mini_batches?: Record<string, number>;
  items?: Record<string, number>;
  retries?: number;
  timeouts?: number;
  worker_restarts?: number;
  reason?: string;
}

export function keyFigures(view: StepView): string {
  const { step, start, end, stops } = view;
  const r = step.result as ResultCounts | undefined;
  const items: { label: string; value: string; tone?: string }[] = [];
  items.push({ label: 'outcome', value: badge(step.outcome) });
  if (start !== undefined && end !== undefined) items.push({ label: 'duration', value: esc(formatDuration(end - start)) });
  if (r?.mini_batches) {
    const m = r.mini_batches;
    items.push({ label: 'mini-batches succeeded', value: esc(`${formatCount(m.succeeded ?? 0)} / ${formatCount(m.total ?? 0)}`) });
    items.push({ label: 'mini-batches failed', value: esc(formatCount(m.failed ?? 0)), tone: m.failed ? 'bad' : undefined });
    if (m.not_processed) items.push({ label: 'not processed', value: esc(formatCount(m.not_processed)), tone: 'warn' });
  } else if (step.attempts.count > 0) {
    const { total, succeeded } = step.attempts.fates;
    items.push({ label: 'mini-batches succeeded', value: esc(`${formatCount(succeeded)} / ${formatCount(total)}`) });
    items.push({ label: 'mini-batches failed', value: esc(formatCount(total - succeeded)), tone: total - succeeded > 0 ? 'bad' : undefined });
  }
  if (r?.items) items.push({ label: 'items succeeded', value: esc(`${formatCount(r.items.succeeded ?? 0)} / ${formatCount(r.items.total ?? 0)}`) });
  const retries = r?.retries ?? step.attempts.retries;
  const timeouts = r?.timeouts ?? step.attempts.byOutcome.timeout?.n ?? 0;
  if (step.attempts.count > 0 || r) {
    items.push({ label: 'retries', value: esc(formatCount(retries)), tone: retries ? 'warn' : undefined });
    items.push({ label: 'timeouts', value: esc(formatCount(timeouts)), tone: timeouts ? 'warn' : undefined });
  }
  if (r?.worker_restarts) items.push({ label: 'worker restarts', value: esc(String(r.worker_restarts)), tone: 'warn' });
  if ((step.attempts.byOutcome.success?.n ?? 0) > 0) {
    const s = durationsOf(step.attempts, ['success']);
    items.push({ label: 'p50 / p95 / p99 (successful attempts)', value: esc(`${formatDuration(s.p50)} / ${formatDuration(s.p95)} / ${formatDuration(s.p99)}`) });
  }
  items.push({ label: 'errors / warnings logged', value: esc(`${stops.errors} / ${step.logs.counts.warn ?? 0}`), tone: stops.errors ? 'bad' : undefined });
  const reason = typeof r?.reason === 'string' ? `<p class="reason">${esc(r.reason)}</p>` : '';
  return tiles(items) + reason;
}
