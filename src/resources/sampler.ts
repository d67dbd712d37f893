// Resource sampling of one step process (a plain step, the runner, or a runner worker): every
// interval one sample of the process (CPU, memory, V8 heap, event loop, GC, handles, disk I/O) and,
// in process index 0 only, of its node (CPU by mode, load, memory, GPUs). Each sample reaches the
// catalog's instruments (OpenTelemetry and Prometheus, under the semantic conventions' names) and
// a line of resources.jsonl (decimated for long runs, see resource-log.ts). The timer is unref()'d;
// the last sample is written on every exit path JavaScript still runs on (end(), SIGTERM, an
// uncaught exception, process.exit()). Nothing here throws into the step.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Diagnostics } from '../diagnostics.js';
import type { CatalogAttributes, CatalogInstruments } from '../signals/metrics.js';
import { GpuSampler, type GpuReading } from './gpu.js';
import { AttemptUsage, type ResourceSnapshot, type ResourceUsage } from './attempt-usage.js';
import { CPU_MODES, cgroupMemoryLimit, cpuCount, cpuShares, readCpuTimes, readProcessIo, readRunQueueWaitS, type CpuTimes, type ProcessIo } from './proc.js';
import { ResourceLog } from './resource-log.js';
import { EventLoopMonitor, GC_KINDS, GcMonitor, type GcKind } from './runtime.js';

export interface ResourceSamplerOptions {
  readonly intervalMs: number;
  /** resources.jsonl of this process in the run folder, when local files are on. */
  readonly file: string | undefined;
  readonly processIndex: number;
  readonly instruments: CatalogInstruments;
  readonly diagnostics: Diagnostics;
  readonly env?: NodeJS.ProcessEnv;
}

export type { ResourceSnapshot, ResourceUsage } from './attempt-usage.js';

/** The `worker` attribute of this process: the runner's worker slot, `main`, or `process-N`. */
export function workerLabel(env: NodeJS.ProcessEnv, processIndex: number): string {
  const w = env.STEP_TELEMETRY_WORKER?.trim();
  if (w && /^[A-Za-z0-9_.-]{1,64}$/.test(w)) return w;
  return processIndex > 0 ? `process-${processIndex}` : 'main';
}

function r3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
function r6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Per-line accumulators: what happened since the last line of resources.jsonl. */
interface Period {
  start: number;
  rssMax: number;
  heapMax: number;
  cpuUs: number;
  cpuTimes: CpuTimes | undefined;
}

export class ResourceSampler {
  readonly worker: string;
  private readonly timer: NodeJS.Timeout;
  private readonly loop = new EventLoopMonitor();
  private readonly gc: GcMonitor;
  private readonly gpu: GpuSampler | undefined;
  private readonly log: ResourceLog | undefined;
  private readonly nodeOwner: boolean;
  private readonly cpus = cpuCount();
  private readonly memoryLimit = cgroupMemoryLimit();
  private readonly cudaVisible: string | undefined;
  private readonly attrs: { worker: CatalogAttributes; user: CatalogAttributes; system: CatalogAttributes; read: CatalogAttributes; write: CatalogAttributes };
  private readonly gcAttrs: Record<GcKind, CatalogAttributes>;
  private readonly spaceAttrs = new Map<string, CatalogAttributes>();
  private last: { time: number; cpu: NodeJS.CpuUsage; io: ProcessIo | undefined; cpuTimes: CpuTimes | undefined };
  private period: Period;
  private stopped = false;
  private readonly usage = new AttemptUsage();
  private readonly onExit = (): void => this.stop();

  private constructor(private readonly options: ResourceSamplerOptions) {
    const env = options.env ?? process.env;
    this.worker = workerLabel(env, options.processIndex);
    this.nodeOwner = options.processIndex === 0;
    this.cudaVisible = env.CUDA_VISIBLE_DEVICES;
    const w = this.worker;
    this.attrs = {
      worker: { worker: w },
      user: { worker: w, 'cpu.mode': 'user' },
      system: { worker: w, 'cpu.mode': 'system' },
      read: { worker: w, 'disk.io.direction': 'read' },
      write: { worker: w, 'disk.io.direction': 'write' },
    };
    this.gcAttrs = Object.fromEntries(GC_KINDS.map((k) => [k, { worker: w, 'v8js.gc.type': k }])) as Record<GcKind, CatalogAttributes>;
    this.gc = new GcMonitor((kind, seconds) => options.instruments.record('gcDuration', seconds, this.gcAttrs[kind]));
    const cpuTimes = this.nodeOwner ? readCpuTimes() : undefined;
    // the first sample counts the CPU since the process started, over the time since then
    // (performance.now() is 0 then), not over the moment since this constructor (was: 8000 %)
    this.last = { time: 0, cpu: { user: 0, system: 0 }, io: undefined, cpuTimes };
    this.period = { start: 0, rssMax: 0, heapMax: 0, cpuUs: 0, cpuTimes };
    const file = options.file;
    if (file !== undefined) {
      this.log = new ResourceLog(file, (error) =>
        options.diagnostics.warn(`local.write:${file}`, `cannot write ${file} (${(error as Error)?.message ?? error}); local files for it stop here`),
      );
    }
    this.gpu = this.nodeOwner ? GpuSampler.start(options.intervalMs, env) : undefined;
    this.timer = setInterval(() => this.sample(false), options.intervalMs);
    this.timer.unref();
    process.on('exit', this.onExit);
    // the first sample at once: a short step, or a worker killed early, still leaves one
    this.sample(false);
  }

  /** A sampler, or undefined (with one diagnostic) when this platform cannot sample. */
  static start(options: ResourceSamplerOptions): ResourceSampler | undefined {
    try {
      return new ResourceSampler(options);
    } catch (error) {
      options.diagnostics.warn('resources.start', `resource sampling is off: ${(error as Error)?.message ?? String(error)}`);
      return undefined;
    }
  }

  /** CPU time and heap used now (see AttemptUsage: what the runner's workers take around each run()). */
  snapshot(): ResourceSnapshot | undefined {
    return this.usage.snapshot();
  }

  /** What the process used since `from` (AttemptUsage.since). */
  since(from: ResourceSnapshot): ResourceUsage | undefined {
    return this.usage.since(from);
  }

  /** Take the last sample (written whatever the stride, marked `final`) and stop. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    process.off('exit', this.onExit);
    this.sample(true);
    this.loop.stop();
    this.gc.stop();
    this.gpu?.stop();
    this.log?.close();
    this.usage.close();
  }

  private sample(final: boolean): void {
    try {
      this.take(final);
    } catch (error) {
      this.options.diagnostics.warn('resources.sample', `a resource sample failed: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  private take(final: boolean): void {
    const ins = this.options.instruments;
    const a = this.attrs;
    const now = performance.now();
    const elapsedUs = Math.max(1, (now - this.last.time) * 1000);
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const heap = v8.getHeapStatistics();
    const spaces = v8.getHeapSpaceStatistics();
    const io = readProcessIo();
    const { delay, utilization } = this.loop.tick();
    const cpuDeltaUs = cpu.user - this.last.cpu.user + (cpu.system - this.last.cpu.system);

    ins.record('processCpuTime', (cpu.user - this.last.cpu.user) / 1e6, a.user);
    ins.record('processCpuTime', (cpu.system - this.last.cpu.system) / 1e6, a.system);
    ins.record('processCpuUtilization', cpuDeltaUs / elapsedUs / this.cpus, a.worker);
    ins.record('processMemoryUsage', mem.rss, a.worker);
    ins.record('processMemoryLimit', this.memoryLimit ?? os.totalmem(), a.worker);
    ins.record('processMemoryExternal', mem.external, a.worker);
    if (io) {
      ins.record('processDiskIo', io.readBytes - (this.last.io?.readBytes ?? 0), a.read);
      ins.record('processDiskIo', io.writeBytes - (this.last.io?.writeBytes ?? 0), a.write);
    }
    for (const s of spaces) {
      let sa = this.spaceAttrs.get(s.space_name);
      if (sa === undefined) {
        sa = { worker: this.worker, 'v8js.heap.space.name': s.space_name };
        if (this.spaceAttrs.size < 32) this.spaceAttrs.set(s.space_name, sa);
      }
      ins.record('heapUsed', s.space_used_size, sa);
      ins.record('heapSpaceSize', s.space_size, sa);
    }
    ins.record('heapSizeLimit', heap.heap_size_limit, a.worker);
    ins.record('eventLoopDelayP50', delay.p50, a.worker);
    ins.record('eventLoopDelayP99', delay.p99, a.worker);
    ins.record('eventLoopDelayMax', delay.max, a.worker);
    ins.record('eventLoopUtilization', utilization, a.worker);

    let node: Record<string, unknown> | undefined;
    let gpus: GpuReading[] | undefined;
    let cpuTimes: CpuTimes | undefined;
    if (this.nodeOwner) {
      ({ node, gpus, cpuTimes } = this.sampleNode());
    }

    this.last = { time: now, cpu, io, cpuTimes: cpuTimes ?? this.last.cpuTimes };
    const p = this.period;
    p.rssMax = Math.max(p.rssMax, mem.rss);
    p.heapMax = Math.max(p.heapMax, mem.heapUsed);
    p.cpuUs += cpuDeltaUs;
    const log = this.log;
    if (log === undefined || !(log.due(mem.rss, mem.heapUsed) || final)) return;

    const period = this.loop.period();
    const periodS = (now - p.start) / 1000;
    const line: Record<string, unknown> = {
      time: new Date(performance.timeOrigin + now).toISOString(),
      period_s: r3(periodS),
      worker: this.worker,
      pid: process.pid,
      cpu_user_s: r6(cpu.user / 1e6),
      cpu_system_s: r6(cpu.system / 1e6),
      cpu_wait_s: ((w) => (w === undefined ? undefined : r6(w)))(readRunQueueWaitS()),
      cpu_utilization: periodS > 0 ? r3(p.cpuUs / 1e6 / periodS / this.cpus) : 0,
      rss_bytes: mem.rss,
      rss_max_bytes: p.rssMax,
      heap_used_bytes: mem.heapUsed,
      heap_used_max_bytes: p.heapMax,
      heap_total_bytes: mem.heapTotal,
      heap_limit_bytes: heap.heap_size_limit,
      heap_after_gc_bytes: this.gc.takeHeapAfterGc(),
      external_bytes: mem.external,
      array_buffers_bytes: mem.arrayBuffers,
      memory_limit_bytes: this.memoryLimit,
      eventloop_delay_p50_s: r6(period.delay.p50),
      eventloop_delay_p99_s: r6(period.delay.p99),
      eventloop_delay_max_s: r6(period.delay.max),
      eventloop_utilization: r3(period.utilization),
      gc_s: Object.fromEntries(GC_KINDS.map((k) => [k, r6(this.gc.seconds[k])])),
      gc_count: { ...this.gc.counts },
      handles: activeResources(),
      disk_read_bytes: io?.readBytes,
      disk_write_bytes: io?.writeBytes,
      read_chars: io?.readChars,
      write_chars: io?.writeChars,
      cuda_visible_devices: this.cudaVisible,
      samples: log.samplesPerLine > 1 ? log.samplesPerLine : undefined,
      node,
      gpus: gpus && gpus.length > 0 ? gpus.map(gpuLine) : undefined,
      final: final || undefined,
    };
    if (node && p.cpuTimes && cpuTimes) {
      const shares = cpuShares(p.cpuTimes, cpuTimes);
      if (shares) {
        node.cpu_utilization = r3(1 - shares.idle - shares.iowait);
        node.cpu_iowait = r3(shares.iowait);
        node.cpu_steal = r3(shares.steal);
      }
    }
    log.write(`${JSON.stringify(line)}\n`, mem.rss, mem.heapUsed);
    this.period = { start: now, rssMax: 0, heapMax: 0, cpuUs: 0, cpuTimes: cpuTimes ?? p.cpuTimes };
  }

  /** The node's CPU by mode since the last sample, load, memory and GPUs (process index 0 only). */
  private sampleNode(): { node: Record<string, unknown>; gpus: GpuReading[] | undefined; cpuTimes: CpuTimes | undefined } {
    const ins = this.options.instruments;
    const cpuTimes = readCpuTimes();
    const from = this.last.cpuTimes;
    const shares = from && cpuTimes ? cpuShares(from, cpuTimes) : undefined;
    if (shares) for (const m of CPU_MODES) ins.record('systemCpuUtilization', shares[m], { 'cpu.mode': m });
    const load = os.loadavg()[0] ?? 0;
    const available = os.freemem();
    const total = os.totalmem();
    ins.record('systemCpuCount', this.cpus);
    ins.record('systemLoad1m', load);
    ins.record('systemMemoryLimit', total);
    ins.record('systemMemoryAvailable', available);
    const gpus = this.gpu?.readings();
    for (const g of gpus ?? []) {
      const hw = { 'hw.id': String(g.index) };
      if (g.utilization !== undefined) ins.record('gpuUtilization', g.utilization, hw);
      if (g.memoryUsedBytes !== undefined) ins.record('gpuMemoryUsage', g.memoryUsedBytes, hw);
      if (g.memoryTotalBytes !== undefined) ins.record('gpuMemoryLimit', g.memoryTotalBytes, hw);
    }
    return { node: { cpus: this.cpus, load_1m: r3(load), memory_available_bytes: available, memory_total_bytes: total }, gpus, cpuTimes };
  }
}

function gpuLine(g: GpuReading): Record<string, unknown> {
  return { index: g.index, uuid: g.uuid, name: g.name, utilization: g.utilization, memory_used_bytes: g.memoryUsedBytes, memory_total_bytes: g.memoryTotalBytes, visible: g.visible };
}

/** Active handles and requests of the event loop (timers, sockets, file reads in flight). */
function activeResources(): number | undefined {
  try {
    return process.getActiveResourcesInfo().length;
  } catch {
    return undefined;
  }
}
