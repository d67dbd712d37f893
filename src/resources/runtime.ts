// The runtime's own view: event loop delay (a probe timer's lateness, in a perf_hooks histogram),
// event loop utilisation, and garbage collection pauses by kind (a PerformanceObserver on 'gc'
// entries, every entry of each batch). Between samples they cost a 200 ms timer and V8's GC callbacks.
//
// Not perf_hooks.monitorEventLoopDelay(): resetting its histogram (as a window per sample needs)
// also forgets when it last woke, so a block that ends just before a reset is never recorded: a
// 1.5 s block went unseen in every trial at 100 ms and in some at 10 ms.
import { constants, createHistogram, performance, PerformanceObserver, type EventLoopUtilization, type RecordableHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Period of the event loop delay probe, ms: 5 wake-ups a second (an idle process pays for each: about 30 ms of CPU a minute); a block longer than this is recorded whole, shorter stalls when they cover a wake-up. */
const PROBE_MS = 200;

export interface DelayStats {
  /** Seconds. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

const NO_DELAY: DelayStats = { p50: 0, p99: 0, max: 0 };



/**
 * Event loop delay over two windows: since the last `tick()` (the metrics), and since the last
 * `period()` (a line of resources.jsonl, which may stand for several ticks). The delay histogram
 * restarts at each tick, so a period's max is exact and its p50 and p99 are the highest of its
 * ticks' (an upper bound).
 */
export class EventLoopMonitor {
  /** Delays beyond the probe's period, ns (a histogram records whole numbers from 1). */
  private readonly delay: RecordableHistogram = createHistogram();
  private readonly probe: NodeJS.Timeout;
  private periodDelay: DelayStats = NO_DELAY;
  private lastTick: EventLoopUtilization = performance.eventLoopUtilization();
  private lastPeriod: EventLoopUtilization = this.lastTick;

  constructor() {
    let last = performance.now();
    this.probe = setInterval(() => {
      const now = performance.now();
      this.delay.record(Math.max(1, Math.round((now - last - PROBE_MS) * 1e6)));
      last = now;
    }, PROBE_MS);
    this.probe.unref();
  }

  /** Delay and utilisation since the last tick; the window restarts. */
  tick(): { delay: DelayStats; utilization: number } {
    const h = this.delay;
    const delay = h.count === 0 ? NO_DELAY : { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9 };
    h.reset();
    const p = this.periodDelay;
    this.periodDelay = { p50: Math.max(p.p50, delay.p50), p99: Math.max(p.p99, delay.p99), max: Math.max(p.max, delay.max) };
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.lastTick).utilization;
    this.lastTick = now;
    return { delay, utilization: Number.isFinite(utilization) ? utilization : 0 };
  }

  /** Delay and utilisation since the last period (call after tick()); the period restarts. */
  period(): { delay: DelayStats; utilization: number } {
    const delay = this.periodDelay;
    this.periodDelay = NO_DELAY;
    const now = this.lastTick;
    const utilization = performance.eventLoopUtilization(now, this.lastPeriod).utilization;
    this.lastPeriod = now;
    return { delay, utilization: Number.isFinite(utilization) ? utilization : 0 };
  }

  stop(): void {
    clearInterval(this.probe);
  }
}

export const GC_KINDS = ['major', 'minor', 'incremental', 'weakcb'] as const;
export type GcKind = (typeof GC_KINDS)[number];

const KIND_OF: Record<number, GcKind> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Cumulative GC pauses by kind, and the heap used just after the last major GC (the live heap). */
export class GcMonitor {
  readonly seconds: Record<GcKind, number> = { major: 0, minor: 0, incremental: 0, weakcb: 0 };
  readonly counts: Record<GcKind, number> = { major: 0, minor: 0, incremental: 0, weakcb: 0 };
  /** Heap used after the last major GC since `takeHeapAfterGc()`, bytes. */
  private heapAfterGc: number | undefined;
  private readonly observer: PerformanceObserver;

  /** `onPause` sees every pause (for the v8js.gc.duration histogram); it must not throw. */
  constructor(onPause: (kind: GcKind, seconds: number) => void) {
    this.observer = new PerformanceObserver((list) => {
      // every entry: several GCs often arrive in one batch
      try {
        for (const entry of list.getEntries()) {
          const kind = KIND_OF[(entry as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'minor';
          const s = entry.duration / 1000;
          this.seconds[kind] += s;
          this.counts[kind]++;
          if (kind === 'major') this.heapAfterGc = v8.getHeapStatistics().used_heap_size;
          onPause(kind, s);
        }
      } catch {
        // an observer callback that throws would be an uncaught exception: telemetry never breaks the step
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** The heap after the last major GC since the previous call, or undefined when there was none. */
  takeHeapAfterGc(): number | undefined {
    const h = this.heapAfterGc;
    this.heapAfterGc = undefined;
    return h;
  }

  stop(): void {
    this.observer.disconnect();
  }
}
