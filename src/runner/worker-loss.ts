// What becomes of a worker's attempts when the worker is lost: killed at run_invocation_timeout,
// crashed (the OOM killer, a fatal error), ended before it was ready (a failed start: see
// start-failures.ts), or ended by the runner (the attempts it held are abandoned or go back).
// The scheduler lends its lanes and slots through a LaneHost, and starts the replacement after.
import { performance } from 'node:perf_hooks';
import type { ResolvedRunConfig } from './config.js';
import { crashCause } from './crash.js';
import type { WorkerProcess } from './pool.js';
import type { Attempt, SchedulerEvents, SchedulerLog } from './scheduler.js';
import type { StartFailures } from './start-failures.js';
import { writeUnstartedWorkerFile } from './unstarted-worker.js';

/** A timed-out worker gets this long to die on SIGTERM before SIGKILL. */
const TIMEOUT_KILL_GRACE_MS = 1000;

/** What worker-loss handling needs of the scheduler. */
export interface LaneHost {
  /** The job is ending: nothing goes back to the source. */
  halted(): boolean;
  /** Take all attempts off `w`'s lane (see Scheduler.takeLane). */
  takeLane(w: WorkerProcess): { all: Attempt[]; head: Attempt[]; since: number };
  /** `w` no longer holds its slot. */
  vacate(w: WorkerProcess): void;
  /** `w` is gone: its (empty) lane goes. */
  dropLane(w: WorkerProcess): void;
  /** Attempts never reported go back to the front of the source, uncounted. */
  giveBack(attempts: readonly Attempt[]): void;
  /** An attempt ended at `now` (performance.now()): the progress watchdog's clock. */
  progressed(now: number): void;
  /** Live workers that are not on their way out. */
  workerCount(): number;
  /** Start the workers the work needs. */
  ensureWorkers(): void;
}

export class WorkerLoss {
  constructor(
    private readonly config: ResolvedRunConfig,
    private readonly host: LaneHost,
    private readonly starts: StartFailures,
    private readonly logger: SchedulerLog,
    private readonly events: SchedulerEvents,
    private readonly runFolder: string | undefined,
    private readonly stepEnv: Readonly<Record<string, string>>,
  ) {}

  /** The attempt running on `w` is past run_invocation_timeout: the worker is killed, the attempt failed. */
  timedOut(w: WorkerProcess): void {
    const { all, head, since } = this.host.takeLane(w);
    if (head.length === 0) return;
    const now = performance.now();
    this.host.progressed(now);
    this.events.timeout();
    const t = this.config.runInvocationTimeout;
    void w.terminate(TIMEOUT_KILL_GRACE_MS, 'killed-timeout');
    this.host.vacate(w);
    w.busyMs += now - since;
    if (head.length > 1) {
      this.unknownCulprit(w, all, head, `did not finish within ${t} s (run_invocation_timeout) and was killed`);
      this.host.ensureWorkers();
      return;
    }
    const a = head[0]!;
    const message = `run() did not return within ${t} s (run_invocation_timeout) on ${w.name} (pid ${w.pid}); the worker was killed`;
    w.failedAttempts++;
    w.attempts++;
    this.host.giveBack(all.slice(1));
    this.events.attemptLost(a, 'timeout', performance.timeOrigin + since, performance.timeOrigin + now, message);
    this.host.ensureWorkers();
  }

  /** `w`'s process exited (`code`, `signal`). */
  exited(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.host.vacate(w);
    const { all, head, since } = this.host.takeLane(w);
    this.host.dropLane(w);
    const { how, type } = crashCause(code, signal, w.fatalError);
    // a worker that died before its step started (in its first mini-batch) has no process file of its own
    if (this.runFolder) writeUnstartedWorkerFile(this.runFolder, w, this.stepEnv, { code, signal, how, byRunner: w.expectingExit });
    if (w.expectingExit) {
      for (const a of head) this.events.abandoned(a, performance.timeOrigin + since, head.length > 1);
      this.host.giveBack(all.slice(head.length));
      return;
    }
    w.endReason ??= 'crashed';
    const tail = w.stderrTail.filter((l) => l.trim() !== '').slice(-15).join('\n');
    const stderr = tail ? `\nlast stderr lines of ${w.name}:\n${tail}` : '';
    if (w.readyAt === undefined) {
      if (!this.host.halted() && w.initError?.phase !== 'exports') {
        this.starts.failed(w, how, stderr, code, signal, this.host.workerCount());
        this.host.ensureWorkers();
      }
      return;
    }
    this.logger.warn(`${w.name} (pid ${w.pid}) ${how}`, { worker: w.name, pid: w.pid, exit_code: code, signal });
    if (head.length > 1) this.unknownCulprit(w, all, head, `${how}${stderr}`);
    else if (head.length === 1) {
      const a = head[0]!;
      this.host.giveBack(all.slice(1));
      const now = performance.now();
      this.host.progressed(now);
      w.busyMs += now - since;
      w.failedAttempts++;
      w.attempts++;
      const message = `${w.name} (pid ${w.pid}) ${how} while running ${a.st.mb.id} (attempt ${a.no})${stderr}`;
      this.events.attemptLost(a, 'crash', performance.timeOrigin + since, performance.timeOrigin + now, message, type);
    }
    this.host.ensureWorkers();
  }

  /**
   * `w` hung or crashed while its chunk's results were held: which attempt of the chunk ran is not
   * known. None is charged; all go back, and the chunk's mini-batches run alone next, so that the
   * culprit is found and charged then (its others ran, but their results died with the worker).
   */
  private unknownCulprit(w: WorkerProcess, all: readonly Attempt[], head: readonly Attempt[], what: string): void {
    for (const a of head) a.st.suspect = true;
    const ids = head.map((a) => a.st.mb.id);
    const text = `${w.name} (pid ${w.pid}) ${what} during one of ${ids.length} mini-batches sent together (${ids[0]} … ${ids[ids.length - 1]}); they run again one at a time, uncounted, to find which`;
    this.logger.warn(text, { worker: w.name, pid: w.pid, mini_batches: ids });
    this.events.notice(text);
    this.host.giveBack(all);
  }
}
