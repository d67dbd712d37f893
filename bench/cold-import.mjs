// Cold import: a fresh process per sample, timing `await import(X)` from the first line. X is the
// package (no backend configured: no exporter module loads) or @opentelemetry/sdk-node alone, the
// baseline. Prints the medians as JSON. `node bench/cold-import.mjs [rounds]`
import { execFileSync } from 'node:child_process';

const rounds = Number(process.argv[2] ?? 9);
const probe = (specifier) =>
  Number(execFileSync(process.execPath, ['--input-type=module', '-e', `const t=performance.now(); await import(${JSON.stringify(specifier)}); console.log(performance.now()-t)`], { encoding: 'utf8' }).trim());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ours = [];
const sdk = [];
for (let i = 0; i < rounds; i++) {
  // alternate, so both sides see the same load
  ours.push(probe('step-telemetry'));
  sdk.push(probe('@opentelemetry/sdk-node'));
}
console.log(JSON.stringify({ stepTelemetryMs: median(ours), sdkNodeMs: median(sdk), ratio: median(ours) / median(sdk) }));
