// How a worker process died, in words: V8's out-of-memory abort is named (its "FATAL ERROR ...
// JavaScript heap out of memory" line, not the native frames that follow it), and a SIGKILL the
// runner did not send is said to be what the kernel's out-of-memory killer sends.

/** A V8 fatal error line, e.g. `FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory`. */
const V8_FATAL = /^\s*(?:#\s*)?FATAL ERROR: .+|JavaScript heap out of memory/;
/** A frame of V8's native stack trace (` 3: 0xee85e7 v8::internal::...`) or its header. */
const NATIVE_LINE = /^\s*\d+: 0x[0-9a-f]+\b|^\s*-+ Native stack trace -+\s*$/;

/** The fatal-error line, when `line` is one. */
export function v8FatalLine(line: string): string | undefined {
  return V8_FATAL.test(line) ? line.trim().replace(/^#\s*/, '') : undefined;
}

/** True for a line of V8's native stack trace: not worth a place in the stderr tail. */
export function isNativeFrame(line: string): boolean {
  return NATIVE_LINE.test(line);
}

export interface CrashCause {
  /** `was killed by SIGKILL ...`, `ran out of JavaScript heap memory ...`, `exited with code 3`. */
  readonly how: string;
  /** `OutOfMemory` for V8's heap-limit abort, else `WorkerCrash`. */
  readonly type: 'OutOfMemory' | 'WorkerCrash';
}

export function crashCause(code: number | null, signal: NodeJS.Signals | null, fatal: string | undefined): CrashCause {
  if (fatal !== undefined && /out of memory|heap limit/i.test(fatal)) {
    return { how: `ran out of JavaScript heap memory (V8: "${fatal}"; the heap limit is --max-old-space-size)`, type: 'OutOfMemory' };
  }
  if (signal === 'SIGKILL') return { how: "was killed by SIGKILL (what the kernel's out-of-memory killer sends, or a kill -9)", type: 'WorkerCrash' };
  if (fatal !== undefined) return { how: `${signal ? `was killed by ${signal}` : `exited with code ${code}`} (V8: "${fatal}")`, type: 'WorkerCrash' };
  return { how: signal ? `was killed by ${signal}` : `exited with code ${code}`, type: 'WorkerCrash' };
}
