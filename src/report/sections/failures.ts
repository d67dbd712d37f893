// Failures and retries: failed attempts grouped by cause (with their stack traces and example
// mini-batches), failed items of mini-batches that ran, and errors outside mini-batches (failed
// spans, error log records; not what a worker's step wrote when the runner stopped it).
import { categoryOf, groupFailures, messagePattern, retried, topFrame, type Cause } from '../../run-folder/analysis.js';
import { formatCount, formatDuration } from '../format.js';
import { esc, firstLine, iso, mbButton, plural, table } from '../html.js';
import type { StepView } from '../step-view.js';

const CAUSES_SHOWN = 25;

function causeRow(c: Cause, t0: number): string[] {
  const frame = topFrame(c.stack);
  const detail =
    `<details><summary>${esc(firstLine(c.example, 200))}</summary><div class="pattern">pattern: <code>${esc(c.pattern)}</code></div>` +
    `${frame ? `<div class="pattern">at <code>${esc(frame)}</code></div>` : ''}${c.stack ? `<pre class="stack">${esc(c.stack.slice(0, 6000))}</pre>` : c.example.includes('\n') ? `<pre class="stack">${esc(c.example.slice(0, 6000))}</pre>` : ''}</details>`;
  return [
    `<span class="cat">${esc(c.category)}</span>${c.type ? `<br><small>${esc(c.type)}</small>` : ''}`,
    detail,
    esc(formatCount(c.attempts)),
    esc(formatCount(c.miniBatches.size)),
    c.finalFailures > 0 ? `<span class="bad">${formatCount(c.finalFailures)}</span>` : '0',
    esc(formatCount(c.recovered)),
    esc(String(c.workers.size)),
    esc(`${formatDuration(c.first - t0)} – ${formatDuration(c.last - t0)}`),
    c.exampleIds.slice(0, 6).map(mbButton).join(' ') + (c.miniBatches.size > 6 ? ' …' : ''),
  ];
}

export function failuresSection(view: StepView): string {
  const { step, index: i, stops } = view;
  const parts: string[] = [];
  const causes = groupFailures(step);
  const failed = step.attempts.failed;
  if (step.attempts.count > 0) {
    const troubled = [...step.attempts.fates.troubled.values()];
    const again = troubled.filter(retried);
    const recovered = again.filter((f) => f.final === 'success').length;
    const lost = troubled.filter((f) => f.final !== 'success' && f.final !== 'aborted').length;
    const byCat = new Map<string, number>();
    for (const a of failed) byCat.set(categoryOf(a), (byCat.get(categoryOf(a)) ?? 0) + 1);
    parts.push(
      `<p>${plural(failed.length, 'failed attempt')}${byCat.size > 0 ? ` (${[...byCat.entries()].map(([k, v]) => `${esc(k)} × ${formatCount(v)}`).join(', ')})` : ''}; ` +
        `${plural(again.length, 'mini-batch', 'mini-batches')} retried, ${formatCount(recovered)} of them then succeeded; ${plural(lost, 'mini-batch', 'mini-batches')} failed for good.</p>`,
    );
  }
  if (causes.length > 0) {
    const t0 = step.attempts.firstStart!;
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
  const itemRows = step.miniBatches.itemFailures;
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
          .map((g) => [esc(g.category), esc(firstLine(g.example, 300)), esc(formatCount(g.items)), g.ids.map(mbButton).join(' ')]),
      ),
    );
  }
  // errors outside mini-batches: failed spans and error log records
  const other = new Map<string, { source: string; example: string; stack?: string; count: number; first: number }>();
  for (const s of step.errorSpans) {
    if (stops.isStopSpan(s)) continue;
    const key = `span|${s.name}|${messagePattern(s.message)}`;
    const g = other.get(key) ?? { source: `span "${s.name}"`, example: `${s.type ? `${s.type}: ` : ''}${s.message}`, stack: s.stack, count: 0, first: s.start };
    g.count++;
    other.set(key, g);
  }
  for (const l of step.logs.records) {
    if (l.level !== 'error' || l.miniBatch || stops.isStopRecord(l)) continue;
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
  if (!step.attempts.fates.complete) parts.push('<p class="hint">More than 100,000 mini-batches failed or were retried: the causes, retries and failures above are of the first 100,000 of them.</p>');
  if (!step.logs.errorsComplete) parts.push(`<p class="hint">${plural(step.logs.counts.error ?? 0, 'error record')}: the errors outside mini-batches above are from the first 10,000.</p>`);
  if (stops.stopRecords > 0) {
    parts.push(
      `<p class="hint">${plural(stops.byProcess.size, 'worker')} stopped by the runner: what their steps recorded on the way out (${plural(stops.stopRecords, 'record')} "step ${esc(step.name)} failed", Terminated) is not an error of the run and is not counted.</p>`,
    );
  }
  if (step.errorSummary) parts.push(`<details class="file"><summary>error-summary.txt</summary><pre>${esc(step.errorSummary)}</pre></details>`);
  if (failed.length === 0 && other.size === 0 && itemRows.length === 0) {
    if (step.attempts.count === 0 && !step.errorSummary) return '';
    parts.push('<p class="ok">No failures.</p>');
  }
  return `<section class="sub" id="failures-${i}"><h3>Failures and retries</h3>${parts.join('')}</section>`;
}
