// Resources beside the mini-batch timeline: per process (the runner or a plain step's own, then
// each worker, in the timeline's order) its memory (RSS and the V8 heap) and its CPU over time from
// resources*.jsonl, and the node's CPU (busy and iowait), on the timeline's time axis. The doctor's
// resource findings are drawn where they are (a tinted strip, ◆ where a worker ran out of memory
// with its limit, ▲ where its event loop was blocked) and listed with links. Then, per worker, what
// its mini-batches used as it measured them around run(). Long runs are aggregated: at most SLOTS
// points a strip and HOVERS tooltip columns a worker; at most MAX_LANES processes are drawn.
import { bytes, heapGrowthMedian } from '../../doctor/resource-findings.js';
import type { Finding } from '../../doctor/findings.js';
import type { Attempt, AttemptSet, ResourceSample } from '../../run-folder/model.js';
import { stripsSvg, type Strip, type StripHover, type StripMark, type StripPath } from '../charts/strips.js';
import { COLORS } from '../colors.js';
import { formatCount, formatDuration } from '../format.js';
import { esc, legend, plural, table } from '../html.js';
import type { StepView } from '../step-view.js';
import { findingAnchor } from './findings.js';

const SLOTS = 400;
const HOVERS = 120;
const MAX_LANES = 16;
const MEMORY_H = 44;
const CPU_H = 28;
const NODE_H = 38;
const BLOCKED_S = 1;
/** Event-loop marks per worker at most. */
const MAX_MARKS = 50;
const RESOURCE_FINDINGS = new Set(['memory-growth', 'out-of-memory', 'io-bound', 'cpu-saturated', 'event-loop-blocked']);

const C = {
  rss: '#2f6fbf',
  rssFill: '#d9e5f4',
  heap: '#e8912d',
  cpu: '#2f9e5f',
  cpuFill: '#d3ecdd',
  node: '#5f6b7a',
  nodeFill: '#dde1e6',
  iowait: '#e8912d',
  iowaitFill: '#f8dcb8',
  tint: { error: '#fbe3e3', warning: '#fdf0dc', info: '#e6eef9' },
} as const;

/** One lane: a worker slot (its processes, one after another when restarted), or the main process. */
interface Lane {
  readonly worker: string;
  readonly label: string;
  /** Each process's samples within the range, in time order. */
  readonly processes: ResourceSample[][];
  readonly peakRss: number;
}

interface Highlight {
  readonly finding: Finding;
  readonly index: number;
}

export function resourcesSection(view: StepView, findings: readonly Finding[]): string {
  const { step, index: i } = view;
  const own = findings.map((finding, index) => ({ finding, index })).filter((h) => h.finding.step === step.label && RESOURCE_FINDINGS.has(h.finding.id));
  const usage = usageTable(step.attempts);
  if (step.resources.length === 0 && !usage) return '';
  const t0 = view.start ?? step.resources[0]?.time ?? 0;
  const t1 = Math.max(view.end ?? t0, t0 + 1);
  // the workers a finding names are drawn whatever their memory
  const named = new Set<string>();
  for (const { finding: f } of own) {
    for (const list of [f.data.processes, f.data.cases]) if (Array.isArray(list)) for (const x of list as { worker?: unknown }[]) if (typeof x?.worker === 'string') named.add(x.worker);
  }
  const lanes = lanesOf(step.resources, t0, t1, step.attempts.count > 0, named);
  const parts: string[] = [];
  if (lanes.all.length > 0) parts.push(figure(view, lanes, own, t0, t1));
  if (own.length > 0) {
    parts.push(
      `<ul class="res-findings">${own
        .map(({ finding: f, index }) => `<li class="sev-${f.severity}"><span class="sev">${f.severity}</span> <a href="#${findingAnchor(index)}"><code>${esc(f.id)}</code></a> ${esc(f.title)}</li>`)
        .join('')}</ul>`,
    );
  }
  if (usage) parts.push(usage);
  return `<section class="sub" id="resources-${i}"><h3>Resources</h3>${parts.join('')}</section>`;
}

function lanesOf(samples: readonly ResourceSample[], t0: number, t1: number, runner: boolean, named: ReadonlySet<string>): { all: Lane[]; shown: Lane[] } {
  const byWorker = new Map<string, Map<number, ResourceSample[]>>();
  for (const s of samples) {
    if (s.time < t0 - 1000 || s.time - s.periodS * 1000 > t1 + 1000) continue;
    let procs = byWorker.get(s.worker);
    if (!procs) byWorker.set(s.worker, (procs = new Map()));
    let list = procs.get(s.process);
    if (!list) procs.set(s.process, (list = []));
    list.push(s);
  }
  const all: Lane[] = [];
  for (const [worker, procs] of byWorker) {
    const processes = [...procs.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l);
    let peakRss = 0;
    for (const l of processes) for (const s of l) peakRss = Math.max(peakRss, s.rssMax);
    const main = processes.some((l) => l[0]!.process === 0);
    all.push({ worker, label: main ? (runner ? 'runner' : 'step') : worker, processes, peakRss });
  }
  const order = (l: Lane): number => (l.processes[0]![0]!.process === 0 ? -1 : 0);
  all.sort((a, b) => order(a) - order(b) || a.worker.localeCompare(b.worker, 'en', { numeric: true }));
  if (all.length <= MAX_LANES) return { all, shown: all };
  const first = (l: Lane): number => (order(l) < 0 ? 0 : named.has(l.worker) ? 1 : 2);
  const keep = new Set([...all].sort((a, b) => first(a) - first(b) || b.peakRss - a.peakRss).slice(0, MAX_LANES));
  return { all, shown: all.filter((l) => keep.has(l)) };
}

function figure(view: StepView, lanes: { all: Lane[]; shown: Lane[] }, own: readonly Highlight[], t0: number, t1: number): string {
  const { step, index: i } = view;
  const slot = (t1 - t0) / SLOTS;
  const of = (id: string): Highlight | undefined => own.find((h) => h.finding.id === id);
  const growth = of('memory-growth');
  const oom = of('out-of-memory');
  const blocked = of('event-loop-blocked');
  const io = of('io-bound');
  const saturated = of('cpu-saturated');
  const growing = new Set(((growth?.finding.data.processes as { worker: string }[] | undefined) ?? []).map((p) => p.worker));
  const oomCases = (oom?.finding.data.cases as { worker: string; miniBatch?: string; attempt?: number; kind: string; lastSample?: { heapLimitBytes?: number; memoryLimitBytes?: number } }[] | undefined) ?? [];

  // the attempts kept (in a large run, a sample): which one ran at a point of a strip
  const byWorker = new Map<string, Attempt[]>();
  for (const a of step.attempts.kept) {
    let l = byWorker.get(a.worker);
    if (!l) byWorker.set(a.worker, (l = []));
    l.push(a);
  }
  let memMax = 1;
  let cpuMax = 1;
  const memory = new Map<Lane, { rss: StripPath[]; heap: StripPath[] }>();
  const cpu = new Map<Lane, StripPath[]>();
  for (const lane of lanes.shown) {
    const rss: StripPath[] = [];
    const heap: StripPath[] = [];
    const cores: StripPath[] = [];
    for (const list of lane.processes) {
      const m = memoryPoints(list, t0, slot);
      rss.push({ name: `${lane.label} RSS`, color: C.rss, fill: C.rssFill, points: m.rss });
      heap.push({ name: `${lane.label} heap used`, color: C.heap, points: m.heap, width: 1.2 });
      for (const [, v] of m.rss) memMax = Math.max(memMax, v);
      const steps = cpuSteps(list, t0, slot);
      cores.push({ name: `${lane.label} CPU`, color: C.cpu, fill: C.cpuFill, points: steps });
      for (const [, v] of steps) cpuMax = Math.max(cpuMax, v);
    }
    memory.set(lane, { rss, heap });
    cpu.set(lane, cores);
  }
  // the limit a worker died at is drawn in its strip (the scale reaches it)
  const limits = new Map<string, { y: number; title: string }>();
  for (const c of oomCases) {
    const y = c.kind === 'v8-heap' ? c.lastSample?.heapLimitBytes : c.lastSample?.memoryLimitBytes;
    if (y === undefined || limits.has(c.worker)) continue;
    limits.set(c.worker, { y, title: `${c.kind === 'v8-heap' ? 'V8 heap limit' : 'cgroup memory limit'} ${bytes(y)}` });
    if (y <= memMax * 3) memMax = Math.max(memMax, y);
  }
  memMax *= 1.05;

  const strips: Strip[] = [];
  const hovers: StripHover[] = [];
  for (const lane of lanes.shown) {
    const m = memory.get(lane)!;
    const marks: StripMark[] = [];
    for (const c of oomCases.filter((x) => x.worker === lane.worker)) {
      const a = byWorker.get(lane.worker)?.find((x) => x.id === c.miniBatch && x.attempt === c.attempt);
      const last = lane.processes.flat().pop();
      const at = a ? a.start + a.durationMs : last?.time;
      if (at === undefined) continue;
      marks.push({ t: at, color: COLORS.crash, shape: 'diamond', cls: 'mark-oom', mb: c.miniBatch, title: `${lane.worker} ran out of memory${c.miniBatch ? ` running ${c.miniBatch}` : ''} (out-of-memory)` });
    }
    // a process of this lane that crashed (worker-summary.csv), where no finding marked it already
    for (const list of lane.processes) {
      const row = step.workers.find((w) => w.process_index === String(list[0]!.process) && w.end_reason === 'crashed');
      const at = Date.parse(row?.ended ?? '');
      if (!row || !Number.isFinite(at) || marks.some((m) => Math.abs(m.t - at) < 2000)) continue;
      marks.push({ t: at, color: COLORS.crash, shape: 'diamond', cls: 'mark-crash', title: `${lane.worker} (pid ${row.pid}) crashed${row.exit ? ` (${row.exit})` : ''}; a fresh worker took its place` });
    }
    const tint = oomCases.some((c) => c.worker === lane.worker) ? C.tint.error : growing.has(lane.worker) ? C.tint[growth!.finding.severity] : undefined;
    const why = [oomCases.some((c) => c.worker === lane.worker) ? oom! : undefined, growing.has(lane.worker) ? growth : undefined].filter((h): h is Highlight => h !== undefined);
    const first = strips.length;
    strips.push({
      label: lane.label,
      labelTitle: [`${lane.label}: memory (RSS, V8 heap used) and CPU`, ...why.map((h) => `${h.finding.id}: ${h.finding.title}`)].join('\n'),
      height: MEMORY_H,
      max: memMax,
      maxLabel: bytes(memMax),
      paths: [...m.rss, ...m.heap],
      marks,
      hline: limits.has(lane.worker) ? { ...limits.get(lane.worker)!, color: COLORS.crash } : undefined,
      tint,
      gapBefore: first > 0 ? 6 : 0,
      attrs: ` data-strip="memory" data-worker="${esc(lane.worker)}"${tint ? ` data-finding="${esc(why.map((h) => h.finding.id).join(' '))}"` : ''}`,
    });
    const mine = byWorker.get(lane.worker) ?? [];
    const cpuMarks: StripMark[] = [];
    if (blocked) {
      for (const list of lane.processes) {
        for (const s of list) {
          if (s.eventLoopDelayMaxS < BLOCKED_S || cpuMarks.length >= MAX_MARKS) continue;
          // the block ended before this line was written (its timer fired late): the bar ends there
          const from = s.time - s.eventLoopDelayMaxS * 1000;
          const run = runningAt(mine, from - s.periodS * 1000, s.time);
          cpuMarks.push({
            t: from,
            until: s.time,
            color: COLORS.timeout,
            shape: 'triangle',
            cls: 'mark-blocked',
            mb: run?.id,
            title: `${lane.worker}: event loop blocked for up to ${formatDuration(s.eventLoopDelayMaxS * 1000)}, ending in the ${formatDuration(s.periodS * 1000)} before ${formatDuration(s.time - t0)}${run ? `, while running ${run.id}` : ''} (event-loop-blocked)`,
          });
        }
      }
    }
    const cpuTint = io && lane.processes[0]![0]!.process > 0 ? C.tint.info : blocked && cpuMarks.length > 0 && blocked.finding.severity === 'warning' ? C.tint.warning : undefined;
    strips.push({
      label: 'CPU',
      minor: true,
      labelTitle: `${lane.label}: CPU time per second (1 = one core busy)${cpuTint && io ? `\nio-bound: ${io.finding.title}` : ''}`,
      height: CPU_H,
      max: cpuMax,
      maxLabel: cpuMax <= 1 ? '1 core' : `${+cpuMax.toFixed(1)} cores`,
      paths: cpu.get(lane)!,
      marks: cpuMarks,
      tint: cpuTint,
      attrs: ` data-strip="cpu" data-worker="${esc(lane.worker)}"${cpuTint ? ` data-finding="${cpuTint === C.tint.info ? 'io-bound' : 'event-loop-blocked'}"` : ''}`,
    });
    hovers.push(...laneHovers(lane, mine, first, first + 1, t0, t1));
  }
  const node = nodeStrip(step.resources, t0, t1, slot, saturated);
  if (node) strips.push(node);

  const svg = stripsSvg({ strips, hovers, t0, t1, id: `resources-svg-${i}`, label: `${step.label} memory and CPU by process over time` });
  const more = lanes.all.length - lanes.shown.length;
  const caption =
    `Memory (RSS and V8 heap used, one scale for all up to ${bytes(memMax)}) and CPU (CPU seconds per second: 1 is one core) of each process over time, on the timeline's time axis` +
    `${node ? ', then the node\'s CPUs (busy and iowait, of all of them)' : ''}; from resources.jsonl, ${step.resources.length > 0 ? plural(step.resources.length, 'sample') : 'no samples'}` +
    `${lanes.shown.some((l) => l.processes.some((p) => p.length > SLOTS)) ? `, the longest aggregated into ${SLOTS} time slots (highest memory and CPU per slot)` : ''}` +
    `${more > 0 ? `; ${more} more worker${more === 1 ? '' : 's'} not drawn (those the findings name and then the ones with the highest memory are)` : ''}. Hover for the figures and the mini-batch that ran; click to show its log records.`;
  const tints = new Set(strips.map((s) => s.tint));
  const tinted = ([C.tint.error, C.tint.warning, C.tint.info] as string[]).find((t) => tints.has(t));
  const items = [
    { label: 'RSS', color: C.rss, shape: 'line' as const },
    { label: 'V8 heap used', color: C.heap, shape: 'line' as const },
    { label: 'CPU', color: C.cpu, shape: 'line' as const },
    ...(node ? [{ label: 'node busy', color: C.node, shape: 'line' as const }] : []),
    ...(node?.paths.some((p) => p.name === 'node iowait') ? [{ label: 'iowait', color: C.iowaitFill }] : []),
    ...(oomCases.length > 0 ? [{ label: 'ran out of memory (and the limit)', color: COLORS.crash, shape: 'diamond' as const }] : []),
    ...(strips.some((s) => s.marks?.some((m) => m.cls === 'mark-crash')) ? [{ label: 'crashed', color: COLORS.crash, shape: 'diamond' as const }] : []),
    ...(strips.some((s) => s.marks?.some((m) => m.cls === 'mark-blocked')) ? [{ label: 'event loop blocked', color: COLORS.timeout, shape: 'triangle' as const }] : []),
    ...(tinted ? [{ label: 'a finding is about it (listed below)', color: tinted }] : []),
  ];
  return `<figure class="chart" data-chart="resources"><figcaption>${esc(caption)}</figcaption>${svg}${legend(items)}</figure>`;
}

/** RSS and heap used (the highest of each line, and of each slot when there are more lines than slots). */
function memoryPoints(list: readonly ResourceSample[], t0: number, slot: number): { rss: [number, number][]; heap: [number, number][] } {
  if (list.length <= SLOTS) return { rss: list.map((s) => [s.time, s.rssMax]), heap: list.map((s) => [s.time, s.heapUsedMax]) };
  const rss: [number, number][] = [];
  const heap: [number, number][] = [];
  let k = -1;
  for (const s of list) {
    const b = Math.floor((s.time - t0) / slot);
    if (b !== k) {
      k = b;
      rss.push([s.time, s.rssMax]);
      heap.push([s.time, s.heapUsedMax]);
      continue;
    }
    const r = rss[rss.length - 1]!;
    const h = heap[heap.length - 1]!;
    if (s.rssMax > r[1]) rss[rss.length - 1] = [s.time, s.rssMax];
    if (s.heapUsedMax > h[1]) heap[heap.length - 1] = [h[0], s.heapUsedMax];
  }
  return { rss, heap };
}

/** CPU (cores) between consecutive lines of one process, as steps; per slot when there are more lines than slots. */
function cpuSteps(list: readonly ResourceSample[], t0: number, slot: number): [number, number][] {
  const out: [number, number][] = [];
  const binned = list.length > SLOTS;
  let from = list[0]?.time ?? 0;
  let cpu = 0;
  let k = binned ? Math.floor((from - t0) / slot) : 0;
  for (let j = 1; j < list.length; j++) {
    const a = list[j - 1]!;
    const b = list[j]!;
    cpu += Math.max(0, b.cpuS - a.cpuS);
    const next = binned ? Math.floor((b.time - t0) / slot) : j;
    if (binned && next === k && j < list.length - 1) continue;
    const v = b.time > from ? cpu / ((b.time - from) / 1000) : 0;
    out.push([from, v], [b.time, v]);
    from = b.time;
    cpu = 0;
    k = next;
  }
  return out;
}

/** The node's CPUs from process 0's lines: busy, and iowait above it. */
function nodeStrip(samples: readonly ResourceSample[], t0: number, t1: number, slot: number, saturated: Highlight | undefined): Strip | undefined {
  const lines = samples.filter((s) => s.process === 0 && s.node?.cpuUtilization !== undefined && s.time >= t0 && s.time - s.periodS * 1000 <= t1);
  if (lines.length === 0) return undefined;
  const busy: [number, number][] = [];
  const wait: [number, number][] = [];
  const binned = lines.length > SLOTS;
  let acc = { from: lines[0]!.time - lines[0]!.periodS * 1000, busy: 0, wait: 0, s: 0, k: Math.floor((lines[0]!.time - t0) / slot) };
  for (let j = 0; j < lines.length; j++) {
    const s = lines[j]!;
    acc.busy += (s.node!.cpuUtilization ?? 0) * s.periodS;
    acc.wait += (s.node!.iowait ?? 0) * s.periodS;
    acc.s += s.periodS;
    const next = lines[j + 1];
    if (binned && next && Math.floor((next.time - t0) / slot) === acc.k) continue;
    const b = acc.s > 0 ? acc.busy / acc.s : 0;
    const w = acc.s > 0 ? acc.wait / acc.s : 0;
    busy.push([acc.from, b], [s.time, b]);
    wait.push([acc.from, b + w], [s.time, b + w]);
    acc = { from: s.time, busy: 0, wait: 0, s: 0, k: next ? Math.floor((next.time - t0) / slot) : 0 };
  }
  const cpus = lines.find((s) => s.node?.cpus !== undefined)?.node?.cpus;
  const paths: StripPath[] = [];
  if (wait.some(([, v], k) => v - busy[k]![1] >= 0.01)) paths.push({ name: 'node iowait', color: C.iowait, fill: C.iowaitFill, points: wait, width: 0.8 });
  paths.push({ name: 'node busy', color: C.node, fill: C.nodeFill, points: busy });
  return {
    label: 'node CPU',
    labelTitle: `the node's CPUs: busy (user, system, ...) and iowait, as a share of all ${cpus ?? ''} of them${saturated ? `\ncpu-saturated: ${saturated.finding.title}` : ''}`,
    height: NODE_H,
    max: 1,
    maxLabel: `100% of ${cpus ?? '?'} CPU${cpus === 1 ? '' : 's'}`,
    paths,
    tint: saturated ? C.tint.warning : undefined,
    gapBefore: 10,
    attrs: ` data-strip="node"${saturated ? ' data-finding="cpu-saturated"' : ''}`,
  };
}

/**
 * The attempt of one worker that ran most of [from, to], if any: `mine` holds that worker's
 * attempts in start order (one at a time: their ends are in order too). `cursor` carries the
 * search on for windows asked in time order (the tooltip columns), so that a lane costs one pass.
 */
function runningAt(mine: readonly Attempt[], from: number, to: number, cursor = { k: 0 }): Attempt | undefined {
  let k = cursor.k;
  while (k < mine.length && mine[k]!.start + mine[k]!.durationMs <= from) k++;
  cursor.k = k;
  let best: Attempt | undefined;
  let most = 0;
  for (; k < mine.length && mine[k]!.start < to; k++) {
    const a = mine[k]!;
    const overlap = Math.min(to, a.start + a.durationMs) - Math.max(from, a.start);
    if (overlap > most) {
      best = a;
      most = overlap;
    }
  }
  return best;
}

/** Tooltip columns over a lane's two strips: its figures in each column, and the mini-batch that ran then. */
function laneHovers(lane: Lane, mine: readonly Attempt[], from: number, to: number, t0: number, t1: number): StripHover[] {
  const width = (t1 - t0) / HOVERS;
  const cols: { rss: number; heap: number; cpu: number; dt: number; loop: number; any: boolean }[] = Array.from({ length: HOVERS }, () => ({ rss: 0, heap: 0, cpu: 0, dt: 0, loop: 0, any: false }));
  for (const list of lane.processes) {
    for (let j = 0; j < list.length; j++) {
      const s = list[j]!;
      const c = cols[Math.min(HOVERS - 1, Math.max(0, Math.floor((s.time - t0) / width)))]!;
      c.any = true;
      c.rss = Math.max(c.rss, s.rssMax);
      c.heap = Math.max(c.heap, s.heapUsedMax);
      c.loop = Math.max(c.loop, s.eventLoopDelayMaxS);
      const p = list[j - 1];
      if (p) {
        c.cpu += Math.max(0, s.cpuS - p.cpuS);
        c.dt += (s.time - p.time) / 1000;
      }
    }
  }
  const out: StripHover[] = [];
  const cursor = { k: 0 };
  cols.forEach((c, k) => {
    if (!c.any) return;
    const a = t0 + k * width;
    const b = a + width;
    const run = runningAt(mine, a, b, cursor);
    const figures = [`RSS ${bytes(c.rss)}`, `heap ${bytes(c.heap)}`, c.dt > 0 ? `CPU ${(c.cpu / c.dt).toFixed(2)} core` : '', c.loop >= 0.05 ? `event loop delay up to ${formatDuration(c.loop * 1000)}` : ''].filter(Boolean);
    out.push({ from, to, t0: a, t1: b, mb: run?.id, title: `${lane.label}, ${formatDuration(a - t0)} – ${formatDuration(b - t0)}: ${figures.join(', ')}${run ? `; running ${run.id}` : ''}` });
  });
  return out;
}

/**
 * Per worker, what its mini-batches used as it measured them around run() (exact sums; the median
 * heap growth of the attempts kept, weighted, in a large run); '' when no attempt has the figures.
 */
function usageTable(attempts: AttemptSet): string {
  const usage = attempts.usage.byWorker;
  if (usage.size === 0) return '';
  const heaps = new Map<string, Attempt[]>();
  for (const a of attempts.kept) {
    if (a.heapGrowthBytes === undefined || a.cpuMs === undefined || a.runMs === undefined) continue;
    let l = heaps.get(a.worker);
    if (!l) heaps.set(a.worker, (l = []));
    l.push(a);
  }
  const rows = [...usage.entries()]
    .sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }))
    .map(([worker, u]) => {
      const run = u.runMs;
      const cpu = u.cpuMs;
      const rss = u.rssMaxBytes;
      const heap = heaps.get(worker);
      const h = heap ? heapGrowthMedian(heap) : undefined;
      return [
        esc(worker),
        esc(formatCount(u.attempts)),
        esc(formatDuration(run)),
        esc(formatDuration(cpu)),
        `<b>${esc(run > 0 ? `${Math.round((cpu / run) * 100)}%` : '–')}</b>`,
        esc(rss > 0 ? bytes(rss) : '–'),
        esc(h === undefined ? '–' : `${h < 0 ? '-' : '+'}${bytes(Math.abs(h))}`),
      ];
    });
  return (
    '<h4>What the mini-batches used, per worker</h4><p class="hint">As each worker measured it around run() (the attempt spans\' <code>mini_batch.cpu_ms</code>, <code>mini_batch.rss_bytes</code>, ' +
    '<code>mini_batch.heap_growth_bytes</code>; the same columns in processed-mini-batches.csv): CPU over the time in run() (ParallelRunStep\'s process seconds over its run method seconds) is well under 100% when run() waits, on I/O, a timer, a lock, or for a CPU the node cannot give it.</p>' +
    table(['worker', 'attempts', 'in run()', 'CPU', 'CPU / time in run()', 'highest RSS at an end', 'heap growth per attempt (median)'], rows, 'num usage')
  );
}
