// The doctor's checks on resources*.jsonl (src/resources/) and on what each worker measured around
// run() (the attempt spans' mini_batch.cpu_ms and friends): memory that grows across mini-batches,
// a worker that died of memory, mini-batches that wait off CPU (and which), a node whose CPUs were
// saturated, and an event loop blocked for seconds. Pure functions of the run folder, like
// findings.ts. A run folder from before the per-attempt figures gets io-bound from the workers'
// CPU per process.
import { mannKendall, median, summarize, theilSen } from '../run-folder/analysis.js';
import { WAITED_CPU_SHARE } from '../run-folder/attempts.js';
import type { Attempt, AttemptSet, ResourceSample, StepRun } from '../run-folder/model.js';
import { seconds, type Finding, type Severity, type Skipped } from './findings.js';

const MIB = 1024 * 1024;

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '?';
  const a = Math.abs(n);
  if (a >= 1024 * MIB) return `${(n / 1024 / MIB).toFixed(2)} GiB`;
  if (a >= MIB) return `${(n / MIB).toFixed(a >= 100 * MIB ? 0 : 1)} MiB`;
  if (a >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${Math.round(n)} B`;
}

/** Bytes with a sign: +3.0 MiB, -512 KiB. */
function signed(n: number): string {
  return n < 0 ? `-${bytes(-n)}` : `+${bytes(n)}`;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s >= 5400) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 90) return `${Math.round(s / 60)} min`;
  return `${Math.round(s)} s`;
}

/** Samples per process, each in time order. */
function byProcess(step: StepRun): Map<number, ResourceSample[]> {
  const out = new Map<number, ResourceSample[]>();
  for (const s of step.resources) {
    let list = out.get(s.process);
    if (!list) out.set(s.process, (list = []));
    list.push(s);
  }
  return out;
}

const keptByWorker = new WeakMap<AttemptSet, Map<string, Attempt[]>>();

/** The attempts kept of each worker, in start order: worked out once a step (the checks ask per process, several times). */
function workerAttempts(attempts: AttemptSet, worker: string): readonly Attempt[] {
  let by = keptByWorker.get(attempts);
  if (!by) {
    keptByWorker.set(attempts, (by = new Map()));
    for (const a of attempts.kept) {
      let l = by.get(a.worker);
      if (!l) by.set(a.worker, (l = []));
      l.push(a);
    }
  }
  return by.get(worker) ?? [];
}

/** The first index of `list` (in start order) that starts after `t` (`at`: at or after). */
function startingAfter(list: readonly Attempt[], t: number, at = false): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const start = list[mid]!.start;
    if (start < t || (!at && start === t)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The attempts a process ran (in a large run, a sample: see weightOf): its worker name, within the time its samples cover. */
function attemptsOf(step: StepRun, samples: readonly ResourceSample[]): Attempt[] {
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const from = first.time - first.periodS * 1000 - 1000;
  const mine = workerAttempts(step.attempts, first.worker);
  return mine.slice(startingAfter(mine, from, true), startingAfter(mine, last.time));
}

/** How many attempts these stand for. */
function weightOf(attempts: readonly Attempt[]): number {
  let w = 0;
  for (const a of attempts) w += a.weight;
  return Math.round(w);
}

/** At most `max` points: medians of equal groups (Theil-Sen is quadratic in the points). */
function thin(xs: readonly number[], ys: readonly number[], max = 60): { xs: number[]; ys: number[] } {
  if (xs.length <= max) return { xs: [...xs], ys: [...ys] };
  const ox: number[] = [];
  const oy: number[] = [];
  for (let g = 0; g < max; g++) {
    const from = Math.floor((g * xs.length) / max);
    const to = Math.floor(((g + 1) * xs.length) / max);
    ox.push(median(xs.slice(from, to)));
    oy.push(median(ys.slice(from, to)));
  }
  return { xs: ox, ys: oy };
}

// ---------------------------------------------------------------------------------------------
// memory-growth

const GROWTH_MIN_SAMPLES = 8;
const GROWTH_MIN_BYTES = 32 * MIB;

interface Growth {
  readonly process: number;
  readonly worker: string;
  readonly pid?: number;
  readonly metric: 'heap after GC' | 'heap used' | 'RSS';
  readonly first: number;
  readonly last: number;
  readonly perSecond: number;
  readonly perMiniBatch?: number;
  readonly miniBatches: number;
  readonly limit?: number;
  readonly limitName?: string;
  readonly secondsToLimit?: number;
  readonly miniBatchesToLimit?: number;
  readonly tau: number;
  readonly p: number;
  /** Heap growth across run() as its worker measured it: the median per attempt, and the largest. */
  readonly heapPerAttempt?: { readonly median: number; readonly largest: readonly Attempt[] };
}

/** The heap growth across run() of attempts that have it (the worker's own figure; in a large run, of the attempts kept, weighted). */
function heapPerAttempt(attempts: readonly Attempt[]): Growth['heapPerAttempt'] {
  const measured = attempts.filter((a) => a.heapGrowthBytes !== undefined);
  if (measured.length < 5) return undefined;
  const largest = [...measured].sort((a, b) => b.heapGrowthBytes! - a.heapGrowthBytes!).slice(0, 3);
  return { median: heapGrowthMedian(measured), largest };
}

/** The median heap growth of attempts that all have the figure, each counted as often as it stands for. */
export function heapGrowthMedian(measured: readonly Attempt[]): number {
  return summarize(
    measured.map((a) => a.heapGrowthBytes!),
    measured.map((a) => a.weight),
  ).p50;
}

function growthOf(step: StepRun, samples: readonly ResourceSample[], nodeMemory: number | undefined): Growth | undefined {
  const attempts = attemptsOf(step, samples);
  // from the first mini-batch on: start-up (imports, init()) is not a trend
  const from = attempts.length > 0 ? attempts[0]!.start : samples[0]!.time;
  const run = samples.filter((s) => s.time >= from);
  if (run.length < GROWTH_MIN_SAMPLES) return undefined;
  const afterGc = run.filter((s) => s.heapAfterGc !== undefined);
  const candidates: { metric: Growth['metric']; points: ResourceSample[]; value: (s: ResourceSample) => number; limit?: number; limitName?: string }[] = [
    { metric: 'heap after GC', points: afterGc, value: (s) => s.heapAfterGc!, limit: run[run.length - 1]!.heapLimit, limitName: 'the V8 heap limit' },
    { metric: 'heap used', points: run, value: (s) => s.heapUsed, limit: run[run.length - 1]!.heapLimit, limitName: 'the V8 heap limit' },
    {
      metric: 'RSS',
      points: run,
      value: (s) => s.rss,
      limit: run[run.length - 1]!.memoryLimit ?? nodeMemory,
      limitName: run[run.length - 1]!.memoryLimit !== undefined ? 'the cgroup memory limit' : "the node's memory",
    },
  ];
  const miniBatches = weightOf(attempts);
  for (const c of candidates) {
    if (c.points.length < (c.metric === 'heap after GC' ? 6 : GROWTH_MIN_SAMPLES)) continue;
    const ys = c.points.map(c.value);
    const ts = c.points.map((s) => (s.time - from) / 1000);
    const mk = mannKendall(ys);
    if (!(mk.pIncrease < 0.01 && mk.tau >= 0.5)) continue;
    const thinned = thin(ts, ys);
    const perSecond = theilSen(thinned.xs, thinned.ys);
    const span = ts[ts.length - 1]! - ts[0]!;
    const grown = perSecond * span;
    const start = median(ys.slice(0, Math.max(2, Math.floor(ys.length / 10))));
    if (!(grown >= GROWTH_MIN_BYTES && grown >= 0.2 * start)) continue;
    // mini-batch index of each point: how many of the process's attempts had started by then
    let perMiniBatch: number | undefined;
    if (miniBatches >= 5) {
      // both in time order: one sweep
      const idx: number[] = [];
      let k = 0;
      let started = 0;
      for (const s of c.points) {
        while (k < attempts.length && attempts[k]!.start <= s.time) started += attempts[k++]!.weight;
        idx.push(Math.round(started));
      }
      const t2 = thin(idx, ys);
      perMiniBatch = theilSen(t2.xs, t2.ys);
    }
    const last = ys[ys.length - 1]!;
    const remaining = c.limit !== undefined ? c.limit - last : undefined;
    const secondsToLimit = remaining !== undefined && perSecond > 0 ? Math.max(0, remaining / perSecond) : undefined;
    const miniBatchesToLimit = remaining !== undefined && perMiniBatch !== undefined && perMiniBatch > 0 ? Math.max(0, Math.ceil(remaining / perMiniBatch)) : undefined;
    return {
      process: run[0]!.process,
      worker: run[0]!.worker,
      pid: run[0]!.pid,
      metric: c.metric,
      first: start,
      last,
      perSecond,
      perMiniBatch,
      miniBatches,
      limit: c.limit,
      limitName: c.limitName,
      secondsToLimit,
      miniBatchesToLimit,
      tau: mk.tau,
      p: mk.pIncrease,
      heapPerAttempt: heapPerAttempt(attempts),
    };
  }
  return undefined;
}

function nodeMemoryOf(step: StepRun): number | undefined {
  for (const s of step.resources) if (s.node?.memoryTotal !== undefined) return s.node.memoryTotal;
  return step.runtime?.memoryBytes;
}

export function memoryGrowth(step: StepRun): Finding[] | Skipped {
  if (step.resources.length === 0) return { id: 'memory-growth', step: step.label, reason: 'no resources.jsonl (STEP_TELEMETRY_RESOURCES=false, or a run folder from before it)' };
  const procs = byProcess(step);
  const nodeMemory = nodeMemoryOf(step);
  const growing: Growth[] = [];
  let judged = 0;
  for (const samples of procs.values()) {
    if (samples.length >= GROWTH_MIN_SAMPLES) judged++;
    const g = growthOf(step, samples, nodeMemory);
    if (g) growing.push(g);
  }
  if (judged === 0) return { id: 'memory-growth', step: step.label, reason: `no process has ${GROWTH_MIN_SAMPLES} resource samples (the run was short for STEP_TELEMETRY_RESOURCES_INTERVAL_MS)` };
  if (growing.length === 0) return [];
  growing.sort((a, b) => (a.secondsToLimit ?? Infinity) - (b.secondsToLimit ?? Infinity));
  const evidence: string[] = [];
  for (const g of growing.slice(0, 4)) {
    evidence.push(
      `${g.worker}${g.pid !== undefined ? ` (pid ${g.pid})` : ''}: ${g.metric} grows from ${bytes(g.first)} to ${bytes(g.last)}` +
        `${g.perMiniBatch !== undefined ? `, +${bytes(g.perMiniBatch)} per mini-batch over ${g.miniBatches} mini-batches` : ''}, +${bytes(g.perSecond * 60)} per minute` +
        ` (Theil-Sen slope; Mann-Kendall τ ${g.tau.toFixed(2)}, p ${g.p < 0.001 ? '< 0.001' : g.p.toFixed(3)})`,
    );
    const h = g.heapPerAttempt;
    if (h) evidence.push(`  its heap grew across run() by a median ${signed(h.median)} per attempt (as the worker measured it); the most: ${h.largest.map((a) => `${a.id} ${signed(a.heapGrowthBytes!)}`).join(', ')}`);
    if (g.limit !== undefined && g.secondsToLimit !== undefined) {
      evidence.push(
        `  at this rate it reaches ${g.limitName} of ${bytes(g.limit)} in about ${duration(g.secondsToLimit)}${g.miniBatchesToLimit !== undefined ? ` (${g.miniBatchesToLimit} more mini-batches)` : ''}`,
      );
    }
  }
  if (growing.length > 4) evidence.push(`… and ${growing.length - 4} more processes`);
  const soonest = growing[0]!.secondsToLimit;
  const severity: Severity = soonest !== undefined && soonest < 1800 ? 'error' : 'warning';
  return [
    {
      id: 'memory-growth',
      severity,
      step: step.label,
      title: `${step.label}: memory grows steadily across mini-batches in ${growing.length} process${growing.length === 1 ? '' : 'es'} (${growing.map((g) => g.worker).slice(0, 4).join(', ')}): a leak`,
      evidence,
      fix:
        'Something run() keeps between calls grows with every mini-batch: a module-level array, cache or map, results appended to a list, listeners or timers added per call, clients or models opened per mini-batch. ' +
        'Release per-mini-batch state at the end of run(), bound caches (an LRU), and load heavy objects once in init(). To find it, take two heap snapshots a few mini-batches apart (node --heapsnapshot-signal=SIGUSR2, or v8.writeHeapSnapshot()) and compare what grew.',
      data: {
        processes: growing.map((g) => ({
          process: g.process,
          worker: g.worker,
          pid: g.pid,
          metric: g.metric,
          firstBytes: Math.round(g.first),
          lastBytes: Math.round(g.last),
          bytesPerSecond: Math.round(g.perSecond),
          bytesPerMiniBatch: g.perMiniBatch === undefined ? undefined : Math.round(g.perMiniBatch),
          miniBatches: g.miniBatches,
          limitBytes: g.limit,
          secondsToLimit: g.secondsToLimit === undefined ? undefined : Math.round(g.secondsToLimit),
          miniBatchesToLimit: g.miniBatchesToLimit,
          heapGrowthPerAttemptBytes: g.heapPerAttempt === undefined ? undefined : Math.round(g.heapPerAttempt.median),
          mannKendallTau: round(g.tau),
          pValue: g.p,
        })),
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// out-of-memory

const PID = /\(pid (\d+)\)/;

/** The last sample of the process a crash message names (by pid), written before `at`. */
function lastSampleOf(step: StepRun, pid: number | undefined, worker: string, at: number): ResourceSample | undefined {
  let best: ResourceSample | undefined;
  for (const s of step.resources) {
    if (s.time > at + 1000) continue;
    if (pid !== undefined ? s.pid !== pid : s.worker !== worker) continue;
    if (!best || s.time > best.time) best = s;
  }
  return best;
}

/** The growth rate of that process at its end (bytes/s over its last two samples), to extrapolate past the last one. */
function rssRateAtEnd(step: StepRun, last: ResourceSample): number {
  const same = step.resources.filter((s) => s.process === last.process && s.time < last.time);
  const prev = same[same.length - 1];
  if (!prev || last.time <= prev.time) return 0;
  return Math.max(0, (last.rssMax - prev.rssMax) / ((last.time - prev.time) / 1000));
}

interface OomCase {
  readonly kind: 'v8-heap' | 'sigkill';
  readonly worker: string;
  readonly pid?: number;
  readonly miniBatch?: string;
  readonly attempt?: number;
  readonly at: number;
  readonly last?: ResourceSample;
  readonly line: string;
}

function nearLimit(step: StepRun, last: ResourceSample | undefined, at: number): { share: number; limit: number; what: string } | undefined {
  if (!last) return undefined;
  const limit = last.memoryLimit;
  if (limit !== undefined) {
    const projected = last.rssMax + rssRateAtEnd(step, last) * Math.max(0, (at - last.time) / 1000);
    const share = projected / limit;
    if (share >= 0.8) return { share: Math.min(share, 1), limit, what: 'the cgroup memory limit' };
  }
  // the node itself ran out: MemAvailable near zero in process 0's samples around then
  const node = step.resources.filter((s) => s.node?.memoryAvailable !== undefined && s.time <= at + 1000).pop();
  if (node?.node?.memoryAvailable !== undefined && node.node.memoryTotal !== undefined && node.node.memoryAvailable / node.node.memoryTotal < 0.05) {
    return { share: 1 - node.node.memoryAvailable / node.node.memoryTotal, limit: node.node.memoryTotal, what: "the node's memory" };
  }
  return undefined;
}

export function outOfMemory(step: StepRun): Finding[] {
  const cases: OomCase[] = [];
  for (const a of step.attempts.failed) {
    if (a.outcome !== 'crash') continue;
    const message = a.errorMessage ?? '';
    const pid = Number(PID.exec(message)?.[1]) || undefined;
    const at = a.start + a.durationMs;
    const last = lastSampleOf(step, pid, a.worker, at);
    if (a.errorType === 'OutOfMemory' || /JavaScript heap out of memory/.test(message)) {
      cases.push({ kind: 'v8-heap', worker: a.worker, pid, miniBatch: a.id, attempt: a.attempt, at, last, line: 'V8 stopped it at its heap limit ("JavaScript heap out of memory")' });
    } else if (/killed by SIGKILL/.test(message) && nearLimit(step, last, at)) {
      cases.push({ kind: 'sigkill', worker: a.worker, pid, miniBatch: a.id, attempt: a.attempt, at, last, line: 'it was killed by SIGKILL' });
    }
  }
  // the step process itself never ended, and its memory was at the limit
  if (step.outcome === 'running') {
    const main = step.resources.filter((s) => s.process === 0).pop();
    if (main && nearLimit(step, main, main.time)) cases.push({ kind: 'sigkill', worker: main.worker, pid: main.pid, at: main.time, last: main, line: 'the step process stopped without a trace (SIGKILL)' });
  }
  if (cases.length === 0) return [];
  const evidence: string[] = [];
  for (const c of cases.slice(0, 5)) {
    const l = c.last;
    let memory = 'no resource sample of it';
    if (l) {
      const ago = Math.max(0, (c.at - l.time) / 1000);
      const heap = l.heapLimit !== undefined ? `heap ${bytes(l.heapUsedMax)} of the ${bytes(l.heapLimit)} V8 heap limit (${pct(l.heapUsedMax / l.heapLimit)})` : `heap ${bytes(l.heapUsedMax)}`;
      const rss = l.memoryLimit !== undefined ? `RSS ${bytes(l.rssMax)} of the ${bytes(l.memoryLimit)} cgroup limit (${pct(l.rssMax / l.memoryLimit)})` : `RSS ${bytes(l.rssMax)}`;
      memory = `last sample ${ago.toFixed(1)} s before: ${c.kind === 'v8-heap' ? `${heap}, ${rss}` : `${rss}, ${heap}`}`;
      const near = c.kind === 'sigkill' ? nearLimit(step, l, c.at) : undefined;
      if (near && near.what !== 'the cgroup memory limit') memory += `; ${near.what} was ${pct(near.share)} used`;
    }
    evidence.push(`${c.worker}${c.pid !== undefined ? ` (pid ${c.pid})` : ''}${c.miniBatch ? ` running ${c.miniBatch} (attempt ${c.attempt})` : ''}: ${c.line}; ${memory}`);
  }
  if (cases.length > 5) evidence.push(`… ${cases.length - 5} more`);
  const v8 = cases.some((c) => c.kind === 'v8-heap');
  const kill = cases.some((c) => c.kind === 'sigkill');
  const miniBatches = [...new Set(cases.map((c) => c.miniBatch).filter((m): m is string => m !== undefined))];
  return [
    {
      id: 'out-of-memory',
      severity: 'error',
      step: step.label,
      title: `${step.label}: ${cases.length === 1 ? 'a worker ran' : `${cases.length} workers ran`} out of memory${miniBatches.length > 0 ? ` (running ${miniBatches.slice(0, 3).join(', ')}${miniBatches.length > 3 ? ', …' : ''})` : ''}`,
      evidence,
      fix: [
        'A worker needs more memory than it may use. Lower what one mini-batch needs (a smaller mini_batch_size, streaming the input instead of reading it whole, freeing per-mini-batch state), or fix a leak (see memory-growth).',
        v8 ? "Or raise V8's heap limit: NODE_OPTIONS=--max-old-space-size=<MiB>, within the memory of the container." : '',
        kill ? "SIGKILL at the memory limit is the kernel's out-of-memory killer: give the container more memory, or run fewer workers per node (process_count_per_node), since they share it." : '',
        'The mini-batch named here is the one that was running, not necessarily the one that used the memory.',
      ]
        .filter(Boolean)
        .join(' '),
      data: {
        cases: cases.map((c) => ({
          kind: c.kind,
          worker: c.worker,
          pid: c.pid,
          miniBatch: c.miniBatch,
          attempt: c.attempt,
          lastSample: c.last ? { time: new Date(c.last.time).toISOString(), rssBytes: c.last.rssMax, heapUsedBytes: c.last.heapUsedMax, heapLimitBytes: c.last.heapLimit, memoryLimitBytes: c.last.memoryLimit } : undefined,
        })),
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// event-loop-blocked

const BLOCKED_S = 1;

export function eventLoopBlocked(step: StepRun): Finding[] {
  const blocked = step.resources.filter((s) => s.eventLoopDelayMaxS >= BLOCKED_S);
  if (blocked.length === 0) return [];
  const perWorker = new Map<string, ResourceSample[]>();
  for (const s of blocked) {
    const key = `${s.worker}|${s.pid ?? s.process}`;
    let l = perWorker.get(key);
    if (!l) perWorker.set(key, (l = []));
    l.push(s);
  }
  const longest = blocked.reduce((m, s) => (s.eventLoopDelayMaxS > m.eventLoopDelayMaxS ? s : m));
  const evidence: string[] = [];
  const running = new Set<string>();
  for (const list of [...perWorker.values()].sort((a, b) => Math.max(...b.map((s) => s.eventLoopDelayMaxS)) - Math.max(...a.map((s) => s.eventLoopDelayMaxS))).slice(0, 4)) {
    const top = list.reduce((m, s) => (s.eventLoopDelayMaxS > m.eventLoopDelayMaxS ? s : m));
    // the attempts of that worker within the line's period; the culprit ran at least as long as the block
    const from = top.time - top.periodS * 1000;
    const overlapping = step.attempts.kept.filter((a) => a.worker === top.worker && a.start <= top.time && a.start + a.durationMs >= from);
    const long = overlapping.filter((a) => a.durationMs >= 900 * top.eventLoopDelayMaxS);
    const during = (long.length > 0 ? long : overlapping).map((a) => a.id);
    for (const id of during) running.add(id);
    evidence.push(
      `${top.worker}${top.pid !== undefined ? ` (pid ${top.pid})` : ''}: the event loop was blocked for up to ${seconds(top.eventLoopDelayMaxS * 1000)} (${list.length} sample${list.length === 1 ? '' : 's'} with a delay of ${BLOCKED_S} s or more)` +
        `${during.length > 0 ? `, while running ${during.slice(0, 4).join(', ')}${during.length > 4 ? ', …' : ''}` : ''}`,
    );
  }
  return [
    {
      id: 'event-loop-blocked',
      severity: longest.eventLoopDelayMaxS >= 5 ? 'warning' : 'info',
      step: step.label,
      title: `${step.label}: the event loop of ${perWorker.size} process${perWorker.size === 1 ? '' : 'es'} was blocked for up to ${seconds(longest.eventLoopDelayMaxS * 1000)}`,
      evidence,
      fix:
        'Synchronous work in run() (a CPU-bound loop, a sync file read, JSON.parse of a huge string) holds the event loop: while it runs, the worker can neither send its results nor answer timers, so the runner learns late which mini-batch runs and a crash inside loses the results it held. ' +
        'That is fine for a short compute step; for seconds, move the compute to a worker_threads pool, use the async file APIs, or yield between items (await new Promise(setImmediate)).',
      data: { longestSeconds: round(longest.eventLoopDelayMaxS), processes: perWorker.size, samples: blocked.length, miniBatches: [...running].slice(0, 20) },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// io-bound / cpu-saturated

const CPU_MIN_BUSY_S = 5;
const CPU_MIN_ATTEMPTS = 20;
/** The share of run() on a CPU (or waiting for one) under which mini-batches wait on something else: the same for a run as for an attempt. */
const IO_BOUND_RATIO = WAITED_CPU_SHARE;

interface WorkerCpu {
  readonly worker: string;
  readonly pid?: number;
  readonly busyS: number;
  readonly cpuS: number;
  /** Seconds its main thread waited for a core meanwhile (Linux), when known. */
  readonly cpuWaitS?: number;
  readonly attempts: number;
  readonly readChars?: number;
  readonly diskReadBytes?: number;
}

function workerCpu(step: StepRun): WorkerCpu[] {
  const out: WorkerCpu[] = [];
  for (const samples of byProcess(step).values()) {
    if (samples[0]!.process === 0 || samples.length < 2) continue;
    const attempts = attemptsOf(step, samples);
    if (attempts.length === 0) continue;
    // CPU from the sample before the first mini-batch to the last sample (init() before it excluded)
    const firstStart = attempts[0]!.start;
    const base = [...samples].reverse().find((s) => s.time <= firstStart) ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    const inWindow = attempts.filter((a) => a.start >= base.time && a.start + a.durationMs <= last.time + 1000);
    if (inWindow.length === 0) continue;
    out.push({
      worker: last.worker,
      pid: last.pid,
      busyS: inWindow.reduce((s, a) => s + a.durationMs * a.weight, 0) / 1000,
      cpuS: Math.max(0, last.cpuS - base.cpuS),
      cpuWaitS: last.cpuWaitS !== undefined && base.cpuWaitS !== undefined ? Math.max(0, last.cpuWaitS - base.cpuWaitS) : undefined,
      attempts: weightOf(inWindow),
      readChars: last.readChars !== undefined && base.readChars !== undefined ? last.readChars - base.readChars : undefined,
      diskReadBytes: last.diskReadBytes !== undefined && base.diskReadBytes !== undefined ? last.diskReadBytes - base.diskReadBytes : undefined,
    });
  }
  return out;
}

/** process 0's node samples taken while mini-batches ran. */
function nodeSamplesDuringRun(step: StepRun): ResourceSample[] {
  const from = step.attempts.firstStart;
  const to = step.attempts.lastEnd;
  if (from === undefined || to === undefined) return [];
  return step.resources.filter((s) => s.process === 0 && s.node?.cpuUtilization !== undefined && s.time > from && s.time - s.periodS * 1000 < to);
}

function workersOf(step: StepRun): number {
  const attr = step.stepSpanAttributes['parallel_run.process_count_per_node'];
  if (typeof attr === 'number' && attr > 0) return attr;
  return step.attempts.byWorker.size;
}

/**
 * Where run()'s time went: on a CPU (the CPU seconds each worker measured around each run()),
 * waiting for one (the workers' main-thread run-queue wait over the time their mini-batches ran,
 * from resources*.jsonl, Linux), and the rest: blocked on I/O, a timer, a lock.
 */
interface RunUse {
  /** The attempts with figures, run() for some time (exact, every attempt read). */
  readonly attempts: number;
  readonly runMs: number;
  readonly cpuMs: number;
  /** When every worker's resource lines have it. */
  readonly waitMs?: number;
}

function runUse(step: StepRun): RunUse {
  let attempts = 0;
  let runMs = 0;
  let cpuMs = 0;
  for (const u of step.attempts.usage.byWorker.values()) {
    attempts += u.busyAttempts;
    runMs += u.runMs;
    cpuMs += u.cpuMs;
  }
  return { attempts, runMs, cpuMs, waitMs: attempts > 0 ? waitDuring(step) : undefined };
}

/** Run-queue wait of the workers' main threads while their mini-batches ran (their resource lines), ms; undefined when a worker's lines lack it. */
function waitDuring(step: StepRun): number | undefined {
  const workers = workerCpu(step);
  return workers.length > 0 && workers.every((w) => w.cpuWaitS !== undefined) ? workers.reduce((s, w) => s + w.cpuWaitS!, 0) * 1000 : undefined;
}

/** Share of run() time on a CPU or waiting for one (the rest is blocked: I/O); without the wait, on a CPU only. */
function busyShare(cpuMs: number, waitMs: number | undefined, runMs: number): number {
  return (cpuMs + (waitMs ?? 0)) / runMs;
}

function workerCount(n: number): string {
  return `${n} worker process${n === 1 ? '' : 'es'}`;
}

export function ioBound(step: StepRun): Finding[] | Skipped {
  const use = runUse(step);
  if (use.attempts < CPU_MIN_ATTEMPTS || use.runMs < CPU_MIN_BUSY_S * 1000) {
    // a run folder from before the workers measured each run(): their CPU over their mini-batches' time
    if (use.attempts === 0) return ioBoundPerProcess(step);
    return { id: 'io-bound', step: step.label, reason: `${use.attempts} mini-batch attempts and ${(use.runMs / 1000).toFixed(1)} s in run() with CPU figures (needs ${CPU_MIN_ATTEMPTS} and ${CPU_MIN_BUSY_S} s)` };
  }
  const ratio = use.cpuMs / use.runMs;
  const busy = busyShare(use.cpuMs, use.waitMs, use.runMs);
  if (busy >= IO_BOUND_RATIO) return [];
  const waited = step.attempts.usage.waited;
  const queued = use.waitMs === undefined ? '' : ` (their main threads waited ${seconds(use.waitMs)} for a CPU meanwhile)`;
  const evidence = [
    `${use.attempts} mini-batch attempts spent ${seconds(use.runMs)} in run(); their workers used ${seconds(use.cpuMs)} of CPU meanwhile${queued}: ${pct(ratio)} on a CPU (CPU seconds / run() seconds, measured around each run()), so about ${pct(1 - busy)} of run() was spent waiting on something else`,
    `${waited.count} of them spent under ${pct(IO_BOUND_RATIO)} of run() on a CPU; the longest waits: ${waited.longest
      .slice(0, 5)
      .map((a) => `${a.id}${a.attempt > 1 ? ` (attempt ${a.attempt})` : ''} ${seconds(a.runMs!)} in run(), ${seconds(a.cpuMs!)} of CPU`)
      .join('; ')}${waited.count > 5 ? '; …' : ''}`,
  ];
  const reads = new Map(workerCpu(step).map((w) => [w.worker, w]));
  const perWorker = [...step.attempts.usage.byWorker].filter(([, u]) => u.busyAttempts > 0).sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }));
  for (const [worker, u] of perWorker.slice(0, 4)) {
    const r = reads.get(worker);
    const read = r?.readChars !== undefined ? `; its process read ${bytes(r.readChars)} (${bytes(r.diskReadBytes)} from disk)` : '';
    evidence.push(`${worker}: ${u.busyAttempts} attempts, ${seconds(u.runMs)} in run(), ${seconds(u.cpuMs)} CPU (${pct(u.cpuMs / u.runMs)})${read}`);
  }
  const node = nodeLine(step);
  if (node) evidence.push(node.line);
  return ioFinding(step, ratio, evidence, {
    ratio: round(ratio),
    cpuWaitShare: use.waitMs === undefined ? undefined : round(use.waitMs / use.runMs),
    busySeconds: round(use.runMs / 1000),
    cpuSeconds: round(use.cpuMs / 1000),
    miniBatches: use.attempts,
    workers: perWorker.length,
    basis: 'attempts',
    waited: { count: waited.count, miniBatches: waited.longest.map((a) => a.id) },
    nodeCpuBusy: node?.busy === undefined ? undefined : round(node.busy),
    iowait: node?.iowait === undefined ? undefined : round(node.iowait),
  });
}

function ioFinding(step: StepRun, ratio: number, evidence: string[], data: Record<string, unknown>): Finding[] {
  return [
    {
      id: 'io-bound',
      severity: 'info',
      step: step.label,
      title: `${step.label}: mini-batches spend most of their time off CPU (${pct(ratio)} CPU): I/O-bound`,
      evidence,
      fix:
        'The workers wait (on the input store, the network, a remote model, a sleep or a lock) rather than compute, so the CPUs are mostly idle. ' +
        'Overlap the waiting: raise process_count_per_node above the number of cores, or let run() fetch its items concurrently (Promise.all over the mini-batch) and prefetch inputs; if the input store is the bottleneck, check its throughput and use larger mini-batches of fewer files.',
      data,
    },
  ];
}

/** The node's CPU while mini-batches ran, in a line of evidence. */
function nodeLine(step: StepRun): { line: string; busy: number; iowait?: number } | undefined {
  const node = nodeSamplesDuringRun(step);
  if (node.length === 0) return undefined;
  const busy = node.reduce((s, x) => s + (x.node!.cpuUtilization ?? 0), 0) / node.length;
  const iowait = node.reduce((s, x) => s + (x.node!.iowait ?? 0), 0) / node.length;
  const cpus = node.find((s) => s.node?.cpus !== undefined)?.node?.cpus ?? step.runtime?.cpus;
  const workers = workersOf(step);
  return {
    busy,
    iowait,
    line: `the node's CPUs were ${pct(busy)} busy on average${iowait >= 0.05 ? `, ${pct(iowait)} waiting on disk (iowait)` : ''}${cpus ? ` (${cpus} CPUs, ${workers} worker${workers === 1 ? '' : 's'})` : ''}`,
  };
}

/** io-bound from the workers' resource samples: a run folder without CPU figures per attempt. */
function ioBoundPerProcess(step: StepRun): Finding[] | Skipped {
  const workers = workerCpu(step);
  const busyS = workers.reduce((s, w) => s + w.busyS, 0);
  const cpuS = workers.reduce((s, w) => s + w.cpuS, 0);
  const attempts = workers.reduce((s, w) => s + w.attempts, 0);
  if (workers.length === 0 || busyS < CPU_MIN_BUSY_S || attempts < CPU_MIN_ATTEMPTS) {
    return { id: 'io-bound', step: step.label, reason: `${attempts} mini-batches and ${busyS.toFixed(1)} s of mini-batch time with worker resource samples (needs ${CPU_MIN_ATTEMPTS} and ${CPU_MIN_BUSY_S} s)` };
  }
  const ratio = cpuS / busyS;
  // time waiting for a core is not waiting on I/O: it counts with the CPU time (cpu-saturated's case)
  const waitS = workers.every((w) => w.cpuWaitS !== undefined) ? workers.reduce((s, w) => s + w.cpuWaitS!, 0) : 0;
  if ((cpuS + waitS) / busyS >= IO_BOUND_RATIO) return [];
  const node = nodeLine(step);
  const evidence = [
    `${attempts} mini-batches on ${workerCount(workers.length)} took ${seconds(busyS * 1000)}; those workers used ${seconds(cpuS * 1000)} of CPU meanwhile: ${pct(ratio)} (CPU seconds / mini-batch seconds), so about ${pct(1 - ratio)} of mini-batch time was spent waiting${waitS > 0 ? ` (${seconds(waitS * 1000)} of it for a core, the rest on I/O)` : ''}`,
  ];
  for (const w of workers.slice(0, 4)) {
    const reads = w.readChars !== undefined ? `; read ${bytes(w.readChars)} (${bytes(w.diskReadBytes)} from disk)` : '';
    evidence.push(`${w.worker}${w.pid !== undefined ? ` (pid ${w.pid})` : ''}: ${w.attempts} mini-batches, ${seconds(w.busyS * 1000)} in them, ${seconds(w.cpuS * 1000)} CPU (${pct(w.cpuS / w.busyS)})${reads}`);
  }
  if (node) evidence.push(node.line);
  evidence.push('this run folder has CPU per worker process only (written before the workers measured each run()): which mini-batches waited is not in it');
  return ioFinding(step, ratio, evidence, {
    ratio: round(ratio),
    busySeconds: round(busyS),
    cpuSeconds: round(cpuS),
    miniBatches: attempts,
    workers: workers.length,
    basis: 'processes',
    nodeCpuBusy: node === undefined ? undefined : round(node.busy),
    iowait: node?.iowait === undefined ? undefined : round(node.iowait),
  });
}

export function cpuSaturated(step: StepRun): Finding[] {
  const node = nodeSamplesDuringRun(step);
  if (node.length < 3) return [];
  const cpus = node.find((s) => s.node?.cpus !== undefined)?.node?.cpus ?? step.runtime?.cpus;
  const workers = workersOf(step);
  if (cpus === undefined || workers <= cpus) return [];
  const saturated = node.filter((s) => (s.node!.cpuUtilization ?? 0) >= 0.9);
  const share = saturated.length / node.length;
  if (share < 0.5) return [];
  const use = runUse(step);
  const measured = use.attempts >= CPU_MIN_ATTEMPTS;
  // mini-batches that mostly wait on I/O did not saturate the CPUs, and more of them than cores is right (io-bound)
  if (measured && use.waitMs !== undefined && busyShare(use.cpuMs, use.waitMs, use.runMs) < IO_BOUND_RATIO) return [];
  const busy = node.reduce((s, x) => s + (x.node!.cpuUtilization ?? 0), 0) / node.length;
  const loads = node.map((s) => s.node!.load1m).filter((x): x is number => x !== undefined);
  const load = loads.length > 0 ? median(loads) : undefined;
  const evidence = [
    `the node's ${cpus} CPUs were at least 90% busy in ${saturated.length} of ${node.length} samples taken while mini-batches ran (${pct(busy)} busy on average)`,
    `${workers} workers for ${cpus} CPUs${load !== undefined ? `; median 1-minute load ${load.toFixed(1)}` : ''}`,
  ];
  const onCpu = measured ? use.cpuMs / use.runMs : undefined;
  const queued = measured && use.waitMs !== undefined ? use.waitMs / use.runMs : undefined;
  if (onCpu !== undefined && queued !== undefined && onCpu > 0) {
    evidence.push(
      `while run() ran, a mini-batch was on a CPU ${pct(onCpu)} of the time (measured around each of ${use.attempts} run()s) and waited for one ${pct(queued)} (its worker's run-queue wait): ` +
        `they take turns on the cores, so run() took about ${((onCpu + queued) / onCpu).toFixed(1)}× as long as on a core of its own`,
    );
  } else if (onCpu !== undefined) {
    evidence.push(`each mini-batch got ${pct(onCpu)} of a CPU while run() ran (CPU seconds / run() seconds, measured around each of ${use.attempts} run()s): they queue for the cores`);
  } else {
    const cpuBound = workerCpu(step).filter((w) => w.busyS > 0 && w.cpuS / w.busyS >= 0.3);
    if (cpuBound.length > 0) evidence.push(`each worker got ${pct(cpuBound.reduce((s, w) => s + w.cpuS / w.busyS, 0) / cpuBound.length)} of a CPU during its mini-batches: they queue for the cores`);
  }
  return [
    {
      id: 'cpu-saturated',
      severity: 'warning',
      step: step.label,
      title: `${step.label}: the node's CPUs were saturated (${workers} workers on ${cpus} CPUs)`,
      evidence,
      fix:
        'More CPU-bound workers than cores only makes each mini-batch slower (they take turns on the cores, and their memory adds up). For compute-bound run() set process_count_per_node to the number of cores (or fewer, if run() uses threads itself, e.g. a native inference library), and add nodes for more throughput.',
      data: {
        cpus,
        workers,
        saturatedSamples: saturated.length,
        samples: node.length,
        averageBusy: round(busy),
        load1m: load,
        cpuShare: onCpu === undefined ? undefined : round(onCpu),
        cpuWaitShare: queued === undefined ? undefined : round(queued),
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// latency-trend, correlated with memory

/** When a memory-growth finding goes with a latency-trend one, the latency finding says so. */
export function correlateLatencyWithMemory(findings: Finding[], stepLabel: string): void {
  const latency = findings.findIndex((f) => f.id === 'latency-trend' && f.step === stepLabel);
  const memory = findings.find((f) => f.id === 'memory-growth' && f.step === stepLabel);
  if (latency < 0 || !memory) return;
  const f = findings[latency]!;
  const procs = (memory.data.processes as { worker: string; metric: string; bytesPerMiniBatch?: number }[] | undefined) ?? [];
  const what = procs
    .slice(0, 3)
    .map((p) => `${p.worker} (${p.metric}${p.bytesPerMiniBatch !== undefined ? ` +${bytes(p.bytesPerMiniBatch)} per mini-batch` : ''})`)
    .join(', ');
  findings[latency] = {
    ...f,
    title: `${f.title}, and memory grows with it`,
    evidence: [...f.evidence, `memory grows over the same run (memory-growth): ${what}: the slow-down goes with the accumulating state`],
    fix: `${f.fix} Here memory grows along with the latency: the state that slows run() down is what leaks (see memory-growth).`,
    data: { ...f.data, memoryGrowth: true },
  };
}
