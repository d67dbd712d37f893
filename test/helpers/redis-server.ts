// A real redis-server for the queue tests: on 127.0.0.1, a free port, a temp dir, no persistence;
// stopped (SIGKILL if need be) when the test ends, or earlier with stop().
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { onTestFinished } from 'vitest';
import { useTempDir } from './run-step.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stop it now (SIGKILL: as a Redis that goes away). */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => c.write('PING\r\n'));
    c.once('data', (d) => {
      c.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    c.once('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await useTempDir('redis-');
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void gone.then(() => {
    exited = true;
  });
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGKILL');
    await gone;
  };
  onTestFinished(stop);
  for (let i = 0; i < 200 && !exited; i++) {
    if (await answers(port)) return { port, url: `redis://127.0.0.1:${port}/0`, stop };
    await new Promise((r) => setTimeout(r, 25));
  }
  await stop();
  throw new Error(`redis-server did not answer on port ${port}`);
}
