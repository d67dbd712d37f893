// What this node holds on the queue: every mini-batch it pulled is a BullMQ job leased to it (a
// lock and its token) until it is acknowledged, sent back for a retry, or given back. Held are the
// runnable ones (in the buffer, or out to a worker) and the unreadable inputs the Job fails; the
// buffer is those not handed out yet, in order. Every lease is renewed each half lock duration
// (renew); at the job's end on this node, what it holds and did not finish goes back (release),
// noted as released first, so that its next start costs no try.
import type { Job as BullJob, Worker } from 'bullmq';
import type { MiniBatchState } from '../source.js';
import { errorText, withTimeout } from './connection.js';
import type { JobState } from './job-state.js';
import type { RedisLiveness } from './redis-liveness.js';

export interface Lease {
  readonly job: BullJob;
  readonly token: string;
}

export class Leases {
  /** Held and not handed out yet, in order. */
  buffer: MiniBatchState[] = [];
  private readonly held = new Map<MiniBatchState, Lease>();
  private readonly heldUnreadable = new Map<string, Lease>();
  private pending: Promise<void> | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly state: JobState,
    private readonly lockMs: number,
    private readonly liveness: RedisLiveness,
    private readonly notice: (text: string) => void,
  ) {}

  hold(st: MiniBatchState, lease: Lease): void {
    this.held.set(st, lease);
  }

  holdUnreadable(id: string, lease: Lease): void {
    this.heldUnreadable.set(id, lease);
  }

  /** Back to the front of the buffer (taken and not run), unless its lease was lost meanwhile. */
  putBack(st: MiniBatchState): void {
    if (this.held.has(st)) this.buffer.unshift(st);
  }

  /** No longer held here: its lease, to acknowledge or send back (undefined: this node lost it). */
  end(st: MiniBatchState): Lease | undefined {
    const lease = this.held.get(st);
    this.held.delete(st);
    return lease;
  }

  endUnreadable(id: string): Lease | undefined {
    const lease = this.heldUnreadable.get(id);
    this.heldUnreadable.delete(id);
    return lease;
  }

  /** A failed attempt with tries left goes back on the queue (BullMQ's retry: any node may run its next try); `then` once it is there. */
  retry(st: MiniBatchState, then: () => void): void {
    const lease = this.end(st);
    if (!lease) return;
    const e = st.lastError;
    const error = new Error(e ? `${e.category}: ${e.message}` : 'attempt failed');
    lease.job.moveToFailed(error, lease.token, false).then(then, (err: unknown) =>
      this.notice(`${st.mb.id}: cannot send it back for its retry: ${errorText(err)}; its lease expires and another node retries it`),
    );
  }

  /** Renew every lease held (the lease timer); one that expired meanwhile is another node's now. */
  async renew(): Promise<void> {
    const held = [...this.held.entries(), ...[...this.heldUnreadable.values()].map((h) => [undefined, h] as const)];
    if (held.length === 0) return;
    try {
      const failed = await this.worker.extendJobLocks(
        held.map(([, h]) => h.job.id!),
        held.map(([, h]) => h.token),
        this.lockMs,
      );
      this.liveness.replied();
      for (const id of failed) {
        const i = this.buffer.findIndex((s) => s.mb.id === id);
        if (i >= 0) {
          const [st] = this.buffer.splice(i, 1);
          this.held.delete(st!);
        }
        this.notice(`${id}: this node's lease on it expired (it was too slow to renew it); another node runs it, and only one run counts`);
      }
    } catch (error) {
      this.liveness.noteError(error);
    }
  }

  /** Give back everything held, noted as released (not lost) first; bounded, never rejects. */
  release(): Promise<void> {
    if (this.pending) return this.pending;
    const hs = [...this.held.values(), ...this.heldUnreadable.values()];
    this.held.clear();
    this.heldUnreadable.clear();
    this.buffer = [];
    const back = async (): Promise<void> => {
      await this.state.noteReleased(hs.map((h) => h.job.id!));
      await Promise.all(hs.map((h) => h.job.moveToWait(h.token).catch(() => {})));
    };
    this.pending = hs.length === 0 ? Promise.resolve() : withTimeout(back(), 5000, 'release').catch(() => {}); // Redis gone: the leases expire by themselves
    return this.pending;
  }

  /** The release under way, if one began (close() waits for it). */
  get releasing(): Promise<void> | undefined {
    return this.pending;
  }

  /** A job pulled after the job ended here goes straight back, noted as released. */
  async releaseLate(id: string, job: BullJob, token: string): Promise<void> {
    await this.state.noteReleased([id]).catch(() => {});
    await job.moveToWait(token).catch(() => {});
  }
}
