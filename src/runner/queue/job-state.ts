// The job's state in Redis beside BullMQ's queue: what one shared job needs that a queue does not
// keep. All of it is small and bounded by the input, never by the work done:
//   <base>:meta  hash: totals, enqueue progress, the verdict
//   <base>:acc   hash: job-wide counts (mini-batches and items by outcome, retries, timeouts, restarts)
//   <base>:rec   string, 8 bytes per mini-batch index: which node process (writer) finished it and
//                which of its output-journal entries holds its rows (seq; top bit: it failed);
//                all zero: not finished. 8 MB for a million mini-batches.
//   <base>:released  hash: mini-batch id → times a node gave it back unstarted or unfinished (its
//                job's end, a verdict): BullMQ counts every start, and these are not lost runs
//   <base>:input string, 16 bytes per input file: the listing of the input the leader cut
//                (input-identity.ts; its summary is the meta field `input`), read by a node whose
//                input differs, to say how. 16 MB for a million files.
// A mini-batch's end is counted by one Lua script that checks and sets its record and adds to the
// counts atomically, so a mini-batch run twice (its first node died after finishing it, or lost its
// lease while still running) counts once, and its rows are those of the record's writer.
import type { Redis as RedisClient } from 'ioredis';
import { stateBase } from './names.js';

export const COUNT_FIELDS = ['mb_done', 'mb_ok', 'mb_failed', 'items_ok', 'items_failed', 'retries', 'timeouts', 'restarts'] as const;

export interface JobCounts {
  readonly mbDone: number;
  readonly mbSucceeded: number;
  readonly mbFailed: number;
  readonly itemsSucceeded: number;
  readonly itemsFailed: number;
  readonly retries: number;
  readonly timeouts: number;
  readonly restarts: number;
}

export const ZERO_COUNTS: JobCounts = { mbDone: 0, mbSucceeded: 0, mbFailed: 0, itemsSucceeded: 0, itemsFailed: 0, retries: 0, timeouts: 0, restarts: 0 };

export interface Verdict {
  readonly category: 'ThresholdExceeded' | 'InitFailure' | 'ProgressTimeout' | 'InternalError';
  readonly message: string;
}

/** A finished mini-batch's record: `seq` 0 means no rows (failed, or summary_only). */
export interface MiniBatchRecord {
  readonly writer: number;
  readonly seq: number;
  readonly failed: boolean;
}

const FAILED_BIT = 0x80000000;

export function encodeRecord(r: MiniBatchRecord): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(r.writer, 0);
  b.writeUInt32BE(((r.seq & 0x7fffffff) | (r.failed ? FAILED_BIT : 0)) >>> 0, 4);
  return b;
}

/** Mini-batch `index` has a record in the whole `rec` string: it finished (decodeRecord without the object). */
export function isFinished(rec: Buffer, index: number): boolean {
  return index * 8 + 8 <= rec.length && rec.readUInt32BE(index * 8) !== 0;
}

/** How many mini-batches the whole `rec` string has room for (those past it are not finished). */
export function recordCount(rec: Buffer): number {
  return Math.floor(rec.length / 8);
}

/** The record of mini-batch `index` in the whole `rec` string; undefined while it is not finished. */
export function decodeRecord(rec: Buffer, index: number): MiniBatchRecord | undefined {
  const off = index * 8;
  if (off + 8 > rec.length) return undefined;
  const writer = rec.readUInt32BE(off);
  if (writer === 0) return undefined;
  const s = rec.readUInt32BE(off + 4);
  return { writer, seq: s & 0x7fffffff, failed: (s & FAILED_BIT) !== 0 };
}

// KEYS: rec, acc. ARGV: index, record (8 bytes), ok (1/0), items succeeded, items failed.
// Returns {fresh (1: counted now; 0: it had a record), the counts in COUNT_FIELDS order...}.
const COMMIT = `
local off = tonumber(ARGV[1]) * 8
local cur = redis.call('GETRANGE', KEYS[1], off, off + 7)
local fresh = 0
if string.len(cur) < 8 or string.sub(cur, 1, 4) == '\\0\\0\\0\\0' then
  fresh = 1
  redis.call('SETRANGE', KEYS[1], off, ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'mb_done', 1)
  if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[2], 'mb_ok', 1) else redis.call('HINCRBY', KEYS[2], 'mb_failed', 1) end
  redis.call('HINCRBY', KEYS[2], 'items_ok', ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'items_failed', ARGV[5])
end
local v = redis.call('HMGET', KEYS[2], ${COUNT_FIELDS.map((f) => `'${f}'`).join(', ')})
table.insert(v, 1, fresh)
return v
`;

// KEYS: acc, meta. ARGV: retries, timeouts, restarts to add. Returns {verdict category, verdict message, counts...}.
const POLL = `
if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 'retries', ARGV[1]) end
if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'timeouts', ARGV[2]) end
if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[1], 'restarts', ARGV[3]) end
local v = redis.call('HMGET', KEYS[1], ${COUNT_FIELDS.map((f) => `'${f}'`).join(', ')})
local verdict = redis.call('HMGET', KEYS[2], 'verdict_category', 'verdict_message')
table.insert(v, 1, verdict[2] or false)
table.insert(v, 1, verdict[1] or false)
return v
`;

// KEYS: meta. ARGV: category, message. Sets the verdict once; returns the one that holds.
const VERDICT = `
if redis.call('HSETNX', KEYS[1], 'verdict_category', ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 'verdict_message', ARGV[2]) end
return redis.call('HMGET', KEYS[1], 'verdict_category', 'verdict_message')
`;

// KEYS: rec, acc, meta. ARGV: pairs of (index, items). `--resume` on a queue: the records of the
// failed mini-batches among them are cleared and their counts taken back, and the verdict goes, so
// they run again; returns the indices cleared (a mini-batch that succeeded is never touched).
const RESET = `
local cleared = {}
for k = 1, #ARGV, 2 do
  local off = tonumber(ARGV[k]) * 8
  local cur = redis.call('GETRANGE', KEYS[1], off, off + 7)
  if string.len(cur) == 8 and string.sub(cur, 1, 4) ~= '\\0\\0\\0\\0' and string.byte(cur, 5) >= 128 then
    redis.call('SETRANGE', KEYS[1], off, '\\0\\0\\0\\0\\0\\0\\0\\0')
    redis.call('HINCRBY', KEYS[2], 'mb_done', -1)
    redis.call('HINCRBY', KEYS[2], 'mb_failed', -1)
    redis.call('HINCRBY', KEYS[2], 'items_failed', -tonumber(ARGV[k + 1]))
    table.insert(cleared, tonumber(ARGV[k]))
  end
end
redis.call('HDEL', KEYS[3], 'verdict_category', 'verdict_message')
return cleared
`;

type Reply = (string | number | null)[];

interface Scripts {
  stCommit(rec: string, acc: string, index: number, record: Buffer, ok: number, succeeded: number, failed: number): Promise<Reply>;
  stPoll(acc: string, meta: string, retries: number, timeouts: number, restarts: number): Promise<Reply>;
  stVerdict(meta: string, category: string, message: string): Promise<Reply>;
  stReset(rec: string, acc: string, meta: string, ...pairs: number[]): Promise<number[]>;
}

function counts(v: Reply, from: number): JobCounts {
  const n = (i: number): number => Number(v[from + i] ?? 0) || 0;
  return { mbDone: n(0), mbSucceeded: n(1), mbFailed: n(2), itemsSucceeded: n(3), itemsFailed: n(4), retries: n(5), timeouts: n(6), restarts: n(7) };
}

export class JobState {
  readonly keys: { readonly meta: string; readonly acc: string; readonly rec: string; readonly leader: string; readonly writers: string; readonly released: string; readonly input: string };
  private readonly r: RedisClient & Scripts;

  /** The state of the job on queue `name`. */
  constructor(client: RedisClient, name: string) {
    const base = stateBase(name);
    this.keys = { meta: `${base}:meta`, acc: `${base}:acc`, rec: `${base}:rec`, leader: `${base}:leader`, writers: `${base}:writers`, released: `${base}:released`, input: `${base}:input` };
    client.defineCommand('stCommit', { numberOfKeys: 2, lua: COMMIT });
    client.defineCommand('stPoll', { numberOfKeys: 2, lua: POLL });
    client.defineCommand('stVerdict', { numberOfKeys: 1, lua: VERDICT });
    client.defineCommand('stReset', { numberOfKeys: 3, lua: RESET });
    this.r = client as RedisClient & Scripts;
  }

  /** A new writer id for this node process (1, 2, ...): its output-journal entries are named by it. */
  async newWriter(): Promise<number> {
    return this.r.incr(this.keys.writers);
  }

  /** Become the node that enqueues, for `ttlMs` (refreshed while it enqueues); false when another node is. */
  async claimLeader(nodeId: string, ttlMs: number): Promise<boolean> {
    return (await this.r.set(this.keys.leader, nodeId, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async refreshLeader(nodeId: string, ttlMs: number): Promise<void> {
    const lua = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
    await this.r.eval(lua, 1, this.keys.leader, nodeId, ttlMs);
  }

  async meta(): Promise<Record<string, string>> {
    return this.r.hgetall(this.keys.meta);
  }

  /** The job's totals and the identity of its input (input-identity.ts), set once (a second leader finds them set; returns those that hold). */
  async setTotals(miniBatches: number, items: number, input: string, listing: Buffer): Promise<{ miniBatches: number; items: number; input: string | undefined }> {
    const k = this.keys;
    await this.r.multi().set(k.input, listing, 'NX').hsetnx(k.meta, 'total_mb', miniBatches).hsetnx(k.meta, 'total_items', items).hsetnx(k.meta, 'input', input).hsetnx(k.meta, 'started', Date.now()).exec();
    const m = await this.meta();
    return { miniBatches: Number(m.total_mb), items: Number(m.total_items), input: m.input };
  }

  /** The listing of the input the job was cut from (undefined: a job enqueued without one). */
  async inputListing(): Promise<Buffer | undefined> {
    return (await this.r.getBuffer(this.keys.input)) ?? undefined;
  }

  async setField(field: string, value: string | number): Promise<void> {
    await this.r.hset(this.keys.meta, field, value);
  }

  /** Count a mini-batch's end; `fresh` false when it had already been counted (by this or another node). */
  async commit(index: number, record: MiniBatchRecord, ok: boolean, succeeded: number, failed: number): Promise<{ fresh: boolean; counts: JobCounts }> {
    const v = await this.r.stCommit(this.keys.rec, this.keys.acc, index, encodeRecord(record), ok ? 1 : 0, succeeded, failed);
    return { fresh: Number(v[0]) === 1, counts: counts(v, 1) };
  }

  /** Add this node's retries, timeouts and restarts since the last poll; the job's counts and verdict. */
  async poll(retries: number, timeouts: number, restarts: number): Promise<{ counts: JobCounts; verdict: Verdict | undefined }> {
    const v = await this.r.stPoll(this.keys.acc, this.keys.meta, retries, timeouts, restarts);
    const verdict = typeof v[0] === 'string' ? ({ category: v[0], message: String(v[1] ?? '') } as Verdict) : undefined;
    return { counts: counts(v, 2), verdict };
  }

  /** Set the job's verdict unless one holds; returns the one that holds (the same on every node). */
  async proposeVerdict(v: Verdict): Promise<Verdict> {
    const r = await this.r.stVerdict(this.keys.meta, v.category, v.message);
    return { category: String(r[0]) as Verdict['category'], message: String(r[1] ?? '') };
  }

  /** Clear the failed ones among these mini-batches and the verdict; returns the indices cleared. */
  async resetFailed(miniBatches: readonly { readonly index: number; readonly items: number }[]): Promise<Set<number>> {
    const cleared = new Set<number>();
    for (let i = 0; i === 0 || i < miniBatches.length; i += 500) {
      const pairs = miniBatches.slice(i, i + 500).flatMap((mb) => [mb.index, mb.items]);
      for (const index of await this.r.stReset(this.keys.rec, this.keys.acc, this.keys.meta, ...pairs)) cleared.add(Number(index));
    }
    return cleared;
  }

  /** These mini-batches go back to the queue from this node (before BullMQ hears of it): their next start is not a lost run. */
  async noteReleased(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const m = this.r.multi();
    for (const id of ids) m.hincrby(this.keys.released, id, 1);
    await m.exec();
  }

  /** How many times this mini-batch went back to the queue from a node (see noteReleased). */
  async released(id: string): Promise<number> {
    return Number(await this.r.hget(this.keys.released, id)) || 0;
  }

  /** Forget the releases of these mini-batches (`--resume` puts them on the queue as new jobs). */
  async forgetReleased(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.r.hdel(this.keys.released, ...ids);
  }

  /** The record of one mini-batch (undefined: not finished). */
  async record(index: number): Promise<MiniBatchRecord | undefined> {
    const b = await this.r.getrangeBuffer(this.keys.rec, index * 8, index * 8 + 7);
    return b.length === 8 ? decodeRecord(b, 0) : undefined;
  }

  /** Every record (for the merge and for enqueueing only what is not finished). */
  async records(): Promise<Buffer> {
    return (await this.r.getBuffer(this.keys.rec)) ?? Buffer.alloc(0);
  }
}
