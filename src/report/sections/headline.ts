// One look at a failed run: a sentence at the top of the page saying what failed, where (the
// step, the mini-batch, its input) and the first stack frame in the user's code, with links to the
// doctor's finding and to the log records.
import type { Finding } from '../../doctor/findings.js';
import { groupFailures, topFrame } from '../../run-folder/analysis.js';
import { miniBatchInputs, type MiniBatchInputs } from '../../run-folder/inputs.js';
import type { StepRun } from '../../run-folder/model.js';
import { esc, firstLine } from '../html.js';
import type { StepView } from '../step-view.js';
import { findingAnchor } from './findings.js';

const FAILED_OUTCOMES = new Set(['failure', 'crashed', 'terminated', 'running']);

/** A node of a merged job failed when its job did (a lost node of a job that succeeded did not fail it). */
export function isFailedStep(step: StepRun): boolean {
  if (step.job) return step.job.result.status === 'failed' || step.job.result.status === 'terminated';
  const status = step.result?.status;
  return FAILED_OUTCOMES.has(step.outcome) || status === 'failed' || status === 'terminated';
}

/** The result that speaks for the step: its merged job's, else its own. */
function resultOf(step: StepRun): Record<string, unknown> | undefined {
  return step.job?.result ?? step.result;
}

interface Failure {
  /** "failed", "crashed", "was terminated", "never ended" */
  readonly verb: string;
  /** Why the job stopped, when that is not the error itself (a threshold). */
  readonly decision?: string;
  readonly error?: string;
  readonly miniBatch?: string;
  readonly worker?: string;
  readonly stack?: string;
  /** The finding this rests on, by id. */
  readonly finding: string;
}

interface Cause {
  readonly category?: string;
  readonly type?: string;
  readonly message?: string;
  readonly stack?: string;
  readonly worker?: string;
  readonly mini_batch_id?: string;
}

function verbOf(step: StepRun): string {
  const status = resultOf(step)?.status;
  if (step.job) return status === 'terminated' ? 'was terminated' : 'failed';
  if (step.outcome === 'running') return 'never ended';
  if (step.outcome === 'terminated' || status === 'terminated') return 'was terminated';
  if (step.outcome === 'crashed') return 'crashed';
  return 'failed';
}

function failureOf(step: StepRun): Failure {
  const verb = verbOf(step);
  const cause = resultOf(step)?.cause as Cause | undefined;
  if (cause?.category === 'ThresholdExceeded') {
    // the threshold decided; what made it is the most frequent failure
    const decision = firstLine((cause.message ?? '').split('. Causes:')[0]!, 200);
    const top = groupFailures(step)[0];
    if (top) {
      return { verb, decision, error: `${top.type ?? top.category}: ${firstLine(top.example, 200)}`, miniBatch: top.exampleIds[0], stack: top.stack, finding: 'dominant-failure' };
    }
    const items = step.miniBatches.firstWithFailedItems;
    return { verb, decision, error: items ? firstLine(items.errorMessage, 200) : undefined, miniBatch: items?.id, finding: 'dominant-failure' };
  }
  if (cause?.category) {
    const type = cause.type && cause.type !== cause.category ? ` (${cause.type})` : '';
    return { verb, error: `${cause.category}${type}: ${firstLine(cause.message ?? '', 200)}`, miniBatch: cause.mini_batch_id, worker: cause.worker, stack: cause.stack, finding: 'step-failed' };
  }
  if (step.outcome === 'running') {
    const last = step.logs.last;
    return {
      verb,
      error: `step.json still says "running": the process was killed (out of memory, a hard timeout, a lost node)${last ? `; the last record: "${firstLine(last.message, 120)}"` : ''}`,
      finding: 'step-not-ended',
    };
  }
  // a plain step: what its end recorded, else its last error
  const end = step.logs.records.find((l) => l.process === 0 && l.level === 'error' && l.message === `step ${step.name} failed`) ?? step.logs.lastErrorOf.get(0);
  if (end) return { verb, error: end.error ?? firstLine(end.message, 200), miniBatch: end.miniBatch, stack: end.stack, finding: 'step-failed' };
  const span = step.errorSpans.find((s) => s.process === 0);
  if (span) return { verb, error: `${span.type ? `${span.type}: ` : ''}${firstLine(span.message, 200)}`, stack: span.stack, finding: 'step-failed' };
  return { verb, error: `step.json outcome "${step.outcome}"`, finding: 'step-failed' };
}

function describeInputs(inputs: MiniBatchInputs | undefined): string {
  if (!inputs || inputs.files.length === 0) return '';
  const name = (f: string): string => f.split(/[\\/]/).pop() ?? f;
  if (inputs.firstRow !== undefined) {
    const last = inputs.firstRow + Math.max(1, inputs.rows ?? 1) - 1;
    return ` (rows ${inputs.firstRow}–${last} of <code title="${esc(inputs.files[0])}">${esc(name(inputs.files[0]!))}</code>)`;
  }
  const shown = inputs.files.slice(0, 3).map((f) => `<code title="${esc(f)}">${esc(name(f))}</code>`);
  return ` (input${inputs.files.length > 1 ? 's' : ''} ${shown.join(', ')}${inputs.files.length > 3 ? `, … ${inputs.files.length} in all` : ''})`;
}

/** The sentence for the first failed step (in the order they ran), or '' when nothing failed. */
export function headlineSection(views: readonly StepView[], findings: readonly Finding[]): string {
  // one sentence per merged job, not one per node
  const jobs = new Set<unknown>();
  const failed = views.filter((v) => isFailedStep(v.step) && (!v.step.job || (!jobs.has(v.step.job) && jobs.add(v.step.job))));
  if (failed.length === 0) return '';
  const view = failed[0]!;
  const { step } = view;
  const f = failureOf(step);
  const inputs = f.miniBatch ? miniBatchInputs(step.folder, [f.miniBatch]).get(f.miniBatch) : undefined;
  const frame = topFrame(f.stack);
  const labels = [step.label, step.job?.label];
  const findingIndex = [f.finding, 'job-failed', 'step-failed', 'step-not-ended'].map((id) => findings.findIndex((x) => x.id === id && x.step !== undefined && labels.includes(x.step))).find((k) => k >= 0);
  const where = f.miniBatch
    ? ` in mini-batch <button class="mb-link" data-mb="${esc(f.miniBatch)}" title="show its log records">${esc(f.miniBatch)}</button>${describeInputs(inputs)}${f.worker ? ` on ${esc(f.worker)}` : ''}`
    : f.worker
      ? ` on ${esc(f.worker)}`
      : '';
  const sentence =
    `<a href="${step.job ? '#jobs' : `#step-${view.index}`}"><b>${esc(step.job ? `${step.job.label} (the job of ${step.job.nodes.length} nodes)` : step.label)}</b></a> ${esc(f.verb)}${f.decision ? ` (${esc(f.decision)})` : ''}` +
    `${f.error ? `: ${f.decision ? 'most often ' : ''}<span class="what">${esc(f.error)}</span>` : ''}${where}` +
    `${frame ? `, at <code class="frame">${esc(frame)}</code>` : ''}.`;
  const links = [
    findingIndex !== undefined ? `<a href="#${findingAnchor(findingIndex)}">the finding</a>` : '',
    f.miniBatch
      ? `<button class="log-link" type="button" data-mb="${esc(f.miniBatch)}">its log records</button>`
      : `<button class="log-link" type="button" data-log-step="${view.index}" data-log-level="error">the error log records</button>`,
  ].filter(Boolean);
  const others = failed.slice(1).map((v) => `<a href="#step-${v.index}">${esc(v.step.job?.label ?? v.step.label)}</a> ${esc(verbOf(v.step))}`);
  return (
    `<section id="what-failed" class="headline"><p class="sentence">${sentence}</p><p class="links">${links.join(' · ')}` +
    `${others.length > 0 ? ` · also: ${others.join(', ')}` : ''}</p></section>`
  );
}
