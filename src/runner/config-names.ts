// The names of parallel-run's configuration (ParallelRunConfig's, as Azure ML spells them), in the
// order the usage text lists them, and the CLI flag of each.
import type { ParallelRunConfig } from './types.js';

/** Every configuration name, in the order the usage text lists them. */
export const CONFIG_FIELDS = [
  'entry_script',
  'input',
  'output',
  'config',
  'input_type',
  'input_pattern',
  'mini_batch_size',
  'partition_keys',
  'error_threshold',
  'allowed_failed_count',
  'allowed_failed_percent',
  'progress_update_timeout',
  'first_task_creation_timeout',
  'output_action',
  'append_row_file_name',
  'process_count_per_node',
  'node_count',
  'node_rank',
  'run_invocation_timeout',
  'run_max_try',
  'shutdown_timeout',
  'logging_level',
  'arguments',
  'environment_variables',
  'step_name',
  'progress_interval',
  'queue',
  'queue_lock_duration',
  'resume',
  'input_failed',
] as const satisfies readonly (keyof ParallelRunConfig)[];

export type ConfigField = (typeof CONFIG_FIELDS)[number];

/** Flag name for a config name: `mini_batch_size` → `--mini-batch-size`. */
export function flagName(field: string): string {
  return `--${field.replace(/_/g, '-')}`;
}
