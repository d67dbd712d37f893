// The end-of-step line of a backend that did not get everything: how much arrived, and for the
// rest, why (a full queue, failed batches, still queued when the step stopped waiting, or sampled
// out by the export rate policy at runner rates). Counts only: never the records themselves.
import type { ExportSummary } from '../types.js';

const NOUNS: Readonly<Record<string, string>> = { logs: 'log records', traces: 'spans' };

export function describeExport(s: ExportSummary, queue: { readonly variable: string; readonly limit: number } | undefined): string {
  const failures = `${s.failedBatches} of ${s.batches} batches failed`;
  const error = s.lastError === undefined ? '' : `; last error: ${s.lastError}${s.hint ? ` (${s.hint})` : ''}`;
  const n = s.notExported;
  if (n === undefined) return `${s.backend} ${s.signal} export to ${s.target}: ${failures}${error}.`;
  const noun = NOUNS[s.signal] ?? 'items';
  const why: string[] = [];
  if (n.queueFull > 0) {
    const limit = queue ? ` (${queue.variable}=${queue.limit}; raise it for bursts)` : '';
    why.push(`${n.queueFull} dropped because the export queue was full${limit}: recording outpaced the backend`);
  }
  if (n.exportFailed > 0) why.push(`${n.exportFailed} in failed batches`);
  if (n.unsent > 0) why.push(`${n.unsent} still queued when the step stopped waiting for the backend`);
  const lost = s.droppedItems > 0 ? `; ${s.droppedItems} of ${s.offeredItems} ${noun} not delivered${why.length > 0 ? `: ${why.join(', ')}` : ''}` : '';
  const sampled =
    n.rateSampledOut > 0
      ? `; ${n.rateSampledOut} mini-batch spans sampled out at the rate the backend sustained (probability down to ${s.lowestSamplingProbability}, stated on each exported one), every failed, retried, timed-out and slow one exported`
      : '';
  return `${s.backend} ${s.signal} export to ${s.target}: ${failures}${lost}${sampled}${error}.`;
}
