// What the operating system tells about this process and its node, read cheaply: Linux's /proc
// files where they exist (one small read each), Node's os module elsewhere. Every reader returns
// undefined rather than throw: a missing /proc (macOS, a locked-down container) only means fewer
// fields in a sample.
import fs from 'node:fs';
import os from 'node:os';
import { closeQuietly } from '../util/fd.js';

/** Cumulative I/O of this process (/proc/self/io), bytes. */
export interface ProcessIo {
  /** Bytes fetched from storage (page cache misses). */
  readonly readBytes: number;
  /** Bytes sent to storage. */
  readonly writeBytes: number;
  /** Bytes passed to read()-like calls: files, pipes and sockets alike, cached or not. */
  readonly readChars: number;
  readonly writeChars: number;
}

const IO_FIELD = /^(rchar|wchar|read_bytes|write_bytes): (\d+)$/gm;

export function readProcessIo(): ProcessIo | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/io', 'latin1');
  } catch {
    return undefined;
  }
  const f: Record<string, number> = {};
  for (const m of text.matchAll(IO_FIELD)) f[m[1]!] = Number(m[2]);
  if (f.read_bytes === undefined) return undefined;
  return { readBytes: f.read_bytes, writeBytes: f.write_bytes ?? 0, readChars: f.rchar ?? 0, writeChars: f.wchar ?? 0 };
}

/**
 * Cumulative seconds the process's main thread (where JavaScript runs) waited on a run queue for a
 * core (/proc/self/schedstat, second field): off-CPU time that is CPU contention, not I/O.
 */
export function readRunQueueWaitS(): number | undefined {
  try {
    const ns = Number(fs.readFileSync('/proc/self/schedstat', 'latin1').split(' ')[1]);
    return Number.isFinite(ns) ? ns / 1e9 : undefined;
  } catch {
    return undefined;
  }
}

/** The node's cumulative CPU time by mode (any unit: only ratios of differences are used). */
export interface CpuTimes {
  readonly user: number;
  readonly nice: number;
  readonly system: number;
  readonly idle: number;
  readonly iowait: number;
  readonly interrupt: number;
  readonly steal: number;
}

export const CPU_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'interrupt', 'steal'] as const;
export type CpuMode = (typeof CPU_MODES)[number];

/** All CPUs together: the first line of /proc/stat, else the sum of os.cpus() (no iowait, no steal). */
export function readCpuTimes(): CpuTimes | undefined {
  try {
    const text = fs.readFileSync('/proc/stat', 'latin1');
    const line = text.slice(0, text.indexOf('\n'));
    if (line.startsWith('cpu ')) {
      const v = line.slice(4).trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal (guest time is already in user)
      return { user: v[0] ?? 0, nice: v[1] ?? 0, system: v[2] ?? 0, idle: v[3] ?? 0, iowait: v[4] ?? 0, interrupt: (v[5] ?? 0) + (v[6] ?? 0), steal: v[7] ?? 0 };
    }
  } catch {
    // not Linux: os.cpus() below
  }
  try {
    const sum = { user: 0, nice: 0, system: 0, idle: 0, iowait: 0, interrupt: 0, steal: 0 };
    for (const c of os.cpus()) {
      sum.user += c.times.user;
      sum.nice += c.times.nice;
      sum.system += c.times.sys;
      sum.idle += c.times.idle;
      sum.interrupt += c.times.irq;
    }
    return sum;
  } catch {
    return undefined;
  }
}

/** Share of the CPU time between two readings spent in each mode (they add up to 1). */
export function cpuShares(from: CpuTimes, to: CpuTimes): Record<CpuMode, number> | undefined {
  let total = 0;
  const d = {} as Record<CpuMode, number>;
  for (const m of CPU_MODES) {
    d[m] = Math.max(0, to[m] - from[m]);
    total += d[m];
  }
  if (total <= 0) return undefined;
  for (const m of CPU_MODES) d[m] /= total;
  return d;
}

/** Above this, a cgroup "limit" is the kernel's way of saying "none". */
const NO_LIMIT = 2 ** 60;

/** The memory limit of this process's cgroup (v1 or v2), or undefined when it has none. */
export function cgroupMemoryLimit(): number | undefined {
  try {
    const limit = process.constrainedMemory?.();
    return typeof limit === 'number' && limit > 0 && limit < NO_LIMIT ? limit : undefined;
  } catch {
    return undefined;
  }
}

/** Logical CPUs the process may use. */
export function cpuCount(): number {
  try {
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length || 1;
  } catch {
    return 1;
  }
}

/**
 * The resident memory of this process, read where it is cheapest: a pread of /proc/self/statm's
 * resident pages on a descriptor kept open (about 1 µs; process.memoryUsage.rss() opens, reads and
 * closes /proc/self/stat on every call: 10 to 15 µs). Elsewhere, or once that failed, rss().
 */
export class ResidentMemory {
  private fd: number | undefined;
  private pageSize = 0;
  private readonly buf = Buffer.alloc(128);

  constructor() {
    if (process.platform !== 'linux') return;
    try {
      this.fd = fs.openSync('/proc/self/statm', 'r');
      const pages = this.pages();
      // the page size, from one rss() beside it: 4 KiB, 16 KiB or 64 KiB, a power of two
      if (pages !== undefined && pages > 0) this.pageSize = 2 ** Math.round(Math.log2(process.memoryUsage.rss() / pages));
    } catch {
      // rss() it is
    }
    if (!(this.pageSize >= 4096)) this.close();
  }

  /** Bytes. */
  bytes(): number {
    const pages = this.pages();
    return pages !== undefined ? pages * this.pageSize : process.memoryUsage.rss();
  }

  /** statm's second number: resident pages. */
  private pages(): number | undefined {
    if (this.fd === undefined) return undefined;
    const b = this.buf;
    let n: number;
    try {
      n = fs.readSync(this.fd, b, 0, b.length, 0);
    } catch {
      this.close();
      return undefined;
    }
    let i = b.indexOf(32) + 1;
    if (i <= 0 || i >= n) return undefined;
    let v = 0;
    for (; i < n && b[i]! >= 48 && b[i]! <= 57; i++) v = v * 10 + b[i]! - 48;
    return v;
  }

  close(): void {
    this.fd = closeQuietly(this.fd);
  }
}
