// Who writes a step folder's files for one process index: a lock file (`step.lock`,
// `step.process-<n>.lock`) created exclusively when the step starts and removed when it ends.
// A second process with the same identity finds the lock held and writes files of its own
// (`logs.process-<n>.pid-<pid>.jsonl`, ...) beside the first one's, instead of interleaving lines
// with it; the run-folder reader reads both. A lock whose process is gone is taken over: on this host,
// when no such process runs; from another host (a shared file system), when its holder has not
// touched it for STALE_AFTER_MS (the holder touches it every TOUCH_EVERY_MS).
// The lock file also holds RESERVE_BYTES of padding: space given back when step.json cannot be
// written otherwise, so that a disk that filled up during the run still gets the outcome recorded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RESERVE_BYTES = 64 * 1024;
export const TOUCH_EVERY_MS = 10_000;
export const STALE_AFTER_MS = 120_000;

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly run_id?: string;
  readonly started?: string;
}

export interface Acquired {
  readonly lock: FolderLock | undefined;
  /** '' for the files of the process index; `.pid-<pid>` when another process holds them. */
  readonly suffix: string;
  /** The process that holds the folder, when `suffix` is not ''. */
  readonly holder?: LockHolder | undefined;
}

/** The file name for a process: `logs.jsonl`, `logs.process-2.jsonl`, `logs.process-0.pid-4242.jsonl`. */
export function processFileName(base: string, ext: string, processIndex: number, suffix = ''): string {
  return processIndex > 0 || suffix !== '' ? `${base}.process-${processIndex}${suffix}${ext}` : `${base}${ext}`;
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      const first = buf.toString('utf8', 0, n).split('\n')[0]!;
      const v = JSON.parse(first) as Partial<LockHolder>;
      return typeof v.pid === 'number' && typeof v.host === 'string' ? (v as LockHolder) : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined; // gone, empty (its writer is between create and write) or not ours
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock left by a process that is gone: on this host, no such process (or it is this one); from another, not touched for long. */
function stale(file: string, holder: LockHolder | undefined): boolean {
  if (holder === undefined) return false;
  if (holder.host === os.hostname()) return holder.pid === process.pid || !alive(holder.pid);
  try {
    return Date.now() - fs.statSync(file).mtimeMs > STALE_AFTER_MS;
  } catch {
    return false;
  }
}

export class FolderLock {
  private reserved: number;

  private constructor(
    readonly file: string,
    private readonly headerBytes: number,
    reserved: number,
  ) {
    this.reserved = reserved;
  }

  /** The lock of `processIndex` in `folder`, or one of this process's own when another process holds it. */
  static acquire(folder: string, processIndex: number, runId: string): Acquired {
    const header = `${JSON.stringify({ pid: process.pid, host: os.hostname(), run_id: runId, started: new Date().toISOString() })}\n`;
    const file = path.join(folder, processFileName('step', '.lock', processIndex));
    let lock = FolderLock.create(file, header, 'wx');
    if (lock instanceof FolderLock) return { lock, suffix: '' };
    if (lock !== 'EEXIST') return { lock: undefined, suffix: '' }; // no lock to be had (a full or read-only disk): the files as usual
    let holder = readHolder(file);
    if (stale(file, holder)) {
      // taken over by a rename, then checked: of two processes taking it at once, one keeps it
      const tmp = `${file}.${process.pid}.tmp`;
      lock = FolderLock.create(tmp, header, 'w');
      if (lock instanceof FolderLock) {
        try {
          fs.renameSync(tmp, file);
          if (readHolder(file)?.pid === process.pid) return { lock: new FolderLock(file, lock.headerBytes, lock.reserved), suffix: '' };
        } catch {
          remove(tmp);
        }
      }
      holder = readHolder(file);
    }
    const suffix = `.pid-${process.pid}`;
    const own = FolderLock.create(path.join(folder, processFileName('step', '.lock', processIndex, suffix)), header, 'w');
    return { lock: own instanceof FolderLock ? own : undefined, suffix, holder };
  }

  /** The lock, or the error code when the file cannot be created (EEXIST with `wx`); a lock without reserve when only the padding does not fit. */
  private static create(file: string, header: string, flag: 'wx' | 'w'): FolderLock | string {
    let fd: number;
    try {
      fd = fs.openSync(file, flag, 0o644);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? 'error';
    }
    const bytes = Buffer.byteLength(header);
    let reserved = 0;
    try {
      fs.writeSync(fd, header);
      fs.writeSync(fd, Buffer.alloc(RESERVE_BYTES, 0x20));
      reserved = RESERVE_BYTES;
    } catch {
      // a full disk already: the lock holds, without reserve
    } finally {
      fs.closeSync(fd);
    }
    return new FolderLock(file, bytes, reserved);
  }

  /** Give back up to `bytes` of the reserve; false when none is left. */
  giveBack(bytes: number = RESERVE_BYTES): boolean {
    if (this.reserved === 0) return false;
    this.reserved = Math.max(0, this.reserved - bytes);
    try {
      fs.truncateSync(this.file, this.headerBytes + this.reserved);
    } catch {
      return false;
    }
    return true;
  }

  /** Tell processes on other hosts that this one still holds the lock (its modification time). */
  touch(): void {
    const now = new Date();
    fs.utimes(this.file, now, now, () => undefined);
  }

  release(): void {
    remove(this.file);
  }
}

function remove(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // a read-only folder: the lock stays, and is stale once this process is gone
  }
}
