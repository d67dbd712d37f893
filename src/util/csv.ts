// The one CSV/TSV parser of the package: csv-parse (RFC 4180: `"` quotes, `""` a quote, line
// breaks inside quotes, CRLF or LF, a byte order mark), with the same options everywhere. The
// runner's partition cuts tabular input into mini-batches at record ends (byte offsets from
// csv-parse's `info`), a worker parses its byte range, and the run-folder reader parses the
// runner's CSV reports: all three see the same records, and the same malformed ones (a stray
// quote, a quote never closed), each with the line it starts on. csv-parse (its CommonJS build)
// loads when a CSV or TSV file is first parsed: a JSON Lines job needs none of it.
import fs from 'node:fs';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { CsvError, Info, Options } from 'csv-parse';

const load = createRequire(import.meta.url);
let csvParse: typeof import('csv-parse') | undefined;
let csvParseSync: typeof import('csv-parse/sync') | undefined;

export interface CsvHandlers {
  /**
   * A record: its fields, the line it starts on, the byte offset after it (its line break
   * included) from where parsing began, and the line of that offset (where what follows starts).
   */
  record(fields: string[], line: number, end: number, nextLine: number): void;
  /**
   * A malformed record, with the line where it starts and why (csv-parse's message); parsing
   * goes on after it. Without this handler a malformed record stops the parse with a CsvError.
   */
  malformed?(reason: string, line: number): void;
}

/** csv-parse's message without its own `at line N` (it counts a CRLF inside quotes twice: lines are counted here). */
export function csvReason(error: CsvError | Error): string {
  return error.message.replace(/ at line \d+/, '').replace(/\s+/g, ' ').trim();
}

const LF = 0x0a;
const CR = 0x0d;

/** Line numbers of byte offsets in the data given so far, asked in increasing order; chunks already counted are let go. */
class LineCounter {
  private readonly chunks: Buffer[] = [];
  /** Offset of chunks[0]. */
  private base = 0;
  /** Offset counted up to, and its line. */
  private pos = 0;
  private line: number;

  constructor(firstLine: number) {
    this.line = firstLine;
  }

  add(buf: Buffer): void {
    this.chunks.push(buf);
  }

  private byteAt(offset: number): number | undefined {
    let o = this.base;
    for (const c of this.chunks) {
      if (offset < o + c.length) return c[offset - o];
      o += c.length;
    }
    return undefined;
  }

  /** The first offset at or after `from` that is not a line break (blank lines are not records). */
  contentFrom(from: number): number {
    let o = from;
    for (let b = this.byteAt(o); b === LF || b === CR; b = this.byteAt(++o));
    return o;
  }

  /** The offset after the line break that ends the line of `from` (or the end of the data). */
  afterLineBreak(from: number): number {
    let o = from;
    for (let b = this.byteAt(o); b !== undefined && b !== LF; b = this.byteAt(++o));
    return this.byteAt(o) === LF ? o + 1 : o;
  }

  /** The line of the byte at `offset` (not below the last one asked). */
  at(offset: number): number {
    while (this.pos < offset && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const stop = Math.min(offset - this.base, c.length);
      for (let i = c.indexOf(LF, this.pos - this.base); i >= 0 && i < stop; i = c.indexOf(LF, i + 1)) this.line++;
      this.pos = this.base + stop;
      if (stop === c.length) {
        this.base += c.length;
        this.chunks.shift();
      }
    }
    return this.line;
  }
}

/** csv-parse options whose callbacks give CsvHandlers each record's lines and offsets. */
function options(delimiter: string, lines: LineCounter, h: CsvHandlers): Options {
  let prevEnd = 0; // where the next record may start
  return {
    delimiter,
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true,
    skip_records_with_error: h.malformed !== undefined,
    on_record: (record: string[], info) => {
      const line = lines.at(lines.contentFrom(prevEnd));
      prevEnd = info.bytes;
      h.record(record, line, info.bytes, lines.at(info.bytes));
      return null;
    },
    on_skip: (error) => {
      if (!error) return undefined;
      const line = lines.at(lines.contentFrom(prevEnd));
      // csv-parse goes on after the line where it found the error
      const at = (error as CsvError & Partial<Info>).bytes;
      if (typeof at === 'number') prevEnd = Math.max(prevEnd, lines.afterLineBreak(at));
      h.malformed?.(csvReason(error), line);
      return undefined;
    },
  };
}

/** Parse a whole buffer (a worker's byte range, a report file) whose first byte is on `firstLine`. Throws a CsvError without `malformed`. */
export function parseCsv(data: Buffer, delimiter: string, firstLine: number, handlers: CsvHandlers): void {
  const lines = new LineCounter(firstLine);
  lines.add(data);
  csvParseSync ??= load('csv-parse/sync') as typeof import('csv-parse/sync');
  csvParseSync.parse(data, options(delimiter, lines, handlers));
}

const CHUNK = 1024 * 1024;

/** Parse a file in chunks of 1 MiB (memory stays bounded whatever its size), calling `pause` after each. Throws on read errors. */
export async function parseCsvFile(file: string, delimiter: string, handlers: CsvHandlers, pause?: () => Promise<void> | undefined): Promise<void> {
  const lines = new LineCounter(1);
  csvParse ??= load('csv-parse') as typeof import('csv-parse');
  const parser = new csvParse.Parser(options(delimiter, lines, handlers));
  const done = new Promise<void>((resolve, reject) => {
    parser.once('finish', resolve);
    parser.once('error', reject);
  });
  parser.resume();
  const fd = fs.openSync(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      lines.add(chunk);
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain'), done]);
      const p = pause?.();
      if (p) await p;
    }
  } finally {
    fs.closeSync(fd);
  }
  parser.end();
  await done;
}

/** A record's fields, read one at a time (valid during the call it is given to). */
export interface CsvFields {
  readonly length: number;
  field(i: number): string;
}

export interface CsvRecordHandlers {
  /** A record: its fields, the line it starts on, and whether it ended with a line break. */
  record(fields: CsvFields, line: number, terminated: boolean): void;
  /** A malformed record (csv-parse's message) and the line it starts on. */
  malformed(reason: string, line: number): void;
}

/** The fields of a line without quotes, where its delimiters are: cut only when asked for. */
class PlainFields implements CsvFields {
  text = '';
  length = 0;
  /** Where each field ends (its delimiter, or the end of the text). */
  private ends = new Int32Array(64);

  set(text: string, delimiter: string): void {
    this.text = text;
    let n = 0;
    for (let i = text.indexOf(delimiter); i >= 0; i = text.indexOf(delimiter, i + 1)) {
      if (n === this.ends.length - 1) {
        const more = new Int32Array(this.ends.length * 2);
        more.set(this.ends);
        this.ends = more;
      }
      this.ends[n++] = i;
    }
    this.ends[n++] = text.length;
    this.length = n;
  }

  field(i: number): string {
    if (i < 0 || i >= this.length) return '';
    return this.text.slice(i === 0 ? 0 : this.ends[i - 1]! + 1, this.ends[i]);
  }
}

class ArrayFields implements CsvFields {
  constructor(private readonly fields: readonly string[]) {}
  get length(): number {
    return this.fields.length;
  }
  field(i: number): string {
    return this.fields[i] ?? '';
  }
}

/**
 * Records of a file given line by line (the run-folder reader's big CSV reports, a million rows,
 * read in one pass): a line with no quote is cut at the delimiter, which is exactly the record
 * csv-parse gives for it (without a quote there is no escaping and no line break inside a field),
 * at a tenth of the cost, and only the fields asked for are cut; a record with a quote, which may
 * span lines, goes to csv-parse whole.
 */
export class CsvLineRecords {
  /** The lines of a quoted record not closed yet, and the line it starts on. */
  private pending: string[] | undefined;
  private pendingLine = 0;
  private first = true;
  private readonly plain = new PlainFields();

  constructor(
    private readonly delimiter: string,
    private readonly handlers: CsvRecordHandlers,
  ) {}

  /** One line without its `\n` (a `\r` before it is kept), its number, and whether a `\n` ended it. */
  line(raw: string, line: number, terminated: boolean): void {
    let text = raw;
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pending) {
      this.pending.push(text);
      if (quotes(text) % 2 === 1) this.quoted(terminated);
      return;
    }
    if (text.indexOf('"') < 0) {
      const plain = text.endsWith('\r') ? text.slice(0, -1) : text;
      if (plain === '') return;
      this.plain.set(plain, this.delimiter);
      this.handlers.record(this.plain, line, terminated);
      return;
    }
    this.pending = [text];
    this.pendingLine = line;
    if (quotes(text) % 2 === 0) this.quoted(terminated);
  }

  /** The end of the data: a quoted record still open is malformed (a quote never closed). */
  end(): void {
    if (this.pending) this.quoted(false);
  }

  private quoted(terminated: boolean): void {
    const text = this.pending!.join('\n');
    this.pending = undefined;
    parseCsv(Buffer.from(terminated ? `${text}\n` : text), this.delimiter, this.pendingLine, {
      record: (fields, line) => this.handlers.record(new ArrayFields(fields), line, terminated),
      malformed: (reason, line) => this.handlers.malformed(reason, line),
    });
  }
}

function quotes(text: string): number {
  let n = 0;
  for (let i = text.indexOf('"'); i >= 0; i = text.indexOf('"', i + 1)) n++;
  return n;
}
