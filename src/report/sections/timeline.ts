// The mini-batch attempts on a timeline, one lane per worker: a bar per attempt (click it for its
// log records), or, for a large run, time slots stacked by outcome.
import type { Attempt } from '../../run-folder/model.js';
import { timelineSvg, type Lane, type Segment } from '../charts/timeline.js';
import { ATTEMPT_OUTCOMES, outcomeColor } from '../colors.js';
import { formatDuration } from '../format.js';
import { esc, firstLine, iso, legend, plural } from '../html.js';
import type { StepView } from '../step-view.js';

const TIMELINE_BINS = 400;
const MAX_LANES = 48;

export function timelineSection(view: StepView, maxSegments: number): string {
  const { step, index: i } = view;
  // all the attempts, or in a large run every failed one and a sample of the others (weighted)
  const attempts = step.attempts.kept;
  if (attempts.length === 0) return '';
  const t0 = view.start ?? attempts[0]!.start;
  const t1 = Math.max(view.end ?? t0, t0 + 1);
  const byWorker = new Map<string, Attempt[]>();
  for (const a of attempts) {
    const list = byWorker.get(a.worker);
    if (list) list.push(a);
    else byWorker.set(a.worker, [a]);
  }
  let names = [...byWorker.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (names.length > MAX_LANES) {
    const rest = names.slice(MAX_LANES - 1);
    const merged: Attempt[] = [];
    for (const n of rest) merged.push(...byWorker.get(n)!);
    byWorker.set(`${rest.length} more workers`, merged.sort((a, b) => a.start - b.start));
    names = [...names.slice(0, MAX_LANES - 1), `${rest.length} more workers`];
  }
  const aggregated = step.attempts.count > maxSegments;
  const about = step.attempts.sampled ? 'about ' : '';
  const lanes: Lane[] = names.map((name) => {
    const list = byWorker.get(name)!;
    if (aggregated) return { label: name, segments: binnedSegments(list, t0, t1, about) };
    return {
      label: name,
      segments: list.map((a) => ({
        start: a.start,
        end: a.start + a.durationMs,
        color: outcomeColor(a.outcome),
        title: `${a.id} attempt ${a.attempt} on ${a.worker}: ${a.outcome}, ${formatDuration(a.durationMs)}${a.errorMessage ? ` — ${firstLine(a.errorMessage, 160)}` : ''}`,
        mb: a.id,
      })),
    };
  });
  const note = aggregated
    ? `<p class="hint">${plural(step.attempts.count, 'attempt')} are aggregated into ${TIMELINE_BINS} time slots per worker: each slot is split by outcome (any failure gets at least a fifth of the height, so that rare failures show); hover a slot for its counts.</p>`
    : '<p class="hint">One bar per mini-batch attempt; hover for details, click to show its log records.</p>';
  return (
    `<section class="sub" id="timeline-${i}"><h3>Timeline of mini-batches</h3>${note}<figure class="chart" data-chart="timeline">` +
    `<figcaption>Attempts by worker over time (from ${esc(iso(t0))})</figcaption>${timelineSvg({ lanes, t0, t1, id: `timeline-svg-${i}`, label: `${step.label} mini-batch timeline` })}` +
    `${legend(ATTEMPT_OUTCOMES.map((o) => ({ label: o, color: outcomeColor(o) })))}</figure></section>`
  );
}

/** Attempts of one lane in time slots; each slot stacked by outcome; runs of all-success slots merged. `about`: counted from a sample. */
function binnedSegments(list: readonly Attempt[], t0: number, t1: number, about: string): Segment[] {
  const span = t1 - t0;
  const slot = span / TIMELINE_BINS;
  // summed in Maps (a keyed store on a plain object an attempt was most of this), then as objects keyed in the order the outcomes came
  const sums: Map<string, number>[] = [];
  for (const a of list) {
    const b = Math.min(TIMELINE_BINS - 1, Math.max(0, Math.floor((a.start - t0) / slot)));
    const m = (sums[b] ??= new Map());
    m.set(a.outcome, (m.get(a.outcome) ?? 0) + a.weight);
  }
  const counts: Record<string, number>[] = [];
  sums.forEach((m, b) => {
    const c: Record<string, number> = (counts[b] = {});
    for (const [k, v] of m) c[k] = Math.max(1, Math.round(v));
  });
  const segs: Segment[] = [];
  let run: { from: number; to: number; n: number; outcome: string } | undefined;
  const flush = (): void => {
    if (!run) return;
    segs.push({
      start: t0 + run.from * slot,
      end: t0 + (run.to + 1) * slot,
      color: outcomeColor(run.outcome),
      title: `${formatDuration(run.from * slot)} – ${formatDuration((run.to + 1) * slot)}: ${about}${plural(run.n, 'attempt')}, all ${run.outcome}`,
    });
    run = undefined;
  };
  for (let b = 0; b < TIMELINE_BINS; b++) {
    const c = counts[b];
    if (!c) {
      flush();
      continue;
    }
    const kinds = Object.keys(c);
    if (kinds.length === 1) {
      const only = kinds[0]!;
      if (run && run.outcome === only && run.to === b - 1) {
        run.to = b;
        run.n += c[only]!;
      } else {
        flush();
        run = { from: b, to: b, n: c[only]!, outcome: only };
      }
      continue;
    }
    flush();
    const total = kinds.reduce((s, k) => s + c[k]!, 0);
    let y = 0;
    const ordered = [...ATTEMPT_OUTCOMES.filter((o) => c[o]), ...kinds.filter((k) => !(ATTEMPT_OUTCOMES as readonly string[]).includes(k))].reverse();
    const title = `${formatDuration(b * slot)} – ${formatDuration((b + 1) * slot)}: ${about}${plural(total, 'attempt')} (${kinds.map((k) => `${c[k]} ${k}`).join(', ')})`;
    // a few failures among many successes stay visible: every outcome other than success gets at
    // least a fifth of the slot's height (the title has the real counts)
    const heights = new Map<string, number>();
    let other = 0;
    for (const k of ordered) {
      if (k === 'success') continue;
      const h = Math.max(c[k]! / total, 0.2);
      heights.set(k, h);
      other += h;
    }
    const squeeze = other > 1 ? 1 / other : 1;
    for (const k of heights.keys()) heights.set(k, heights.get(k)! * squeeze);
    if (c.success) heights.set('success', Math.max(0, 1 - other * squeeze));
    for (const k of ordered) {
      const h = heights.get(k) ?? 0;
      if (h <= 0) continue;
      segs.push({ start: t0 + b * slot, end: t0 + (b + 1) * slot, color: outcomeColor(k), title, y0: y, h });
      y += h;
    }
  }
  flush();
  return segs;
}
