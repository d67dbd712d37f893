// node_count and node_rank: the options, else the same environment variables as startStep() reads
// (src/identity.ts: Azure ML's, a Kubernetes indexed job's, torchrun's), so that a runner and the
// steps beside it agree on where they run. A rank from node_count up is an issue with both numbers.
import { EnvReader, type Env } from '../config.js';
import { resolveIdentity } from '../identity.js';
import { show, type ConfigValues } from './config-values.js';

/** Where startStep() reads the node count and rank from (src/identity.ts), in order. */
const NODE_COUNT_VARIABLES = ['STEP_TELEMETRY_NODE_COUNT', 'AZ_BATCHAI_NODE_COUNT', 'AZUREML_NODE_COUNT', 'WORLD_SIZE'];
const NODE_RANK_VARIABLES = ['STEP_TELEMETRY_NODE_RANK', 'JOB_COMPLETION_INDEX', 'AZ_BATCHAI_TASK_INDEX', 'NODE_RANK'];

/** This node's count and rank; `reader` reads `env` (its issues are the environment's). */
export function nodePlace(v: ConfigValues, env: Env, reader: EnvReader): { nodeCount: number; nodeRank: number } {
  const nodeCountOpt = v.raw('node_count') !== undefined ? v.int('node_count', 1, 1, 100_000) : undefined;
  const nodeRankOpt = v.raw('node_rank') !== undefined ? v.int('node_rank', 0, 0, 100_000) : undefined;
  const identity = resolveIdentity({ nodeCount: nodeCountOpt, nodeRank: nodeRankOpt }, env, reader);
  for (const issue of reader.issues) {
    if (issue.variable === 'STEP_TELEMETRY_NODE_RANK') continue; // rank >= count: reported below with the real numbers
    if (NODE_COUNT_VARIABLES.includes(issue.variable) || NODE_RANK_VARIABLES.includes(issue.variable)) {
      v.issues.push({ field: NODE_RANK_VARIABLES.includes(issue.variable) ? 'node_rank' : 'node_count', source: issue.variable, expected: issue.expected, got: show(env[issue.variable]) });
    }
  }
  const nodeCount = identity.nodeCount;
  let nodeRank = nodeRankOpt ?? new EnvReader(env).firstInt(NODE_RANK_VARIABLES, 0) ?? 0; // a reader of its own: its issues are reported above
  if (nodeRank >= nodeCount) {
    const from = nodeRankOpt !== undefined ? v.raw('node_rank')!.source : (NODE_RANK_VARIABLES.find((n) => reader.string(n) !== undefined) ?? 'node_rank');
    v.issues.push({ field: 'node_rank', source: from, expected: `a rank from 0 to node_count - 1 = ${nodeCount - 1}`, got: String(nodeRank) });
    nodeRank = 0;
  }
  return { nodeCount, nodeRank };
}
