// `step-telemetry merge STEP_FOLDER`: write the job's merged files (merge.ts) from the node folders
// of a multi-node step, e.g. when its nodes died before one of them could. With --queue, the
// queue's records decide which run of each mini-batch counts (exact); without, the nodes' journals.
import fs from 'node:fs';
import path from 'node:path';
import { parseRunFolderArgs } from '../run-folder/cli-args.js';
import { mergeJob, type MergeResult } from './merge.js';
import { queueName } from './queue/names.js';
import { parseQueueUrl, type QueueAddress } from './queue/url.js';

export const MERGE_USAGE = `Usage: step-telemetry merge STEP_FOLDER [--queue URL]

Writes the job's merged files in STEP_FOLDER (the folder that holds node-<rank>/ folders, as
<dir>/<pipeline run>/<step>/): the output file with every counted row once (parallel_run_step.txt
beside the nodes' files), result.json (the job's status, cause and counts), processed-mini-batches.csv,
failed-items.jsonl and mini-batches.jsonl. The nodes of a shared queue write them as they end; run
this when they could not (nodes killed), or for a static split (node_count without a queue).

  --queue URL    the queue the job ran on (default STEP_TELEMETRY_QUEUE_URL): its records say which
                 run of each mini-batch counts; without it, the first node's journal entry counts

Exit code: 0 merged (whatever the job's status), 1 nothing to merge or an error, 2 a usage error.
`;

/** The step folder of a path: itself when it holds node folders, its parent for a node folder. */
function stepFolderOf(target: string): string {
  const folder = path.resolve(target);
  const hasNodes = (d: string): boolean => {
    try {
      return fs.readdirSync(d).some((n) => /^node-\d+$/.test(n));
    } catch {
      return false;
    }
  };
  if (hasNodes(folder)) return folder;
  if (/^node-\d+$/.test(path.basename(folder)) && hasNodes(path.dirname(folder))) return path.dirname(folder);
  throw new Error(`${target} holds no node-<rank> folders: give the step folder of a multi-node job (<dir>/<pipeline run>/<step>)`);
}

/** The pipeline run id and step id the job ran under (the queue's job name), from a node's step.json. */
function identityOf(stepFolder: string): { pipelineRunId: string; stepId: string } {
  for (const n of fs.readdirSync(stepFolder).filter((x) => /^node-\d+$/.test(x))) {
    try {
      const id = (JSON.parse(fs.readFileSync(path.join(stepFolder, n, 'step.json'), 'utf8')) as { identity?: { pipelineRunId?: string; stepId?: string } }).identity;
      if (id?.pipelineRunId && id.stepId) return { pipelineRunId: id.pipelineRunId, stepId: id.stepId };
    } catch {
      // another node's
    }
  }
  throw new Error(`no node folder of ${stepFolder} has a step.json naming its pipeline run and step (needed to find the job on the queue)`);
}

export async function main(argv: readonly string[]): Promise<number> {
  let queueUrl = process.env.STEP_TELEMETRY_QUEUE_URL?.trim() || undefined;
  const target = parseRunFolderArgs('merge', MERGE_USAGE, argv, (o) => {
    if (o.name !== '--queue') return false;
    queueUrl = o.value();
    return true;
  });
  if (typeof target === 'number') return target;
  let address: QueueAddress | undefined;
  if (queueUrl !== undefined) {
    const a = parseQueueUrl(queueUrl);
    if (typeof a === 'string') {
      process.stderr.write(`step-telemetry merge: --queue: expected ${a}\n`);
      return 2;
    }
    address = a;
  }
  let merged: MergeResult;
  try {
    const folder = stepFolderOf(target);
    if (address) {
      const { withJobRecords } = await import('./queue/merge-lock.js');
      const id = identityOf(folder);
      const name = queueName(id.pipelineRunId, id.stepId);
      const r = await withJobRecords(address, name, (records) => mergeJob(folder, { records, queue: address!.display }));
      if (!r) throw new Error(`the queue at ${address.display} does not hold job ${name} (any more); merge without --queue to use the nodes' journals`);
      merged = r;
    } else merged = mergeJob(folder);
  } catch (error) {
    process.stderr.write(`step-telemetry merge: ${(error as Error).message}\n`);
    return 1;
  }
  if (merged.error) {
    process.stderr.write(`step-telemetry merge: ${merged.error}\n`);
    return 1;
  }
  process.stdout.write(`merged ${merged.nodes} node folders of ${merged.folder}: job ${merged.status ?? 'without a result (no node wrote result.json)'}; ${merged.rows} rows in ${merged.output ?? '(no output file)'}\n`);
  return 0;
}
