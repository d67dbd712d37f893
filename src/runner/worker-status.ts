// What the workers do now, in words: the progress overview's line per worker, and what holds the
// job up for the progress watchdog (progress_update_timeout) and first_task_creation_timeout.
import { performance } from 'node:perf_hooks';
import type { Lane } from './lane.js';
import type { WorkerProcess } from './pool.js';
import type { Attempt } from './scheduler.js';

type Lanes = ReadonlyMap<WorkerProcess, Lane<Attempt>>;

/** The workers still in init(), with how long. */
function starting(workers: readonly WorkerProcess[]): string[] {
  return workers.filter((w) => w.alive && w.readyAt === undefined).map((w) => `${w.name} (pid ${w.pid}) still in init() after ${((Date.now() - w.startedAt) / 1000).toFixed(0)} s`);
}

/** What holds the job up when nothing finished for `timeout` s since `lastProgress` (performance.now()); undefined while it moves. */
export function stalledText(lanes: Lanes, workers: readonly WorkerProcess[], lastProgress: number, timeout: number): string | undefined {
  const idle = (performance.now() - lastProgress) / 1000;
  if (idle <= timeout) return undefined;
  const running: string[] = [];
  for (const [w, lane] of lanes) {
    const a = lane.attempts[0];
    if (a) running.push(`${a.st.mb.id} on ${w.name} for ${((performance.now() - lane.since) / 1000).toFixed(0)} s`);
  }
  const init = starting(workers);
  return (
    `no mini-batch attempt finished in the last ${timeout} s (progress_update_timeout)` +
    `${running.length ? `; running: ${running.join(', ')}` : ''}${init.length ? `; ${init.join(', ')}` : ''}` +
    '. Raise progress_update_timeout if init() or run() legitimately take this long.'
  );
}

/** No mini-batch started within `limit` s (first_task_creation_timeout): what holds it up. */
export function firstTaskLateText(workers: readonly WorkerProcess[], limit: number): string {
  const init = starting(workers);
  return (
    `no mini-batch started within ${limit} s of the job's start (first_task_creation_timeout)${init.length ? `; ${init.join(', ')}` : ''}` +
    '. Raise first_task_creation_timeout if listing the input and init() legitimately take this long.'
  );
}

/** One line per slot's latest worker: what it does now (the progress overview). */
export function describeWorkers(lanes: Lanes, workers: readonly WorkerProcess[]): string[] {
  const latest = new Map<number, WorkerProcess>();
  for (const w of workers) latest.set(w.slot, w);
  return [...latest.values()].map((w) => {
    if (!w.alive) return `${w.name} (pid ${w.pid}): ${w.endReason ?? 'exited'}`;
    const lane = lanes.get(w);
    const a = lane?.attempts[0];
    const more = lane ? lane.attempts.length - 1 : 0;
    return `${w.name} (pid ${w.pid}): ${a ? `busy with ${a.st.mb.id} attempt ${a.no} for ${((performance.now() - lane!.since) / 1000).toFixed(1)} s${more > 0 ? `, ${more} more sent to it` : ''}` : w.readyAt === undefined ? 'starting (init)' : w.state}`;
  });
}
