// Where a job lives on Redis: BullMQ's queue of its mini-batches and the job's own state beside it
// (job-state.ts), both under one prefix and named by the pipeline run id and the step id.

/** The prefix of every key of a job (BullMQ's and the job state's). */
export const QUEUE_PREFIX = 'step-telemetry';

/** `<pipeline run id>.<step id>` with what BullMQ does not allow in a queue name (`:`) replaced. */
export function queueName(pipelineRunId: string, stepId: string): string {
  return `${pipelineRunId}.${stepId}`.replace(/[:\s]/g, '_');
}

/** The base of the keys of the job state of the job on queue `name`. */
export function stateBase(name: string): string {
  return `${QUEUE_PREFIX}:${name}:st`;
}
