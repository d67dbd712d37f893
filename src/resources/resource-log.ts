// resources.jsonl (resources.process-N.jsonl for process index N): one sample a line, written
// with one synchronous append per line (at most one a sampling interval: nothing on a hot path),
// so the last line is on disk even when the process is killed the next moment.
//
// Bounded for long runs by decimation: the first FULL_LINES lines hold every sample; after that
// each further STRIDE_LINES lines stand for twice as many samples as the ones before (a week at
// 5 s makes about 3,500 lines). A line that stands for several samples carries their maximum
// memory and event loop delay, and the cumulative counters (CPU, GC, I/O) lose nothing. A new
// memory high (RSS or heap 10 % above any line written) is written at once whatever the stride, so
// a worker that dies of memory leaves a line close to its peak.
import fs from 'node:fs';
import { closeQuietly } from '../util/fd.js';

const FULL_LINES = 720;
const STRIDE_LINES = 360;
const MAX_STRIDE = 256;
const NEW_HIGH = 1.1;

export class ResourceLog {
  private fd: number | undefined;
  private lines = 0;
  private stride = 1;
  private ticks = 0;
  private highRss = 0;
  private highHeap = 0;

  constructor(
    readonly file: string,
    private readonly onError: (error: unknown) => void,
  ) {
    try {
      this.fd = fs.openSync(file, 'a', 0o644);
    } catch (error) {
      this.onError(error);
    }
  }

  get open(): boolean {
    return this.fd !== undefined;
  }

  /** Samples a line stands for now. */
  get samplesPerLine(): number {
    return this.stride;
  }

  /** One more sample was taken: is it time for a line? */
  due(rss: number, heapUsed: number): boolean {
    if (this.fd === undefined) return false;
    this.ticks++;
    return this.ticks >= this.stride || rss > this.highRss * NEW_HIGH || heapUsed > this.highHeap * NEW_HIGH;
  }

  write(line: string, rss: number, heapUsed: number): void {
    const fd = this.fd;
    if (fd === undefined) return;
    try {
      fs.writeSync(fd, line);
    } catch (error) {
      this.fd = closeQuietly(fd);
      this.onError(error);
      return;
    }
    this.ticks = 0;
    this.lines++;
    if (rss > this.highRss) this.highRss = rss;
    if (heapUsed > this.highHeap) this.highHeap = heapUsed;
    if (this.lines >= FULL_LINES) this.stride = Math.min(MAX_STRIDE, 2 ** (1 + Math.floor((this.lines - FULL_LINES) / STRIDE_LINES)));
  }

  close(): void {
    this.fd = closeQuietly(this.fd);
  }
}
