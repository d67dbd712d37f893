// output-journal.jsonl: one line per mini-batch that finished with its rows written (or, for
// summary_only, counted), appended after its rows reached the output file and before the mini-batch
// counts as done anywhere else. It is what makes outputs exact across crashes:
//   - a resumed run (`--resume`) skips the mini-batches it names, and cuts the output file back to
//     the end of the last one it names (rows written by a runner that died before journalling them
//     go, and their mini-batches run again);
//   - with a shared queue, the job's record of each mini-batch names one writer and one entry
//     (`w`, `s`), so the merge takes exactly those rows, whichever nodes ran it.
// A line: {"w": writer, "s": seq, "i": index, "mb": id, "o": byte offset, "n": bytes, "r": rows,
// "ok": items succeeded, "f": items failed}. Lines are buffered within one turn of the event loop
// and written with one call, always before a commit reaches the queue (flush()).
import fs from 'node:fs';
import path from 'node:path';
import { closeQuietly } from '../util/fd.js';

export const JOURNAL_FILE = 'output-journal.jsonl';

export interface JournalEntry {
  /** The node process that wrote it (1 without a queue; the queue's writer id with one). */
  readonly w: number;
  /** 1, 2, ... within the writer. */
  readonly s: number;
  readonly i: number;
  readonly mb: string;
  /** Where its rows are in the output file, and how many bytes and rows (0 for summary_only). */
  readonly o: number;
  readonly n: number;
  readonly r: number;
  readonly ok: number;
  readonly f: number;
}

export class OutputJournal {
  private fd: number | undefined;
  private pending = '';
  private seq = 0;
  private scheduled = false;
  error: string | undefined;

  constructor(
    readonly file: string,
    /** This node process's writer id. */
    readonly writer: number,
    /** The output file its entries point into (a line of its own, for a merge that finds no result.json: a node killed). */
    output?: string,
  ) {
    try {
      this.fd = fs.openSync(file, 'a');
      if (output) fs.writeSync(this.fd, `${JSON.stringify({ w: writer, output })}\n`);
    } catch (error) {
      this.error = `cannot open ${file}: ${(error as Error).message}`;
    }
  }

  /** Record a finished mini-batch; returns its entry's seq (for the queue's record). */
  add(e: Omit<JournalEntry, 'w' | 's'>): number {
    const s = ++this.seq;
    this.pending += `{"w":${this.writer},"s":${s},"i":${e.i},"mb":${JSON.stringify(e.mb)},"o":${e.o},"n":${e.n},"r":${e.r},"ok":${e.ok},"f":${e.f}}\n`;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return s;
  }

  /** Write what is buffered (before a commit goes to the queue, and at the end). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending === '' || this.fd === undefined) return;
    const text = this.pending;
    this.pending = '';
    try {
      fs.writeSync(this.fd, text);
    } catch (error) {
      this.error = `cannot write ${this.file}: ${(error as Error).message}`;
    }
  };

  close(): void {
    this.flush();
    this.fd = closeQuietly(this.fd);
  }
}

/** The entries of a journal; a torn last line (the runner died while writing it) is left out. */
export function readJournal(file: string): JournalEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (typeof e.mb === 'string' && Number.isInteger(e.o) && Number.isInteger(e.n)) out.push(e);
    } catch {
      // torn: written as the process died
    }
  }
  return out;
}

/** The output file a journal's entries point into (its last `output` line). */
export function journalOutput(file: string): string | undefined {
  let out: string | undefined;
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) if (line.startsWith('{"w":') && line.includes('"output":')) out = (JSON.parse(line) as { output: string }).output;
  } catch {
    // none
  }
  return out;
}

export function journalPath(runFolder: string): string {
  return path.join(runFolder, JOURNAL_FILE);
}
