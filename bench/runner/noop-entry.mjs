// The benchmark's entry script: run() returns its mini-batch, after `--busy-ms N` of CPU work.
let busyMs = 0;
export function init(context) {
  const i = context.args.indexOf('--busy-ms');
  busyMs = i >= 0 ? Number(context.args[i + 1]) : 0;
}
export function run(miniBatch) {
  if (busyMs > 0) {
    const end = performance.now() + busyMs;
    while (performance.now() < end);
  }
  return miniBatch;
}
