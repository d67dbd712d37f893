// Tabular inputs: CSV/TSV (RFC 4180 quoting, a header row) and JSON Lines. The scanner finds record
// boundaries without parsing values, so that mini-batches can be cut by size and handed to workers
// as byte ranges; the worker parses its own range. Both sides count records the same way: blank
// lines are not records.
import fs from 'node:fs';
import path from 'node:path';

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

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const CHUNK = 1024 * 1024;

/** One record of a tabular file: bytes [start, end) (end after its line break), starting on `line` (1-based). */
export interface RecordSpan {
  readonly start: number;
  readonly end: number;
  readonly line: number;
}

/**
 * Walk the records of a file. For CSV the first record is the header: it is passed to `onHeader`
 * and not to `onRecord`. Blank lines are skipped. Throws on read errors.
 */
export function scanRecords(
  file: string,
  format: TabularFormat,
  onRecord: (start: number, end: number, line: number) => void,
  onHeader?: (start: number, end: number) => void,
): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let offset = 0; // file offset of buf[0]
    let recordStart = 0;
    let recordLine = 1;
    let line = 1;
    let blank = true; // no non-whitespace byte since recordStart
    let inQuotes = false;
    let headerPending = format !== 'jsonl';
    let first = true;
    const csv = format !== 'jsonl';
    const emit = (end: number): void => {
      if (!blank) {
        if (headerPending) {
          headerPending = false;
          onHeader?.(recordStart, end);
        } else onRecord(recordStart, end, recordLine);
      }
      recordStart = end;
      recordLine = line;
      blank = true;
    };
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, offset);
      if (n === 0) break;
      let i = 0;
      if (first) {
        first = false;
        if (n >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
          i = 3; // UTF-8 byte order mark
          recordStart = 3;
        }
      }
      if (!csv) {
        // JSON Lines: a line break always ends a record.
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
      } else {
        for (; i < n; i++) {
          const b = buf[i]!;
          if (b === QUOTE) {
            inQuotes = !inQuotes;
            blank = false;
          } else if (b === LF) {
            line++;
            if (!inQuotes) emit(offset + i + 1);
          } else if (blank && b !== CR) blank = false;
        }
      }
      offset += n;
    }
    if (offset > recordStart) emit(offset);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Parse CSV/TSV text into records of fields (RFC 4180: `"` quotes, `""` escapes a quote, CRLF or LF).
 * A record is blank, and skipped, when its line holds nothing but an optional CR (as in the scanner).
 */
export function parseDelimited(text: string, delimiter: string): { fields: string[]; line: number }[] {
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  let nonBlank = false;
  const d = delimiter.charCodeAt(0);
  const endRecord = (): void => {
    if (nonBlank) {
      fields.push(field);
      records.push({ fields, line: recordLine });
    }
    fields = [];
    field = '';
    nonBlank = false;
  };
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let runStart = start; // start of plain characters not yet copied into `field`
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inQuotes) {
      if (c === QUOTE) {
        field += text.slice(runStart, i);
        if (text.charCodeAt(i + 1) === QUOTE) {
          field += '"';
          i++;
        } else inQuotes = false;
        runStart = i + 1;
      } else if (c === LF) line++;
      continue;
    }
    if (c === QUOTE) {
      field += text.slice(runStart, i);
      runStart = i + 1;
      inQuotes = true;
      nonBlank = true;
    } else if (c === d) {
      fields.push(field + text.slice(runStart, i));
      field = '';
      runStart = i + 1;
      nonBlank = true;
    } else if (c === LF || c === CR) {
      field += text.slice(runStart, i);
      runStart = i + 1;
      if (c === LF) {
        line++;
        endRecord();
        recordLine = line;
      }
    } else nonBlank = true;
  }
  field += text.slice(runStart);
  endRecord();
  return records;
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

/** Read bytes [start, end) of a tabular file and parse its records. Throws on read errors. */
export function readTabularRange(file: string, format: TabularFormat, start: number, end: number, firstLine: number, header: readonly string[] | undefined): ParsedRow[] {
  const length = end - start;
  const buf = Buffer.allocUnsafe(length);
  const fd = fs.openSync(file, 'r');
  try {
    let read = 0;
    while (read < length) {
      const n = fs.readSync(fd, buf, read, length - read, start + read);
      if (n === 0) throw new Error(`${file} is shorter than when it was scanned (expected ${end} bytes); was it changed during the run?`);
      read += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  const text = buf.toString('utf8');
  const out: ParsedRow[] = [];
  if (format === 'jsonl') {
    let line = firstLine;
    for (const raw of text.split('\n')) {
      const current = line++;
      if (/^[ \t\r]*$/.test(raw)) continue;
      try {
        out.push({ row: JSON.parse(raw), line: current });
      } catch (error) {
        out.push({ line: current, error: `line ${current}: not valid JSON (${(error as Error).message})` });
      }
    }
    return out;
  }
  const names = header ?? [];
  for (const record of parseDelimited(text, format === 'tsv' ? '\t' : ',')) {
    const line = firstLine + record.line - 1;
    if (record.fields.length !== names.length) {
      out.push({ line, error: `line ${line}: ${record.fields.length} fields, the header has ${names.length}` });
      continue;
    }
    const row: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) row[names[i]!] = record.fields[i]!;
    out.push({ row, line });
  }
  return out;
}
