// Resume and re-drive on the run folder's own files:
//   --resume: the mini-batches named in output-journal.jsonl succeeded and are skipped; the output
//     file is cut back to the end of the last of them (rows a runner wrote and never journalled go,
//     and their mini-batches run again), and the earlier processed rows and failed items of the
//     skipped mini-batches are kept, so the folder describes the whole job;
//   --input-failed: the items of failed-items.jsonl (a step folder, its node-<rank> folders, or a
//     merged job) are the input: files as a files input, rows as the tabular mini-batches of exactly
//     those rows (consecutive rows run together).
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedRunConfig } from './config.js';
import { readFailedItems, failedItemsPath, type FailedItemLine } from './failed-items-file.js';
import { journalPath, readJournal } from './output-journal.js';
import { MiniBatchList } from './mini-batch-list.js';
import { cutTabularFile, type Partition } from './partition.js';
import type { JobCounts } from './queue/job-state.js';
import { FILES } from './reports.js';
import { tabularFormat } from './tabular.js';

export interface ResumeState {
  /** Mini-batch ids that succeeded before. */
  readonly skip: Set<string>;
  readonly counts: JobCounts;
  /** Lines of processed-mini-batches.csv (no header) and failed-items.jsonl to keep. */
  readonly processed: string[];
  readonly failedItems: string[];
}

function lines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
}

/**
 * What a resumed run of `runFolder` skips; cuts `outputFile` back to its last journalled row. A node
 * of a queue (`keepAll`) keeps every processed row and failed item but those of `again` (the failed
 * mini-batches `--resume` put on the queue again): the queue's records say what counts.
 */
export function readResume(runFolder: string, outputFile: string | undefined, keepAll = false, again?: ReadonlySet<string>): ResumeState {
  const entries = readJournal(journalPath(runFolder));
  const skip = new Set<string>();
  let ok = 0;
  let failed = 0;
  let end = 0;
  for (const e of entries) {
    if (skip.has(e.mb)) continue;
    skip.add(e.mb);
    ok += e.ok;
    failed += e.f;
    end = Math.max(end, e.o + e.n);
  }
  if (outputFile && !keepAll) {
    try {
      if (fs.statSync(outputFile).size > end) fs.truncateSync(outputFile, end);
    } catch {
      // no output file yet
    }
  }
  const keep = (id: string | undefined): boolean => (keepAll ? !(id !== undefined && again?.has(id)) : id !== undefined && skip.has(id));
  const processed = lines(path.join(runFolder, FILES.processed))
    .slice(1)
    .filter((l) => keep(l.slice(0, l.indexOf(','))));
  const failedItems = lines(failedItemsPath(runFolder)).filter((l) => {
    try {
      return keep((JSON.parse(l) as FailedItemLine).mini_batch_id);
    } catch {
      return false;
    }
  });
  const n = keepAll ? 0 : skip.size;
  return { skip, processed, failedItems, counts: { mbDone: n, mbSucceeded: n, mbFailed: 0, itemsSucceeded: keepAll ? 0 : ok, itemsFailed: keepAll ? 0 : failed, retries: 0, timeouts: 0, restarts: 0 } };
}

/** The failed-items.jsonl files of a run folder: its own, or those of its node-<rank> folders. */
export function failedItemFiles(folder: string): string[] {
  const own = failedItemsPath(folder);
  if (fs.existsSync(own)) return [own];
  let names: string[] = [];
  try {
    names = fs.readdirSync(folder).filter((n) => /^node-\d+$/.test(n));
  } catch {
    names = [];
  }
  return names.map((n) => failedItemsPath(path.join(folder, n))).filter((f) => fs.existsSync(f));
}

/** The input of `--input-failed`: exactly the failed items of `folder`, cut into mini-batches. */
export async function failedInput(folder: string, config: ResolvedRunConfig): Promise<{ part: Partition; unidentified: number; files: string[] }> {
  const files = failedItemFiles(folder);
  const items = files.flatMap((f) => readFailedItems(f));
  const paths: string[] = [];
  const rows = new Map<string, Set<number>>();
  let unidentified = 0;
  const seen = new Set<string>();
  for (const it of items) {
    if (it.unidentified) {
      unidentified += it.count ?? 0;
      continue;
    }
    if (it.file !== undefined && it.row_number !== undefined) {
      let set = rows.get(it.file);
      if (!set) rows.set(it.file, (set = new Set()));
      set.add(it.row_number);
    } else if (it.item !== undefined && !seen.has(it.item)) {
      seen.add(it.item);
      paths.push(it.item);
    }
  }
  const list = new MiniBatchList(paths);
  let total = 0;
  if (config.inputType === 'files') {
    for (let i = 0; i < paths.length; i += config.miniBatchSize) {
      const count = Math.min(config.miniBatchSize, paths.length - i);
      list.addFiles(i, count);
      total += count;
    }
  } else {
    for (const [file, wanted] of [...rows.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const format = tabularFormat(file);
      if (!format) continue;
      const ref = list.tabularFile(file, format);
      const header = await cutTabularFile(
        file,
        format,
        config.miniBatchSize,
        (start, end, firstRow, firstLine, n) => {
          list.addTabular(ref, start, end, firstRow, firstLine, n);
          total += n;
        },
        { keep: (r) => wanted.has(r) },
      );
      list.setHeader(ref, header);
    }
  }
  return { part: { miniBatches: list, totalMiniBatches: list.length, totalFiles: paths.length + rows.size, items: total, final: true, ready: list.length }, unidentified, files };
}
