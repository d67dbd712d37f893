// The failure lines of a job on the console: the first PRINTED_FAILURES are printed, the others
// only counted (they go to the run folder's logs and errors file), and the count comes at the end.
import path from 'node:path';
import type { Step } from '../step.js';
import type { ProgressPrinter } from './progress.js';
import { FILES } from './reports.js';

/** Failure lines printed on the console before the rest only go to the files. */
const PRINTED_FAILURES = 20;

export class FailureLines {
  private printed = 0;
  /** Failure lines not printed once PRINTED_FAILURES were. */
  private unprinted = 0;

  constructor(
    private readonly printer: ProgressPrinter,
    private readonly step: Step,
    private readonly runFolder: string | undefined,
  ) {}

  /** A failure line on the console, while fewer than PRINTED_FAILURES were printed; the rest are counted. */
  print(text: string): void {
    const label = this.step.identity.stepName;
    if (this.printed >= PRINTED_FAILURES) {
      if (this.unprinted++ === 0) this.printer.print(`[${label}] ${PRINTED_FAILURES} failure lines shown; the others go to the run folder's logs and ${FILES.errors} (their count comes at the end)`, 'err');
      return;
    }
    this.printed++;
    this.printer.print(`[${label}] ${text}`, 'err');
  }

  /** At the end: how many failure lines were not printed. */
  printUnprinted(): void {
    if (this.unprinted === 0) return;
    this.printer.print(`[${this.step.identity.stepName}] ${this.unprinted} more failure line${this.unprinted === 1 ? '' : 's'} not shown${this.runFolder ? `: see ${path.join(this.runFolder, FILES.errors)}` : ''}`, 'err');
  }
}
