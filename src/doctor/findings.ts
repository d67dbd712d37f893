// The doctor's checks: each looks at one step (or the whole run) and returns findings with the
// evidence it is based on and a suggested fix. They are pure functions of the data read from the
// run folder, so the HTML report shows the same findings.
import fs from 'node:fs';
import path from 'node:path';
import { categoryOf, completed, durationsOf, groupFailures, isFailure, mannKendall, messagePattern, retried, summarizeDurations, theilSen, topFrame } from '../run-folder/analysis.js';
import type { ReadNote } from '../run-folder/files.js';
import { miniBatchInputs } from '../run-folder/inputs.js';
import type { Attempt, Fates, JobRun, RunData, Runtime, StepRun } from '../run-folder/model.js';
import { correlateLatencyWithMemory, cpuSaturated, eventLoopBlocked, ioBound, memoryGrowth, outOfMemory } from './resource-findings.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  /** Stable id of the check, e.g. `latency-trend`. */
  readonly id: string;
  readonly severity: Severity;
  /** The step (label) it is about; undefined for the whole run. */
  readonly step?: string;
  readonly title: string;
  /** What the finding rests on, one statement a line. */
  readonly evidence: readonly string[];
  readonly fix: string;
  /** The same evidence as numbers and ids, for `--json`. */
  readonly data: Readonly<Record<string, unknown>>;
}

/** A check that could not run, and why (missing data): listed, never a finding. */
export interface Skipped {
  readonly id: string;
  readonly step?: string;
  readonly reason: string;
}

/** Versions to compare the run with: another run folder, or a lock file. */
export interface Reference {
  readonly label: string;
  /** Runtime per step name (run folder), or one runtime for all steps (lock file: dependencies only). */
  readonly runtimeFor: (step: StepRun) => { runtime: Runtime; label: string } | undefined;
  readonly kind: 'run-folder' | 'lock-file';
}

export interface CheckOptions {
  /** Seconds; overrides what the run folder records. */
  readonly runInvocationTimeout?: number;
  /** Output folders or files the steps must have written to. */
  readonly outputs?: readonly string[];
  readonly reference?: Reference;
}

export const CHECKS = [
  'job-failed',
  'step-failed',
  'step-not-ended',
  'latency-trend',
  'dominant-failure',
  'flaky-retries',
  'timeout-tight',
  'hung-mini-batch',
  'export-failures',
  'dependency-missing',
  'dependency-mismatch',
  'runtime-mismatch',
  'empty-output',
  'rerun',
  'concurrent-writers',
  'local-files-incomplete',
  'truncated-file',
  'memory-growth',
  'out-of-memory',
  'io-bound',
  'cpu-saturated',
  'event-loop-blocked',
] as const;

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

// ---------------------------------------------------------------------------------------------
// formatting helpers

export function seconds(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = ms / 1000;
  if (s >= 100) return `${s.toFixed(0)} s`;
  if (s >= 10) return `${s.toFixed(1)} s`;
  if (s >= 1) return `${s.toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(ms >= 100 ? 0 : ms >= 10 ? 1 : 2)} ms`;
  return `${(ms * 1000).toFixed(0)} µs`;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function ids(list: readonly string[], max = 6, total = list.length): string {
  const shown = list.slice(0, max).join(', ');
  return total > Math.min(max, list.length) ? `${shown}, … (${total} in all)` : shown;
}

function range(list: readonly { id: string }[]): string {
  if (list.length === 0) return '';
  return list.length === 1 ? list[0]!.id : `${list[0]!.id}…${list[list.length - 1]!.id}`;
}

// ---------------------------------------------------------------------------------------------
// step outcome

/** A merged multi-node job (src/runner/merge.ts) that failed: one finding for the job, instead of one per node. */
function jobFailed(job: JobRun): Finding[] {
  const r = job.result;
  const status = typeof r.status === 'string' ? r.status : undefined;
  if (status !== 'failed' && status !== 'terminated') return [];
  const cause = r.cause as { category?: string; type?: string; message?: string } | undefined;
  const mbs = r.mini_batches as { total?: number; succeeded?: number; failed?: number; not_processed?: number } | undefined;
  const nodes = ((r.merged as { nodes?: { folder?: string; status?: string }[] } | undefined)?.nodes ?? []).map((n) => `${path.basename(n.folder ?? '')} ${n.status ?? '?'}`);
  const evidence = [`${job.label}/result.json (the merged job of ${job.nodes.length} node folders) status: ${status}`];
  if (cause?.category) evidence.push(`cause: ${cause.category}${cause.type && cause.type !== cause.category ? ` (${cause.type})` : ''}${cause.message ? `: ${firstLine(cause.message)}` : ''}`);
  if (mbs) evidence.push(`mini-batches: ${mbs.succeeded ?? 0} succeeded, ${mbs.failed ?? 0} failed, ${mbs.not_processed ?? 0} not processed of ${mbs.total ?? 0}`);
  if (nodes.length > 0) evidence.push(`nodes: ${nodes.join(', ')}`);
  const lost = cause?.type === 'NodeLost';
  return [
    {
      id: 'job-failed',
      severity: 'error',
      step: job.label,
      title: `${job.label} (a job of ${job.nodes.length} nodes) ${status === 'terminated' ? 'was terminated' : 'failed'}`,
      evidence,
      fix: lost
        ? 'Nodes were lost with work left. On a shared queue, start a node again (same pipeline run id): it joins the job the queue still holds and runs the rest; then this job is merged again. Without a queue, run the lost nodes again with --resume on their folders, then step-telemetry merge.'
        : 'Every node ended with this cause (a queue shares one verdict). Start from the other findings and the error log records of the nodes; after fixing, `parallel-run --resume` on the queue runs the failed mini-batches again, `--input-failed` on this folder only the failed items.',
      data: { status, cause: cause?.category, type: cause?.type, nodes: job.nodes },
    },
  ];
}

function stepFailed(step: StepRun): Finding[] {
  const result = step.result;
  const status = typeof result?.status === 'string' ? result.status : undefined;
  const failed = ['failure', 'crashed', 'terminated'].includes(step.outcome) || status === 'failed' || status === 'terminated';
  if (!failed) return [];
  const jobStatus = step.job?.result.status;
  const jobCause = (step.job?.result.cause as { category?: string } | undefined)?.category;
  const ownCause = (result?.cause as { category?: string } | undefined)?.category;
  // a node of a merged job that failed with the job's own cause: job-failed says it once
  if (step.job && jobStatus !== 'succeeded' && ownCause === jobCause) return [];
  const evidence: string[] = [`step.json outcome: ${step.outcome}${status ? `; result.json status: ${status}` : ''}`];
  const data: Record<string, unknown> = { outcome: step.outcome, status };
  if (typeof result?.reason === 'string') {
    evidence.push(`reason: ${result.reason}`);
    data.reason = result.reason;
  }
  const cause = result?.cause as { category?: string; message?: string; stack?: string } | undefined;
  if (cause?.category) {
    evidence.push(`cause: ${cause.category}${cause.message ? `: ${firstLine(cause.message)}` : ''}`);
    const frame = topFrame(cause.stack);
    if (frame) evidence.push(`at ${frame}`);
    data.cause = cause.category;
  }
  const lastError = step.logs.lastError;
  if (lastError && !result) {
    evidence.push(`last error logged: ${firstLine(lastError.message)}${lastError.error ? ` (${firstLine(lastError.error)})` : ''}`);
    const frame = topFrame(lastError.stack);
    if (frame) evidence.push(`at ${frame}`);
  }
  const terminated = step.outcome === 'terminated' || status === 'terminated';
  if (step.job && jobStatus === 'succeeded') evidence.push(`the job succeeded without this node (${step.job.label}/result.json): its mini-batches ran on the other nodes`);
  return [
    {
      id: 'step-failed',
      severity: step.job && jobStatus === 'succeeded' ? 'warning' : 'error',
      step: step.label,
      title: `${step.label} ${terminated ? 'was terminated' : step.outcome === 'crashed' ? 'crashed' : 'failed'}`,
      evidence,
      fix: terminated
        ? 'The step received SIGTERM/SIGINT: the orchestrator cancelled it or a job timeout expired. Check the job\'s timeout and whether the run was cancelled by hand.'
        : 'Start from the other findings of this step and the error log records; for a parallel run, error-summary.txt in the step folder lists the failures by category.',
      data,
    },
  ];
}

function stepNotEnded(step: StepRun): Finding[] {
  if (step.outcome !== 'running' || localFailures(step).length > 0) return []; // a full disk, not a kill: local-files-incomplete
  const lastLog = step.logs.last;
  const last = Math.max(lastLog?.time ?? 0, step.attempts.lastEnd ?? 0);
  const evidence = ['step.json still says "running": the process never reached end(), a signal handler or its exit hooks'];
  if (last > 0) evidence.push(`the last record is from ${new Date(last).toISOString()}${lastLog ? `: "${firstLine(lastLog.message)}"` : ''}`);
  const jobDone = step.job?.result.status === 'succeeded';
  if (jobDone) evidence.push(`the job succeeded without this node (${step.job!.label}/result.json): the queue ran its mini-batches on the other nodes`);
  return [
    {
      id: 'step-not-ended',
      severity: jobDone ? 'warning' : 'error',
      step: step.label,
      title: `${step.label} never ended: the process was killed (SIGKILL, out of memory) or its machine was lost`,
      evidence,
      fix: 'Only SIGKILL (the kernel\'s out-of-memory killer, a hard job timeout, a preempted node) stops a step without a trace. Check the job\'s events and the node\'s memory; if memory, lower process_count_per_node or mini_batch_size, or raise --max-old-space-size within the machine\'s memory.',
      data: { lastRecord: last > 0 ? new Date(last).toISOString() : undefined },
    },
  ];
}

function firstLine(s: string): string {
  const l = s.split('\n')[0]!;
  return l.length > 300 ? `${l.slice(0, 300)}…` : l;
}

// ---------------------------------------------------------------------------------------------
// latency trend

const TREND_MIN_ATTEMPTS = 40;

/** The median of attempts' durations, each counted as often as its weight. */
function medianOf(attempts: readonly Attempt[]): number {
  return summarizeDurations(attempts).p50;
}

function latencyTrend(step: StepRun, timeoutS: number | undefined): Finding[] | Skipped {
  // successful attempts in start order; in a large run a sample, each at its position among all of them
  const ok = step.attempts.kept.filter((a) => a.outcome === 'success');
  const n = step.attempts.byOutcome.success?.n ?? 0;
  if (n < TREND_MIN_ATTEMPTS) return { id: 'latency-trend', step: step.label, reason: `${n} successful mini-batch attempts (needs ${TREND_MIN_ATTEMPTS})` };
  const position: number[] = [];
  let at = 0;
  for (const a of ok) {
    position.push(at);
    at += a.weight;
  }
  /** The first index at or past a position (positions only grow). */
  const index = (p: number): number => {
    let lo = 0;
    let hi = ok.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (position[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const between = (from: number, to: number): Attempt[] => ok.slice(index(from), index(to));
  const groups = Math.min(60, Math.floor(n / 8));
  const t0 = ok[0]!.start;
  const meds: number[] = [];
  const midTimes: number[] = [];
  const midIndex: number[] = [];
  for (let g = 0; g < groups; g++) {
    const from = Math.floor((g * n) / groups);
    const to = Math.floor(((g + 1) * n) / groups);
    const slice = between(from, to);
    if (slice.length === 0) continue;
    meds.push(medianOf(slice));
    midTimes.push((slice[Math.floor(slice.length / 2)]!.start - t0) / 1000);
    midIndex.push((from + to - 1) / 2);
  }
  const mk = mannKendall(meds);
  const tenth = Math.max(5, Math.floor(n / 10));
  const first = between(0, tenth);
  const last = between(n - tenth, Infinity);
  const firstMed = medianOf(first);
  const lastMed = medianOf(last);
  const ratio = firstMed > 0 ? lastMed / firstMed : Number.POSITIVE_INFINITY;
  const delta = lastMed - firstMed;
  if (!(mk.pIncrease < 0.01 && mk.tau >= 0.3 && ratio >= 1.5 && delta >= 10)) return [];
  const perMb = theilSen(midIndex, meds); // ms per mini-batch
  const perSecond = theilSen(midTimes, meds); // ms per second of run time
  const evidence = [
    `successful attempts slow down from a median of ${seconds(firstMed)} (first ${tenth}: ${range(first)}) to ${seconds(lastMed)} (last ${tenth}: ${range(last)}): ${ratio.toFixed(1)}×`,
    `trend over ${n} successful attempts in ${groups} groups: Theil-Sen slope +${seconds(perMb)} per mini-batch (+${seconds(perSecond * 60)} per minute of run time); Mann-Kendall τ ${mk.tau.toFixed(2)}, p ${mk.pIncrease < 0.001 ? '< 0.001' : mk.pIncrease.toFixed(3)}`,
  ];
  const data: Record<string, unknown> = {
    attempts: n,
    groups,
    first: { from: first[0]!.id, to: first[first.length - 1]!.id, count: tenth, medianMs: round(firstMed) },
    last: { from: last[0]!.id, to: last[last.length - 1]!.id, count: tenth, medianMs: round(lastMed) },
    ratio: round(ratio),
    slopeMsPerMiniBatch: round(perMb),
    slopeMsPerMinute: round(perSecond * 60),
    mannKendallTau: round(mk.tau),
    pValue: mk.pIncrease,
  };
  if (timeoutS !== undefined && perMb > 0) {
    const more = Math.ceil((timeoutS * 1000 - lastMed) / perMb);
    if (more > 0) {
      evidence.push(`at this slope a mini-batch reaches run_invocation_timeout (${timeoutS} s) after about ${more} more mini-batches`);
      data.miniBatchesUntilTimeout = more;
    }
  }
  return [
    {
      id: 'latency-trend',
      severity: ratio >= 3 ? 'error' : 'warning',
      step: step.label,
      title: `${step.label}: mini-batch latency grows over the run (${seconds(firstMed)} → ${seconds(lastMed)}, ${ratio.toFixed(1)}×)`,
      evidence,
      fix:
        'A steady slow-down over a loop is state that accumulates across mini-batches: a cache, list or map that only grows, listeners or timers added per call, ' +
        'a model, client or file opened per mini-batch and never closed, or a growing output kept in memory. Look at what run() keeps between calls ' +
        '(take two heap snapshots some mini-batches apart), release per-mini-batch state at the end of run(), and load heavy objects once in init().',
      data,
    },
  ];
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// ---------------------------------------------------------------------------------------------
// failures

function fixForCategory(category: string, frame: string | undefined, step: StepRun): string {
  switch (category) {
    case 'RunTimeout':
      return 'run() did not return within run_invocation_timeout: raise run_invocation_timeout above the slowest normal mini-batch, make mini-batches smaller (mini_batch_size), or find what hangs (a remote call without its own timeout, a lock).';
    case 'WorkerCrash':
      return `The worker process died mid-run: read the last stderr lines in the cause and in console.process-<n>.log of ${step.label}. Killed by SIGKILL usually means out of memory: lower process_count_per_node or mini_batch_size. An exit code means process.exit() or a native crash in run().`;
    case 'InputError':
      return 'Inputs could not be read: the failed items and their reasons are in error-summary.txt. Fix or remove those files, or check the input path and permissions on the compute.';
    case 'ItemError':
      return 'run() marked these items failed (context.failItem): the reasons repeat one pattern, so the inputs share one problem. Fix the inputs or handle the case in run().';
    default:
      return `No mini-batch this error hit succeeded on a retry: it is deterministic, tied to the input or the code. Fix it once${frame ? ` at ${frame}` : ''}, or skip and report the bad inputs (context.failItem) instead of throwing for the whole mini-batch. Retrying cannot help: it only multiplies the cost by run_max_try.`;
  }
}

function dominantFailure(step: StepRun): Finding[] {
  const out: Finding[] = [];
  const causes = groupFailures(step);
  const failed = causes.reduce((s, c) => s + c.attempts, 0);
  const top = causes[0];
  if (top && failed >= 3 && top.attempts / failed >= 0.5 && !(top.finalFailures === 0 && top.recovered === top.miniBatches.size)) {
    const share = top.attempts / failed;
    const frame = topFrame(top.stack);
    const what = `${top.category}${top.type ? ` ${top.type}` : ''}: ${firstLine(top.example)}`;
    const evidence = [
      `${top.attempts} of ${failed} failed attempts (${pct(share)}) have this cause, on ${top.miniBatches.size} mini-batch${top.miniBatches.size === 1 ? '' : 'es'} (${ids(top.exampleIds, 6, top.miniBatches.size)}) and ${top.workers.size} worker${top.workers.size === 1 ? '' : 's'}`,
      `${top.finalFailures} of them failed for good${top.recovered > 0 ? `, ${top.recovered} succeeded on a retry` : ''}`,
      `message pattern: ${top.pattern}`,
    ];
    if (frame) evidence.push(`at ${frame}`);
    if (causes.length > 1) evidence.push(`other causes: ${causes.slice(1, 4).map((c) => `${c.category}${c.type ? ` ${c.type}` : ''} × ${c.attempts}`).join(', ')}${causes.length > 4 ? ', …' : ''}`);
    out.push({
      id: 'dominant-failure',
      severity: top.finalFailures > 0 ? 'error' : 'warning',
      step: step.label,
      title: `${step.label}: one cause makes ${pct(share)} of the failed attempts: ${what.length > 140 ? `${what.slice(0, 140)}…` : what}`,
      evidence,
      fix:
        top.recovered > 0 && top.category === 'RunException'
          ? `One cause dominates the failures: fix it${frame ? ` at ${frame}` : ''}. It is intermittent (${top.recovered} of the ${top.miniBatches.size} mini-batches it hit succeeded on a retry), so look at what differs between attempts (a remote call, memory pressure, a race, a shared file) as well as at the input.`
          : fixForCategory(top.category, frame, step),
      data: {
        category: top.category,
        type: top.type,
        pattern: top.pattern,
        example: top.example,
        attempts: top.attempts,
        failedAttempts: failed,
        share: round(share),
        miniBatches: top.miniBatches.size,
        finalFailures: top.finalFailures,
        recovered: top.recovered,
        exampleMiniBatches: top.exampleIds,
        frame,
      },
    });
  }
  // item-level failures inside mini-batches that ran (context.failItem, unreadable inputs)
  const itemCauses = new Map<string, { category: string; pattern: string; example: string; items: number; miniBatches: number; ids: string[] }>();
  let itemsFailed = 0;
  for (const m of step.miniBatches.itemFailures) {
    itemsFailed += m.failedItems;
    const reason = m.errorMessage.replace(/^\d+ item\(s\) failed; first: /, '');
    const pattern = messagePattern(reason);
    const key = `${m.errorCategory}|${pattern}`;
    let c = itemCauses.get(key);
    if (!c) {
      c = { category: m.errorCategory || 'ItemError', pattern, example: reason, items: 0, miniBatches: 0, ids: [] };
      itemCauses.set(key, c);
    }
    c.items += m.failedItems;
    c.miniBatches++;
    if (c.ids.length < 12) c.ids.push(m.id);
  }
  const topItem = [...itemCauses.values()].sort((a, b) => b.items - a.items)[0];
  if (topItem && itemsFailed >= 3 && topItem.items / itemsFailed >= 0.5) {
    const share = topItem.items / itemsFailed;
    out.push({
      id: 'dominant-failure',
      severity: 'warning',
      step: step.label,
      title: `${step.label}: one reason makes ${pct(share)} of the failed items: ${topItem.category}: ${firstLine(topItem.example).slice(0, 140)}`,
      evidence: [`${topItem.items} of ${itemsFailed} failed items in ${topItem.miniBatches} mini-batch${topItem.miniBatches === 1 ? '' : 'es'} (${ids(topItem.ids, 6, topItem.miniBatches)})`, `reason pattern: ${topItem.pattern}`],
      fix: fixForCategory(topItem.category, undefined, step),
      data: { category: topItem.category, pattern: topItem.pattern, example: topItem.example, items: topItem.items, failedItems: itemsFailed, share: round(share), exampleMiniBatches: topItem.ids },
    });
  }
  return out;
}

function flakyRetries(step: StepRun, fates: Fates, timeout: { seconds: number } | undefined): Finding[] {
  const again = [...fates.troubled.values()].filter(retried);
  if (again.length < 3) return [];
  const recovered = again.filter((f) => f.final === 'success');
  const share = recovered.length / again.length;
  if (share < 0.6) return [];
  const firstFailures = new Map<string, number>();
  for (const f of recovered) {
    const failedAttempt = f.attempts.find(isFailure);
    const cat = failedAttempt ? categoryOf(failedAttempt) : 'unknown (only the processed report: times_picked > 1)';
    firstFailures.set(cat, (firstFailures.get(cat) ?? 0) + 1);
  }
  const breakdown = [...firstFailures.entries()].sort((a, b) => b[1] - a[1]);
  const timeoutsShare = (firstFailures.get('RunTimeout') ?? 0) / recovered.length;
  // timeouts far above the successful attempts are hangs that a retry got past, not a tight timeout
  const tight = timeoutsShare >= 0.5 && hungAttempts(step, timeout).length === 0;
  const hangs = timeoutsShare >= 0.5 && !tight;
  const extraAttempts = recovered.reduce((s, f) => s + Math.max(f.attempts.length, f.attempts[0]!.attempt) - 1, 0);
  const total = fates.total;
  return [
    {
      id: 'flaky-retries',
      severity: 'warning',
      step: step.label,
      title: `${step.label}: retries mostly succeed (${recovered.length} of ${again.length} retried mini-batches): ${tight ? 'the timeout is too tight' : hangs ? 'run() hangs now and then' : 'flaky input or dependency'}`,
      evidence: [
        `${again.length} of ${total} mini-batches needed more than one attempt; ${recovered.length} (${pct(share)}) then succeeded: ${ids(recovered.map((f) => f.id))}`,
        `what failed first: ${breakdown.map(([c, k]) => `${c} × ${k}`).join(', ')}`,
        `the retries cost ${extraAttempts} extra attempt${extraAttempts === 1 ? '' : 's'}`,
      ],
      fix: hangs
        ? 'The first attempts hung (see hung-mini-batch) and the retries made it: run() waits now and then for something that does not come (a lock, a call without a timeout, a race). Find it; a retry hides the hang and pays run_invocation_timeout and a new worker each time.'
        : tight
          ? 'The first attempts ran into run_invocation_timeout and the retries made it: the timeout is too tight for the normal spread of mini-batch times. Raise run_invocation_timeout above the observed p99 (see the latency chart), or make mini-batches smaller.'
          : 'The same mini-batch fails and then succeeds: the failure depends on something other than the input (a remote service, rate limits, a shared file, memory pressure, a race). Retry the flaky call inside run() with backoff, make run() idempotent, and fix the dependency; retries of whole mini-batches hide the problem and multiply the cost.',
      data: { retried: again.length, recovered: recovered.length, miniBatches: total, share: round(share), firstFailure: Object.fromEntries(breakdown), extraAttempts, exampleMiniBatches: recovered.slice(0, 12).map((f) => f.id) },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// timeouts

/** run_invocation_timeout in seconds, and where it was found. */
export function findTimeout(step: StepRun, override?: number): { seconds: number; source: string } | undefined {
  if (override !== undefined) return { seconds: override, source: '--run-invocation-timeout' };
  const attr = step.stepSpanAttributes['parallel_run.run_invocation_timeout'];
  if (typeof attr === 'number' && attr > 0) return { seconds: attr, source: 'the step span (parallel_run.run_invocation_timeout)' };
  const r = step.result as Record<string, unknown> | undefined;
  const fromResult = r?.run_invocation_timeout ?? (r?.config as Record<string, unknown> | undefined)?.run_invocation_timeout;
  if (typeof fromResult === 'number' && fromResult > 0) return { seconds: fromResult, source: 'result.json' };
  const re = /within ([\d.]+) s \(run_invocation_timeout\)/;
  for (const a of step.attempts.failed) {
    if (a.outcome !== 'timeout' || !a.errorMessage) continue;
    const m = re.exec(a.errorMessage);
    if (m) return { seconds: Number(m[1]), source: 'the message of a timed-out attempt' };
  }
  const x = re.exec(step.miniBatches.timeoutMessage ?? '');
  if (x) return { seconds: Number(x[1]), source: 'processed-mini-batches.csv' };
  return undefined;
}

function timeoutTight(step: StepRun, timeout: { seconds: number; source: string } | undefined): Finding[] | Skipped {
  if (step.attempts.count === 0) return { id: 'timeout-tight', step: step.label, reason: 'no mini-batch attempts' };
  if (!timeout) return { id: 'timeout-tight', step: step.label, reason: 'run_invocation_timeout is not recorded (pass --run-invocation-timeout)' };
  // a hang is not a slow attempt: it says nothing about how tight the timeout is (see hungMiniBatch)
  const hung = new Set(hungAttempts(step, timeout));
  const kept = step.attempts.kept;
  const all = hung.size > 0 ? summarizeDurations(completed(kept.filter((a) => !hung.has(a)), new Set(['success', 'timeout']))) : durationsOf(step.attempts, ['success', 'timeout']);
  if (all.n < 5) return { id: 'timeout-tight', step: step.label, reason: `${all.n} attempts ran to an answer or the timeout (needs 5)` };
  const ok = durationsOf(step.attempts, ['success']);
  const limitMs = timeout.seconds * 1000;
  const ratio = all.p99 / limitMs;
  const timedOut = step.attempts.failed.filter((a) => a.outcome === 'timeout');
  if (ratio < 0.7) return [];
  const lostForGood = [...step.attempts.fates.troubled.values()].filter((f) => f.final === 'timeout');
  const severity: Severity = timedOut.length > 0 && (ratio >= 0.9 || lostForGood.length > 0) ? 'error' : 'warning';
  const suggestion = Math.max(timeout.seconds * 2, Math.ceil((2 * (ok.n > 0 ? ok.p99 : all.p99)) / 1000));
  const evidence = [
    `run_invocation_timeout is ${timeout.seconds} s (from ${timeout.source})`,
    `attempts that ran to an answer or to the timeout: p50 ${seconds(all.p50)}, p95 ${seconds(all.p95)}, p99 ${seconds(all.p99)} = ${pct(ratio)} of the timeout (${all.n} attempts)`,
  ];
  if (ok.n > 0) evidence.push(`successful attempts alone: p99 ${seconds(ok.p99)}, max ${seconds(ok.max)} (${pct(ok.max / limitMs)} of the timeout)`);
  evidence.push(
    timedOut.length > 0
      ? `${timedOut.length} attempt${timedOut.length === 1 ? '' : 's'} timed out (${ids(timedOut.map((a) => a.id))}); ${lostForGood.length} mini-batch${lostForGood.length === 1 ? '' : 'es'} failed for good on it`
      : 'no attempt timed out yet: a slightly slower input or machine will',
  );
  return [
    {
      id: 'timeout-tight',
      severity,
      step: step.label,
      title: `${step.label}: run_invocation_timeout (${timeout.seconds} s) is close to the observed p99 (${seconds(all.p99)})`,
      evidence,
      fix: `Raise run_invocation_timeout to about ${suggestion} s (twice the p99 of successful attempts), or make mini-batches smaller (mini_batch_size) so that one run() call stays well below it. Every timeout kills the worker: the mini-batch is redone and the new worker pays init() again.`,
      data: {
        runInvocationTimeoutSeconds: timeout.seconds,
        source: timeout.source,
        p50Ms: round(all.p50),
        p95Ms: round(all.p95),
        p99Ms: round(all.p99),
        ratio: round(ratio),
        successP99Ms: ok.n > 0 ? round(ok.p99) : undefined,
        timeouts: timedOut.length,
        failedOnTimeout: lostForGood.length,
        attempts: all.n,
        suggestedSeconds: suggestion,
      },
    },
  ];
}

/** Timed-out attempts count as hangs when the successful ones take less than this share of the timeout. */
const HANG_SHARE = 0.25;

/**
 * The timed-out attempts that are hangs rather than slow runs: the successful attempts' p99 is
 * far below run_invocation_timeout (under HANG_SHARE of it), so raising the timeout would only
 * make each hang cost longer.
 */
function hungAttempts(step: StepRun, timeout: { seconds: number } | undefined): Attempt[] {
  if (!timeout) return [];
  const timedOut = step.attempts.failed.filter((a) => a.outcome === 'timeout');
  if (timedOut.length === 0) return [];
  const ok = durationsOf(step.attempts, ['success']);
  if (ok.n === 0 || ok.p99 >= HANG_SHARE * timeout.seconds * 1000) return [];
  return timedOut;
}

/** The inputs of the mini-batches `ids` per mini-batches.jsonl, as one short text each. */
function inputsOf(step: StepRun, ids: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, m] of miniBatchInputs(step.folder, ids)) {
    if (m.firstRow !== undefined) out.set(id, `rows ${m.firstRow}..${m.firstRow + (m.rows ?? 0) - 1} of ${m.files[0]} (from line ${m.firstLine})`);
    else if (m.files.length > 0) out.set(id, `${m.files.slice(0, 3).join(', ')}${m.files.length > 3 ? ` and ${m.files.length - 3} more` : ''}`);
  }
  return out;
}

/** A mini-batch whose run() hung: which one, on which input, how long, never a timeout to raise. */
function hungMiniBatch(step: StepRun, timeout: { seconds: number; source: string } | undefined): Finding[] {
  const hung = hungAttempts(step, timeout);
  if (hung.length === 0) return [];
  const byId = new Map<string, Attempt[]>();
  for (const a of hung) byId.set(a.id, [...(byId.get(a.id) ?? []), a]);
  const inputs = inputsOf(step, new Set(byId.keys()));
  const ok = durationsOf(step.attempts, ['success']);
  const fateMap = step.attempts.fates.troubled;
  const lost = [...byId.keys()].filter((id) => fateMap.get(id)?.final === 'timeout');
  const shown = [...byId.entries()].slice(0, 5);
  const evidence = shown.map(([id, as]) => {
    const input = inputs.get(id);
    const runs = as.map((a) => `attempt ${a.attempt} on ${a.worker || 'a worker'} ran ${seconds(a.durationMs)} until killed`).join('; ');
    return `${id}${input ? ` (input: ${input})` : ''}: ${runs}; ${fateMap.get(id)?.final === 'timeout' ? 'failed for good' : `then ${fateMap.get(id)?.final ?? 'unknown'}`}`;
  });
  if (byId.size > shown.length) evidence.push(`${byId.size - shown.length} more mini-batches hung: ${ids([...byId.keys()].slice(shown.length))}`);
  evidence.push(
    `run_invocation_timeout is ${timeout!.seconds} s (from ${timeout!.source}); the ${ok.n} successful attempts took p99 ${seconds(ok.p99)}, max ${seconds(ok.max)}: a hang, not a slow mini-batch`,
  );
  const [firstId, firstAttempts] = shown[0]!;
  return [
    {
      id: 'hung-mini-batch',
      severity: lost.length > 0 ? 'error' : 'warning',
      step: step.label,
      title:
        byId.size === 1
          ? `${step.label}: ${firstId} hung: run() did not return within ${timeout!.seconds} s, while successful attempts took ${seconds(ok.p99)} (p99)`
          : `${step.label}: ${byId.size} mini-batches hung (${ids([...byId.keys()], 3)}): run() did not return within ${timeout!.seconds} s, while successful attempts took ${seconds(ok.p99)} (p99)`,
      evidence,
      fix:
        `Find what run() waits for on ${byId.size === 1 ? 'this input' : 'these inputs'}: run the entry script on ${firstId}'s input alone ` +
        '(its files or rows above) and look at what it awaits (a lock, a network call without a timeout, a promise that never settles, a loop that never ends). ' +
        'Raising run_invocation_timeout would only make each hang cost longer: every one kills its worker, and the mini-batch is retried up to run_max_try times.',
      data: {
        miniBatches: [...byId.keys()],
        inputs: Object.fromEntries(inputs),
        attempts: hung.map((a) => ({ id: a.id, attempt: a.attempt, worker: a.worker, durationMs: round(a.durationMs) })),
        failedForGood: lost,
        runInvocationTimeoutSeconds: timeout!.seconds,
        successP99Ms: round(ok.p99),
        successMaxMs: round(ok.max),
        successAttempts: ok.n,
        firstDurationMs: round(firstAttempts[0]!.durationMs),
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// exports

function exportFailures(step: StepRun): Finding[] {
  const troubled = step.exports.filter((e) => e.failedBatches > 0 || e.droppedItems > 0);
  if (troubled.length === 0) return [];
  const credential = troubled.filter((e) => /refused the credential/i.test(e.hint ?? '') || /\b(?:401|403)\b|InvalidOrExpiredToken|unauthori[sz]ed|forbidden/i.test(e.lastError ?? ''));
  const backends = [...new Set(troubled.map((e) => e.backend))];
  const evidence = troubled.map(
    (e) =>
      `${e.backend} ${e.signal}${e.target ? ` → ${e.target}` : ''}${e.process > 0 ? ` (process ${e.process})` : ''}: ${e.failedBatches} of ${e.batches} batches failed` +
      `${e.droppedItems > 0 ? `, ${e.droppedItems} items not delivered` : ''}${e.lastError ? `; last error: ${e.lastError}` : ''}${e.hint ? `; hint: ${e.hint}` : ''}`,
  );
  let fix: string;
  if (credential.length > 0) {
    const variables = [...new Set(credential.flatMap((e) => /check that (.+?) holds/.exec(e.hint ?? '')?.[1]?.split(' or ') ?? []))].sort();
    fix =
      'The backend refused the credential: the key or token is wrong or has expired. Renew it ' +
      '(Application Insights: copy the connection string again from the resource; OTLP: the Authorization header) ' +
      `and check that the compute gets the new value${variables.length > 0 ? ` (${variables.join(', ')})` : ''}. Nothing is lost locally: the run folder has every record.`;
  } else if (troubled.some((e) => /ECONNREFUSED|nothing listens/i.test(`${e.lastError} ${e.hint}`))) {
    fix = 'Nothing listened at the export address: start the collector or backend before the step (a sidecar that starts late loses the first batches), and check the endpoint variable.';
  } else if (troubled.some((e) => e.failedBatches === 0)) {
    fix = 'The export queue overflowed: the step recorded faster than the backend took it. Export to a collector next to the step (it buffers), or record less per mini-batch.';
  } else {
    fix = 'The backend failed or answered too slowly: check its health and quotas; a collector with a persistent queue next to the step rides over outages. The run folder has every record.';
  }
  return [
    {
      id: 'export-failures',
      severity: credential.length > 0 ? 'error' : 'warning',
      step: step.label,
      title: `${step.label}: ${credential.length > 0 ? `${credential[0]!.backend} refused the credential` : `export to ${backends.join(' and ')} failed`} (${troubled.reduce((s, e) => s + e.failedBatches, 0)} batches failed)`,
      evidence,
      fix,
      data: { exports: troubled.map((e) => ({ ...e })), credential: credential.length > 0 },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// dependencies and runtime

function dependencyMissing(step: StepRun): Finding[] {
  const deps = step.runtime?.dependencies ?? {};
  const missing = Object.entries(deps)
    .filter(([, v]) => v === null)
    .map(([k]) => k);
  if (missing.length === 0) return [];
  return [
    {
      id: 'dependency-missing',
      severity: 'error',
      step: step.label,
      title: `${step.label}: ${missing.length} dependenc${missing.length === 1 ? 'y' : 'ies'} declared in package.json ${missing.length === 1 ? 'was' : 'were'} not installed where the step ran: ${ids(missing)}`,
      evidence: [`${step.runtime?.packageJson ?? 'package.json'} declares ${ids(missing, 20)}, but no node_modules/<name>/package.json was found from there up`],
      fix: 'The environment was built without them: run `npm ci` (not `npm install --production` with the package in devDependencies) in the image or job setup, and check that node_modules is not excluded from the uploaded snapshot (.amlignore, .dockerignore).',
      data: { missing, packageJson: step.runtime?.packageJson },
    },
  ];
}

function majorOf(v: string): string {
  const m = /^v?(\d+)\.(\d+)/.exec(v);
  if (!m) return v;
  return m[1] === '0' ? `0.${m[2]}` : m[1]!;
}

function versionDiff(here: string | null | undefined, there: string | null | undefined): 'same' | 'major' | 'minor' | 'missing' {
  if (here === there) return 'same';
  if (here === null || here === undefined || there === null || there === undefined) return 'missing';
  return majorOf(here) === majorOf(there) ? 'minor' : 'major';
}

function referenceChecks(step: StepRun, reference: Reference): Finding[] | Skipped {
  const ref = reference.runtimeFor(step);
  if (!ref) return { id: 'dependency-mismatch', step: step.label, reason: `${reference.label} has no step named ${step.name}` };
  const here = step.runtime;
  if (!here) return { id: 'dependency-mismatch', step: step.label, reason: 'step.json records no runtime' };
  const out: Finding[] = [];
  const rows: { name: string; here: string | null; there: string | null; diff: string }[] = [];
  const names = new Set(Object.keys(here.dependencies));
  if (reference.kind === 'run-folder') for (const k of Object.keys(ref.runtime.dependencies)) names.add(k);
  for (const name of [...names].sort()) {
    const a = here.dependencies[name];
    const b = ref.runtime.dependencies[name];
    const d = versionDiff(a, b);
    if (d !== 'same') rows.push({ name, here: a ?? null, there: b ?? null, diff: d });
  }
  if (rows.length > 0) {
    const severe = rows.filter((r) => r.diff === 'major' || r.diff === 'missing');
    out.push({
      id: 'dependency-mismatch',
      severity: severe.length > 0 ? 'error' : 'warning',
      step: step.label,
      title: `${step.label}: ${rows.length} dependenc${rows.length === 1 ? 'y differs' : 'ies differ'} from ${ref.label}${severe.length > 0 ? ` (${severe.length} by a major version or missing)` : ''}`,
      evidence: rows.map(
        (r) =>
          `${r.name}: ${r.here ?? 'not installed'} here, ${r.there === null ? `${reference.kind === 'lock-file' ? 'not listed' : 'not installed'} in ${ref.label}` : `${r.there} in ${ref.label}`} ` +
          `(${r.diff === 'major' ? 'major version' : r.diff === 'minor' ? 'minor/patch' : 'missing on one side'})`,
      ),
      fix:
        'The step ran with other versions than the reference: the "works locally, fails remotely" trap. Install from the lock file on both sides (`npm ci`, a committed package-lock.json), pin exact versions of the dependencies that matter, and rebuild the environment/image after changing them.',
      data: { reference: ref.label, differences: rows },
    });
  }
  if (reference.kind === 'run-folder') {
    const parts: { what: string; here?: string; there?: string; severity: Severity }[] = [];
    if (here.node !== ref.runtime.node && here.node && ref.runtime.node) {
      parts.push({ what: 'Node.js', here: here.node, there: ref.runtime.node, severity: majorOf(here.node) === majorOf(ref.runtime.node) ? 'warning' : 'error' });
    }
    if (here.platform !== ref.runtime.platform) parts.push({ what: 'platform', here: here.platform, there: ref.runtime.platform, severity: 'info' });
    if (here.arch !== ref.runtime.arch) parts.push({ what: 'architecture', here: here.arch, there: ref.runtime.arch, severity: 'info' });
    if (parts.length > 0) {
      const severity = parts.reduce<Severity>((s, p) => (SEVERITY_ORDER[p.severity] < SEVERITY_ORDER[s] ? p.severity : s), 'info');
      out.push({
        id: 'runtime-mismatch',
        severity,
        step: step.label,
        title: `${step.label}: the runtime differs from ${ref.label}: ${parts.map((p) => `${p.what} ${p.here} vs ${p.there}`).join(', ')}`,
        evidence: parts.map((p) => `${p.what}: ${p.here ?? '?'} here, ${p.there ?? '?'} in ${ref.label}`),
        fix: 'Use the same Node.js major version on both sides (an `engines` field, `.nvmrc`, the same base image); native modules built for another platform or architecture must be rebuilt there (`npm rebuild`).',
        data: { reference: ref.label, differences: parts },
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// outputs

const OUTPUT_TAG = /^(?:outputs?|outputs?[._-].+|.+[._-]outputs?(?:[._-](?:dir|folder|path))?)$/i;

/** Files with content under a folder (stops at `limit`). */
function contentFiles(dir: string, limit = 1): number {
  let found = 0;
  const stack = [dir];
  let visited = 0;
  while (stack.length > 0 && found < limit && visited < 100_000) {
    const d = stack.pop()!;
    let list: fs.Dirent[];
    try {
      list = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of list) {
      visited++;
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else {
        try {
          if (fs.statSync(p).size > 0) found++;
        } catch {
          // a dangling link
        }
      }
      if (found >= limit) break;
    }
  }
  return found;
}

function emptyOutput(step: StepRun): Finding[] {
  // a node of a merged job may have taken no mini-batch: the job's merged output is what must hold data
  if (step.job) return [];
  const recordedFolder = (step.processes[0]?.json.local as { folder?: string } | undefined)?.folder;
  const sameMachine = recordedFolder === undefined || path.resolve(recordedFolder) === path.resolve(step.folder);
  /** A recorded path, moved along with the run folder when it was inside it. */
  const locate = (p: string): string | undefined => {
    if (recordedFolder && !sameMachine && (p === recordedFolder || p.startsWith(`${recordedFolder}${path.sep}`) || p.startsWith(`${recordedFolder}/`))) {
      return path.join(step.folder, p.slice(recordedFolder.length));
    }
    if (path.isAbsolute(p)) return fs.existsSync(p) || sameMachine ? p : undefined;
    return path.resolve(p);
  };
  const candidates: { path: string; from: string; kind: 'folder' | 'file' | 'any' }[] = [];
  for (const [k, v] of Object.entries(step.tags)) if (OUTPUT_TAG.test(k) && v.trim() !== '') candidates.push({ path: v, from: `the tag "${k}"`, kind: 'any' });
  const r = step.result;
  const outputAction = step.stepSpanAttributes['parallel_run.output_action'];
  if (r && typeof r.output_file === 'string' && outputAction !== 'summary_only') candidates.push({ path: r.output_file, from: 'result.json output_file', kind: 'file' });
  const out: Finding[] = [];
  for (const c of candidates) {
    const p = locate(c.path);
    if (p === undefined) continue; // recorded on another machine and not carried with the run folder
    const problem = outputProblem(p, c.kind);
    if (!problem) continue;
    out.push(outputFinding(step.label, c.path, p, c.from, problem, step));
  }
  return out;
}

/** A merged job's output file (result.json output_file, unless summary_only). */
function jobOutput(job: JobRun): Finding[] {
  const file = job.result.output_file;
  const config = job.result.config as { output_action?: string } | undefined;
  if (typeof file !== 'string' || config?.output_action === 'summary_only') return [];
  const problem = outputProblem(file, 'file');
  if (!problem || (problem === 'empty' && (job.result.items as { succeeded?: number } | undefined)?.succeeded === 0)) return [];
  return [outputFinding(job.label, file, file, `${job.label}/result.json output_file`, problem, undefined)];
}

/** Outputs named on the command line: checked once for the whole run. */
function explicitOutputs(run: RunData, explicit: readonly string[]): Finding[] {
  const out: Finding[] = [];
  for (const e of explicit) {
    const p = path.resolve(e);
    const problem = outputProblem(p, 'any');
    if (problem) out.push(outputFinding(run.steps.length === 1 ? run.steps[0]!.label : undefined, e, p, '--output', problem, run.steps.length === 1 ? run.steps[0] : undefined));
  }
  return out;
}

function outputProblem(p: string, kind: 'folder' | 'file' | 'any'): 'missing' | 'empty' | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    return 'missing';
  }
  if (stat.isDirectory()) return kind === 'file' ? 'missing' : contentFiles(p) === 0 ? 'empty' : undefined;
  return stat.size === 0 ? 'empty' : undefined;
}

function outputFinding(label: string | undefined, shown: string, p: string, from: string, problem: 'missing' | 'empty', step: StepRun | undefined): Finding {
  const succeeded = (step?.result?.items as { succeeded?: number } | undefined)?.succeeded;
  const evidence = [`${shown} (from ${from}) ${problem === 'missing' ? 'does not exist' : 'holds no data (no file, or only empty files)'}${p !== shown ? ` (looked at ${p})` : ''}`];
  if (typeof succeeded === 'number') evidence.push(`the step reports ${succeeded} succeeded items`);
  if (step) evidence.push(`step outcome: ${step.outcome}`);
  return {
    id: 'empty-output',
    severity: 'error',
    step: label,
    title: `${label ? `${label}: ` : ''}${problem === 'missing' ? 'the output folder was never created' : 'the step wrote nothing to its output'}: ${shown}`,
    evidence,
    fix:
      problem === 'missing'
        ? 'The step never created its output: the next step that reads it fails or reads nothing. Write the outputs to the path the pipeline gives the step (not a hard-coded or relative one: the working directory differs on the compute), and create the folder before writing.'
        : 'The output exists but is empty: the step wrote elsewhere (a relative path resolved against another working directory), wrote only on a branch that did not run, or its writes were not flushed before exit (await the write streams before step.end()).',
    data: { output: shown, resolved: p, from, problem, succeededItems: succeeded },
  };
}

// ---------------------------------------------------------------------------------------------
// re-runs, incomplete files

function rerun(step: StepRun): Finding[] {
  const out: Finding[] = [];
  const runs = step.runIds;
  const twice = step.miniBatches.repeated;
  const starts = step.starts;
  if (writersInUse(step).length > 0 && twice.count === 0) return out; // at the same time, not again: concurrent-writers
  if (runs.length > 1 || twice.count > 0 || starts.length > 1) {
    const evidence: string[] = [];
    if (runs.length > 1) evidence.push(`${runs.length} runs wrote into this folder: ${runs.map((r) => `${r.runId} (from ${new Date(r.first).toISOString()}, ${r.records} log records)`).join('; ')}`);
    else if (starts.length > 1) evidence.push(`the step started ${starts.length} times under the same run id ${runs[0]?.runId ?? ''}: at ${starts.map((t) => new Date(t).toISOString()).join(', ')}`);
    if (twice.count > 0) evidence.push(`${twice.count} mini-batch${twice.count === 1 ? ' was' : 'es were'} reported more than once in processed-mini-batches.csv: ${ids(twice.examples, 6, twice.count)}`);
    out.push({
      id: 'rerun',
      severity: 'warning',
      step: step.label,
      title: `${step.label}: the step ran ${Math.max(runs.length, starts.length) > 1 ? `${Math.max(runs.length, starts.length)} times` : 'again'} into the same run folder`,
      evidence,
      fix:
        'A step re-ran under the same pipeline run id: an orchestrator retry after a failure or preemption, or a resubmission that reused the id. Its files mix both runs. ' +
        'If the re-run was unexpected, look at why the first run stopped (the earlier run id\'s last records) and at the job\'s retry settings; give a deliberate re-run a new STEP_TELEMETRY_PIPELINE_RUN_ID.',
      data: { runs: runs.map((r) => ({ runId: r.runId, first: new Date(r.first).toISOString(), records: r.records })), starts: starts.map((t) => new Date(t).toISOString()), duplicateMiniBatches: twice.count },
    });
  }
  return out;
}

/** What went wrong writing the run folder: its processes' step.json `local.failures`, else the diagnostics (as earlier versions recorded it). */
function localFailures(step: StepRun): string[] {
  const out: string[] = [];
  for (const p of step.processes) {
    const local = p.json.local as { complete?: unknown; failures?: unknown } | undefined;
    if (local?.complete !== false || !Array.isArray(local.failures)) continue;
    for (const f of local.failures as { file?: unknown; error?: unknown; time?: unknown }[]) {
      out.push(`${p.file}: writing ${String(f?.file)} failed at ${String(f?.time)}: ${String(f?.error)}`);
    }
  }
  if (out.length > 0) return out;
  return step.diagnostics.filter((d) => /^local\.(?:write|unwritable)/.test(d.kind ?? '') || /cannot write .*local files/i.test(d.message)).map((d) => d.message);
}

/** The notes of the files of a step folder (their labels start with the step's: both are relative to the run's folder). */
function notesOf(step: StepRun, notes: readonly ReadNote[]): ReadNote[] {
  return notes.filter((n) => n.line > 0 && n.file.startsWith(`${step.label}/`));
}

/**
 * A run folder that could not be written to the end; a half-written last line in it (another file
 * was being written when the disk filled up and the process was killed before it cut the line
 * off) is part of the same story, told here rather than as truncated-file.
 */
function localFilesIncomplete(step: StepRun, notes: readonly ReadNote[]): Finding[] {
  const bad = localFailures(step);
  if (bad.length === 0) return [];
  const running = step.outcome === 'running';
  const evidence = running ? [...bad, 'step.json still says "running": its last write was before the failure, so how the step ended is not known'] : [...bad];
  for (const n of notesOf(step, notes)) evidence.push(`${n.message} (being written when the process stopped)`);
  return [
    {
      id: 'local-files-incomplete',
      severity: 'error',
      step: step.label,
      title: `${step.label}: writing the run folder failed, its files are incomplete`,
      evidence,
      fix: 'The disk filled up or the folder became unwritable during the run: give STEP_TELEMETRY_DIR a folder with space (the job\'s outputs mount), and check the disk of the compute. Every line of the files is whole (but a last one being written when the process was killed); records after the failure are only in the backends, if any.',
      data: { failures: bad, outcome: step.outcome },
    },
  ];
}

/** The diagnostics of processes that found their files held by another process. */
function writersInUse(step: StepRun): string[] {
  return step.diagnostics.filter((d) => d.kind === 'local.folder-in-use').map((d) => d.message);
}

function concurrentWriters(step: StepRun): Finding[] {
  const inUse = writersInUse(step);
  if (inUse.length === 0) return [];
  return [
    {
      id: 'concurrent-writers',
      severity: 'warning',
      step: step.label,
      title: `${step.label}: ${inUse.length + 1} processes wrote into this folder at the same time with the same identity`,
      evidence: inUse,
      fix:
        'Two processes were started with the same step identity (pipeline run id, step name, node rank and process index). Nothing was lost: each wrote files of its own (the later ones carry .pid-<pid> in their names) and this report reads them all. ' +
        'If they are two parts of one step, give each its own STEP_TELEMETRY_PROCESS_INDEX; if they are two runs, give each its own STEP_TELEMETRY_PIPELINE_RUN_ID.',
      data: { processes: inUse.length + 1 },
    },
  ];
}

function truncatedFiles(notes: readonly ReadNote[], explained: ReadonlySet<ReadNote>): Finding[] {
  const real = notes.filter((n) => n.line > 0 && !explained.has(n));
  if (real.length === 0) return [];
  return [
    {
      id: 'truncated-file',
      severity: 'info',
      title: `${real.length} file${real.length === 1 ? '' : 's'} end${real.length === 1 ? 's' : ''} with a half-written line (a writer was killed); the rest was read`,
      evidence: real.map((n) => n.message),
      fix: 'Nothing to repair: the line was being written when the process stopped. Look for why it stopped (step-not-ended, step-failed).',
      data: { notes: real },
    },
  ];
}

// ---------------------------------------------------------------------------------------------

export interface Diagnosis {
  readonly findings: Finding[];
  readonly skipped: Skipped[];
}

/** Run every check over every step of the run. Findings are sorted: errors first. */
export function diagnose(run: RunData, options: CheckOptions = {}): Diagnosis {
  const findings: Finding[] = [];
  const skipped: Skipped[] = [];
  const add = (r: Finding[] | Skipped): void => {
    if (Array.isArray(r)) findings.push(...r);
    else skipped.push(r);
  };
  for (const step of run.steps) {
    const timeout = findTimeout(step, options.runInvocationTimeout);
    add(stepFailed(step));
    add(stepNotEnded(step));
    if (step.attempts.count > 0) {
      add(latencyTrend(step, timeout?.seconds));
      add(dominantFailure(step));
      add(flakyRetries(step, step.attempts.fates, timeout));
      add(timeoutTight(step, timeout));
      add(hungMiniBatch(step, timeout));
    } else if (step.miniBatches.count === 0) {
      skipped.push({ id: 'latency-trend, dominant-failure, flaky-retries, timeout-tight, hung-mini-batch', step: step.label, reason: 'no mini-batches recorded (a plain step)' });
    }
    add(exportFailures(step));
    add(dependencyMissing(step));
    if (options.reference) add(referenceChecks(step, options.reference));
    add(emptyOutput(step));
    add(rerun(step));
    add(concurrentWriters(step));
    add(localFilesIncomplete(step, run.notes));
    // resources (resource-findings.ts)
    add(memoryGrowth(step));
    add(outOfMemory(step));
    add(eventLoopBlocked(step));
    if (step.attempts.count > 0) {
      add(ioBound(step));
      add(cpuSaturated(step));
    }
    correlateLatencyWithMemory(findings, step.label);
  }
  for (const job of run.jobs) {
    add(jobFailed(job));
    add(jobOutput(job));
  }
  add(explicitOutputs(run, options.outputs ?? []));
  // a half-written line in a folder that could not be written to the end: local-files-incomplete says it
  add(truncatedFiles(run.notes, new Set(run.steps.filter((s) => localFailures(s).length > 0).flatMap((s) => notesOf(s, run.notes)))));
  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  return { findings, skipped };
}
