// Which inputs a mini-batch holds, from the runner's mini-batches.jsonl, for the few mini-batches
// a report or a finding names (the file is read once, only the lines of those ids are parsed).
// A missing or damaged manifest gives no inputs: this is a pointer for people, not evidence.
import fs from 'node:fs';
import path from 'node:path';
import { FILES } from '../runner/reports.js';
import { forEachLine } from './files.js';

export interface MiniBatchInputs {
  /** Input files (a files mini-batch), or the one file of a tabular mini-batch. */
  readonly files: readonly string[];
  /** A tabular mini-batch: its first row (0-based, after the header) and how many rows. */
  readonly firstRow?: number;
  readonly rows?: number;
  /** The line of the file its first row is on. */
  readonly firstLine?: number;
}

export function miniBatchInputs(stepFolder: string, ids: Iterable<string>): Map<string, MiniBatchInputs> {
  const wanted = new Set(ids);
  const out = new Map<string, MiniBatchInputs>();
  const file = path.join(stepFolder, FILES.manifest);
  if (wanted.size === 0 || !fs.existsSync(file)) return out;
  try {
    forEachLine(file, (text) => {
      if (out.size === wanted.size) return;
      const m = /"mini_batch_id":"([^"]+)"/.exec(text);
      if (!m || !wanted.has(m[1]!)) return;
      let rec: { files?: unknown; file?: unknown; first_row?: unknown; first_line?: unknown; items?: unknown };
      try {
        rec = JSON.parse(text) as typeof rec;
      } catch {
        return;
      }
      const files = Array.isArray(rec.files) ? rec.files.filter((f): f is string => typeof f === 'string') : typeof rec.file === 'string' ? [rec.file] : [];
      out.set(m[1]!, {
        files,
        firstRow: typeof rec.first_row === 'number' ? rec.first_row : undefined,
        rows: typeof rec.first_row === 'number' && typeof rec.items === 'number' ? rec.items : undefined,
        firstLine: typeof rec.first_line === 'number' ? rec.first_line : undefined,
      });
    });
  } catch {
    // unreadable: no inputs to show
  }
  return out;
}
