// The job's merge lock: the nodes that end a job write its merged files one at a time (each later
// one sees more), and `step-telemetry merge --queue` reads the job's records under it.
import { randomUUID } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import { connectRedis, sleep } from './connection.js';
import { JobState } from './job-state.js';
import type { QueueAddress } from './url.js';

/** `fn` under the job's merge lock (a key with a lease); undefined when another holds it for 10 s. */
export async function exclusive<T>(client: RedisClient, meta: string, owner: string, fn: () => Promise<T> | T): Promise<T | undefined> {
  const key = `${meta}:merge-lock`;
  for (let i = 0; i < 100; i++) {
    if ((await client.set(key, owner, 'PX', 30_000, 'NX')) === 'OK') {
      try {
        return await fn();
      } finally {
        await client.del(key).catch(() => 0);
      }
    }
    await sleep(100);
  }
  return undefined;
}

/**
 * `step-telemetry merge --queue`: run `fn` with the records of job `name` (read under the merge
 * lock, so that no node merges meanwhile); undefined when the queue does not hold the job.
 */
export async function withJobRecords<T>(address: QueueAddress, name: string, fn: (records: Buffer) => T): Promise<T | undefined> {
  const client = await connectRedis(address, { maxRetriesPerRequest: 1, seconds: 10 });
  try {
    const state = new JobState(client, name);
    if ((await state.meta()).total_mb === undefined) return undefined;
    const done = await exclusive(client, state.keys.meta, `merge-${randomUUID()}`, async () => ({ value: fn(await state.records()) }));
    if (!done) throw new Error(`another merge of job ${name} holds its lock (for 10 s now)`);
    return done.value;
  } finally {
    client.disconnect();
  }
}
