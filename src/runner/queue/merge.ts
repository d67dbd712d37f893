// The job's single set of files across the nodes of a shared queue (or of the static split), in
// the step folder that holds the node-<rank> folders:
//   <output folder>/parallel_run_step.txt  the rows of every mini-batch once, in mini-batch order:
//                                           per mini-batch, the journal entry the queue's record
//                                           names (without a queue: each node's own entries)
//   result.json, processed-mini-batches.csv, failed-items.jsonl, mini-batches.jsonl
// A node's own output file may hold rows that do not count (a node lost before its commit, a
// mini-batch that had finished elsewhere); its output-journal.jsonl and the queue's record say
// which do. Every file is written whole and renamed, so merging again (the last node to end, or
// `step-telemetry merge`) replaces it.
import fs from 'node:fs';
import path from 'node:path';
import { FAILED_ITEMS_FILE } from '../failed-items-file.js';
import { JOURNAL_FILE, journalOutput, readJournal, type JournalEntry } from '../output-journal.js';
import { FILES, writeAtomic } from '../reports.js';
import { decodeRecord } from './job-state.js';

export interface MergeResult {
  readonly folder: string;
  readonly output?: string;
  readonly rows: number;
  readonly nodes: number;
  readonly error?: string;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Merge the node folders under `stepFolder`; `records`: the queue's record of every mini-batch (undefined: a static split). */
export function mergeJob(stepFolder: string, records?: Buffer): MergeResult {
  // (exclusive() keeps two nodes of a queue from merging at once)
  try {
    return merge(stepFolder, records);
  } catch (error) {
    return { folder: stepFolder, rows: 0, nodes: 0, error: (error as Error).message };
  }
}

interface NodeFolder {
  readonly folder: string;
  readonly result: Record<string, any> | undefined;
  readonly entries: JournalEntry[];
  readonly output: string | undefined;
}

function merge(stepFolder: string, records: Buffer | undefined): MergeResult {
  const nodes: NodeFolder[] = fs
    .readdirSync(stepFolder)
    .filter((n) => /^node-\d+$/.test(n))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    .map((n) => {
      const folder = path.join(stepFolder, n);
      const text = readText(path.join(folder, FILES.result));
      const result = text ? (JSON.parse(text) as Record<string, any>) : undefined;
      const journal = path.join(folder, JOURNAL_FILE);
      return { folder, result, entries: readJournal(journal), output: (result?.output_file as string | undefined) ?? journalOutput(journal) };
    });
  if (nodes.length === 0) throw new Error(`${stepFolder} holds no node-<rank> folders`);

  // which rows count: per mini-batch one entry (the queue's record decides; else the last one seen)
  const counted = new Map<number, { node: NodeFolder; e: JournalEntry }>();
  for (const node of nodes) {
    for (const e of node.entries) {
      if (records) {
        const r = decodeRecord(records, e.i);
        if (!r || r.failed || r.writer !== e.w || r.seq !== e.s) continue;
      }
      counted.set(e.i, { node, e });
    }
  }
  const last = nodes.filter((n) => n.result).sort((a, b) => String(a.result!.ended).localeCompare(String(b.result!.ended))).at(-1);
  const anyOutput = nodes.find((n) => n.output !== undefined)?.output;
  let output: string | undefined;
  let rows = 0;
  if (anyOutput) {
    const dir = path.dirname(anyOutput);
    const base = path.basename(anyOutput).replace(/\.node-\d+(\.[^.]*)?$/, '$1');
    output = path.join(dir, nodes.some((n) => n.output === path.join(dir, base)) ? base.replace(/(\.[^.]*)?$/, '.merged$1') : base);
    const fds = new Map<string, number>();
    const tmp = `${output}.${process.pid}.tmp`;
    const out = fs.openSync(tmp, 'w');
    try {
      for (const i of [...counted.keys()].sort((a, b) => a - b)) {
        const { node, e } = counted.get(i)!;
        if (e.n === 0) continue;
        const file = node.output;
        if (!file) continue;
        let fd = fds.get(file);
        if (fd === undefined) fds.set(file, (fd = fs.openSync(file, 'r')));
        const buf = Buffer.allocUnsafe(e.n);
        const got = fs.readSync(fd, buf, 0, e.n, e.o);
        fs.writeSync(out, buf, 0, got);
        rows += e.r;
      }
    } finally {
      fs.closeSync(out);
      for (const fd of fds.values()) fs.closeSync(fd);
    }
    fs.renameSync(tmp, output);
  }

  // processed rows: one per mini-batch, the counted node's when it has one, else the last seen
  const processed = new Map<string, { line: string; folder: string }>();
  let header = '';
  const countedFolder = new Map<string, string>();
  for (const { node, e } of counted.values()) countedFolder.set(e.mb, node.folder);
  for (const node of nodes) {
    const text = readText(path.join(node.folder, FILES.processed));
    if (!text) continue;
    const [h, ...lines] = text.split('\n').filter((l) => l !== '');
    header ||= h ?? '';
    for (const line of lines) {
      const id = line.slice(0, line.indexOf(','));
      const had = processed.get(id);
      if (!had || had.folder !== countedFolder.get(id)) processed.set(id, { line, folder: node.folder });
    }
  }
  if (header) writeAtomic(path.join(stepFolder, FILES.processed), `${[header, ...[...processed.values()].map((p) => p.line)].join('\n')}\n`);

  // failed items: those of each mini-batch from one node; none of a mini-batch that succeeded in the end
  const failed: string[] = [];
  const failedFrom = new Map<string, string>();
  for (const node of nodes) {
    for (const line of (readText(path.join(node.folder, FAILED_ITEMS_FILE)) ?? '').split('\n')) {
      if (line.trim() === '') continue;
      let id: string;
      try {
        id = (JSON.parse(line) as { mini_batch_id: string }).mini_batch_id;
      } catch {
        continue;
      }
      const from = failedFrom.get(id);
      if (from !== undefined && from !== node.folder) continue;
      const win = countedFolder.get(id);
      if (win !== undefined && win !== node.folder) continue;
      failedFrom.set(id, node.folder);
      failed.push(line);
    }
  }
  writeAtomic(path.join(stepFolder, FAILED_ITEMS_FILE), failed.length ? `${failed.join('\n')}\n` : '');
  const manifest = nodes.map((n) => path.join(n.folder, FILES.manifest)).filter((f) => fs.existsSync(f));
  if (manifest.length === 1) fs.copyFileSync(manifest[0]!, path.join(stepFolder, FILES.manifest));

  if (last?.result) {
    const r = last.result;
    const result = {
      ...r,
      node_rank: undefined,
      node: undefined,
      merged: { nodes: nodes.map((n) => ({ folder: n.folder, status: n.result?.status, node: n.result?.node })), rows },
      output_file: output,
      run_folder: stepFolder,
      files: { result: path.join(stepFolder, FILES.result), processed: path.join(stepFolder, FILES.processed), failed_items: path.join(stepFolder, FAILED_ITEMS_FILE) },
    };
    writeAtomic(path.join(stepFolder, FILES.result), `${JSON.stringify(result, null, 2)}\n`);
  }
  return { folder: stepFolder, output, rows, nodes: nodes.length };
}
