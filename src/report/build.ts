// The HTML run report: one self-contained page (styles, script and data inline, a CSP that forbids
// any fetch) built from a run folder. Large runs are aggregated before anything is drawn: at most a
// few thousand timeline segments, ≤ 500 latency buckets, a histogram, the top causes of failure,
// and a bounded sample of the log records.
import path from 'node:path';
import {
  categoryOf,
  fates,
  groupFailures,
  isFailure,
  messagePattern,
  percentile,
  summarize,
  topFrame,
  type Cause,
} from '../run-folder/analysis.js';
import type { Attempt, LogRecord, MetricRecord, RunData, StepRun } from '../run-folder/model.js';
import { diagnose, type Finding } from '../doctor/findings.js';
import { CLIENT_SCRIPT, STYLES } from './assets.js';
import {
  COLORS,
  esc,
  formatDuration,
  formatNumber,
  histogramSvg,
  lineChartSvg,
  maxOf,
  minOf,
  outcomeColor,
  timelineSvg,
  type Band,
  type Dot,
  type HistogramBin,
  type Lane,
  type Segment,
} from './svg.js';

export interface ReportOptions {
  /** Page title; default from the run. */
  readonly title?: string;
  /** Log records embedded in the page (default 5,000): all errors and warnings first, then the first and last others. */
  readonly maxLogRecords?: number;
  /** Mini-batch attempts drawn one by one in a timeline; above this they are aggregated (default 2,500). */
  readonly maxSegments?: number;
  /** Time shown as "generated at". */
  readonly now?: Date;
}

const ATTEMPT_OUTCOMES = ['success', 'error', 'timeout', 'crash', 'aborted'] as const;
const LATENCY_BUCKETS = 500;
const DOTS_LIMIT = 1500;
const TIMELINE_BINS = 400;
const MAX_LANES = 48;
const CAUSES_SHOWN = 25;
const METRIC_CHARTS = 40;
const METRIC_POINTS = 1000;
const TABLE_ROWS = 500;
const LIST_ROWS = 200;

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}

function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '–' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function badge(outcome: string): string {
  return `<span class="badge" style="background:${outcomeColor(outcome)}">${esc(outcome)}</span>`;
}

function firstLine(s: string, max = 240): string {
  const l = s.split('\n')[0]!;
  return l.length > max ? `${l.slice(0, max)}…` : l;
}

function mbButton(id: string): string {
  return `<button class="mb-link" data-mb="${esc(id)}" title="show the log records of ${esc(id)}">${esc(id)}</button>`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  return `<div class="table-wrap"><table class="${cls}"><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

function legend(items: readonly { label: string; color: string }[]): string {
  return `<div class="legend">${items.map((i) => `<span><i style="background:${i.color}"></i>${esc(i.label)}</span>`).join('')}</div>`;
}

function tiles(items: readonly { label: string; value: string; tone?: string }[]): string {
  return `<div class="tiles">${items.map((t) => `<div class="tile${t.tone ? ` ${t.tone}` : ''}"><div class="v">${t.value}</div><div class="l">${esc(t.label)}</div></div>`).join('')}</div>`;
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return esc(formatNumber(v));
  if (typeof v === 'string') return esc(v.length > 300 ? `${v.slice(0, 300)}…` : v);
  return esc(JSON.stringify(v).slice(0, 300));
}

// ---------------------------------------------------------------------------------------------
// findings

function findingsSection(findings: readonly Finding[], steps: readonly StepRun[]): string {
  const head = `<section id="findings"><h2>Findings</h2>`;
  if (findings.length === 0) {
    const checked = steps.some((s) => s.attempts.length > 0) ? 'latency trend, failures, retries, timeouts, ' : '';
    return `${head}<p class="ok">No findings: the doctor's checks (${checked}exports, dependencies, outputs, re-runs) found nothing to report.</p></section>`;
  }
  const items = findings
    .map(
      (f) => `<div class="finding sev-${f.severity}"><div class="f-head"><span class="sev">${f.severity}</span> <code>${esc(f.id)}</code> ${esc(f.title)}</div>` +
        `<ul>${f.evidence.map((e) => `<li>${esc(e)}</li>`).join('')}</ul><div class="fix"><b>Fix:</b> ${esc(f.fix)}</div></div>`,
    )
    .join('');
  return `${head}<p class="hint">The same checks as <code>step-telemetry doctor</code> (without a reference to compare versions with).</p>${items}</section>`;
}

// ---------------------------------------------------------------------------------------------
// pipeline overview

function stepRange(step: StepRun): { start?: number; end?: number } {
  let start = step.started;
  let end = step.ended;
  if (step.attempts.length > 0) {
    start = Math.min(start ?? Infinity, step.attempts[0]!.start);
    let last = -Infinity;
    for (const a of step.attempts) if (a.start + a.durationMs > last) last = a.start + a.durationMs;
    end = Math.max(end ?? -Infinity, last);
  }
  return { start, end };
}

function overviewSection(run: RunData): string {
  const rows = run.steps.map((s, i) => {
    const { start, end } = stepRange(s);
    const mbs = new Set(s.attempts.map((a) => a.id)).size || s.miniBatches.length;
    const failedAttempts = s.attempts.filter(isFailure).length;
    return [
      `<a href="#step-${i}">${esc(s.label)}</a>`,
      badge(s.outcome),
      esc(iso(start)),
      start !== undefined && end !== undefined ? esc(formatDuration(end - start)) : '–',
      mbs > 0 ? esc(mbs.toLocaleString('en-US')) : '–',
      failedAttempts > 0 ? `<span class="bad">${failedAttempts.toLocaleString('en-US')}</span>` : mbs > 0 ? '0' : '–',
      esc(String(s.logCounts.error ?? 0)),
      esc(s.runtime?.node ?? '–'),
    ];
  });
  const starts = run.steps.map((s) => stepRange(s).start).filter((x): x is number => x !== undefined);
  const ends = run.steps.map((s) => stepRange(s).end).filter((x): x is number => x !== undefined);
  let chart = '';
  if (starts.length > 0 && ends.length > 0) {
    const t0 = minOf(starts);
    const t1 = Math.max(maxOf(ends), t0 + 1);
    const lanes: Lane[] = run.steps.map((s) => {
      const { start, end } = stepRange(s);
      const segs: Segment[] = [];
      if (start !== undefined) {
        const e = end ?? t1;
        segs.push({ start, end: e, color: outcomeColor(s.outcome), title: `${s.label}: ${s.outcome}, ${formatDuration(e - start)} from ${iso(start)}` });
      }
      return { label: s.label, segments: segs, title: s.label };
    });
    chart = `<figure class="chart" data-chart="steps"><figcaption>Steps over time (from ${esc(iso(t0))})</figcaption>${timelineSvg({ lanes, t0, t1, id: 'steps-timeline', label: 'steps timeline' })}${legend(
      ['success', 'failure', 'terminated', 'crashed', 'running'].map((o) => ({ label: o === 'running' ? 'never ended' : o, color: outcomeColor(o) })),
    )}</figure>`;
  }
  return `<section id="overview"><h2>Pipeline run ${esc(run.pipelineRunId)}</h2>${chart}${table(['step', 'outcome', 'started', 'duration', 'mini-batches', 'failed attempts', 'error logs', 'Node.js'], rows)}</section>`;
}

// ---------------------------------------------------------------------------------------------
// one step

function keyFigures(step: StepRun): string {
  const { start, end } = stepRange(step);
  const r = step.result as
    | { mini_batches?: Record<string, number>; items?: Record<string, number>; retries?: number; timeouts?: number; worker_restarts?: number; status?: string; reason?: string }
    | undefined;
  const fateMap = fates(step.attempts);
  const finals = [...fateMap.values()];
  const items: { label: string; value: string; tone?: string }[] = [];
  items.push({ label: 'outcome', value: badge(step.outcome) });
  if (start !== undefined && end !== undefined) items.push({ label: 'duration', value: esc(formatDuration(end - start)) });
  if (r?.mini_batches) {
    const m = r.mini_batches;
    items.push({ label: 'mini-batches succeeded', value: esc(`${(m.succeeded ?? 0).toLocaleString('en-US')} / ${(m.total ?? 0).toLocaleString('en-US')}`) });
    items.push({ label: 'mini-batches failed', value: esc((m.failed ?? 0).toLocaleString('en-US')), tone: m.failed ? 'bad' : undefined });
    if (m.not_processed) items.push({ label: 'not processed', value: esc(m.not_processed.toLocaleString('en-US')), tone: 'warn' });
  } else if (finals.length > 0) {
    const ok = finals.filter((f) => f.final === 'success').length;
    items.push({ label: 'mini-batches succeeded', value: esc(`${ok.toLocaleString('en-US')} / ${finals.length.toLocaleString('en-US')}`) });
    items.push({ label: 'mini-batches failed', value: esc((finals.length - ok).toLocaleString('en-US')), tone: finals.length - ok > 0 ? 'bad' : undefined });
  }
  if (r?.items) items.push({ label: 'items succeeded', value: esc(`${(r.items.succeeded ?? 0).toLocaleString('en-US')} / ${(r.items.total ?? 0).toLocaleString('en-US')}`) });
  const retries = r?.retries ?? step.attempts.filter((a) => a.attempt > 1).length;
  const timeouts = r?.timeouts ?? step.attempts.filter((a) => a.outcome === 'timeout').length;
  if (step.attempts.length > 0 || r) {
    items.push({ label: 'retries', value: esc(retries.toLocaleString('en-US')), tone: retries ? 'warn' : undefined });
    items.push({ label: 'timeouts', value: esc(timeouts.toLocaleString('en-US')), tone: timeouts ? 'warn' : undefined });
  }
  if (r?.worker_restarts) items.push({ label: 'worker restarts', value: esc(String(r.worker_restarts)), tone: 'warn' });
  const ok = step.attempts.filter((a) => a.outcome === 'success').map((a) => a.durationMs);
  if (ok.length > 0) {
    const s = summarize(ok);
    items.push({ label: 'p50 / p95 / p99 (successful attempts)', value: esc(`${formatDuration(s.p50)} / ${formatDuration(s.p95)} / ${formatDuration(s.p99)}`) });
  }
  items.push({ label: 'errors / warnings logged', value: esc(`${step.logCounts.error ?? 0} / ${step.logCounts.warn ?? 0}`), tone: step.logCounts.error ? 'bad' : undefined });
  const reason = typeof r?.reason === 'string' ? `<p class="reason">${esc(r.reason)}</p>` : '';
  return tiles(items) + reason;
}

function progressSection(step: StepRun, i: number): string {
  const parts: string[] = [];
  if (step.progressOverview) parts.push(`<pre class="overview">${esc(step.progressOverview)}</pre>`);
  if (step.workers.length > 0) {
    const cols = Object.keys(step.workers[0]!);
    parts.push(`<h4>Workers</h4>${table(cols.map(esc), step.workers.map((w) => cols.map((c) => esc(w[c] ?? ''))))}`);
  }
  if (step.attempts.length > 0 && !step.progressOverview) {
    const fateMap = fates(step.attempts);
    const byWorker = new Map<string, { attempts: number; failed: number; busy: number }>();
    for (const a of step.attempts) {
      const w = byWorker.get(a.worker) ?? { attempts: 0, failed: 0, busy: 0 };
      w.attempts++;
      if (isFailure(a)) w.failed++;
      w.busy += a.durationMs;
      byWorker.set(a.worker, w);
    }
    const finals = [...fateMap.values()];
    parts.push(
      `<p>${plural(finals.length, 'mini-batch', 'mini-batches')}: ${finals.filter((f) => f.final === 'success').length.toLocaleString('en-US')} succeeded, ` +
        `${finals.filter((f) => f.final !== 'success').length.toLocaleString('en-US')} did not; ${plural(step.attempts.length, 'attempt')}.</p>`,
    );
    parts.push(
      table(
        ['worker', 'attempts', 'failed attempts', 'busy'],
        [...byWorker.entries()].sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true })).map(([w, s]) => [esc(w), esc(String(s.attempts)), esc(String(s.failed)), esc(formatDuration(s.busy))]),
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

function timelineSection(step: StepRun, i: number, maxSegments: number): string {
  const attempts = step.attempts;
  if (attempts.length === 0) return '';
  const { start, end } = stepRange(step);
  const t0 = start ?? attempts[0]!.start;
  const t1 = Math.max((end ?? t0) as number, t0 + 1);
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
  const aggregated = attempts.length > maxSegments;
  const lanes: Lane[] = names.map((name) => {
    const list = byWorker.get(name)!;
    if (!aggregated) {
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
    }
    return { label: name, segments: binnedSegments(list, t0, t1) };
  });
  const note = aggregated
    ? `<p class="hint">${plural(attempts.length, 'attempt')} are aggregated into ${TIMELINE_BINS} time slots per worker: each slot is split by outcome (any failure gets at least a fifth of the height, so that rare failures show); hover a slot for its counts.</p>`
    : '<p class="hint">One bar per mini-batch attempt; hover for details, click to show its log records.</p>';
  return (
    `<section class="sub" id="timeline-${i}"><h3>Timeline of mini-batches</h3>${note}<figure class="chart" data-chart="timeline">` +
    `<figcaption>Attempts by worker over time (from ${esc(iso(t0))})</figcaption>${timelineSvg({ lanes, t0, t1, id: `timeline-svg-${i}`, label: `${step.label} mini-batch timeline` })}` +
    `${legend(ATTEMPT_OUTCOMES.map((o) => ({ label: o, color: outcomeColor(o) })))}</figure></section>`
  );
}

/** Attempts of one lane in time slots; each slot stacked by outcome; runs of all-success slots merged. */
function binnedSegments(list: readonly Attempt[], t0: number, t1: number): Segment[] {
  const span = t1 - t0;
  const slot = span / TIMELINE_BINS;
  const counts: Record<string, number>[] = [];
  for (const a of list) {
    const b = Math.min(TIMELINE_BINS - 1, Math.max(0, Math.floor((a.start - t0) / slot)));
    const c = (counts[b] ??= {});
    c[a.outcome] = (c[a.outcome] ?? 0) + 1;
  }
  const segs: Segment[] = [];
  let run: { from: number; to: number; n: number; outcome: string } | undefined;
  const flush = (): void => {
    if (!run) return;
    segs.push({
      start: t0 + run.from * slot,
      end: t0 + (run.to + 1) * slot,
      color: outcomeColor(run.outcome),
      title: `${formatDuration(run.from * slot)} – ${formatDuration((run.to + 1) * slot)}: ${plural(run.n, 'attempt')}, all ${run.outcome}`,
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
    const title = `${formatDuration(b * slot)} – ${formatDuration((b + 1) * slot)}: ${plural(total, 'attempt')} (${kinds.map((k) => `${c[k]} ${k}`).join(', ')})`;
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

function latencySection(step: StepRun, i: number): string {
  const done = step.attempts.filter((a) => a.outcome !== 'aborted');
  if (done.length === 0) return '';
  const t0 = done[0]!.start;
  let tMax = t0;
  for (const a of done) if (a.start > tMax) tMax = a.start;
  const span = Math.max(1, tMax - t0);
  const nb = Math.max(1, Math.min(LATENCY_BUCKETS, Math.ceil(done.length / 4)));
  const buckets: number[][] = Array.from({ length: nb }, () => []);
  for (const a of done) buckets[Math.min(nb - 1, Math.floor(((a.start - t0) / span) * nb))]!.push(a.durationMs);
  const p50: [number, number][] = [];
  const p95: [number, number][] = [];
  const p99: [number, number][] = [];
  const band: [number, number, number][] = [];
  buckets.forEach((b, k) => {
    if (b.length === 0) return;
    const sorted = Float64Array.from(b).sort();
    const x = ((k + 0.5) / nb) * span;
    p50.push([x, percentile(sorted, 50)]);
    p95.push([x, percentile(sorted, 95)]);
    p99.push([x, percentile(sorted, 99)]);
    band.push([x, sorted[0]!, sorted[sorted.length - 1]!]);
  });
  const dots: Dot[] =
    done.length <= DOTS_LIMIT
      ? done.map((a) => ({ x: a.start - t0, y: a.durationMs, color: outcomeColor(a.outcome), title: `${a.id} attempt ${a.attempt}: ${formatDuration(a.durationMs)} (${a.outcome})` }))
      : [];
  const bands: Band[] = done.length > DOTS_LIMIT ? [{ color: COLORS.band, points: band, title: 'min–max per bucket' }] : [];
  const chart = lineChartSvg({
    id: `latency-svg-${i}`,
    label: `${step.label} mini-batch latency over time`,
    series: [
      { name: 'p50', color: COLORS.p50, points: p50 },
      { name: 'p95', color: COLORS.p95, points: p95 },
      { name: 'p99', color: COLORS.p99, points: p99, dash: true },
    ],
    dots,
    bands,
    xTime: true,
    xLabel: 'time since the first attempt',
    yFormat: formatDuration,
    yMin: 0,
  });
  const bucketNote = nb < done.length ? `${nb} time buckets of ${formatDuration(span / nb)}` : 'one point per attempt';
  // distribution
  const durations = done.map((a) => a.durationMs);
  const s = summarize(durations);
  const positive = durations.filter((d) => d > 0);
  const lo = positive.length ? minOf(positive) : 0;
  const hi = s.max;
  const log = lo > 0 && hi / lo >= 20;
  const nBins = 40;
  const bins: HistogramBin[] = [];
  if (hi > lo) {
    for (let k = 0; k < nBins; k++) {
      const a = log ? lo * (hi / lo) ** (k / nBins) : lo + ((hi - lo) * k) / nBins;
      const b = log ? lo * (hi / lo) ** ((k + 1) / nBins) : lo + ((hi - lo) * (k + 1)) / nBins;
      bins.push({ lo: a, hi: b, count: 0 });
    }
    const counts = bins as { lo: number; hi: number; count: number }[];
    for (const d of durations) {
      const v = Math.max(d, lo);
      const k = log ? Math.floor((Math.log(v / lo) / Math.log(hi / lo)) * nBins) : Math.floor(((v - lo) / (hi - lo)) * nBins);
      counts[Math.min(nBins - 1, Math.max(0, k))]!.count++;
    }
  } else bins.push({ lo: lo * 0.9, hi: lo * 1.1 || 1, count: durations.length });
  const hist = histogramSvg({
    id: `histogram-svg-${i}`,
    label: `${step.label} mini-batch latency distribution`,
    bins,
    markers: [
      { value: s.p50, label: 'p50', color: COLORS.p50 },
      { value: s.p95, label: 'p95', color: COLORS.p95 },
      { value: s.p99, label: 'p99', color: COLORS.p99 },
    ],
    log,
    format: formatDuration,
  });
  const byOutcome = new Map<string, number[]>();
  for (const a of done) {
    const l = byOutcome.get(a.outcome);
    if (l) l.push(a.durationMs);
    else byOutcome.set(a.outcome, [a.durationMs]);
  }
  const statRows = [['all attempts', s] as const, ...[...byOutcome.entries()].map(([o, v]) => [o, summarize(v)] as const)].map(([label, st]) => [
    esc(label),
    esc(st.n.toLocaleString('en-US')),
    esc(formatDuration(st.min)),
    esc(formatDuration(st.mean)),
    `<b>${esc(formatDuration(st.p50))}</b>`,
    `<b>${esc(formatDuration(st.p95))}</b>`,
    `<b>${esc(formatDuration(st.p99))}</b>`,
    esc(formatDuration(st.max)),
  ]);
  return (
    `<section class="sub" id="latency-${i}"><h3>Mini-batch latency</h3>` +
    `<figure class="chart" data-chart="latency"><figcaption>Duration of attempts over the run: p50, p95 and p99 per bucket (${esc(bucketNote)})</figcaption>${chart}` +
    `${legend([
      { label: 'p50', color: COLORS.p50 },
      { label: 'p95', color: COLORS.p95 },
      { label: 'p99', color: COLORS.p99 },
      ...(dots.length > 0 ? ATTEMPT_OUTCOMES.filter((o) => byOutcome.has(o)).map((o) => ({ label: `${o} attempt`, color: outcomeColor(o) })) : [{ label: 'min–max', color: '#b8cce6' }]),
    ])}</figure>` +
    `<figure class="chart" data-chart="histogram"><figcaption>Distribution of attempt durations (${log ? 'logarithmic' : 'linear'} bins)</figcaption>${hist}</figure>` +
    `${table(['attempts', 'count', 'min', 'mean', 'p50', 'p95', 'p99', 'max'], statRows, 'num')}</section>`
  );
}

function causeRow(c: Cause, t0: number): string[] {
  const frame = topFrame(c.stack);
  const detail =
    `<details><summary>${esc(firstLine(c.example, 200))}</summary><div class="pattern">pattern: <code>${esc(c.pattern)}</code></div>` +
    `${frame ? `<div class="pattern">at <code>${esc(frame)}</code></div>` : ''}${c.stack ? `<pre class="stack">${esc(c.stack.slice(0, 6000))}</pre>` : c.example.includes('\n') ? `<pre class="stack">${esc(c.example.slice(0, 6000))}</pre>` : ''}</details>`;
  return [
    `<span class="cat">${esc(c.category)}</span>${c.type ? `<br><small>${esc(c.type)}</small>` : ''}`,
    detail,
    esc(c.attempts.toLocaleString('en-US')),
    esc(c.miniBatches.size.toLocaleString('en-US')),
    c.finalFailures > 0 ? `<span class="bad">${c.finalFailures.toLocaleString('en-US')}</span>` : '0',
    esc(c.recovered.toLocaleString('en-US')),
    esc(String(c.workers.size)),
    esc(`${formatDuration(c.first - t0)} – ${formatDuration(c.last - t0)}`),
    c.exampleIds.slice(0, 6).map(mbButton).join(' ') + (c.miniBatches.size > 6 ? ' …' : ''),
  ];
}

function failuresSection(step: StepRun, i: number): string {
  const parts: string[] = [];
  const fateMap = fates(step.attempts);
  const causes = groupFailures(step, fateMap);
  const failed = step.attempts.filter(isFailure);
  if (step.attempts.length > 0) {
    const retried = [...fateMap.values()].filter((f) => f.attempts.length > 1 || f.attempts[0]!.attempt > 1);
    const recovered = retried.filter((f) => f.final === 'success').length;
    const lost = [...fateMap.values()].filter((f) => f.final !== 'success' && f.final !== 'aborted').length;
    const byCat = new Map<string, number>();
    for (const a of failed) byCat.set(categoryOf(a), (byCat.get(categoryOf(a)) ?? 0) + 1);
    parts.push(
      `<p>${plural(failed.length, 'failed attempt')}${byCat.size > 0 ? ` (${[...byCat.entries()].map(([k, v]) => `${esc(k)} × ${v.toLocaleString('en-US')}`).join(', ')})` : ''}; ` +
        `${plural(retried.length, 'mini-batch', 'mini-batches')} retried, ${recovered.toLocaleString('en-US')} of them then succeeded; ${plural(lost, 'mini-batch', 'mini-batches')} failed for good.</p>`,
    );
  }
  if (causes.length > 0) {
    const t0 = step.attempts[0]!.start;
    parts.push(`<h4>Failed attempts by cause</h4>`);
    parts.push(
      table(
        ['category', 'error (click for the stack trace)', 'attempts', 'mini-batches', 'failed for good', 'recovered', 'workers', 'seen (since start)', 'examples'],
        causes.slice(0, CAUSES_SHOWN).map((c) => causeRow(c, t0)),
        'causes',
      ),
    );
    if (causes.length > CAUSES_SHOWN) {
      const rest = causes.slice(CAUSES_SHOWN);
      parts.push(`<p class="hint">${plural(rest.length, 'more cause')} with ${plural(rest.reduce((s, c) => s + c.attempts, 0), 'attempt')} not shown.</p>`);
    }
  }
  // item-level failures of mini-batches that ran
  const itemRows = step.miniBatches.filter((m) => m.failedItems > 0 && m.status === 'RUN_DONE');
  if (itemRows.length > 0) {
    const groups = new Map<string, { category: string; example: string; items: number; ids: string[] }>();
    for (const m of itemRows) {
      const key = `${m.errorCategory}|${messagePattern(m.errorMessage)}`;
      const g = groups.get(key) ?? { category: m.errorCategory, example: m.errorMessage, items: 0, ids: [] };
      g.items += m.failedItems;
      if (g.ids.length < 6) g.ids.push(m.id);
      groups.set(key, g);
    }
    parts.push(`<h4>Failed items in mini-batches that ran</h4>`);
    parts.push(
      table(
        ['category', 'reason', 'items', 'examples'],
        [...groups.values()]
          .sort((a, b) => b.items - a.items)
          .slice(0, CAUSES_SHOWN)
          .map((g) => [esc(g.category), esc(firstLine(g.example, 300)), esc(g.items.toLocaleString('en-US')), g.ids.map(mbButton).join(' ')]),
      ),
    );
  }
  // errors outside mini-batches: failed spans and error log records
  const other = new Map<string, { source: string; example: string; stack?: string; count: number; first: number }>();
  for (const s of step.errorSpans) {
    const key = `span|${s.name}|${messagePattern(s.message)}`;
    const g = other.get(key) ?? { source: `span "${s.name}"`, example: `${s.type ? `${s.type}: ` : ''}${s.message}`, stack: s.stack, count: 0, first: s.start };
    g.count++;
    other.set(key, g);
  }
  for (const l of step.logs) {
    if (l.level !== 'error' || l.miniBatch) continue;
    const text = l.error ? `${l.message} (${l.error})` : l.message;
    const key = `log|${messagePattern(text)}`;
    const g = other.get(key) ?? { source: 'error log record', example: text, stack: l.stack, count: 0, first: l.time };
    g.count++;
    other.set(key, g);
  }
  if (other.size > 0) {
    parts.push(`<h4>Errors outside mini-batches</h4>`);
    parts.push(
      table(
        ['source', 'error', 'count', 'first'],
        [...other.values()]
          .sort((a, b) => b.count - a.count)
          .slice(0, CAUSES_SHOWN)
          .map((g) => [
            esc(g.source),
            g.stack ? `<details><summary>${esc(firstLine(g.example, 200))}</summary><pre class="stack">${esc(g.stack.slice(0, 6000))}</pre></details>` : esc(firstLine(g.example, 300)),
            esc(String(g.count)),
            esc(iso(g.first)),
          ]),
      ),
    );
  }
  if (step.errorSummary) parts.push(`<details class="file"><summary>error-summary.txt</summary><pre>${esc(step.errorSummary)}</pre></details>`);
  if (failed.length === 0 && other.size === 0 && itemRows.length === 0) {
    if (step.attempts.length === 0 && !step.errorSummary) return '';
    parts.push('<p class="ok">No failures.</p>');
  }
  return `<section class="sub" id="failures-${i}"><h3>Failures and retries</h3>${parts.join('')}</section>`;
}

// ---------------------------------------------------------------------------------------------
// metrics

function scalarChart(name: string, records: readonly MetricRecord[], id: string): string {
  const withStep = records.every((r) => r.step !== undefined);
  const pts: [number, number][] = records.map((r, k) => [withStep ? r.step! : k + 1, r.value as number]);
  if (withStep) pts.sort((a, b) => a[0] - b[0]);
  let series: [number, number][] = pts;
  const bands: Band[] = [];
  if (pts.length > METRIC_POINTS) {
    const xMin = pts[0]![0];
    const xMax = pts[pts.length - 1]![0];
    const nb = METRIC_POINTS / 2;
    const acc: { n: number; sum: number; min: number; max: number; x: number }[] = [];
    for (const [x, y] of pts) {
      const b = Math.min(nb - 1, Math.floor(((x - xMin) / Math.max(1e-12, xMax - xMin)) * nb));
      const a = (acc[b] ??= { n: 0, sum: 0, min: Infinity, max: -Infinity, x: 0 });
      a.n++;
      a.sum += y;
      a.x += x;
      if (y < a.min) a.min = y;
      if (y > a.max) a.max = y;
    }
    series = [];
    const band: [number, number, number][] = [];
    for (const a of acc) {
      if (!a) continue;
      series.push([a.x / a.n, a.sum / a.n]);
      band.push([a.x / a.n, a.min, a.max]);
    }
    bands.push({ color: COLORS.band, points: band, title: 'min–max per bucket' });
  }
  const values = records.map((r) => r.value as number);
  const last = values[values.length - 1]!;
  const chart = lineChartSvg({
    id,
    label: `metric ${name}`,
    series: [{ name, color: COLORS.line, points: series }],
    bands,
    xLabel: withStep ? 'step' : 'record',
    width: 480,
    height: 220,
  });
  return `<figure class="chart small" data-chart="metric"><figcaption><b>${esc(name)}</b> · ${plural(values.length, 'value')} · last ${esc(formatNumber(last))} · min ${esc(formatNumber(minOf(values)))} · max ${esc(formatNumber(maxOf(values)))}${pts.length > METRIC_POINTS ? ' · mean and min–max per bucket' : ''}</figcaption>${chart}</figure>`;
}

function metricsSection(step: StepRun, i: number): string {
  const metrics = step.metrics;
  if (metrics.length === 0) return '';
  const byName = new Map<string, MetricRecord[]>();
  const order: string[] = [];
  for (const m of metrics) {
    const key = `${m.kind}\u0000${m.name}`;
    let list = byName.get(key);
    if (!list) {
      list = [];
      byName.set(key, list);
      order.push(key);
    }
    list.push(m);
  }
  const charts: string[] = [];
  const singles: string[][] = [];
  const overflow: string[][] = [];
  const tablesHtml: string[] = [];
  let tags: Record<string, string> = {};
  let chartNo = 0;
  for (const key of order) {
    const list = byName.get(key)!;
    const { kind, name } = list[0]!;
    if (kind === 'scalar') {
      const numeric = list.filter((r) => typeof r.value === 'number' && Number.isFinite(r.value));
      if (numeric.length === 0) continue;
      if (numeric.length === 1) {
        singles.push([esc(name), esc(formatNumber(numeric[0]!.value as number)), numeric[0]!.step !== undefined ? esc(String(numeric[0]!.step)) : '', esc(iso(numeric[0]!.time))]);
      } else if (chartNo < METRIC_CHARTS) {
        charts.push(scalarChart(name, numeric, `metric-svg-${i}-${chartNo++}`));
      } else {
        const v = numeric.map((r) => r.value as number);
        overflow.push([esc(name), esc(String(v.length)), esc(formatNumber(v[v.length - 1]!)), esc(formatNumber(minOf(v))), esc(formatNumber(maxOf(v)))]);
      }
    } else if (kind === 'list') {
      const last = list[list.length - 1]!;
      const values = Array.isArray(last.value) ? (last.value as unknown[]) : [];
      tablesHtml.push(
        `<div class="mtable"><h4>${esc(name)} <small>list${list.length > 1 ? `, logged ${list.length} times (the last shown)` : ''}, ${plural(values.length, 'value')}</small></h4>` +
          table(['#', 'value'], values.slice(0, LIST_ROWS).map((v, k) => [esc(String(k)), cellText(v)]), 'num') +
          (values.length > LIST_ROWS ? `<p class="hint">${values.length - LIST_ROWS} more values not shown</p>` : '') +
          '</div>',
      );
    } else if (kind === 'row') {
      const cols: string[] = [];
      for (const r of list) for (const k of Object.keys((r.value as Record<string, unknown>) ?? {})) if (!cols.includes(k)) cols.push(k);
      tablesHtml.push(
        `<div class="mtable"><h4>${esc(name)} <small>rows, ${plural(list.length, 'row')}</small></h4>` +
          table(
            ['step', ...cols.map(esc)],
            list.slice(0, TABLE_ROWS).map((r) => [r.step !== undefined ? esc(String(r.step)) : '', ...cols.map((c) => cellText((r.value as Record<string, unknown>)?.[c]))]),
          ) +
          (list.length > TABLE_ROWS ? `<p class="hint">${list.length - TABLE_ROWS} more rows not shown</p>` : '') +
          '</div>',
      );
    } else if (kind === 'table') {
      const last = list[list.length - 1]!;
      const t = (last.value as Record<string, unknown[]>) ?? {};
      const cols = Object.keys(t);
      const n = cols.length > 0 && Array.isArray(t[cols[0]!]) ? t[cols[0]!]!.length : 0;
      const rows: string[][] = [];
      for (let r = 0; r < Math.min(n, TABLE_ROWS); r++) rows.push(cols.map((c) => cellText(t[c]?.[r])));
      tablesHtml.push(
        `<div class="mtable"><h4>${esc(name)} <small>table${list.length > 1 ? `, logged ${list.length} times (the last shown)` : ''}, ${plural(n, 'row')}</small></h4>` +
          table(cols.map(esc), rows) +
          (n > TABLE_ROWS ? `<p class="hint">${n - TABLE_ROWS} more rows not shown</p>` : '') +
          '</div>',
      );
    } else if (kind === 'tags') {
      for (const r of list) tags = { ...tags, ...((r.value as Record<string, string>) ?? {}) };
    }
  }
  const parts: string[] = [];
  if (charts.length > 0) parts.push(`<div class="grid">${charts.join('')}</div>`);
  if (singles.length > 0) parts.push(`<h4>Single values</h4>${table(['name', 'value', 'step', 'time'], singles)}`);
  if (overflow.length > 0) parts.push(`<h4>More series</h4>${table(['name', 'values', 'last', 'min', 'max'], overflow)}`);
  if (tablesHtml.length > 0) parts.push(`<div class="grid">${tablesHtml.join('')}</div>`);
  if (Object.keys(tags).length > 0) parts.push(`<h4>Tags</h4>${table(['tag', 'value'], Object.entries(tags).map(([k, v]) => [esc(k), esc(v)]))}`);
  return `<section class="sub" id="metrics-${i}"><h3>Metrics (step.log)</h3>${parts.join('')}</section>`;
}

// ---------------------------------------------------------------------------------------------
// runtime, exports, files

function runtimeSection(step: StepRun, i: number): string {
  const rt = step.runtime;
  const parts: string[] = [];
  if (rt) {
    parts.push(
      table(
        ['Node.js', 'platform', 'arch', 'CPUs', 'memory', 'package.json'],
        [[esc(rt.node ?? '?'), esc(rt.platform ?? '?'), esc(rt.arch ?? '?'), esc(String(rt.cpus ?? '?')), rt.memoryBytes ? esc(`${(rt.memoryBytes / 2 ** 30).toFixed(1)} GiB`) : '?', esc(rt.packageJson ?? '–')]],
      ),
    );
    const deps = Object.entries(rt.dependencies);
    if (deps.length > 0) parts.push(`<details><summary>${plural(deps.length, 'direct dependency', 'direct dependencies')}</summary>${table(['package', 'installed'], deps.map(([k, v]) => [esc(k), v === null ? '<span class="bad">not installed</span>' : esc(v)]))}</details>`);
  }
  if (step.exports.length > 0) {
    parts.push(
      `<h4>Exports</h4>${table(
        ['backend', 'signal', 'target', 'batches', 'failed', 'not delivered', 'last error / hint'],
        step.exports.map((e) => [
          esc(e.backend),
          esc(e.signal),
          esc(e.target ?? ''),
          esc(String(e.batches)),
          e.failedBatches > 0 ? `<span class="bad">${e.failedBatches}</span>` : '0',
          esc(String(e.droppedItems)),
          esc([e.lastError, e.hint].filter(Boolean).join(' — ')),
        ]),
      )}`,
    );
  }
  if (step.diagnostics.length > 0) parts.push(`<h4>Telemetry diagnostics</h4><ul>${step.diagnostics.map((d) => `<li>${esc(d.message)}${d.count && d.count > 1 ? ` (× ${d.count})` : ''}</li>`).join('')}</ul>`);
  const identity = Object.entries(step.identity);
  if (identity.length > 0) parts.push(`<details><summary>identity</summary>${table(['field', 'value'], identity.map(([k, v]) => [esc(k), cellText(v)]))}</details>`);
  parts.push(
    `<details><summary>${plural(step.files.length, 'file')} in ${esc(step.folder)}</summary>${table(
      ['file', 'bytes'],
      step.files.map((f) => [esc(f.name), esc(f.bytes.toLocaleString('en-US'))]),
    )}</details>`,
  );
  return `<section class="sub" id="runtime-${i}"><h3>Runtime, exports and files</h3>${parts.join('')}</section>`;
}

// ---------------------------------------------------------------------------------------------
// logs

const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** A bounded sample of the log records: every error and warning first, then the first and last others. */
function sampleLogs(run: RunData, max: number): { step: number; rec: LogRecord }[] {
  const all: { step: number; rec: LogRecord }[] = [];
  run.steps.forEach((s, k) => {
    for (const rec of s.logs) all.push({ step: k, rec });
  });
  if (all.length <= max) return all.sort((a, b) => a.rec.time - b.rec.time);
  const severe = all.filter((x) => x.rec.level === 'error' || x.rec.level === 'warn');
  const rest = all.filter((x) => x.rec.level !== 'error' && x.rec.level !== 'warn').sort((a, b) => a.rec.time - b.rec.time);
  const keepSevere = severe.slice(0, Math.floor(max * 0.6));
  const room = max - keepSevere.length;
  const head = rest.slice(0, Math.ceil(room / 2));
  const tail = rest.length > head.length ? rest.slice(Math.max(head.length, rest.length - Math.floor(room / 2))) : [];
  return [...keepSevere, ...head, ...tail].sort((a, b) => a.rec.time - b.rec.time);
}

function logsSection(run: RunData, max: number): { html: string; data: string } {
  const sample = sampleLogs(run, max);
  const total = run.steps.reduce((s, st) => s + Object.values(st.logCounts).reduce((a, b) => a + b, 0), 0);
  const counts: Record<string, number> = {};
  for (const s of run.steps) for (const [k, v] of Object.entries(s.logCounts)) counts[k] = (counts[k] ?? 0) + v;
  const levels = [...LEVELS.filter((l) => counts[l] !== undefined), ...Object.keys(counts).filter((l) => !LEVELS.includes(l))];
  const levelIndex = new Map(levels.map((l, k) => [l, k]));
  const stacks: string[] = [];
  const stackIndex = new Map<string, number>();
  const base = sample.length > 0 ? sample[0]!.rec.time : 0;
  const records = sample.map(({ step, rec }) => {
    let si = -1;
    if (rec.stack) {
      const st = rec.stack.length > 4000 ? `${rec.stack.slice(0, 4000)}…` : rec.stack;
      si = stackIndex.get(st) ?? -1;
      if (si < 0) {
        si = stacks.length;
        stacks.push(st);
        stackIndex.set(st, si);
      }
    }
    const msg = rec.message.length > 600 ? `${rec.message.slice(0, 600)}…` : rec.message;
    return [rec.time - base, levelIndex.get(rec.level) ?? 0, step, rec.process, rec.miniBatch ?? '', msg, rec.error ?? '', si];
  });
  const data = JSON.stringify({ base, levels, steps: run.steps.map((s) => s.label), records, stacks, total }).replace(/</g, '\\u003c');
  const boxes = levels
    .map((l) => `<label class="lvl-box"><input type="checkbox" data-level="${esc(l)}" checked> ${esc(l)} <small>(${(counts[l] ?? 0).toLocaleString('en-US')})</small></label>`)
    .join('');
  const stepSelect =
    run.steps.length > 1
      ? `<label>step <select id="log-step"><option value="">all</option>${run.steps.map((s, k) => `<option value="${k}">${esc(s.label)}</option>`).join('')}</select></label>`
      : '';
  const sampled =
    sample.length < total
      ? `<p class="hint">${sample.length.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} log records are in this page: every error and warning first (up to ${Math.floor(max * 0.6).toLocaleString('en-US')}), then the first and the last of the others. All of them are in the logs*.jsonl files.</p>`
      : '';
  const html =
    `<section id="logs"><h2>Log records</h2>${sampled}<div class="filters">${boxes}${stepSelect}` +
    `<label>mini-batch <input id="log-mb" type="search" placeholder="e.g. mb-00042" size="14"></label>` +
    `<label>text <input id="log-text" type="search" placeholder="search messages" size="22"></label><button id="log-clear" type="button">clear filters</button></div>` +
    `<p id="log-count" class="hint"></p><div class="table-wrap"><table class="logs"><thead><tr><th>time (UTC)</th><th>level</th>${run.steps.length > 1 ? '<th>step</th>' : ''}<th>process</th><th>mini-batch</th><th>message</th></tr></thead><tbody id="log-rows"></tbody></table></div>` +
    `<button id="log-more" type="button" hidden>show more</button></section>`;
  return { html, data };
}

// ---------------------------------------------------------------------------------------------

/** The whole page for a run. */
export function buildReport(run: RunData, options: ReportOptions = {}): string {
  const maxSegments = options.maxSegments ?? 2500;
  const maxLogs = options.maxLogRecords ?? 5000;
  const { findings } = diagnose(run);
  const single = run.kind === 'step' && run.steps.length === 1;
  const title = options.title ?? (single ? `${run.steps[0]!.label} — run report` : `${run.pipelineName && run.pipelineName !== 'pipeline' ? `${run.pipelineName} · ` : ''}${run.pipelineRunId} — run report`);
  const nav: string[] = ['<a href="#findings">findings</a>'];
  if (!single) nav.push('<a href="#overview">steps</a>');
  const stepSections = run.steps.map((step, i) => {
    nav.push(`<a href="#step-${i}">${esc(step.label)}</a>`);
    const body = [
      keyFigures(step),
      progressSection(step, i),
      timelineSection(step, i, maxSegments),
      latencySection(step, i),
      failuresSection(step, i),
      metricsSection(step, i),
      runtimeSection(step, i),
    ].join('');
    const { start, end } = stepRange(step);
    return `<section class="step" id="step-${i}"><h2>${single ? 'Step ' : ''}${esc(step.label)} ${badge(step.outcome)}</h2><p class="hint">${esc(iso(start))} → ${esc(iso(end))}${step.attemptsSource === 'processed-report' ? ' · mini-batches from processed-mini-batches.csv (no spans)' : ''}</p>${body}</section>`;
  });
  nav.push('<a href="#logs">logs</a>');
  const logs = logsSection(run, maxLogs);
  const notes = run.notes.length > 0 ? `<div class="notes"><b>While reading:</b><ul>${run.notes.map((n) => `<li>${esc(n.message)}</li>`).join('')}</ul></div>` : '';
  const generated = (options.now ?? new Date()).toISOString();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${STYLES}</style></head>
<body><header><h1>${esc(title)}</h1><p class="hint">${esc(run.kind === 'pipeline' ? `pipeline run ${run.pipelineRunId}, ${plural(run.steps.length, 'step')}` : `pipeline run ${run.pipelineRunId}`)} · ${esc(path.resolve(run.folder))} · generated ${esc(generated)} by step-telemetry report</p>${notes}</header>
<nav>${nav.join('')}</nav><main>${findingsSection(findings, run.steps)}${single ? '' : overviewSection(run)}${stepSections.join('')}${logs.html}</main>
<script type="application/json" id="log-data">${logs.data}</script><script>${CLIENT_SCRIPT}</script></body></html>
`;
}
