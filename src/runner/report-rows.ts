// The rows of the processed mini-batches report (ProcessedReport in reports.ts): a mini-batch that
// finished (done or failed for good), one cut short by the job's end, one whose retry never came.
import type { ResourceUsage } from '../resources/sampler.js';
import { describeError } from './failed-items.js';
import type { MiniBatch } from './partition.js';
import type { WorkerProcess } from './pool.js';
import { oneLine, round3, type MiniBatchStatus, type ProcessedRow } from './reports.js';
import type { MiniBatchState } from './source.js';

/** The partition_keys values of a mini-batch as JSON, for its report row; undefined without keys. */
function keysText(mb: MiniBatch): string | undefined {
  return mb.kind === 'keyed' ? mb.keysText : undefined;
}

/** How a mini-batch's attempts went, for its row (`start`: epoch ms; `runMs`: its last attempt's run()). */
export interface AttemptsInfo {
  readonly attempts: number;
  readonly start: number;
  readonly worker: WorkerProcess | undefined;
  readonly runMs: number;
  readonly returned?: number;
  readonly usage?: ResourceUsage;
}

/** A mini-batch that finished at `end` (epoch ms): done, or failed for good (`category`, `message`: explainFailedItems). */
export function finishedRow(mb: MiniBatch, status: MiniBatchStatus, succeeded: number, info: AttemptsInfo, end: number, category: string, message: string): ProcessedRow {
  const usage = info.usage;
  return {
    mini_batch_id: mb.id,
    times_picked: info.attempts,
    worker: info.worker?.name ?? '',
    pid: info.worker?.pid ?? '',
    start_time: info.start,
    end_time: end,
    total_items: mb.items,
    succeeded_items: succeeded,
    failed_items: mb.items - succeeded,
    elapsed_seconds: round3((end - info.start) / 1000),
    run_method_seconds: round3(info.runMs / 1000),
    status,
    error_category: category,
    error_message: message,
    partition_keys: keysText(mb),
    cpu_seconds: usage && round3(usage[0] / 1e6),
    rss_bytes: usage?.[1],
    heap_growth_bytes: usage?.[2],
  };
}

/** A mini-batch the job's end left unfinished at `now` (epoch ms): its row says ABORTED, with no items counted. */
function unfinishedRow(st: MiniBatchState, worker: string, pid: number | string, now: number, runSeconds: number, category: string, message: string): ProcessedRow {
  return {
    mini_batch_id: st.mb.id,
    times_picked: st.attempts,
    worker,
    pid,
    start_time: st.firstStart,
    end_time: now,
    total_items: st.mb.items,
    succeeded_items: 0,
    failed_items: 0,
    elapsed_seconds: round3((now - st.firstStart) / 1000),
    run_method_seconds: runSeconds,
    status: 'ABORTED',
    error_category: category,
    error_message: message,
    partition_keys: keysText(st.mb),
  };
}

/** An attempt on `worker` cut short by the end of the job at `now` (its cause: `category`). */
export function abortedRow(st: MiniBatchState, worker: WorkerProcess, now: number, category: string, message: string): ProcessedRow {
  return unfinishedRow(st, worker.name, worker.pid ?? '', now, 0, category, message);
}

/** A mini-batch whose failed attempt was to be retried when the job stopped at `now`. */
export function notRetriedRow(st: MiniBatchState, now: number): ProcessedRow {
  const e = st.lastError;
  const message = oneLine(`not finished: ${st.attempts} attempt(s) failed, the job stopped before the next${e ? `; last: ${describeError(e)}` : ''}`, 500);
  return unfinishedRow(st, e?.worker ?? '', '', now, round3(st.lastRunMs / 1000), e?.category ?? '', message);
}
