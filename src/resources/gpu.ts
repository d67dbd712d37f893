// GPUs through `nvidia-smi`, when it is on the PATH (silently nothing when it is not). One
// nvidia-smi process runs in its own loop mode (`-lms`), which keeps NVML open between readings:
// far cheaper than one nvidia-smi per sample. It prints a CSV line per device per interval; the
// latest line of each device is kept. Its process and pipe are unref()'d, so they never hold the
// step open; if the step is killed, nvidia-smi dies of SIGPIPE at its next line.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface GpuReading {
  readonly index: number;
  readonly uuid?: string;
  readonly name?: string;
  /** 0..1 */
  readonly utilization?: number;
  readonly memoryUsedBytes?: number;
  readonly memoryTotalBytes?: number;
  /** In this process's CUDA_VISIBLE_DEVICES (undefined when the variable is not set). */
  readonly visible?: boolean;
}

const QUERY = 'index,uuid,name,utilization.gpu,memory.used,memory.total';
const MIB = 1024 * 1024;

/** The nvidia-smi executable on the PATH, or undefined. */
export function findNvidiaSmi(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const names = process.platform === 'win32' ? ['nvidia-smi.exe'] : ['nvidia-smi'];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function num(cell: string | undefined): number | undefined {
  if (cell === undefined) return undefined;
  const n = Number(cell.trim());
  return cell.trim() !== '' && Number.isFinite(n) ? n : undefined; // "[N/A]", "[Not Supported]"
}

/** Which devices CUDA_VISIBLE_DEVICES names (indices, GPU-/MIG- UUIDs or their prefixes), or undefined when unset. */
export function visibleDevices(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** One CSV line of the query above. */
export function parseGpuLine(line: string, visible: readonly string[] | undefined): GpuReading | undefined {
  const cells = line.split(',');
  const index = num(cells[0]);
  if (index === undefined || !Number.isInteger(index)) return undefined;
  const uuid = cells[1]?.trim() || undefined;
  const util = num(cells[3]);
  const used = num(cells[4]);
  const total = num(cells[5]);
  return {
    index,
    uuid,
    name: cells[2]?.trim() || undefined,
    utilization: util === undefined ? undefined : util / 100,
    memoryUsedBytes: used === undefined ? undefined : used * MIB,
    memoryTotalBytes: total === undefined ? undefined : total * MIB,
    visible: visible === undefined ? undefined : visible.some((v) => v === String(index) || (uuid !== undefined && uuid.startsWith(v))),
  };
}

export class GpuSampler {
  private child: ChildProcess | undefined;
  private readonly latest = new Map<number, GpuReading>();

  private constructor(executable: string, intervalMs: number, private readonly visible: readonly string[] | undefined) {
    try {
      const child = spawn(executable, [`--query-gpu=${QUERY}`, '--format=csv,noheader,nounits', `-lms`, String(Math.max(100, intervalMs))], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.on('error', () => this.stop()); // e.g. not executable after all
      let partial = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        if (partial.length > 4096) partial = '';
        for (const line of lines) {
          const r = parseGpuLine(line, this.visible);
          if (r && (this.latest.has(r.index) || this.latest.size < 64)) this.latest.set(r.index, r);
        }
      });
      child.stdout!.on('error', () => undefined);
      child.unref();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      this.child = child;
    } catch {
      this.child = undefined;
    }
  }

  /** A sampler when nvidia-smi is on the PATH, else undefined. */
  static start(intervalMs: number, env: NodeJS.ProcessEnv = process.env): GpuSampler | undefined {
    const exe = findNvidiaSmi(env);
    return exe === undefined ? undefined : new GpuSampler(exe, intervalMs, visibleDevices(env.CUDA_VISIBLE_DEVICES));
  }

  /** The latest reading of each device, by index. */
  readings(): GpuReading[] {
    return [...this.latest.values()].sort((a, b) => a.index - b.index);
  }

  stop(): void {
    const c = this.child;
    this.child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) {
      try {
        c.kill();
      } catch {
        // gone already
      }
    }
  }
}
