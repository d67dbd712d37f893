// Progress: a live bar on a terminal (items/s, done/total, failures, ETA), plain periodic lines
// otherwise, and the human messages of the runner, printed so that they never tear the bar.

export interface ProgressSnapshot {
  readonly elapsedMs: number;
  readonly itemsTotal: number;
  readonly itemsSucceeded: number;
  readonly itemsFailed: number;
  readonly miniBatchesTotal: number;
  readonly miniBatchesDone: number;
  readonly miniBatchesFailed: number;
  readonly running: number;
  readonly retries: number;
  readonly timeouts: number;
  readonly workerRestarts: number;
  /** The input is still being cut: the totals are those so far (no percentage, no ETA). */
  readonly totalsPartial?: boolean;
}

export type ProgressMode = 'tty' | 'plain' | 'silent';

const BAR_WIDTH = 24;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** Rate (items/s) and ETA (s) from a snapshot; rate over the whole run so far. */
export function rateAndEta(p: ProgressSnapshot): { rate: number; eta: number } {
  const done = p.itemsSucceeded + p.itemsFailed;
  const rate = p.elapsedMs > 0 ? (done * 1000) / p.elapsedMs : 0;
  const left = Math.max(0, p.itemsTotal - done);
  return { rate, eta: p.totalsPartial ? Number.NaN : rate > 0 ? left / rate : left === 0 ? 0 : Number.NaN };
}

/** One line of progress; `eta` false once the job is over. */
export function progressLine(p: ProgressSnapshot, eta = true): string {
  const done = p.itemsSucceeded + p.itemsFailed;
  const r = rateAndEta(p);
  const pct = p.itemsTotal > 0 ? Math.floor((100 * done) / p.itemsTotal) : 100;
  const more = p.totalsPartial ? '+' : '';
  return (
    `${p.totalsPartial ? '' : `${pct}% `}${done}/${p.itemsTotal}${more} items (${p.itemsFailed} failed), ` +
    `${p.miniBatchesDone}/${p.miniBatchesTotal}${more} mini-batches (${p.miniBatchesFailed} failed, ${p.running} running${p.totalsPartial ? ', the input still being cut' : ''}), ` +
    `${r.rate.toFixed(1)} items/s${eta ? `, ETA ${formatDuration(r.eta)}` : ''}` +
    (p.retries + p.timeouts + p.workerRestarts > 0 ? `, ${p.retries} retries, ${p.timeouts} timeouts, ${p.workerRestarts} worker restarts` : '')
  );
}

/** Bars narrower than this are left out: the numbers matter more. */
const MIN_BAR_WIDTH = 6;

/**
 * The live progress line, fitted to `columns`: the numbers (done/total, failed, rate, ETA) are
 * kept; the bar narrows, then goes, then the label, and only then is the line cut.
 */
export function progressBar(p: ProgressSnapshot, label: string, columns: number): string {
  const done = p.itemsSucceeded + p.itemsFailed;
  const frac = p.totalsPartial ? 0 : p.itemsTotal > 0 ? Math.min(1, done / p.itemsTotal) : 1;
  const { rate, eta } = rateAndEta(p);
  const numbers = `${p.totalsPartial ? `${done}/${p.itemsTotal}+` : `${Math.floor(frac * 100)}% ${done}/${p.itemsTotal}`} items · ${p.itemsFailed} failed · ${rate.toFixed(1)} items/s · ETA ${formatDuration(eta)}`;
  const room = columns - 1; // the cursor's column
  const width = Math.min(BAR_WIDTH, room - label.length - numbers.length - 4);
  if (width >= MIN_BAR_WIDTH) {
    const filled = Math.round(frac * width);
    return `${label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${numbers}`;
  }
  const text = label.length + 1 + numbers.length <= room ? `${label} ${numbers}` : numbers;
  return text.length > room ? `${text.slice(0, Math.max(10, room - 1))}…` : text;
}

/**
 * What the runner prints is text, never terminal commands: control bytes and ANSI escapes (from a
 * worker's output, an error message, a file name) are shown escaped, as `\x1b`. Line breaks and
 * tabs stay.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text) ? text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : text;
}

export class ProgressPrinter {
  private timer: NodeJS.Timeout | undefined;
  private barShown = false;

  constructor(
    readonly mode: ProgressMode,
    private readonly label: string,
    private readonly intervalMs: number,
    private readonly snapshot: () => ProgressSnapshot,
  ) {}

  start(): void {
    if (this.mode === 'silent') return;
    const every = this.mode === 'tty' ? 120 : this.intervalMs;
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  /** A message for the user; `err` goes to stderr. */
  print(text: string, stream: 'out' | 'err' = 'out'): void {
    if (this.mode === 'silent') return;
    this.clearBar();
    write(stream === 'err' ? process.stderr : process.stdout, `${printable(text)}\n`);
    if (this.mode === 'tty' && this.timer) this.drawBar();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clearBar();
  }

  private tick(): void {
    if (this.mode === 'tty') this.drawBar();
    else {
        write(process.stdout, `[${printable(this.label)}] progress: ${progressLine(this.snapshot())}\n`);
    }
  }

  private drawBar(): void {
    const columns = process.stderr.columns || 100;
    write(process.stderr, `\r\x1b[K${progressBar(this.snapshot(), printable(this.label), columns)}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (!this.barShown) return;
    write(process.stderr, '\r\x1b[K');
    this.barShown = false;
  }
}

/** Streams whose reader went away (EPIPE, `| head`): nothing more is written to them. */
const closed = new WeakSet<NodeJS.WriteStream>();
const watched = new WeakSet<NodeJS.WriteStream>();

/**
 * Write to the console. A closed pipe reports EPIPE as an 'error' event after the write: it
 * stops the printing to that stream, never the job.
 */
function write(stream: NodeJS.WriteStream, text: string): void {
  if (closed.has(stream)) return;
  if (!watched.has(stream)) {
    watched.add(stream);
    stream.on('error', () => closed.add(stream));
  }
  try {
    stream.write(text);
  } catch {
    closed.add(stream);
  }
}
