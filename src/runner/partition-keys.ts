// partition_keys: the rows of tabular input that share the values of the key columns form one
// mini-batch, across all input files, in the order the groups first appear. This is ParallelRunStep's
// rule ("the data with the same key will be partitioned into the same mini-batch"; with both
// partition_keys and mini_batch_size set "the partition keys will take effect"): a group is never
// split by size, so run() always sees all the rows of its key values.
//
// A group is a list of byte ranges per file (one range per file when the input is sorted by the
// keys): the parent keeps offsets, never rows, and a worker reads its group as it reads any tabular
// mini-batch, with the same parser (readKeyedRows). As in tabular.ts, a record csv-parse cannot read
// (or a line that is not JSON) goes with the record after it: one item more, that the worker fails
// with its line.
import fs from 'node:fs';
import { RunnerConfigError } from './config-error.js';
import type { KeyedMiniBatch } from './partition.js';
import type { KeyedPart, KeyedTask } from './protocol.js';
import { parseTabular, readFully, scanCsvUnits, tabularFormat, type ParsedRow, type TabularFormat } from './tabular.js';

const LF = 0x0a;
const CHUNK = 1024 * 1024;

interface Group {
  readonly keys: Record<string, unknown>;
  items: number;
  readonly parts: { readonly file: string; readonly format: TabularFormat; readonly header?: readonly string[]; readonly ranges: number[] }[];
}

/** Groups of rows by the values of `keys`, in order of first appearance; a file that cannot be read goes to `unreadable`. Throws RunnerConfigError for a key a file does not have. */
export async function cutByPartitionKeys(files: readonly string[], keys: readonly string[], unreadable: (file: string, error: unknown) => void): Promise<Omit<KeyedMiniBatch, 'index' | 'id'>[]> {
  const groups = new Map<string, Group>();
  const groupOf = (values: readonly unknown[]): Group => {
    const id = JSON.stringify(values);
    let g = groups.get(id);
    if (g === undefined) {
      const kv: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) kv[keys[i]!] = values[i];
      g = { keys: kv, items: 0, parts: [] };
      groups.set(id, g);
    }
    return g;
  };
  for (const file of files) {
    const format = tabularFormat(file)!;
    try {
      if (format === 'jsonl') scanJsonLinesByKeys(file, keys, groupOf);
      else await scanCsvByKeys(file, format, keys, groupOf);
    } catch (error) {
      if (error instanceof RunnerConfigError) throw error;
      // what this file added to the groups before the error is dropped with it: the file is one failed item
      for (const g of groups.values()) {
        const last = g.parts[g.parts.length - 1];
        if (last?.file !== file) continue;
        g.parts.pop();
        for (let i = 0; i < last.ranges.length; i += 4) g.items -= last.ranges[i + 3]!;
      }
      unreadable(file, error);
    }
  }
  const out: Omit<KeyedMiniBatch, 'index' | 'id'>[] = [];
  for (const g of groups.values()) {
    if (g.items === 0) continue;
    const parts: KeyedPart[] = g.parts.map((p) => ({ file: p.file, format: p.format, header: p.header, ranges: dropCounts(p.ranges) }));
    out.push({ kind: 'keyed', keys: g.keys, keysText: JSON.stringify(g.keys), parts, items: g.items });
  }
  return out;
}

/** While scanning, ranges are quadruples (start, end, line, items) so that a failed file can be taken back out; the task has triples. */
function dropCounts(ranges: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 4) out.push(ranges[i]!, ranges[i + 1]!, ranges[i + 2]!);
  return out;
}

/** Records [s, e) starting on `line`, `n` items, to group `g`; contiguous runs of one group merge. */
function addRange(g: Group, file: string, format: TabularFormat, header: readonly string[] | undefined, s: number, e: number, line: number, n: number): void {
  let part = g.parts[g.parts.length - 1];
  if (part === undefined || part.file !== file) {
    part = { file, format, header, ranges: [] };
    g.parts.push(part);
  }
  const r = part.ranges;
  if (r.length > 0 && r[r.length - 3] === s) {
    r[r.length - 3] = e;
    r[r.length - 1] = r[r.length - 1]! + n;
  } else r.push(s, e, line, n);
  g.items += n;
}

async function scanCsvByKeys(file: string, format: TabularFormat, keys: readonly string[], groupOf: (values: readonly unknown[]) => Group): Promise<void> {
  let header: string[] = [];
  let columns: number[] = [];
  let last: Group | undefined;
  await scanCsvUnits(
    file,
    format,
    (h) => {
      header = h;
      columns = keys.map((k) => h.indexOf(k));
      const missing = keys.filter((_, i) => columns[i]! < 0);
      if (missing.length > 0) throw missingKeys(file, missing, `columns of its header (${h.join(', ')})`);
    },
    (fields, s, e, line, n) => {
      // a row with too few fields fails in the worker (its field count); it still goes to a group;
      // malformed records at the end go with the last row's group
      if (fields !== undefined) last = groupOf(columns.map((c) => fields[c] ?? ''));
      addRange(last ?? groupOf(keys.map(() => null)), file, format, header, s, e, line, n);
    },
  );
}

function scanJsonLinesByKeys(file: string, keys: readonly string[], groupOf: (values: readonly unknown[]) => Group): void {
  const seen = new Set<string>();
  let malformed = 0;
  let unitStart = -1;
  let unitLine = 0;
  let last: Group | undefined;
  let end = 0;
  eachLine(file, (s, e, line, text) => {
    end = e;
    if (/^[ \t\r]*$/.test(text)) return;
    if (unitStart < 0) {
      unitStart = s;
      unitLine = line;
    }
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      malformed++;
      return;
    }
    const values = keys.map((k) => {
      const v = row !== null && typeof row === 'object' ? (row as Record<string, unknown>)[k] : undefined;
      if (v === undefined) return null;
      seen.add(k);
      return v;
    });
    last = groupOf(values);
    addRange(last, file, 'jsonl', undefined, unitStart, e, unitLine, malformed + 1);
    unitStart = -1;
    malformed = 0;
  });
  if (malformed > 0) addRange(last ?? groupOf(keys.map(() => null)), file, 'jsonl', undefined, unitStart, end, unitLine, malformed);
  const missing = keys.filter((k) => !seen.has(k));
  if (end > 0 && missing.length > 0 && last !== undefined) throw missingKeys(file, missing, 'fields of its rows (no row has them)');
}

function missingKeys(file: string, missing: readonly string[], what: string): RunnerConfigError {
  return new RunnerConfigError([{ field: 'partition_keys', source: file, expected: `${what}`, got: missing.map((k) => JSON.stringify(k)).join(', ') }]);
}

/** Every line of a file: bytes [start, end) (end after its line break), its number (1-based) and its text. Throws on read errors. */
function eachLine(file: string, fn: (start: number, end: number, line: number, text: string) => void): void {
  const fd = fs.openSync(file, 'r');
  try {
    let carry = Buffer.alloc(0);
    let base = 0; // file offset of carry[0]
    let line = 1;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const n = fs.readSync(fd, chunk, 0, CHUNK, null);
      if (n === 0) break;
      const buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      let i = 0;
      for (let nl = buf.indexOf(LF, i); nl >= 0; nl = buf.indexOf(LF, i)) {
        fn(base + i, base + nl + 1, line++, buf.toString('utf8', i, nl));
        i = nl + 1;
      }
      carry = Buffer.from(buf.subarray(i));
      base += i;
    }
    if (carry.length > 0) fn(base, base + carry.length, line, carry.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The rows of a keyed mini-batch, in file order, each with its `file:line` (a worker's side). The
 * ranges of one file are read into one buffer and parsed at once; their lines are mapped back.
 * Throws on read errors.
 */
export function readKeyedRows(task: KeyedTask): { file: string; rows: ParsedRow[] }[] {
  const out: { file: string; rows: ParsedRow[] }[] = [];
  for (const part of task.parts) {
    const r = part.ranges;
    let total = 0;
    for (let i = 0; i < r.length; i += 3) total += r[i + 1]! - r[i]!;
    const buf = Buffer.allocUnsafe(total);
    // the buffer line each range begins on, and the file line it stands for
    const bufLine: number[] = [];
    const fileLine: number[] = [];
    const fd = fs.openSync(part.file, 'r');
    try {
      let offset = 0;
      let line = 1;
      for (let i = 0; i < r.length; i += 3) {
        const length = r[i + 1]! - r[i]!;
        readFully(fd, part.file, buf, offset, length, r[i]!);
        bufLine.push(line);
        fileLine.push(r[i + 2]!);
        for (let j = buf.indexOf(LF, offset); j >= 0 && j < offset + length; j = buf.indexOf(LF, j + 1)) line++;
        offset += length;
      }
    } finally {
      fs.closeSync(fd);
    }
    // rows come in order: the range of a line is found by walking forward
    let k = 0;
    const lineAt = (line: number): number => {
      while (k + 1 < bufLine.length && line >= bufLine[k + 1]!) k++;
      return fileLine[k]! + (line - bufLine[k]!);
    };
    out.push({ file: part.file, rows: parseTabular(buf, part.format, part.header, lineAt) });
  }
  return out;
}
