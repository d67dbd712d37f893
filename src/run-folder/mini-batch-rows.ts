// processed-mini-batches.csv, one row at a time: the row count, the mini-batches reported twice
// (through the step's IdTable), and the rows the report and the doctor show (failed items, the
// first timeout message), within a bound.
import { ROW_AGAIN, SEEN_ROW } from './attempts.js';
import type { IdTable } from './id-table.js';
import type { MiniBatchRow, MiniBatchRows } from './model.js';

const MAX_ITEM_FAILURES = 50_000;
const REPEATED_EXAMPLES = 6;
const TIMEOUT_MESSAGE = /within [\d.]+ s \(run_invocation_timeout\)/;

export class MiniBatchRowCollector {
  private count = 0;
  private repeated = 0;
  private readonly examples: string[] = [];
  private readonly itemFailures: MiniBatchRow[] = [];
  private itemFailuresComplete = true;
  private firstWithFailedItems: MiniBatchRow | undefined;
  private timeoutMessage: string | undefined;

  constructor(private readonly ids: IdTable) {}

  /** A row: its id, failed items and error message, and the whole row (made only when kept). */
  add(id: string, failedItems: number, errorMessage: string, row: () => MiniBatchRow): void {
    this.count++;
    const slot = this.ids.slot(id);
    const flags = this.ids.flagsAt(slot);
    if (flags & SEEN_ROW) {
      if ((flags & ROW_AGAIN) === 0) {
        this.repeated++;
        if (this.examples.length < REPEATED_EXAMPLES) this.examples.push(id);
        this.ids.addFlags(slot, ROW_AGAIN);
      }
    } else this.ids.addFlags(slot, SEEN_ROW);
    if (failedItems > 0) {
      const m = row();
      this.firstWithFailedItems ??= m;
      if (m.status === 'RUN_DONE') {
        if (this.itemFailures.length < MAX_ITEM_FAILURES) this.itemFailures.push(m);
        else this.itemFailuresComplete = false;
      }
    }
    if (this.timeoutMessage === undefined && errorMessage !== '' && TIMEOUT_MESSAGE.test(errorMessage)) this.timeoutMessage = errorMessage;
  }

  finish(): MiniBatchRows {
    return {
      count: this.count,
      repeated: { count: this.repeated, examples: this.examples },
      itemFailures: this.itemFailures,
      itemFailuresComplete: this.itemFailuresComplete,
      firstWithFailedItems: this.firstWithFailedItems,
      timeoutMessage: this.timeoutMessage,
    };
  }
}
