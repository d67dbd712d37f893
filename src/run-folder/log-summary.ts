// A step's log records, gathered as they are read, in a size that does not grow with the run: the
// counts per level are exact; the records kept are every one while they fit in the report's sample
// size, else what the report's sample (every error and warning first, then the first and the last
// of the others) and the doctor (the errors, the last records) are drawn from. Each file is taken
// to be in time order (a process writes its records as they happen).
import type { LogRecord, LogSummary } from './model.js';

const MAX_ERRORS = 10_000;

interface Kept {
  readonly rec: LogRecord;
  /** Read order, for records of the same millisecond. */
  readonly seq: number;
}

function byTime(a: Kept, b: Kept): number {
  return a.rec.time - b.rec.time || a.seq - b.seq;
}

/** The first `max` of two lists in time order. */
function firstOf(a: Kept[], b: Kept[], max: number): { list: Kept[]; cut: boolean } {
  const all = a.concat(b).sort(byTime);
  return all.length > max ? { list: all.slice(0, max), cut: true } : { list: all, cut: false };
}

export class LogCollector {
  private readonly counts: Record<string, number> = {};
  private total = 0;
  private firstTime = Infinity;
  private seq = 0;
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
  private fileTail: Kept[] = [];
  private tailAt = 0;

  /**
   * @param sampleSize records of each kind kept (the report's --max-logs)
   * @param light only the counts, the errors and the last record (the doctor)
   */
  constructor(
    private readonly sampleSize: number,
    private readonly light: boolean,
  ) {}

  add(rec: LogRecord): void {
    this.counts[rec.level] = (this.counts[rec.level] ?? 0) + 1;
    this.total++;
    if (rec.time < this.firstTime) this.firstTime = rec.time;
    const k: Kept = { rec, seq: this.seq++ };
    if (this.last === undefined || rec.time >= this.last.rec.time) this.last = k;
    if (rec.level === 'error') {
      if (this.lastError === undefined || rec.time >= this.lastError.rec.time) this.lastError = k;
      const prev = this.lastErrorOf.get(rec.process);
      if (prev === undefined || rec.time >= prev.rec.time) this.lastErrorOf.set(rec.process, k);
      if (this.fileErrors.length < MAX_ERRORS) this.fileErrors.push(k);
      else this.errorsCut = true;
      return;
    }
    if (this.light) return;
    const max = this.sampleSize;
    if (rec.level === 'warn') {
      if (this.fileWarns.length < max) this.fileWarns.push(k);
      return;
    }
    if (this.fileHead.length < max) {
      this.fileHead.push(k);
      return;
    }
    if (max === 0) return;
    // the last `max` after the first `max`: a ring
    if (this.fileTail.length < max) this.fileTail.push(k);
    else {
      this.fileTail[this.tailAt] = k;
      this.tailAt = (this.tailAt + 1) % max;
    }
  }

  /** The end of a file: its records join the step's (in time order, cut to size). */
  endFile(): void {
    const errors = firstOf(this.errors, this.fileErrors, MAX_ERRORS);
    this.errors = errors.list;
    this.errorsCut ||= errors.cut;
    this.warns = firstOf(this.warns, this.fileWarns, this.sampleSize).list;
    this.head = firstOf(this.head, this.fileHead, this.sampleSize).list;
    // the last of the step may be among the first of a file
    const tail = this.tail.concat(this.fileHead, this.fileTail).sort(byTime);
    this.tail = tail.slice(Math.max(0, tail.length - this.sampleSize));
    this.fileErrors = [];
    this.fileWarns = [];
    this.fileHead = [];
    this.fileTail = [];
    this.tailAt = 0;
  }

  finish(): LogSummary {
    const all = new Set<Kept>([...this.errors, ...this.warns, ...this.head, ...this.tail]);
    return {
      counts: this.counts,
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
