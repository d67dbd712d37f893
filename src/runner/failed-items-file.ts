// failed-items.jsonl: every failed item of the run, one a line, as it was given, so that
// `parallel-run --input-failed <run folder>` can run exactly those again:
//   files:   {"item": "/in/a.png", "mini_batch_id", "category", "message", "attempts"}
//   tabular: {"file": "/in/x.csv", "row_number": 17, "line": 19, "row": {...}, "mini_batch_id", ...}
//            (row_number counts data rows from 0, the header excluded; `row` is what run() got,
//            absent for a record that cannot be parsed)
//   items that cannot be named (run() returned fewer rows than it was given and did not say which
//   with context.failItem()): {"mini_batch_id", "count", "unidentified": true, "category", "message"}.
// The rows of a failed tabular mini-batch are read back from its byte range here, only for
// mini-batches with failures.
import fs from 'node:fs';
import path from 'node:path';
import { closeQuietly } from '../util/fd.js';
import type { MiniBatch } from './partition.js';
import { readTabularRange } from './tabular.js';
import type { ParallelRunErrorCategory } from './types.js';

export const FAILED_ITEMS_FILE = 'failed-items.jsonl';

export interface FailedItemLine {
  readonly item?: string;
  readonly file?: string;
  readonly row_number?: number;
  readonly line?: number;
  readonly row?: unknown;
  readonly unidentified?: boolean;
  readonly count?: number;
  readonly mini_batch_id: string;
  readonly category: ParallelRunErrorCategory;
  readonly message: string;
  readonly attempts: number;
}

/** A failed item as explain() names it: a path, `file:line`, or (no name) a count. */
export interface NamedFailure {
  readonly item: string;
  readonly category: ParallelRunErrorCategory;
  readonly reason: string;
}

export class FailedItemsFile {
  private fd: number | undefined;
  error: string | undefined;
  lines = 0;

  constructor(
    readonly file: string,
    /** Lines of a resumed run's earlier file to keep (of the mini-batches it does not run again). */
    keep: readonly string[] = [],
  ) {
    try {
      this.fd = fs.openSync(file, 'w');
      if (keep.length > 0) fs.writeSync(this.fd, `${keep.join('\n')}\n`);
      this.lines = keep.length;
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  /**
   * The failed items of a finished mini-batch: `named` one by one, then `rest` more under one
   * reason (all its remaining items when `restAll`, else unknown which).
   */
  add(mb: MiniBatch, attempts: number, named: readonly NamedFailure[], rest: { count: number; category: ParallelRunErrorCategory; reason: string; all: boolean } | undefined): void {
    if (this.fd === undefined) return;
    const base = { mini_batch_id: mb.id, attempts };
    const out: FailedItemLine[] = [];
    if (mb.kind === 'tabular') {
      let rows: { row?: unknown; line: number }[] = [];
      try {
        rows = readTabularRange(mb.file, mb.format, mb.start, mb.end, mb.firstLine, mb.header);
      } catch {
        rows = [];
      }
      const byName = new Map<string, number>();
      rows.forEach((r, i) => byName.set(`${mb.file}:${r.line}`, i));
      const listed = new Set<number>();
      for (const n of named) {
        const i = byName.get(n.item);
        if (i === undefined) {
          out.push({ ...base, item: n.item, category: n.category, message: n.reason });
          continue;
        }
        listed.add(i);
        out.push({ ...base, file: mb.file, row_number: mb.firstRow + i, line: rows[i]!.line, row: rows[i]!.row, category: n.category, message: n.reason });
      }
      if (rest && rest.all && rows.length === mb.items) {
        rows.forEach((r, i) => {
          if (!listed.has(i)) out.push({ ...base, file: mb.file, row_number: mb.firstRow + i, line: r.line, row: r.row, category: rest.category, message: rest.reason });
        });
      } else if (rest && rest.count > 0) out.push({ ...base, unidentified: true, count: rest.count, category: rest.category, message: rest.reason });
    } else {
      for (const n of named) out.push({ ...base, item: n.item, category: n.category, message: n.reason });
      if (rest && rest.count > 0) {
        const listed = new Set(named.map((n) => n.item));
        const names = mb.kind === 'files' ? mb.files.filter((f) => !listed.has(f)) : [];
        if (rest.all || names.length === rest.count) for (const item of names.slice(0, rest.count)) out.push({ ...base, item, category: rest.category, message: rest.reason });
        else out.push({ ...base, unidentified: true, count: rest.count, category: rest.category, message: rest.reason });
      }
    }
    if (out.length === 0) return;
    try {
      fs.writeSync(this.fd, `${out.map((l) => JSON.stringify(l)).join('\n')}\n`);
      this.lines += out.length;
    } catch (error) {
      this.error = (error as Error).message;
    }
  }

  close(): void {
    this.fd = closeQuietly(this.fd);
  }
}

/** The lines of a failed-items.jsonl (a torn last line is left out). */
export function readFailedItems(file: string): FailedItemLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: FailedItemLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as FailedItemLine);
    } catch {
      // torn
    }
  }
  return out;
}

export function failedItemsPath(runFolder: string): string {
  return path.join(runFolder, FAILED_ITEMS_FILE);
}
