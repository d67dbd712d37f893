// The HTML run report: one self-contained page (styles, script and data inline, a CSP that forbids
// any fetch) built from a run folder already read (src/run-folder/). Each section is drawn by its
// own module in sections/, the pictures by charts/; large runs are aggregated before anything is
// drawn: at most a few thousand timeline segments, ≤ 500 latency buckets, a histogram, the top
// causes of failure, and a bounded sample of the log records.
import path from 'node:path';
import { diagnose } from '../doctor/findings.js';
import type { RunData } from '../run-folder/model.js';
import { CLIENT_SCRIPT } from './client-script.js';
import { formatCount } from './format.js';
import { badge, esc, iso, plural } from './html.js';
import { failuresSection } from './sections/failures.js';
import { findingsSection } from './sections/findings.js';
import { headlineSection } from './sections/headline.js';
import { jobsSection } from './sections/jobs.js';
import { keyFigures } from './sections/key-figures.js';
import { latencySection } from './sections/latency.js';
import { logsSection } from './sections/logs.js';
import { metricsSection } from './sections/metrics.js';
import { overviewSection } from './sections/overview.js';
import { progressSection } from './sections/progress.js';
import { resourcesSection } from './sections/resources.js';
import { runtimeSection } from './sections/runtime.js';
import { timelineSection } from './sections/timeline.js';
import { stepView } from './step-view.js';
import { STYLES } from './styles.js';

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

/** The whole page for a run. */
export function buildReport(run: RunData, options: ReportOptions = {}): string {
  const maxSegments = options.maxSegments ?? 2500;
  const maxLogs = options.maxLogRecords ?? 5000;
  const { findings } = diagnose(run);
  const views = run.steps.map(stepView);
  const single = run.kind === 'step' && run.steps.length === 1;
  const title = options.title ?? (single ? `${run.steps[0]!.label} — run report` : `${run.pipelineName && run.pipelineName !== 'pipeline' ? `${run.pipelineName} · ` : ''}${run.pipelineRunId} — run report`);
  const nav: string[] = ['<a href="#findings">findings</a>'];
  if (!single) nav.push('<a href="#overview">steps</a>');
  const stepSections = views.map((view) => {
    const { step, index: i } = view;
    nav.push(`<a href="#step-${i}">${esc(step.label)}</a>`);
    const body = [keyFigures(view), progressSection(view), timelineSection(view, maxSegments), resourcesSection(view, findings), latencySection(view), failuresSection(view), metricsSection(view), runtimeSection(view)].join('');
    const source = step.attempts.source === 'processed-report' ? ' · mini-batches from processed-mini-batches.csv (no spans)' : '';
    const sampled = step.attempts.sampled;
    const sample = sampled ? ` · durations and timelines from a uniform sample of ${formatCount(sampled.kept)} of the ${formatCount(sampled.of)} attempts that succeeded at once (with every other attempt); counts are exact` : '';
    return `<section class="step" id="step-${i}"><h2>${single ? 'Step ' : ''}${esc(step.label)} ${badge(step.outcome)}</h2><p class="hint">${esc(iso(view.start))} → ${esc(iso(view.end))}${source}${sample}</p>${body}</section>`;
  });
  nav.push('<a href="#logs">logs</a>');
  const logs = logsSection(run, views, maxLogs);
  const notes = run.notes.length > 0 ? `<div class="notes"><b>While reading:</b><ul>${run.notes.map((n) => `<li>${esc(n.message)}</li>`).join('')}</ul></div>` : '';
  const generated = (options.now ?? new Date()).toISOString();
  const what = run.kind === 'pipeline' ? `pipeline run ${run.pipelineRunId}, ${plural(run.steps.length, 'step')}` : `pipeline run ${run.pipelineRunId}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${STYLES}</style></head>
<body><header><h1>${esc(title)}</h1><p class="hint">${esc(what)} · ${esc(path.resolve(run.folder))} · generated ${esc(generated)} by step-telemetry report</p>${notes}</header>
<nav>${nav.join('')}</nav><main>${headlineSection(views, findings)}${jobsSection(run)}${findingsSection(findings, run.steps)}${single ? '' : overviewSection(run, views)}${stepSections.join('')}${logs.html}</main>
<script type="application/json" id="log-data">${logs.data}</script><script>${CLIENT_SCRIPT}</script></body></html>
`;
}
