// A step's log records, gathered as they are read, in a size that does not grow with the run: the
// counts per level are exact; the records kept are every one while they fit in the report's sample
// size, else what the report's sample (every error and warning first, then the first and the last
// of the others) and the doctor (the errors, the last records) are drawn from. Each file is taken
// to be in time order (a process writes its records as they happen). The last records of a file
// are known only at its end: until then only where they are (line, byte offset, time) is kept, in
// typed arrays, and they are read again from there (a record made for each line of a million-line
// file would fill the old generation with garbage).
import fs from 'node:fs';
import type { LogRecord, LogSummary } from './model.js';

const MAX_ERRORS = 10_000;
/** The longest line read again (a longer one is not shown). */
const MAX_LINE_BYTES = 1024 * 1024;

interface Kept {
  readonly rec: LogRecord;
  /** Read order (file, then line), for records of the same millisecond. */
  readonly seq: number;
}

const LINES_PER_FILE = 2 ** 32;

function byTime(a: Kept, b: Kept): number {
  return a.rec.time - b.rec.time || a.seq - b.seq;
}

/** The first `max` of two lists in time order. */
function firstOf(a: Kept[], b: Kept[], max: number): { list: Kept[]; cut: boolean } {
  const all = a.concat(b).sort(byTime);
  return all.length > max ? { list: all.slice(0, max), cut: true } : { list: all, cut: false };
}

/** What the reader does with a record: count it only, make it and `add` it, or give `later` where it is. */
export type Take = 'count' | 'record' | 'later';

/** Where the last `size` lines given to it are. */
class LineRing {
  private readonly line: Float64Array;
  private readonly offset: Float64Array;
  private readonly time: Float64Array;
  private n = 0;
  private at = 0;

  constructor(private readonly size: number) {
    this.line = new Float64Array(size);
    this.offset = new Float64Array(size);
    this.time = new Float64Array(size);
  }

  push(line: number, offset: number, time: number): void {
    if (this.size === 0) return;
    this.line[this.at] = line;
    this.offset[this.at] = offset;
    this.time[this.at] = time;
    this.at = (this.at + 1) % this.size;
    if (this.n < this.size) this.n++;
  }

  *entries(): Generator<{ line: number; offset: number; time: number }> {
    for (let k = 0; k < this.n; k++) {
      const i = (this.at - this.n + k + this.size) % this.size;
      yield { line: this.line[i]!, offset: this.offset[i]!, time: this.time[i]! };
    }
  }

  clear(): void {
    this.n = 0;
    this.at = 0;
  }
}

/** The line of `fd` at `offset`, without its line break (undefined past MAX_LINE_BYTES). */
function lineAt(fd: number, offset: number): string | undefined {
  let size = 4096;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const n = fs.readSync(fd, buf, 0, size, offset);
    const nl = buf.indexOf(0x0a);
    if (nl >= 0 && nl < n) return buf.toString('utf8', 0, nl).replace(/\r$/, '');
    if (n < size) return buf.toString('utf8', 0, n);
    if (size >= MAX_LINE_BYTES) return undefined;
    size *= 4;
  }
}

export class LogCollector {
  /** By level, in the order the levels came (a Map: a keyed store on an object, by a string JSON.parse made, was a record's dearest step). */
  private readonly counts = new Map<string, number>();
  private total = 0;
  private firstTime = Infinity;
  /** The file being read, in read order. */
  private file = 0;
  private readonly maxErrors: number;
  private readonly headSize: number;
  private readonly tailSize: number;
  private errors: Kept[] = [];
  private errorsCut = false;
  private warns: Kept[] = [];
  private head: Kept[] = [];
  private tail: Kept[] = [];
  private last: Kept | undefined;
  private lastError: Kept | undefined;
  private readonly lastErrorOf = new Map<number, Kept>();
  // the file being read
  private fileErrors: Kept[] = [];
  private fileWarns: Kept[] = [];
  private fileHead: Kept[] = [];
  private readonly fileTail: LineRing;
  /** Its last line, and the line of the last record made. */
  private readonly lastLine = { line: 0, offset: 0, time: 0 };
  private lastMade = 0;

  /**
   * @param sampleSize the report's sample size (--max-logs): what is kept is enough to draw it
   * @param light only the counts, the errors and the last record (the doctor)
   */
  constructor(
    private readonly sampleSize: number,
    private readonly light: boolean,
  ) {
    // the sample takes the first and the last of the others, half its size each at most
    this.headSize = light ? 0 : Math.ceil(sampleSize / 2);
    this.tailSize = light ? 0 : Math.floor(sampleSize / 2);
    this.maxErrors = Math.max(MAX_ERRORS, sampleSize);
    this.fileTail = new LineRing(this.tailSize);
  }

  /** Count a record of a file, at `line` and `offset`; what to do with it. */
  take(level: string, time: number, line: number, offset: number): Take {
    this.counts.set(level, (this.counts.get(level) ?? 0) + 1);
    this.total++;
    if (time < this.firstTime) this.firstTime = time;
    const last = this.lastLine; // updated in place: take() runs for every record
    last.line = line;
    last.offset = offset;
    last.time = time;
    if (level === 'error') return 'record';
    if (level === 'warn') return this.fileWarns.length < (this.light ? 0 : this.sampleSize) ? 'record' : 'count';
    if (this.fileHead.length < this.headSize) return 'record';
    this.fileTail.push(line, offset, time);
    return 'later';
  }

  /** A record `take` asked for. */
  add(rec: LogRecord, line: number): void {
    const k: Kept = { rec, seq: this.file * LINES_PER_FILE + line };
    this.lastMade = line;
    if (rec.level === 'error') {
      if (this.lastError === undefined || rec.time >= this.lastError.rec.time) this.lastError = k;
      const prev = this.lastErrorOf.get(rec.process);
      if (prev === undefined || rec.time >= prev.rec.time) this.lastErrorOf.set(rec.process, k);
      if (this.fileErrors.length < this.maxErrors) this.fileErrors.push(k);
      else this.errorsCut = true;
    } else if (rec.level === 'warn') this.fileWarns.push(k);
    else this.fileHead.push(k);
    this.noteLast(k);
  }

  private noteLast(k: Kept): void {
    if (this.last === undefined || k.rec.time >= this.last.rec.time) this.last = k;
  }

  /**
   * The end of a file: its last records are read again (`make` makes a record of a line), and its
   * records join the step's, in time order, cut to size.
   */
  endFile(file: string, make: (text: string, time: number) => LogRecord | undefined): void {
    const again = (line: number, offset: number, time: number, fd: number): Kept | undefined => {
      const text = lineAt(fd, offset);
      const rec = text === undefined ? undefined : make(text, time);
      return rec ? { rec, seq: this.file * LINES_PER_FILE + line } : undefined;
    };
    const tail: Kept[] = [];
    const later = [...this.fileTail.entries()];
    const lastLine = this.lastLine;
    if (later.length > 0 || (lastLine.line > 0 && lastLine.line !== this.lastMade)) {
      let fd: number | undefined;
      try {
        fd = fs.openSync(file, 'r');
        for (const e of later) {
          const k = again(e.line, e.offset, e.time, fd);
          if (k) tail.push(k);
        }
        // the last record of the file, whatever it is: the last of the step may be it
        if (lastLine.line !== this.lastMade && lastLine.line !== later[later.length - 1]?.line) {
          const k = again(lastLine.line, lastLine.offset, lastLine.time, fd);
          if (k) this.noteLast(k);
        }
      } catch {
        // gone meanwhile: the records already kept are shown
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
      }
      for (const k of tail) this.noteLast(k);
    }
    const errors = firstOf(this.errors, this.fileErrors, this.maxErrors);
    this.errors = errors.list;
    this.errorsCut ||= errors.cut;
    this.warns = firstOf(this.warns, this.fileWarns, this.sampleSize).list;
    this.head = firstOf(this.head, this.fileHead, this.headSize).list;
    // the last of the step may be among the first of a file
    const last = this.tail.concat(this.fileHead, tail).sort(byTime);
    this.tail = last.slice(Math.max(0, last.length - this.tailSize));
    this.fileErrors = [];
    this.fileWarns = [];
    this.fileHead = [];
    this.fileTail.clear();
    Object.assign(this.lastLine, { line: 0, offset: 0, time: 0 });
    this.lastMade = 0;
    this.file++;
  }

  finish(): LogSummary {
    const all = new Set<Kept>([...this.errors, ...this.warns, ...this.head, ...this.tail]);
    return {
      counts: Object.fromEntries(this.counts),
      total: this.total,
      firstTime: this.total > 0 ? this.firstTime : undefined,
      records: [...all].sort(byTime).map((k) => k.rec),
      errorsComplete: !this.errorsCut,
      last: this.last?.rec,
      lastError: this.lastError?.rec,
      lastErrorOf: new Map([...this.lastErrorOf].map(([p, k]) => [p, k.rec])),
    };
  }
}
