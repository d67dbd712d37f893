// The log records: a bounded sample embedded as JSON (every error and warning first) for the
// page's script to filter by level, step, mini-batch and text. What a worker's step logged as an
// error because the runner stopped it is shown as info, with a note, and counted as such.
import type { LogRecord, RunData } from '../../run-folder/model.js';
import { formatCount } from '../format.js';
import { esc } from '../html.js';
import type { StepView } from '../step-view.js';

const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];
const STOP_NOTE = 'not an error: the runner stopped this worker';

/** A bounded sample of the log records: every error and warning first, then the first and last others. */
function sampleLogs(run: RunData, max: number): { step: number; rec: LogRecord }[] {
  const all: { step: number; rec: LogRecord }[] = [];
  run.steps.forEach((s, k) => {
    for (const rec of s.logs.records) all.push({ step: k, rec });
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

export function logsSection(run: RunData, views: readonly StepView[], max: number): { html: string; data: string } {
  const sample = sampleLogs(run, max);
  const total = run.steps.reduce((s, st) => s + st.logs.total, 0);
  const counts: Record<string, number> = {};
  for (const s of run.steps) for (const [k, v] of Object.entries(s.logs.counts)) counts[k] = (counts[k] ?? 0) + v;
  for (const v of views) {
    if (v.stops.stopRecords === 0) continue;
    counts.error = (counts.error ?? 0) - v.stops.stopRecords;
    counts.info = (counts.info ?? 0) + v.stops.stopRecords;
    if (counts.error === 0) delete counts.error;
  }
  const levels = [...LEVELS.filter((l) => counts[l] !== undefined), ...Object.keys(counts).filter((l) => !LEVELS.includes(l))];
  const levelIndex = new Map(levels.map((l, k) => [l, k]));
  const stacks: string[] = [];
  const stackIndex = new Map<string, number>();
  const base = sample.length > 0 ? sample[0]!.rec.time : 0;
  const records = sample.map(({ step, rec }) => {
    const stop = views[step]!.stops.isStopRecord(rec);
    let si = -1;
    if (rec.stack && !stop) {
      const st = rec.stack.length > 4000 ? `${rec.stack.slice(0, 4000)}…` : rec.stack;
      si = stackIndex.get(st) ?? -1;
      if (si < 0) {
        si = stacks.length;
        stacks.push(st);
        stackIndex.set(st, si);
      }
    }
    const msg = rec.message.length > 600 ? `${rec.message.slice(0, 600)}…` : rec.message;
    const level = stop ? 'info' : rec.level;
    const error = stop ? `${rec.error ? `${rec.error}: ` : ''}${STOP_NOTE}` : (rec.error ?? '');
    return [rec.time - base, levelIndex.get(level) ?? 0, step, rec.process, rec.miniBatch ?? '', msg, error, si];
  });
  const data = JSON.stringify({ base, levels, steps: run.steps.map((s) => s.label), records, stacks, total }).replace(/</g, '\\u003c');
  const boxes = levels
    .map((l) => `<label class="lvl-box"><input type="checkbox" data-level="${esc(l)}" checked> ${esc(l)} <small>(${formatCount(counts[l] ?? 0)})</small></label>`)
    .join('');
  const stepSelect =
    run.steps.length > 1
      ? `<label>step <select id="log-step"><option value="">all</option>${run.steps.map((s, k) => `<option value="${k}">${esc(s.label)}</option>`).join('')}</select></label>`
      : '';
  const sampled =
    sample.length < total
      ? `<p class="hint">${formatCount(sample.length)} of ${formatCount(total)} log records are in this page: every error and warning first (up to ${formatCount(Math.floor(max * 0.6))}), then the first and the last of the others. All of them are in the logs*.jsonl files.</p>`
      : '';
  const html =
    `<section id="logs"><h2>Log records</h2>${sampled}<div class="filters">${boxes}${stepSelect}` +
    `<label>mini-batch <input id="log-mb" type="search" placeholder="e.g. mb-00042" size="14"></label>` +
    `<label>text <input id="log-text" type="search" placeholder="search messages" size="22"></label><button id="log-clear" type="button">clear filters</button></div>` +
    `<p id="log-count" class="hint"></p><div class="table-wrap"><table class="logs"><thead><tr><th>time (UTC)</th><th>level</th>${run.steps.length > 1 ? '<th>step</th>' : ''}<th>process</th><th>mini-batch</th><th>message</th></tr></thead><tbody id="log-rows"></tbody></table></div>` +
    `<button id="log-more" type="button" hidden>show more</button></section>`;
  return { html, data };
}
