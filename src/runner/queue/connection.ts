// Reaching Redis: a connection that fails soon and clearly, and the bounds on the queue's waits.
import type { Redis as RedisClient } from 'ioredis';
import { redisOptions, type QueueAddress } from './url.js';

/** The message of an error from Redis or BullMQ (or of anything thrown). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or a rejection with `what` after `ms` (the timer never holds the process). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(what)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export interface ConnectOptions {
  readonly maxRetriesPerRequest: number;
  /** How long the connection may take. */
  readonly seconds: number;
  /** Every error the client reports, then and later (the last one names the cause when Redis is gone). */
  readonly onError?: (message: string) => void;
}

/** An ioredis client connected to `address`; else, within `seconds`, `cannot reach the queue at <address>: <the client's last error>`. */
export async function connectRedis(address: QueueAddress, o: ConnectOptions): Promise<RedisClient> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...redisOptions(address), maxRetriesPerRequest: o.maxRetriesPerRequest, lazyConnect: true });
  let lastError = '';
  client.on('error', (e: Error) => {
    lastError = e.message;
    o.onError?.(e.message);
  });
  try {
    await withTimeout(client.connect(), o.seconds * 1000, `no answer within ${o.seconds} s`);
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot reach the queue at ${address.display}: ${lastError || errorText(error)}`);
  }
  return client;
}
