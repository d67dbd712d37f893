// Demo pipeline step 2 of 3: train.
//
// Loads the train (and validation) split the prepare step wrote, trains a softmax-regression
// digit classifier, logs loss and accuracy per epoch, the final per-class metrics and confusion
// matrix on the validation split, and saves the model file for the score step.
//
//   node --import tsx examples/steps/train.ts [--data DIR] [--out DIR] [--epochs N]
//                                           [--learning-rate X] [--batch-size N] [--seed N]
//
// Reads DIR/train.json and, when present, DIR/validation.json (DIR default ./demo-output/data).
// Writes OUT/model.json and OUT/metrics.json (OUT default ./demo-output/model).
import fs from 'node:fs';
import path from 'node:path';
import { startStep } from 'step-telemetry';
import { optionReader, parseFlags, parseOrExit } from '../lib/cli.js';
import { readDigitSplit } from '../lib/mnist-data.js';
import { SoftmaxModel, evaluate, saveModel, type EpochStats } from '../lib/softmax-model.js';

const USAGE = `Usage: node --import tsx examples/steps/train.ts [options]

  --data DIR           folder with train.json / validation.json from the prepare step
                       (env DEMO_DATA_DIR; default $DEMO_OUTPUT_DIR/data or ./demo-output/data)
  --out DIR            folder for model.json and metrics.json
                       (env DEMO_MODEL_DIR; default $DEMO_OUTPUT_DIR/model or ./demo-output/model)
  --epochs N           passes over the training data (env DEMO_EPOCHS; default 5)
  --learning-rate X    SGD step size (env DEMO_LEARNING_RATE; default 0.2)
  --batch-size N       samples per gradient step (env DEMO_BATCH_SIZE; default 32)
  --seed N             weight init and shuffle seed (env DEMO_SEED; default 42)`;

const options = parseOrExit(USAGE, () => {
  const { values, help } = parseFlags(['data', 'out', 'epochs', 'learning-rate', 'batch-size', 'seed']);
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const read = optionReader(values);
  return {
    dataDir: read.folder('data', 'DEMO_DATA_DIR', 'data'),
    modelDir: read.folder('out', 'DEMO_MODEL_DIR', 'model'),
    epochs: read.int('epochs', 'DEMO_EPOCHS', 5, 1),
    learningRate: read.positive('learning-rate', 'DEMO_LEARNING_RATE', 0.2),
    batchSize: read.int('batch-size', 'DEMO_BATCH_SIZE', 32, 1),
    seed: read.int('seed', 'DEMO_SEED', 42),
  };
});

const step = await startStep({ name: 'train' });
try {
  const { dataDir, modelDir, epochs, learningRate, batchSize, seed } = options;
  step.logger.info('training', { data_dir: dataDir, model_dir: modelDir, epochs, learning_rate: learningRate, batch_size: batchSize, seed });

  const { train, validation } = await step.span('load-splits', async (span) => {
    const trainFile = path.join(dataDir, 'train.json');
    const validationFile = path.join(dataDir, 'validation.json');
    if (!fs.existsSync(trainFile)) {
      throw new Error(`No training split at ${trainFile}: run the prepare step first (or pass --data)`);
    }
    const train = readDigitSplit(trainFile);
    const validation = fs.existsSync(validationFile) ? readDigitSplit(validationFile) : [];
    span.setAttributes({ 'split.train': train.length, 'split.validation': validation.length });
    return { train, validation };
  });
  step.logger.info('loaded the splits', { train: train.length, validation: validation.length });
  step.log('train_samples', train.length);
  step.log('validation_samples', validation.length);

  const model = SoftmaxModel.create({ seed });
  step.setTags({ model: model.name, model_family: 'softmax-regression', optimizer: 'minibatch-sgd' });

  const history: EpochStats[] = [];
  const result = await step.span('train', async (span) => {
    span.setAttributes({ epochs, learning_rate: learningRate, batch_size: batchSize, samples: train.length });
    return model.train(train, {
      epochs,
      learningRate,
      batchSize,
      validation,
      onEpoch: (epoch, stats) => {
        history.push(stats);
        step.log('loss', stats.loss, { step: epoch });
        step.log('accuracy', stats.accuracy, { step: epoch });
        if (stats.validationLoss !== undefined) step.log('val_loss', stats.validationLoss, { step: epoch });
        if (stats.validationAccuracy !== undefined) step.log('val_accuracy', stats.validationAccuracy, { step: epoch });
        span.addEvent('epoch', { epoch, loss: stats.loss, accuracy: stats.accuracy });
        step.logger.info(`epoch ${epoch}/${epochs}`, {
          epoch,
          loss: round(stats.loss),
          accuracy: round(stats.accuracy),
          ...(stats.validationAccuracy !== undefined ? { val_accuracy: round(stats.validationAccuracy) } : {}),
        });
      },
    });
  });
  step.log('train_seconds', result.durationMs / 1000);
  step.logList('loss_curve', history.map((h) => h.loss));
  step.logList('accuracy_curve', history.map((h) => h.accuracy));

  // Final metrics on the held-out split (the training data when there is none).
  const evalSet = validation.length > 0 ? validation : train;
  const evalName = validation.length > 0 ? 'validation' : 'train';
  const evaluation = await step.span('evaluate', async (span) => {
    const e = evaluate(model, evalSet);
    span.setAttributes({ 'eval.split': evalName, 'eval.samples': e.count, 'eval.accuracy': e.accuracy });
    return e;
  });
  step.log('final_accuracy', evaluation.accuracy);
  step.log('final_loss', evaluation.loss);
  for (const c of evaluation.perClass) {
    step.logRow('per_class', { digit: c.digit, precision: c.precision, recall: c.recall, f1: c.f1, support: c.support });
  }
  const { actual, predicted, count } = evaluation.confusion;
  step.logTable('confusion', { actual, predicted, count });
  step.logger.info('evaluated the model', { split: evalName, samples: evaluation.count, accuracy: round(evaluation.accuracy) });

  const modelFile = path.join(modelDir, 'model.json');
  await step.span('save-model', async (span) => {
    saveModel(modelFile, model);
    fs.writeFileSync(
      path.join(modelDir, 'metrics.json'),
      `${JSON.stringify({ split: evalName, accuracy: evaluation.accuracy, loss: evaluation.loss, perClass: evaluation.perClass, epochs: history }, null, 2)}\n`,
    );
    span.setAttribute('model.path', modelFile);
  });
  step.logger.info('model saved', { model_path: modelFile, model: model.name });
  await step.end();
} catch (error) {
  // end() records the failure (outcome, error log with stack, span status) and flushes.
  await step.end({ error });
  process.exitCode = 1;
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
