// The benchmark's entry script: run() returns its mini-batch, after `--busy-iterations N` of CPU
// work (see busy.mjs), or after waiting `--sleep-ms MS` (work that leaves the CPU to others: the
// queue benchmark's 100 ms mini-batch, so that what it measures is the runner's added time).
import { spin } from './busy.mjs';

let iterations = 0;
let sleepMs = 0;
let sink = 0;
export function init(context) {
  const arg = (name) => {
    const i = context.args.indexOf(name);
    return i >= 0 ? Number(context.args[i + 1]) : 0;
  };
  iterations = arg('--busy-iterations');
  sleepMs = arg('--sleep-ms');
}
export async function run(miniBatch) {
  if (iterations > 0) sink ^= spin(iterations);
  if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
  if (sink === 0.5) throw new Error('unreachable');
  return miniBatch;
}
