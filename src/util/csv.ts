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

/** Parse a file in chunks of 1 MiB (memory stays bounded whatever its size). Throws on read errors. */
export async function parseCsvFile(file: string, delimiter: string, handlers: CsvHandlers): Promise<void> {
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
    }
  } finally {
    fs.closeSync(fd);
  }
  parser.end();
  await done;
}
