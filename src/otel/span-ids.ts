// Random span ids, hex-encoded from a pool refilled 1,024 ids at a time (one crypto call instead of
// one per span): the tracer's ids (signals/traces.ts), and the runner's before its step is up
// (runner/early-start.ts).
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 8192;
const INVALID = '0000000000000000';

export class SpanIdPool {
  private pool = Buffer.alloc(0);
  private offset = POOL_BYTES;

  next(): string {
    for (;;) {
      if (this.offset + 8 > this.pool.length) {
        this.pool = randomBytes(POOL_BYTES);
        this.offset = 0;
      }
      const id = this.pool.toString('hex', this.offset, this.offset + 8);
      this.offset += 8;
      if (id !== INVALID) return id;
    }
  }
}

/** A W3C span id: 16 lower-case hex digits, not all zero. */
export function isSpanId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{16}$/.test(value) && value !== INVALID;
}
