// Tabular inputs: CSV/TSV (RFC 4180 quoting, a header row; parsed by csv-parse, src/util/csv.ts)
// and JSON Lines. The partition finds record boundaries (CSV: csv-parse's byte offsets; JSON
// Lines: line breaks), so that mini-batches can be cut by size and handed to workers as byte
// ranges; the worker parses its own range with the same parser. Both sides count records the
// same way: blank lines are not records, and a malformed record is one item that fails with its
// line.
import fs from 'node:fs';
import path from 'node:path';
import { parseCsv, parseCsvFile } from '../util/csv.js';
import { closeQuietly } from '../util/fd.js';

export type TabularFormat = 'csv' | 'tsv' | 'jsonl';

export const TABULAR_EXTENSIONS: Readonly<Record<string, TabularFormat>> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

export function tabularFormat(file: string): TabularFormat | undefined {
  return TABULAR_EXTENSIONS[path.extname(file).toLowerCase()];
}

/** Called between records: undefined to go on at once, or a promise to await first (a cut yielding to the event loop). */
export type Pause = () => Promise<void> | undefined;

const LF = 0x0a;
const CR = 0x0d;
const CHUNK = 1024 * 1024;
/** A JSON Lines scan reads 64 KB first, then twice as much each time up to CHUNK: its first records come early (a streaming cut's first slice). */
const FIRST_CHUNK = 64 * 1024;

/**
 * The record units of a CSV or TSV file past its header, in one pass: a unit runs from the end of
 * the last good record (its next line) to the end of the next one, with the malformed records
 * between them (`records` counts them all); malformed records at the end are a unit of their own,
 * without fields. Returns the header (undefined for an empty file).
 */
export async function scanCsvUnits(
  file: string,
  format: TabularFormat,
  onHeader: (header: string[]) => void,
  onUnit: (fields: readonly string[] | undefined, start: number, end: number, line: number, records: number) => void,
  pause?: Pause,
): Promise<string[] | undefined> {
  let header: string[] | undefined;
  let unitStart = 0;
  let unitLine = 1;
  let malformed = 0;
  await parseCsvFile(file, format === 'tsv' ? '\t' : ',', {
    record(fields, _line, e, nextLine) {
      if (header === undefined) {
        header = headerNames(fields);
        onHeader(header);
      } else onUnit(fields, unitStart, e, unitLine, malformed + 1);
      unitStart = e;
      unitLine = nextLine;
      malformed = 0;
    },
    malformed(reason, line) {
      if (header === undefined) throw new Error(`the header (line ${line}) is not valid CSV: ${reason}`);
      malformed++;
    },
  }, pause);
  if (malformed > 0) onUnit(undefined, unitStart, fs.statSync(file).size, unitLine, malformed);
  return header;
}

/**
 * Walk the records of a JSON Lines file: bytes [start, end) (end after its line break), starting
 * on `line` (1-based). A line break always ends a record; blank lines are skipped. Rejects on read
 * errors. `pause` is called after each chunk read. (CSV and TSV go through csv-parse: see src/util/csv.ts.)
 */
export async function scanJsonLines(file: string, onRecord: (start: number, end: number, line: number) => void, pause?: Pause): Promise<void> {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let offset = 0; // file offset of buf[0]
    let recordStart = 0;
    let recordLine = 1;
    let line = 1;
    let blank = true; // no non-whitespace byte since recordStart
    const emit = (end: number): void => {
      if (!blank) onRecord(recordStart, end, recordLine);
      recordStart = end;
      recordLine = line;
      blank = true;
    };
    for (;;) {
      const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, Math.max(FIRST_CHUNK, offset)), offset);
      if (n === 0) break;
      let i = 0;
      while (i < n) {
        const nl = buf.indexOf(LF, i);
        const stop = nl < 0 || nl >= n ? n : nl;
        if (blank) {
          for (let j = i; j < stop; j++) {
            const b = buf[j]!;
            if (b !== 0x20 && b !== 0x09 && b !== CR) {
              blank = false;
              break;
            }
          }
        }
        if (stop === n) break;
        line++;
        emit(offset + nl + 1);
        i = nl + 1;
      }
      offset += n;
      const p = pause?.();
      if (p) await p;
    }
    if (offset > recordStart) emit(offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Column names from a header record: empty names become `column_<n>` (1-based). */
export function headerNames(fields: readonly string[]): string[] {
  return fields.map((f, i) => (f.trim() === '' ? `column_${i + 1}` : f.trim()));
}

export interface ParsedRow {
  /** The row object, or undefined when the record cannot be read (`error` says why). */
  readonly row?: unknown;
  readonly line: number;
  readonly error?: string;
}

/**
 * Reads byte ranges of tabular files and parses their records, keeping the last file open: a
 * worker's mini-batches of one file cost one open() in all, not one each.
 */
export class TabularReader {
  private fd: number | undefined;
  private file = '';

  /** Bytes [start, end) of `file`, parsed. Throws on read errors. */
  read(file: string, format: TabularFormat, start: number, end: number, firstLine: number, header: readonly string[] | undefined): ParsedRow[] {
    if (file !== this.file || this.fd === undefined) {
      this.close();
      this.fd = fs.openSync(file, 'r');
      this.file = file;
    }
    const buf = Buffer.allocUnsafe(end - start);
    try {
      readFully(this.fd, file, buf, 0, end - start, start);
    } catch (error) {
      this.close();
      throw error;
    }
    return parseTabular(buf, format, header, (line) => line + firstLine - 1);
  }

  close(): void {
    this.fd = closeQuietly(this.fd);
    this.file = '';
  }
}

/** Read bytes [start, end) of a tabular file and parse its records. Throws on read errors. */
export function readTabularRange(file: string, format: TabularFormat, start: number, end: number, firstLine: number, header: readonly string[] | undefined): ParsedRow[] {
  const reader = new TabularReader();
  try {
    return reader.read(file, format, start, end, firstLine, header);
  } finally {
    reader.close();
  }
}

/** Read `length` bytes at `position` of `fd` into `buf` at `offset`. Throws on read errors and on a file shorter than scanned. */
export function readFully(fd: number, file: string, buf: Buffer, offset: number, length: number, position: number): void {
  let read = 0;
  while (read < length) {
    const n = fs.readSync(fd, buf, offset + read, length - read, position + read);
    if (n === 0) throw new Error(`${file} is shorter than when it was scanned (expected ${position + length} bytes); was it changed during the run?`);
    read += n;
  }
}

/**
 * Parse whole records of a tabular file held in `buf`; `lineAt` turns a line of the buffer
 * (1-based) into the line of the file, for the names and reasons of the rows.
 */
export function parseTabular(buf: Buffer, format: TabularFormat, header: readonly string[] | undefined, lineAt: (line: number) => number): ParsedRow[] {
  const out: ParsedRow[] = [];
  if (format === 'jsonl') {
    const text = buf.toString('utf8');
    let line = 1;
    for (const raw of text.split('\n')) {
      const current = line++;
      if (/^[ \t\r]*$/.test(raw)) continue;
      const at = lineAt(current);
      try {
        out.push({ row: JSON.parse(raw), line: at });
      } catch (error) {
        out.push({ line: at, error: `line ${at}: not valid JSON (${(error as Error).message})` });
      }
    }
    return out;
  }
  const names = header ?? [];
  parseCsv(buf, format === 'tsv' ? '\t' : ',', 1, {
    record(fields, line) {
      const at = lineAt(line);
      if (fields.length !== names.length) {
        out.push({ line: at, error: `line ${at}: ${fields.length} fields, the header has ${names.length}` });
        return;
      }
      const row: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) row[names[i]!] = fields[i]!;
      out.push({ row, line: at });
    },
    malformed(reason, line) {
      const at = lineAt(line);
      out.push({ line: at, error: `line ${at}: not valid CSV (${reason})` });
    },
  });
  return out;
}
