// File descriptors the package holds open (output, reports, local files, console copies).
import fs from 'node:fs';

/** Close `fd` if it is open, ignoring errors (it is closed or gone either way); returns undefined, for `this.fd = closeQuietly(this.fd)`. */
export function closeQuietly(fd: number | undefined): undefined {
  if (fd === undefined) return undefined;
  try {
    fs.closeSync(fd);
  } catch {
    // already closed, or the disk is gone: nothing more to do
  }
  return undefined;
}
