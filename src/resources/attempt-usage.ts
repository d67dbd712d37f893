// What one runner attempt used (worker-attempt.ts): the process's CPU time, resident memory and heap growth
// around its run(). The worker's own, from its first mini-batch (before its step may be up).
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { ResidentMemory } from './proc.js';

/** What a runner worker takes before run() (see since()): about 1 µs. */
export interface ResourceSnapshot {
  /** Cumulative CPU time of the process (user + system), µs. */
  readonly cpuUs: number;
  readonly heapUsedBytes: number;
}

/** What the process used since a snapshot: CPU µs (user + system), RSS at the end and heap growth, bytes. */
export type ResourceUsage = readonly [cpuUs: number, rssBytes: number, heapGrowthBytes: number];

/** RSS is re-read at most this often by since(), ms: a burst of short mini-batches shares a reading. */
const RSS_FRESH_MS = 1;

export class AttemptUsage {
  /** The RSS reader, made on first use, and its last reading. */
  private resident: ResidentMemory | undefined;
  private rss = 0;
  private rssAt = -Infinity;

  /** CPU time and heap used now; undefined if the OS would not say. */
  snapshot(): ResourceSnapshot | undefined {
    try {
      const cpu = process.cpuUsage();
      return { cpuUs: cpu.user + cpu.system, heapUsedBytes: v8.getHeapStatistics().used_heap_size };
    } catch {
      return undefined;
    }
  }

  /**
   * What the process used since `from` (run() of one mini-batch attempt): its CPU time, its
   * resident memory now (a reading at most RSS_FRESH_MS old), and how much its heap grew (negative
   * when a GC freed more than was allocated). About 1 µs; undefined if the OS would not say.
   */
  since(from: ResourceSnapshot): ResourceUsage | undefined {
    try {
      const cpu = process.cpuUsage();
      const heap = v8.getHeapStatistics().used_heap_size;
      const now = performance.now();
      if (now - this.rssAt >= RSS_FRESH_MS) {
        this.rssAt = now;
        this.rss = (this.resident ??= new ResidentMemory()).bytes();
      }
      return [cpu.user + cpu.system - from.cpuUs, this.rss, heap - from.heapUsedBytes];
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.resident?.close();
  }
}
