// The queue's address: `redis://[user:password@]host:port/db` (or `rediss://` for TLS). The
// password never leaves this module except in the connection options: everything the runner
// prints or writes shows `redactQueueUrl()`.

export interface QueueAddress {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
  /** The URL without its credentials (`redis://***@host:6379/0` when it had some). */
  readonly display: string;
}

/** Parse a queue URL; returns the reason when it is not one. */
export function parseQueueUrl(text: string): QueueAddress | string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return 'a URL such as redis://host:6379/0';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return `a redis:// or rediss:// URL (not ${url.protocol}//)`;
  if (url.hostname === '') return 'a URL with a host, such as redis://host:6379/0';
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 65535) return 'a database number after the port (redis://host:6379/0)';
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const creds = username !== undefined || password !== undefined ? '***@' : '';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, db, username, password, tls: url.protocol === 'rediss:', display: `${url.protocol}//${creds}${url.host}/${db}` };
}

/** What the runner may show of a queue URL: never its credentials (also for a URL that does not parse). */
export function redactQueueUrl(text: string): string {
  const a = parseQueueUrl(text);
  return typeof a === 'string' ? text.replace(/\/\/[^@/]*@/, '//***@') : a.display;
}

/** ioredis options for an address (also what BullMQ's `connection` takes). */
export function redisOptions(a: QueueAddress): Record<string, unknown> {
  return {
    host: a.host,
    port: a.port,
    db: a.db,
    ...(a.username !== undefined ? { username: a.username } : {}),
    ...(a.password !== undefined ? { password: a.password } : {}),
    ...(a.tls ? { tls: {} } : {}),
    // a Redis that is gone must not hold the runner: the job's own bound decides (see redis-liveness.ts)
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(200 * times, 1000),
  };
}
