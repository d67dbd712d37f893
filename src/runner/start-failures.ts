// Worker starts that fail, with ParallelRunStep's budget: a worker that ended before it was ready
// (init() threw or the module did not load, or the process exited or was killed: the OOM killer, a
// node under pressure) is replaced until START_FAILURES_PER_PROCESS × process_count_per_node
// starts failed in a row; then none is started, and the job fails once no worker is left.
import type { WorkerProcess } from './pool.js';
import type { SchedulerEvents, SchedulerLog } from './scheduler.js';
import type { ParallelRunErrorInfo } from './types.js';

/**
 * ParallelRunStep's rule for worker starts: once init() failed 3 × process_count_per_node times in
 * a row on a node, no new worker is started there (a start that fails is one whose init() threw,
 * whose process exited or was killed before it was ready: the same budget for all).
 */
const START_FAILURES_PER_PROCESS = 3;

export class StartFailures {
  /** Starts that failed since a worker was last ready, and in all. */
  private inARow = 0;
  total = 0;
  /** The budget is spent: no new worker is started; the last one's cause. */
  spent: ParallelRunErrorInfo | undefined;

  constructor(
    private readonly processCount: number,
    private readonly logger: SchedulerLog,
    private readonly events: SchedulerEvents,
  ) {}

  /** A worker became ready: the count in a row starts again. */
  ready(): void {
    this.inARow = 0;
  }

  /**
   * `w` ended before it was ready (`how`, its `stderr` tail); `live`: the workers left. Says so;
   * the caller then starts what the budget allows (ensureWorkers).
   */
  failed(w: WorkerProcess, how: string, stderr: string, code: number | null, signal: NodeJS.Signals | null, live: number): void {
    const e = w.initError;
    const what = e ? `${e.phase === 'load' ? 'loading the entry script' : 'init()'} failed in ${w.name} (pid ${w.pid}): ${e.error.type}: ${e.error.message}` : `${w.name} (pid ${w.pid}) ${how} before init() finished`;
    const n = ++this.inARow;
    this.total++;
    const budget = START_FAILURES_PER_PROCESS * this.processCount;
    const count = `${n} failed start${n === 1 ? '' : 's'} in a row; no new worker after ${budget} = 3 × process_count_per_node`;
    if (n < budget) {
      const text = `${what}; a fresh worker takes its place (${count})`;
      this.logger.warn(text, { worker: w.name, pid: w.pid, exit_code: code, signal, ...(e?.error.stack ? { stack: e.error.stack } : {}) });
      this.events.notice(text);
      return;
    }
    this.spent = {
      category: 'InitFailure',
      type: e?.error.type,
      message: `${what}; ${n} worker starts in a row failed: after ${budget} (ParallelRunStep's limit, 3 × process_count_per_node) no new worker is started, and none is left to run the job${e ? '' : stderr}`,
      stack: e?.error.stack,
      worker: w.name,
    };
    if (live > 0) {
      const text = `${what}; ${n} worker starts in a row failed: after ${budget} (3 × process_count_per_node) no new worker is started; the job goes on with the ${live} worker(s) it has`;
      this.logger.warn(text, { worker: w.name, pid: w.pid, exit_code: code, signal });
      this.events.notice(text);
    }
  }
}
