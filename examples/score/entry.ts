// Demo pipeline step 3 of 3: score. The entry script of the mini-batch runner
// (`step-telemetry parallel-run --entry-script examples/score/entry.ts ...`): init() loads the
// model the train step saved, once per worker process; run() classifies one mini-batch of PGM
// files and returns one row per image it could score. A corrupt file gets no row: it is reported
// with context.failItem() (so the error summary names it and says why) and counts as a failed
// item against error_threshold. TypeScript, run without a build step.
//
// Arguments (after `--` on the runner's command line):
//   --model FILE   the model (default $DEMO_MODEL_DIR/model.json, else ./demo-output/model/model.json)
import path from 'node:path';
import { parseArgs } from 'node:util';
import { IMAGE_HEIGHT, IMAGE_WIDTH, PgmFormatError, parseDigitFileName, readPgm } from '../lib/mnist-data.js';
import { loadModel, type SoftmaxModel } from '../lib/softmax-model.js';
import type { InitContext, RunContext } from 'step-telemetry';

let model: SoftmaxModel | undefined;

export function init(context: InitContext): void {
  const { values } = parseArgs({ args: [...context.args], options: { model: { type: 'string' } }, strict: false });
  const file =
    typeof values.model === 'string'
      ? path.resolve(values.model)
      : path.join(process.env.DEMO_MODEL_DIR || path.resolve(process.env.DEMO_OUTPUT_DIR || 'demo-output', 'model'), 'model.json');
  model = loadModel(file);
  context.logger.info('model loaded', { model: model.name, model_path: file, worker: context.worker });
}

/** One output row: which file, what the model says, and whether that matches the file's label. */
interface ScoreRow {
  file: string;
  predicted: number;
  probability: number;
  label: number | null;
  correct: boolean | null;
}

export function run(miniBatch: string[], context: RunContext): ScoreRow[] {
  const rows: ScoreRow[] = [];
  let correct = 0;
  for (const file of miniBatch) {
    let pixels: Uint8Array;
    try {
      pixels = readPgm(file, { width: IMAGE_WIDTH, height: IMAGE_HEIGHT }).pixels;
    } catch (error) {
      if (!(error instanceof PgmFormatError)) throw error; // anything else is a bug: fail the mini-batch
      context.failItem(file, error.reason);
      context.logger.warn('skipped a corrupt image', { file: path.basename(file), reason: error.reason });
      continue;
    }
    const { label: predicted, probabilities } = model!.predict(pixels);
    const label = parseDigitFileName(file)?.label ?? null;
    if (label === predicted) correct++;
    rows.push({
      file: path.basename(file),
      predicted,
      probability: Math.round(probabilities[predicted]! * 10_000) / 10_000,
      label,
      correct: label === null ? null : label === predicted,
    });
  }
  context.logger.info('scored a mini-batch', { images: miniBatch.length, scored: rows.length, correct });
  return rows;
}
