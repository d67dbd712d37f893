// A backend that one process of a step found silent is not waited for again by the next: the
// runner's workers end before its parent, in the same run folder, and each leaves its export
// summary (with a verdict per backend) in its step.process-N.json. The parent reads them at its
// end; a backend a worker found silent since the parent started gets the parent's last export sent
// but not awaited (src/otel/sdk.ts). Nothing here throws.
import fs from 'node:fs';
import path from 'node:path';
import type { ExportHealth } from './export-health.js';

/** The healths whose backend a sibling process of this step (same run folder) found silent after `since`. */
export function presumedSilent(folder: string, since: number, healths: readonly ExportHealth[]): Set<ExportHealth> {
  const out = new Set<ExportHealth>();
  if (healths.length === 0) return out;
  let names: string[];
  try {
    names = fs.readdirSync(folder).filter((n) => /^step\.process-\d+\.json$/.test(n));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const file = path.join(folder, name);
      if (fs.statSync(file).mtimeMs < since) continue;
      const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { exports?: Array<{ backend?: string; signal?: string; target?: string; verdict?: string }> };
      for (const e of info.exports ?? []) {
        if (e.verdict !== 'silent') continue;
        for (const h of healths) if (h.backend === e.backend && h.signal === e.signal && h.target === e.target) out.add(h);
      }
    } catch {
      // a file being written, or not ours
    }
  }
  return out;
}
