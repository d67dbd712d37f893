// A runner worker's messages to the parent (the runner), over the IPC channel; their times are
// epoch ms (epoch()).
import { performance } from 'node:perf_hooks';
import type { WorkerMessage } from './protocol.js';

export function send(message: WorkerMessage): void {
  try {
    process.send?.(message, undefined, undefined, ignoreSendError);
  } catch {
    // the parent is gone; 'disconnect' ends this process
  }
}

/** A failed send (the parent is gone) is not an error event; 'disconnect' ends this process. */
function ignoreSendError(): void {}

/** Send and wait until the message is written (at most a second): the process exits right after. */
export function sendAndWait(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    try {
      if (process.send === undefined) done();
      else process.send(message, undefined, undefined, done);
    } catch {
      done();
    }
  });
}

/** performance.now() as epoch ms (with a fraction), comparable across processes. */
export function epoch(now: number): number {
  return performance.timeOrigin + now;
}
