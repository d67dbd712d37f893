// A chunk for a worker: the attempts of the mini-batches picked for it (each with its span id and
// export decision drawn now) and the run message that carries them (RunPacker in protocol.ts).
import type { WorkerProcess } from './pool.js';
import { RunPacker, type RunMessage } from './protocol.js';
import type { Attempt, AttemptIds } from './scheduler.js';
import type { MiniBatchState } from './source.js';

/** `ahead`: the worker still runs attempts sent before (the chunk is sent in advance). */
export function packChunk(picked: readonly MiniBatchState[], w: WorkerProcess, t: AttemptIds, ahead: boolean): { attempts: Attempt[]; message: RunMessage } {
  const attempts: Attempt[] = [];
  const packer = new RunPacker(t.trace);
  for (let i = 0; i < picked.length; i++) {
    const st = picked[i]!;
    const no = ++st.attempts;
    const mb = st.mb;
    const spanId = t.newSpanId();
    const exportProbability = t.sampleForExport();
    st.task ??=
      mb.kind === 'files'
        ? { kind: 'files', files: mb.files }
        : mb.kind === 'keyed'
          ? { kind: 'keyed', keys: mb.keys, parts: mb.parts }
          : { kind: 'tabular', file: mb.file, format: mb.format, start: mb.start, end: mb.end, firstRow: mb.firstRow, firstLine: mb.firstLine, header: mb.header };
    attempts.push({ id: mb.id, no, last: i === picked.length - 1, st, worker: w, spanId, exportProbability, prefetched: ahead || i > 0, chunk: picked.length });
    packer.add(mb.id, no, spanId, mb.items, st.task, exportProbability > 0);
  }
  return { attempts, message: packer.take() };
}
