// output-journal.jsonl: one line per mini-batch that finished with its rows written (or, for
// summary_only, counted), appended after its rows reached the output file and before the mini-batch
// counts as done anywhere else. It is what makes outputs exact across crashes:
//   - a resumed run (`--resume`) skips the mini-batches it names, and cuts the output file back to
//     the end of the last one it names (rows written by a runner that died before journalling them
//     go, and their mini-batches run again);
//   - with a shared queue, the job's record of each mini-batch names one writer and one entry
//     (`w`, `s`), so the merge takes exactly those rows, whichever nodes ran it.
// Each start of a writer first writes a line naming it, {"w": writer} (with "output": the output
// file its entries point into, when there is one); then a line per mini-batch: {"s": seq,
// "i": index, "mb": id, "o": byte offset, "n": bytes, "r": rows, "ok": items succeeded, "f": items
// failed}, its writer the last one named, and a figure that is 0 left out (summary_only has no rows;
// most mini-batches fail no item): 37 bytes for a summary_only mini-batch of one item. Lines are
// buffered within one turn of the event loop and written with one call, always before a commit
// reaches the queue (flush()). Journals of before, with "w" and every figure on each line, read the same.
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
      fs.writeSync(this.fd, `${JSON.stringify(output ? { w: writer, output } : { w: writer })}\n`);
    } catch (error) {
      this.error = `cannot open ${file}: ${(error as Error).message}`;
    }
  }

  /** Record a finished mini-batch; returns its entry's seq (for the queue's record). */
  add(e: Omit<JournalEntry, 'w' | 's'>): number {
    const s = ++this.seq;
    let line = `{"s":${s},"i":${e.i},"mb":${JSON.stringify(e.mb)}`;
    if (e.o !== 0) line += `,"o":${e.o}`;
    if (e.n !== 0) line += `,"n":${e.n}`;
    if (e.r !== 0) line += `,"r":${e.r}`;
    if (e.ok !== 0) line += `,"ok":${e.ok}`;
    if (e.f !== 0) line += `,"f":${e.f}`;
    this.pending += `${line}}\n`;
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
  /** The writer of the entries that follow (named by the line of its start). */
  let writer = 1;
  const count = (v: unknown): number | undefined => (v === undefined ? 0 : Number.isInteger(v) ? (v as number) : undefined);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let e: Partial<Record<keyof JournalEntry, unknown>> | null;
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue; // torn: written as the process died
    }
    if (e === null || typeof e !== 'object') continue;
    if (typeof e.mb !== 'string') {
      if (Number.isInteger(e.w)) writer = e.w as number;
      continue;
    }
    const o = count(e.o);
    const n = count(e.n);
    if (o === undefined || n === undefined) continue;
    out.push({ w: Number.isInteger(e.w) ? (e.w as number) : writer, s: count(e.s) ?? 0, i: count(e.i) ?? 0, mb: e.mb, o, n, r: count(e.r) ?? 0, ok: count(e.ok) ?? 0, f: count(e.f) ?? 0 });
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
