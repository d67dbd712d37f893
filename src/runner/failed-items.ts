// What a finished mini-batch says about its failed items: those the worker named one by one (an
// unreadable input, context.failItem()), then the rest under one reason (what run() returned, or
// the error of its last attempt); they go to the error ledger, and the mini-batch's row in the
// processed report gets one error category and message.
import type { FailedItemsFile, NamedFailure } from './failed-items-file.js';
import type { MiniBatch } from './partition.js';
import type { ItemFailure } from './protocol.js';
import { FILES, oneLine, type ErrorLedger, type MiniBatchStatus } from './reports.js';
import type { ParallelRunErrorCategory, ParallelRunErrorInfo } from './types.js';

/** `Type: message` for a run() exception, the message alone for the runner's own categories. */
export function describeError(error: ParallelRunErrorInfo): string {
  return error.type && error.category === 'RunException' ? `${error.type}: ${error.message}` : error.message;
}

export interface FinishedMiniBatch {
  readonly mb: MiniBatch;
  readonly status: MiniBatchStatus;
  readonly succeeded: number;
  readonly failures: readonly ItemFailure[];
  /** The error of its last failed attempt, if any. */
  readonly error: ParallelRunErrorInfo | undefined;
  readonly attempts: number;
  /** Elements run() returned (a RUN_DONE mini-batch). */
  readonly returned?: number;
}

/** Record the failed items of `f` in the ledger; returns the error category and message of its report row. */
export function explainFailedItems(f: FinishedMiniBatch, ledger: ErrorLedger, file?: FailedItemsFile): { category: string; message: string } {
  const { mb, status, succeeded, failures, error } = f;
  const { id, items } = mb;
  const failed = items - succeeded;
  const ok = status === 'RUN_DONE';
  const inputError = status === 'INPUT_ERROR';
  const firstInput = failures.find((x) => x.input);
  let restCategory: ParallelRunErrorCategory;
  let restReason: string;
  if (inputError) {
    restCategory = 'InputError';
    restReason = firstInput?.reason ?? 'the input cannot be read';
  } else if (!ok) {
    restCategory = error?.category ?? 'RunException';
    restReason = error ? oneLine(describeError(error), 300) : status;
  } else {
    restCategory = 'MissingResults';
    const passed = items - failures.reduce((n, x) => n + (x.input ? (x.count ?? 1) : 0), 0);
    restReason = `run() returned ${f.returned ?? 0} element(s) for ${passed} item(s)`;
  }
  if (failed > 0) {
    let explained = 0;
    const named: NamedFailure[] = [];
    for (const x of failures) {
      if (explained >= failed) break;
      const count = Math.min(x.count ?? 1, failed - explained);
      const category = x.input ? 'InputError' : ok ? 'ItemError' : restCategory;
      ledger.item(x.item, id, category, x.reason, count);
      if (count === 1) named.push({ item: x.item, category, reason: x.reason });
      else file?.add(mb, f.attempts, [], { count, category, reason: `${x.item}: ${x.reason}`, all: false });
      explained += count;
    }
    const rest = failed - explained;
    file?.add(mb, f.attempts, named, rest > 0 ? { count: rest, category: restCategory, reason: restReason, all: !ok } : undefined);
    if (rest > 0) {
      const listed = new Set(failures.map((x) => x.item));
      const names = mb.kind === 'files' ? mb.files.filter((x) => !listed.has(x)) : [];
      if (names.length === rest) for (const n of names) ledger.item(n, id, restCategory, restReason);
      else if (mb.kind === 'tabular') ledger.item(`${rest} of rows ${mb.firstRow}..${mb.firstRow + mb.items - 1} of ${mb.file}`, id, restCategory, restReason, rest);
      else ledger.item(`${rest} of the ${mb.items} items of ${id} (see ${FILES.manifest})`, id, restCategory, restReason, rest);
    }
  }
  const first = failures[0];
  let category = '';
  let message = '';
  if (inputError) {
    category = 'InputError';
    message = first ? `${failed} item(s) cannot be read; first: ${first.item}: ${first.reason}` : restReason;
  } else if (!ok) {
    category = restCategory;
    message = restReason;
  } else if (failed > 0) {
    category = first ? (first.input ? 'InputError' : 'ItemError') : 'MissingResults';
    message = first ? `${failed} item(s) failed; first: ${first.item}: ${first.reason}` : `${failed} item(s) without a result: ${restReason}`;
  } else if (f.attempts > 1 && error) {
    message = `succeeded after: ${error.category}: ${describeError(error)}`;
  }
  return { category, message: oneLine(message, 500) };
}
