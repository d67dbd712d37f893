// Why a file could not be read, in words: `ENOENT: no such file or directory, open 'a.csv'`
// (the code first when the message does not start with it), for failed items and their reports.

/** The error's message, led by its errno code (`ENOENT: ...`) when it has one the message does not start with. */
export function errnoText(error: unknown): string {
  const e = error as NodeJS.ErrnoException | undefined;
  return e?.code && !String(e.message).startsWith(e.code) ? `${e.code}: ${e.message}` : String((e as Error | undefined)?.message ?? e);
}
