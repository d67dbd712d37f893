// The step.process-N.json of a worker whose step never started. A slot's first worker runs its
// first mini-batch before loading its step (worker-start.ts); one that dies in it (process.exit(),
// a native crash, a SIGKILL) leaves no process file of its own. The runner writes it when the
// process ends without one, so that every worker process has its file in the run folder (the
// reader, the report and doctor read them): its identity, its times, `"outcome": "crashed"` and
// how it ended (or `"terminated"` and `"stopped_by": "runner"` when the runner ended it: a
// timeout), `"written_by": "runner"`. Its console output is in console.process-N.log, and the
// crash is on the attempt's span and report row as for any worker; it has no resource samples.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeAtomic } from './reports.js';

export interface UnstartedWorker {
  readonly name: string;
  readonly processIndex: number;
  readonly pid: number | undefined;
  /** Epoch ms of its fork and of its end. */
  readonly startedAt: number;
  readonly exitedAt: number | undefined;
}

/**
 * Write `step.process-<n>.json` for `w`, which ended (`how`: `exited with code 3`, ...; `byRunner`:
 * the runner ended it), unless its step wrote one. `stepEnv`: the step's part of the workers' environment (its identity). Never throws.
 */
export function writeUnstartedWorkerFile(runFolder: string, w: UnstartedWorker, stepEnv: Readonly<Record<string, string | undefined>>, exit: { code: number | null; signal: NodeJS.Signals | null; how: string; byRunner: boolean }): void {
  const file = path.join(runFolder, `step.process-${w.processIndex}.json`);
  try {
    // its own step's file; one of another process (a run resumed into this folder) is replaced, as its step would have
    if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')) as { identity?: { pid?: unknown } }).identity?.pid === w.pid) return;
  } catch {
    return; // being written, or unreadable: not ours to replace
  }
  try {
    fs.mkdirSync(runFolder, { recursive: true });
  } catch {
    return;
  }
  const json = {
    identity: {
      stepName: stepEnv.STEP_TELEMETRY_STEP_NAME,
      stepId: stepEnv.STEP_TELEMETRY_STEP_ID,
      runId: stepEnv.STEP_TELEMETRY_RUN_ID,
      pipelineRunId: stepEnv.STEP_TELEMETRY_PIPELINE_RUN_ID,
      pipelineName: stepEnv.STEP_TELEMETRY_PIPELINE_NAME,
      nodeRank: Number(stepEnv.STEP_TELEMETRY_NODE_RANK),
      nodeCount: Number(stepEnv.STEP_TELEMETRY_NODE_COUNT),
      processIndex: w.processIndex,
      host: os.hostname(),
      pid: w.pid,
    },
    worker: w.name,
    started: new Date(w.startedAt).toISOString(),
    ended: new Date(w.exitedAt ?? Date.now()).toISOString(),
    outcome: exit.byRunner ? 'terminated' : 'crashed',
    ...(exit.byRunner ? { stopped_by: 'runner' } : {}),
    reason: `${w.name} ${exit.how} before its step started`,
    exit: { code: exit.code, signal: exit.signal },
    written_by: 'runner',
    diagnostics: [],
  };
  writeAtomic(file, `${JSON.stringify(json, null, 2)}\n`);
}
