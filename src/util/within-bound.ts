// A bound on waiting: never holds the process, never rejects.

/** True when `work` settled within `ms`. The timer never holds the process. */
export function withinBound(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(done, done);
  });
}
