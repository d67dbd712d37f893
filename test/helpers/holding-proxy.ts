// A loopback TCP proxy in front of a local server that holds one client's traffic on cue: once a
// client sends bytes holding `marker` (a command naming a key, say), what it sends from then on waits
// in the proxy until release(), so that the client stands still at a known point of its protocol
// while the test makes something else happen. Every other connection, and that one before the cue,
// passes through. Closed when the test ends.
import net from 'node:net';
import { onTestFinished } from 'vitest';

export interface HoldingProxy {
  readonly port: number;
  /** Resolves once a client sent `marker` (the bytes with it are held). */
  readonly held: Promise<void>;
  /** Let the held bytes and the rest of that connection through. */
  release(): void;
}

export async function holdingProxy(targetPort: number, marker: string): Promise<HoldingProxy> {
  const cue = Buffer.from(marker);
  let cued = false;
  let onHeld!: () => void;
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  let release: () => void = () => {};
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (s === client ? upstream : client).destroy());
    }
    upstream.pipe(client);
    let waiting: Buffer[] | undefined;
    let tail = Buffer.alloc(0); // the cue may span two chunks
    client.on('data', (chunk: Buffer) => {
      if (waiting) {
        waiting.push(chunk);
        return;
      }
      const seen = Buffer.concat([tail, chunk]);
      tail = seen.subarray(Math.max(0, seen.length - cue.length + 1));
      if (cued || !seen.includes(cue)) {
        upstream.write(chunk);
        return;
      }
      cued = true;
      waiting = [chunk];
      release = () => {
        for (const c of waiting ?? []) upstream.write(c);
        waiting = undefined;
      };
      onHeld();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, held, release: () => release() };
}
