// Readers for the files of a run folder: JSON Lines, CSV and JSON, each read in chunks and
// checked line by line. A file that is corrupt stops the read with an error naming the file and
// the line; a half-written last line (what a killed step leaves) is tolerated and reported.
import fs from 'node:fs';
import { parseCsv } from '../util/csv.js';

/** A run folder (or one of its files) that cannot be read as one. */
export class RunFolderError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'RunFolderError';
  }
}

/** Something tolerated while reading (a half-written last line, a record recovered after one). */
export interface ReadNote {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

const CHUNK_BYTES = 4 * 1024 * 1024;
const NEWLINE = 0x0a;

function preview(text: string, max = 120): string {
  const s = text.replace(/[\u0000-\u001f]/g, (c) => (c === '\u0000' ? '\\0' : ' ')).trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Call `onLine` for every line of a file, with its 1-based number. The last line is passed with
 * `last: true`, and `terminated` tells whether it ended with a newline.
 */
export function forEachLine(file: string, onLine: (text: string, line: number, last: boolean, terminated: boolean) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new RunFolderError(`${file}: cannot open (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, file);
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let carry: Buffer | undefined;
    let lineNo = 0;
    let pending: string | undefined; // the previous complete line, held back to know whether it is the last
    const emit = (text: string): void => {
      if (pending !== undefined) onLine(pending, lineNo, false, true);
      pending = text;
      lineNo++;
    };
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(NEWLINE, start);
        if (nl < 0 || nl >= n) break;
        if (carry) {
          emit(Buffer.concat([carry, buf.subarray(start, nl)]).toString('utf8'));
          carry = undefined;
        } else emit(buf.toString('utf8', start, nl));
        start = nl + 1;
      }
      if (start < n) carry = carry ? Buffer.concat([carry, buf.subarray(start, n)]) : Buffer.from(buf.subarray(start, n));
    }
    if (carry && carry.length > 0) {
      if (pending !== undefined) onLine(pending, lineNo, false, true);
      onLine(carry.toString('utf8'), lineNo + 1, true, false);
    } else if (pending !== undefined) onLine(pending, lineNo, true, true);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Every JSON object of a JSON Lines file. Blank lines are skipped. A line that is not a JSON
 * object is an error, except a last line without its newline (a killed writer), and a line whose
 * start is a half-written record followed by a whole one (a step re-run after a kill appends to
 * the same file): both are tolerated and noted.
 */
export function readJsonLines(
  file: string,
  label: string,
  onRecord: (record: Record<string, unknown>, line: number) => void,
  notes: ReadNote[],
): number {
  let count = 0;
  forEachLine(file, (raw, line, last, terminated) => {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    let value: unknown;
    let problem: string | undefined;
    try {
      value = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) problem = `a JSON ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}, expected an object`;
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem === undefined) {
      count++;
      onRecord(value as Record<string, unknown>, line);
      return;
    }
    if (last && !terminated) {
      notes.push({ file: label, line, message: `${label}:${line}: the last line is half-written (the writer was stopped mid-line); ignored: ${preview(text, 60)}` });
      return;
    }
    if (/^\u0000+$/.test(text)) {
      notes.push({ file: label, line, message: `${label}:${line}: zero bytes (a write that never completed); ignored` });
      return;
    }
    const recovered = recoverAfterHalfLine(text);
    if (recovered) {
      notes.push({ file: label, line, message: `${label}:${line}: starts with a half-written record (the step was stopped mid-line, then wrote again); the whole record after it was kept` });
      count++;
      onRecord(recovered, line);
      return;
    }
    throw new RunFolderError(`${label}:${line}: not a valid JSON record (${problem}): ${preview(text)}`, label, line);
  });
  return count;
}

function recoverAfterHalfLine(text: string): Record<string, unknown> | undefined {
  let from = 1;
  for (let tries = 0; tries < 8; tries++) {
    const i = text.indexOf('{"', from);
    if (i < 0) return undefined;
    try {
      const v = JSON.parse(text.slice(i)) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // try the next candidate
    }
    from = i + 1;
  }
  return undefined;
}

/** Line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lastNl = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === NEWLINE) {
      line++;
      lastNl = i;
    }
  }
  return { line, column: offset - lastNl };
}

/** A whole JSON file that must hold an object; errors name the file and the line. */
export function readJsonFile(file: string, label: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new RunFolderError(`${label}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, label);
  }
  if (text.trim() === '') throw new RunFolderError(`${label}: the file is empty (truncated: the writer was stopped before it finished)`, label, 1);
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new RunFolderError(`${label}:1: expected a JSON object, found ${Array.isArray(value) ? 'an array' : String(value)}`, label, 1);
    }
    return value as Record<string, unknown>;
  } catch (error) {
    if (error instanceof RunFolderError) throw error;
    const message = (error as Error).message;
    const m = /position (\d+)/.exec(message);
    let where: { line: number; column: number };
    if (m) where = lineColumn(text, Number(m[1]));
    else if (/end of JSON input|Unterminated/i.test(message)) where = lineColumn(text, text.length);
    else where = { line: 1, column: 1 };
    const atEnd = m !== null && Number(m[1]) >= text.trimEnd().length;
    const truncated = atEnd || /end of JSON input|Unterminated string/i.test(message) ? ' (truncated?)' : '';
    throw new RunFolderError(`${label}:${where.line}: not valid JSON${truncated}: ${message.replace(/\s*\(line \d+ column \d+\)/, '')} (line ${where.line}, column ${where.column})`, label, where.line);
  }
}

export interface CsvFile {
  readonly header: readonly string[];
  /** Records with the line each starts on. */
  readonly rows: { readonly line: number; readonly cells: readonly string[] }[];
}

/**
 * An RFC 4180 CSV file with a header line, parsed by csv-parse (src/util/csv.ts, the parser of
 * the runner's tabular input too). Quoted cells may hold commas, quotes and newlines. Every
 * record must have as many cells as the header, except a half-written last one (no line break
 * at its end, or a quote never closed: what a killed writer leaves).
 */
export function readCsvFile(file: string, label: string, notes: ReadNote[], expectColumns?: readonly string[]): CsvFile {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (error) {
    throw new RunFolderError(`${label}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, label);
  }
  const records: { line: number; cells: string[]; complete: boolean }[] = [];
  const malformed: { line: number; reason: string; after: number }[] = [];
  const terminated = data.length > 0 && data[data.length - 1] === NEWLINE;
  parseCsv(data, ',', 1, {
    record(cells, line, end) {
      records.push({ line, cells, complete: end < data.length || terminated });
    },
    malformed(reason, line) {
      malformed.push({ line, reason, after: records.length });
    },
  });
  // a quote never closed can only be the last record, cut short; anything else is corrupt
  const bad = malformed.find((m) => m.after < records.length || !/quote not closed/i.test(m.reason));
  if (bad) throw new RunFolderError(`${label}:${bad.line}: not valid CSV: ${bad.reason}`, label, bad.line);
  const cut = malformed[0];
  if (records.length === 0) {
    if (cut) throw new RunFolderError(`${label}:1: the header line is half-written (truncated)`, label, 1);
    throw new RunFolderError(`${label}: the file is empty (no header line)`, label, 1);
  }
  const header = records[0]!;
  if (!header.complete) throw new RunFolderError(`${label}:1: the header line is half-written (truncated)`, label, 1);
  if (expectColumns) {
    const missing = expectColumns.filter((c) => !header.cells.includes(c));
    if (missing.length > 0) {
      throw new RunFolderError(`${label}:1: not the expected header: missing column${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (found: ${preview(header.cells.join(','), 200)})`, label, 1);
    }
  }
  const rows: { line: number; cells: string[] }[] = [];
  for (let k = 1; k < records.length; k++) {
    const r = records[k]!;
    if (k === records.length - 1 && !r.complete) {
      // every line is written with its newline: one without it was cut short
      notes.push({ file: label, line: r.line, message: `${label}:${r.line}: the last line is half-written (the writer was stopped mid-line); ignored` });
      continue;
    }
    if (r.cells.length !== header.cells.length) {
      throw new RunFolderError(
        `${label}:${r.line}: expected ${header.cells.length} columns as in the header, found ${r.cells.length}: ${preview(r.cells.join(','))}`,
        label,
        r.line,
      );
    }
    rows.push({ line: r.line, cells: r.cells });
  }
  if (cut) notes.push({ file: label, line: cut.line, message: `${label}:${cut.line}: the last line is half-written (the writer was stopped mid-line); ignored` });
  return { header: header.cells, rows };
}

/** The last `maxBytes` of a text file, from a line start. */
export function readTail(file: string, maxBytes: number): string {
  try {
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r');
    try {
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      let text = buf.toString('utf8');
      if (len < size) text = text.slice(text.indexOf('\n') + 1);
      return text;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** A small text file (capped), or undefined when it is not there. */
export function readText(file: string, maxBytes = 256 * 1024): string | undefined {
  try {
    const size = fs.statSync(file).size;
    if (size <= maxBytes) return fs.readFileSync(file, 'utf8');
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(maxBytes);
      fs.readSync(fd, buf, 0, maxBytes, 0);
      return `${buf.toString('utf8')}\n… (${size - maxBytes} more bytes not shown)`;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
