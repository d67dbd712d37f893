// The pipeline run at a glance: its steps on a timeline and in a table.
import { failedCount } from '../../run-folder/analysis.js';
import type { RunData } from '../../run-folder/model.js';
import { timelineSvg, type Lane } from '../charts/timeline.js';
import { outcomeColor } from '../colors.js';
import { formatCount, formatDuration, maxOf, minOf } from '../format.js';
import { badge, esc, iso, legend, table } from '../html.js';
import type { StepView } from '../step-view.js';

export function overviewSection(run: RunData, views: readonly StepView[]): string {
  const rows = views.map(({ step: s, index, start, end, stops }) => {
    const mbs = s.attempts.fates.total || s.miniBatches.count;
    const failedAttempts = failedCount(s.attempts);
    return [
      `<a href="#step-${index}">${esc(s.label)}</a>`,
      badge(s.outcome),
      esc(iso(start)),
      start !== undefined && end !== undefined ? esc(formatDuration(end - start)) : '–',
      mbs > 0 ? esc(formatCount(mbs)) : '–',
      failedAttempts > 0 ? `<span class="bad">${formatCount(failedAttempts)}</span>` : mbs > 0 ? '0' : '–',
      stops.errors > 0 ? `<span class="bad">${formatCount(stops.errors)}</span>` : '0',
      esc(s.runtime?.node ?? '–'),
    ];
  });
  const starts = views.map((v) => v.start).filter((x): x is number => x !== undefined);
  const ends = views.map((v) => v.end).filter((x): x is number => x !== undefined);
  let chart = '';
  if (starts.length > 0 && ends.length > 0) {
    const t0 = minOf(starts);
    const t1 = Math.max(maxOf(ends), t0 + 1);
    const lanes: Lane[] = views.map(({ step: s, start, end }) => {
      const segments =
        start === undefined
          ? []
          : [{ start, end: end ?? t1, color: outcomeColor(s.outcome), title: `${s.label}: ${s.outcome}, ${formatDuration((end ?? t1) - start)} from ${iso(start)}` }];
      return { label: s.label, segments, title: s.label };
    });
    chart = `<figure class="chart" data-chart="steps"><figcaption>Steps over time (from ${esc(iso(t0))})</figcaption>${timelineSvg({ lanes, t0, t1, id: 'steps-timeline', label: 'steps timeline' })}${legend(
      ['success', 'failure', 'terminated', 'crashed', 'running'].map((o) => ({ label: o === 'running' ? 'never ended' : o, color: outcomeColor(o) })),
    )}</figure>`;
  }
  return `<section id="overview"><h2>Pipeline run ${esc(run.pipelineRunId)}</h2>${chart}${table(['step', 'outcome', 'started', 'duration', 'mini-batches', 'failed attempts', 'error logs', 'Node.js'], rows)}</section>`;
}
