// The quiet internal diagnostic channel: telemetry's own problems, separate from the user's logger.
// Each kind is reported once (a count of repeats is kept and summarised), to stderr and to the
// driver log when the run folder is open. Messages may quote a backend's answer or a user's metric
// name: their control characters are escaped, so neither the terminal nor step.json gets them raw.
// Nothing here may throw.
import { printable } from './util/printable.js';

export type DiagnosticSink = (line: string) => void;

export interface DiagnosticRecord {
  readonly kind: string;
  readonly message: string;
  readonly count: number;
}

export class Diagnostics {
  private readonly seen = new Map<string, { message: string; count: number }>();
  private readonly sinks: DiagnosticSink[] = [];
  private readonly toStderr: boolean;

  constructor(options: { stderr?: boolean } = {}) {
    this.toStderr = options.stderr ?? true;
  }

  addSink(sink: DiagnosticSink): void {
    this.sinks.push(sink);
  }

  /** Report a problem of a given kind; later reports of the same kind are only counted. */
  warn(kind: string, message: string): void {
    const entry = this.seen.get(kind);
    if (entry) {
      entry.count++;
      return;
    }
    const text = printable(message);
    this.seen.set(kind, { message: text, count: 1 });
    this.emit(`[step-telemetry] ${text}`);
  }

  /** A line that is always printed (end-of-step summaries). */
  notice(message: string): void {
    this.emit(`[step-telemetry] ${printable(message)}`);
  }

  records(): DiagnosticRecord[] {
    return [...this.seen].map(([kind, v]) => ({ kind, message: v.message, count: v.count }));
  }

  private emit(line: string): void {
    if (this.toStderr) {
      try {
        process.stderr.write(`${line}\n`);
      } catch {
        // a closed stderr must not break the step
      }
    }
    for (const sink of this.sinks) {
      try {
        sink(line);
      } catch {
        // ignore
      }
    }
  }
}
