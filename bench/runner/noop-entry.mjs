// The benchmark's entry script: run() returns its mini-batch, after `--busy-iterations N` of CPU
// work (see busy.mjs).
import { spin } from './busy.mjs';

let iterations = 0;
let sink = 0;
export function init(context) {
  const i = context.args.indexOf('--busy-iterations');
  iterations = i >= 0 ? Number(context.args[i + 1]) : 0;
}
export function run(miniBatch) {
  if (iterations > 0) sink ^= spin(iterations);
  if (sink === 0.5) throw new Error('unreachable');
  return miniBatch;
}
