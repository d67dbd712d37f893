// The items of a runner worker's mini-batch attempt: the rows of a keyed group or of a tabular
// byte range (a row that cannot be parsed is a failed item), and why an input file cannot be read.
import fs from 'node:fs';
import type { ItemFailure, KeyedTask, TabularTask } from './protocol.js';
import { readKeyedRows } from './partition-keys.js';
import type { TabularReader } from './tabular.js';
import { errnoText } from '../util/errno-text.js';

/** The rows of a keyed group into `items` (named `file:line` in `names`); `count`: the mini-batch's items. */
export function readKeyedItems(task: KeyedTask, count: number, items: unknown[], names: string[], failures: ItemFailure[]): void {
  try {
    for (const { file, rows } of readKeyedRows(task)) {
      for (const r of rows) {
        if (r.error !== undefined) failures.push({ item: `${file}:${r.line}`, reason: r.error, input: true });
        else {
          items.push(r.row);
          names.push(`${file}:${r.line}`);
        }
      }
    }
  } catch (error) {
    items.length = 0;
    failures.length = 0;
    failures.push({ item: `the rows of ${JSON.stringify(task.keys)}`, reason: `cannot read them: ${errnoText(error)}`, input: true, count });
  }
}

/** The rows of a tabular byte range into `items` (named `file:line` in `names`); `count`: the mini-batch's items. */
export function readTabularItems(tabular: TabularReader, task: TabularTask, count: number, items: unknown[], names: string[], failures: ItemFailure[]): void {
  try {
    for (const r of tabular.read(task.file, task.format, task.start, task.end, task.firstLine, task.header)) {
      if (r.error !== undefined) failures.push({ item: `${task.file}:${r.line}`, reason: r.error, input: true });
      else {
        items.push(r.row);
        names.push(`${task.file}:${r.line}`);
      }
    }
  } catch (error) {
    items.length = 0;
    const e = error as NodeJS.ErrnoException;
    failures.push({ item: `${task.file} rows ${task.firstRow}..${task.firstRow + count - 1}`, reason: `cannot read them: ${errnoText(e)}`, input: true, count });
  }
}

/** Why a file cannot be read, or undefined when it can. */
export function unreadable(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return `not a regular file (${stat.isDirectory() ? 'a folder' : 'a special file'})`;
    fs.accessSync(file, fs.constants.R_OK);
    return undefined;
  } catch (error) {
    return errnoText(error);
  }
}
