// Readers for the files of a run folder: JSON Lines, CSV and JSON, each read in chunks and
// checked line by line. A file that is corrupt stops the read with an error naming the file and
// the line; a half-written last line (what a killed step leaves) is tolerated and reported.
import fs from 'node:fs';
import { CsvLineRecords, type CsvFields } from '../util/csv.js';

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
const SLICED_CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

function preview(text: string, max = 120): string {
  const s = text.replace(/[\u0000-\u001f]/g, (c) => (c === '\u0000' ? '\\0' : ' ')).trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Call `onLine` for every line of a file, with its 1-based number and the byte offset it starts at.
 * The last line is passed with `last: true`, and `terminated` tells whether it ended with a
 * newline. With `slices`, the lines of each chunk are cut from one string decoded at once (a line
 * then holds on to its chunk: for text that is parsed and let go, as JSON is); else each line is a
 * string of its own.
 */
export function forEachLine(
  file: string,
  onLine: (text: string, line: number, last: boolean, terminated: boolean, offset: number) => void,
  label = file,
  slices = false,
): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new RunFolderError(`${label}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, label);
  }
  try {
    // a chunk's string stays below V8's large-object size: it dies young, with the lines cut from it
    const size = slices ? SLICED_CHUNK_BYTES : CHUNK_BYTES;
    let buf = Buffer.allocUnsafe(size);
    let carry: Buffer | undefined;
    /** Sliced: the bytes of a line begun at the start of `buf` (its end comes with the next read). */
    let have = 0;
    let lineNo = 0;
    /** The byte offset in the file of the next read. */
    let base = 0;
    // the previous complete line, held back to know whether it is the last
    let pending: string | undefined;
    let pendingAt = 0;
    const emit = (text: string, at: number): void => {
      if (pending !== undefined) onLine(pending, lineNo, false, true, pendingAt);
      pending = text;
      pendingAt = at;
      lineNo++;
    };
    for (;;) {
      if (slices) {
        if (have === buf.length) buf = Buffer.concat([buf], buf.length * 2); // a line longer than the chunk
        const n = fs.readSync(fd, buf, have, buf.length - have, null);
        if (n === 0) break;
        const end = have + n;
        /** The offset in the file of buf[0]. */
        const from = base - have;
        base += n;
        const lastNl = buf.lastIndexOf(NEWLINE, end - 1);
        if (lastNl < 0) {
          have = end;
          continue;
        }
        const text = buf.toString('utf8', 0, lastNl);
        // each '\n' of the text is a 0x0a of the bytes (UTF-8 never has one inside a character); in
        // a text of one byte a character, the offsets are the same
        const ascii = text.length === lastNl;
        let byte = 0;
        for (let start = 0; ; ) {
          const nl = text.indexOf('\n', start);
          if (nl < 0) {
            emit(text.slice(start), from + byte);
            break;
          }
          emit(text.slice(start, nl), from + byte);
          start = nl + 1;
          byte = ascii ? start : buf.indexOf(NEWLINE, byte) + 1;
        }
        // the line begun after the last newline moves to the start
        have = end - lastNl - 1;
        buf.copy(buf, 0, lastNl + 1, end);
        continue;
      }
      const n = fs.readSync(fd, buf, 0, size, null);
      if (n === 0) break;
      const from = base - (carry?.length ?? 0);
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(NEWLINE, start);
        if (nl < 0 || nl >= n) break;
        if (carry) {
          emit(Buffer.concat([carry, buf.subarray(start, nl)]).toString('utf8'), from);
          carry = undefined;
        } else emit(buf.toString('utf8', start, nl), base + start);
        start = nl + 1;
      }
      if (start < n) carry = carry ? Buffer.concat([carry, buf.subarray(start, n)]) : Buffer.from(buf.subarray(start, n));
      base += n;
    }
    if (have > 0) carry = buf.subarray(0, have);
    if (carry && carry.length > 0) {
      if (pending !== undefined) onLine(pending, lineNo, false, true, pendingAt);
      onLine(carry.toString('utf8'), lineNo + 1, true, false, base - carry.length);
    } else if (pending !== undefined) onLine(pending, lineNo, true, true, pendingAt);
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
  onRecord: (record: Record<string, unknown>, line: number, offset: number) => void,
  notes: ReadNote[],
): number {
  let count = 0;
  forEachLine(file, (raw, line, last, terminated, offset) => {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.length === 0 || (text.charCodeAt(0) !== 0x7b /* { */ && text.trim() === '')) return;
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
      onRecord(value as Record<string, unknown>, line, offset);
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
      onRecord(recovered, line, offset);
      return;
    }
    throw new RunFolderError(`${label}:${line}: not a valid JSON record (${problem}): ${preview(text)}`, label, line);
  }, label, true);
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

/**
 * The records of an RFC 4180 CSV file with a header line, in one pass (memory bounded whatever
 * its size; src/util/csv.ts: csv-parse for what has quotes): the header is returned, each record
 * is given to `onRow` with the line it starts on. Quoted cells may hold commas, quotes and
 * newlines (`onHeader` gets the header first). Every record must have as many cells as the header, except a half-written last one
 * (no line break at its end, or a quote never closed: what a killed writer leaves), which is noted.
 */
export function readCsvRecords(
  file: string,
  label: string,
  notes: ReadNote[],
  expectColumns: readonly string[] | undefined,
  onRow: (cells: CsvFields, line: number) => void,
  onHeader?: (columns: readonly string[]) => void,
): readonly string[] {
  let header: string[] | undefined;
  let cut: number | undefined;
  const records = new CsvLineRecords(',', {
    record(cells, line, terminated) {
      if (cut !== undefined) throw new RunFolderError(`${label}:${cut}: not valid CSV: a quote not closed before the end of the record`, label, cut);
      if (header === undefined) {
        if (!terminated) throw new RunFolderError(`${label}:1: the header line is half-written (truncated)`, label, 1);
        const names = Array.from({ length: cells.length }, (_, i) => cells.field(i));
        header = names;
        const missing = (expectColumns ?? []).filter((c) => !names.includes(c));
        if (missing.length > 0) {
          throw new RunFolderError(`${label}:1: not the expected header: missing column${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (found: ${preview(names.join(','), 200)})`, label, 1);
        }
        onHeader?.(names);
        return;
      }
      if (!terminated) {
        // every line is written with its newline: one without it was cut short
        notes.push({ file: label, line, message: `${label}:${line}: the last line is half-written (the writer was stopped mid-line); ignored` });
        return;
      }
      if (cells.length !== header.length) {
        const text = Array.from({ length: cells.length }, (_, i) => cells.field(i)).join(',');
        throw new RunFolderError(`${label}:${line}: expected ${header.length} columns as in the header, found ${cells.length}: ${preview(text)}`, label, line);
      }
      onRow(cells, line);
    },
    malformed(reason, line) {
      // a quote never closed can only be the last record, cut short; anything else is corrupt
      if (!/quote not closed/i.test(reason)) throw new RunFolderError(`${label}:${line}: not valid CSV: ${reason}`, label, line);
      cut = line;
    },
  });
  forEachLine(file, (text, line, _last, terminated) => records.line(text, line, terminated), label);
  records.end();
  if (header === undefined) {
    if (cut !== undefined) throw new RunFolderError(`${label}:1: the header line is half-written (truncated)`, label, 1);
    throw new RunFolderError(`${label}: the file is empty (no header line)`, label, 1);
  }
  if (cut !== undefined) notes.push({ file: label, line: cut, message: `${label}:${cut}: the last line is half-written (the writer was stopped mid-line); ignored` });
  return header;
}

/** The second (`2026-01-15T08:00:00`) last parsed; none yet: a text no time starts with. */
let lastSecond = '\u0000';
let lastSecondMs = Number.NaN;

/**
 * Unix ms of an ISO-8601 time, exactly as Date.parse gives them (undefined when it gives NaN).
 * The times of a run folder (`2026-01-15T08:00:00.123456789Z`) come many a second, so the second
 * is parsed once and only the fraction here: a million spans, a second less to read them.
 */
export function isoMillis(v: string): number | undefined {
  let t: number;
  const end = v.length - 1;
  if (end > 20 && v.charCodeAt(19) === 0x2e /* . */ && v.charCodeAt(end) === 0x5a /* Z */ && v.charCodeAt(10) === 0x54 /* T */) {
    if (!v.startsWith(lastSecond)) {
      lastSecond = v.slice(0, 19);
      lastSecondMs = Date.parse(`${lastSecond}Z`);
    }
    let ms = 0;
    for (let i = 20; i < end; i++) {
      const d = v.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) return dateParse(v);
      if (i < 23) ms = ms * 10 + d;
    }
    for (let i = end; i < 23; i++) ms *= 10;
    t = lastSecondMs + ms;
  } else t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

function dateParse(v: string): number | undefined {
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
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
