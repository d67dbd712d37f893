// append_row: every element run() returns becomes one line of one file in the output folder.
// Workers serialise their rows (a string stays as it is, anything else is JSON); the runner writes
// each mini-batch's lines with one write, before it records the mini-batch as done, so the file
// and the processed mini-batch report agree even when the runner is stopped.
import fs from 'node:fs';
import path from 'node:path';
import { closeQuietly } from '../util/fd.js';

export class AppendRowOutput {
  readonly file: string;
  private fd: number | undefined;
  rows = 0;
  bytes = 0;
  error: string | undefined;
  /** Bytes the file held when it was opened (a resumed run appends to it). */
  private readonly base: number;

  constructor(folder: string, fileName: string, append = false) {
    fs.mkdirSync(folder, { recursive: true });
    this.file = path.join(folder, fileName);
    this.fd = fs.openSync(this.file, append ? 'a' : 'w');
    this.base = append ? fs.fstatSync(this.fd).size : 0;
  }

  /** Where the next rows go in the file (for the output journal). */
  get offset(): number {
    return this.base + this.bytes;
  }

  /** Write `\n`-terminated lines; returns false (and keeps the error) when the write fails. */
  write(lines: string, rows: number): boolean {
    if (this.fd === undefined) return false;
    try {
      const buf = Buffer.from(lines, 'utf8');
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
      this.rows += rows;
      this.bytes += buf.length;
      return true;
    } catch (error) {
      this.error = `cannot write ${this.file}: ${(error as Error).message}`;
      return false;
    }
  }

  close(): void {
    this.fd = closeQuietly(this.fd);
  }
}
