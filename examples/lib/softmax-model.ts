// A small digit classifier in plain TypeScript: multinomial logistic regression (softmax
// regression) on the 784 pixels, trained by mini-batch SGD with a seeded initialisation and a
// seeded shuffle, so the same data and seed always give the same model, bit for bit.
//
// Inputs are pixel intensities 0..255 (the bytes of a PGM / DigitSample); the model scales them
// by `inputScale` (1/255) itself.
import fs from 'node:fs';
import path from 'node:path';
import { createRng, randomNormal, shuffleInPlace } from './random.js';

export const MODEL_FORMAT = 'step-telemetry-demo/softmax-regression';
export const DEFAULT_MODEL_NAME = 'softmax-v1';

/** A labelled image: `pixels` are intensities 0..255, `label` is the class 0..classes-1. */
export interface TrainingSample {
  readonly label: number;
  readonly pixels: ArrayLike<number>;
}

export interface EpochStats {
  /** Mean cross-entropy on the training samples after the epoch. */
  readonly loss: number;
  /** Accuracy on the training samples after the epoch. */
  readonly accuracy: number;
  /** Present when `validation` samples were given. */
  readonly validationLoss?: number;
  readonly validationAccuracy?: number;
}

export interface TrainOptions {
  /** Passes over the training data; default 5. */
  epochs?: number;
  /** SGD step size; default 0.2. */
  learningRate?: number;
  /** Samples per gradient step; default 32. */
  batchSize?: number;
  /** L2 weight decay; default 1e-4. */
  l2?: number;
  /** Seed of the per-epoch shuffle; default: the model's seed. */
  seed?: number;
  /** Held-out samples evaluated after every epoch (reported as validationLoss/Accuracy). */
  validation?: readonly TrainingSample[];
  /** Called after every epoch; `epoch` counts from 1. */
  onEpoch?: (epoch: number, stats: EpochStats) => void;
}

export interface TrainResult {
  readonly epochs: readonly EpochStats[];
  readonly durationMs: number;
}

export interface Prediction {
  readonly label: number;
  /** One probability per class, summing to 1. */
  readonly probabilities: number[];
}

export interface SoftmaxModelJSON {
  format: typeof MODEL_FORMAT;
  version: 1;
  name: string;
  inputSize: number;
  classes: number;
  inputScale: number;
  seed: number;
  /** classes * inputSize weights, row-major by class. */
  weights: number[];
  bias: number[];
  /** What the model was trained with, for the record. */
  training?: { samples: number; epochs: number; learningRate: number; batchSize: number; l2: number };
}

export interface CreateModelOptions {
  inputSize?: number;
  classes?: number;
  seed?: number;
  name?: string;
}

export class SoftmaxModel {
  readonly name: string;
  readonly inputSize: number;
  readonly classes: number;
  readonly inputScale: number;
  readonly seed: number;
  /** classes x inputSize, row-major. */
  readonly weights: Float64Array;
  readonly bias: Float64Array;
  private trainingInfo: SoftmaxModelJSON['training'];

  private constructor(fields: {
    name: string;
    inputSize: number;
    classes: number;
    inputScale: number;
    seed: number;
    weights: Float64Array;
    bias: Float64Array;
    training?: SoftmaxModelJSON['training'];
  }) {
    this.name = fields.name;
    this.inputSize = fields.inputSize;
    this.classes = fields.classes;
    this.inputScale = fields.inputScale;
    this.seed = fields.seed;
    this.weights = fields.weights;
    this.bias = fields.bias;
    this.trainingInfo = fields.training;
  }

  /** A fresh model with small seeded random weights (N(0, 0.01^2)) and zero bias. */
  static create(options: CreateModelOptions = {}): SoftmaxModel {
    const { inputSize = 784, classes = 10, seed = 1, name = DEFAULT_MODEL_NAME } = options;
    if (!Number.isInteger(inputSize) || inputSize < 1) throw new Error(`inputSize must be a whole number >= 1, got ${inputSize}`);
    if (!Number.isInteger(classes) || classes < 2) throw new Error(`classes must be a whole number >= 2, got ${classes}`);
    const rng = createRng(seed);
    const weights = new Float64Array(classes * inputSize);
    for (let i = 0; i < weights.length; i++) weights[i] = 0.01 * randomNormal(rng);
    return new SoftmaxModel({ name, inputSize, classes, inputScale: 1 / 255, seed, weights, bias: new Float64Array(classes) });
  }

  /** Load a model from `toJSON()` output; validates shapes and numbers. */
  static fromJSON(json: unknown): SoftmaxModel {
    const j = json as Partial<SoftmaxModelJSON> | null;
    const bad = (what: string): never => {
      throw new Error(`Not a valid ${MODEL_FORMAT} model: ${what}`);
    };
    if (typeof j !== 'object' || j === null) return bad('not an object');
    if (j.format !== MODEL_FORMAT) bad(`format is ${JSON.stringify(j.format)}`);
    if (j.version !== 1) bad(`unsupported version ${JSON.stringify(j.version)}`);
    const { inputSize, classes, inputScale, weights, bias } = j;
    if (!Number.isInteger(inputSize) || (inputSize as number) < 1) bad('bad inputSize');
    if (!Number.isInteger(classes) || (classes as number) < 2) bad('bad classes');
    if (typeof inputScale !== 'number' || !(inputScale > 0)) bad('bad inputScale');
    if (!Array.isArray(weights) || weights.length !== (inputSize as number) * (classes as number)) {
      bad(`weights must be an array of inputSize * classes = ${(inputSize as number) * (classes as number)} numbers`);
    }
    if (!Array.isArray(bias) || bias.length !== classes) bad(`bias must be an array of ${classes} numbers`);
    const w = Float64Array.from(weights as number[]);
    const b = Float64Array.from(bias as number[]);
    if (!w.every(Number.isFinite) || !b.every(Number.isFinite)) bad('weights and bias must be finite numbers');
    return new SoftmaxModel({
      name: typeof j.name === 'string' ? j.name : DEFAULT_MODEL_NAME,
      inputSize: inputSize as number,
      classes: classes as number,
      inputScale: inputScale as number,
      seed: typeof j.seed === 'number' ? j.seed : 0,
      weights: w,
      bias: b,
      training: j.training,
    });
  }

  toJSON(): SoftmaxModelJSON {
    const out: SoftmaxModelJSON = {
      format: MODEL_FORMAT,
      version: 1,
      name: this.name,
      inputSize: this.inputSize,
      classes: this.classes,
      inputScale: this.inputScale,
      seed: this.seed,
      weights: Array.from(this.weights),
      bias: Array.from(this.bias),
    };
    if (this.trainingInfo) out.training = this.trainingInfo;
    return out;
  }

  /** Class probabilities for one image (pixels 0..255). */
  predict(pixels: ArrayLike<number>): Prediction {
    const probabilities = new Float64Array(this.classes);
    this.forward(this.features(pixels), probabilities);
    return { label: argmax(probabilities), probabilities: Array.from(probabilities) };
  }

  /** Mini-batch SGD on the cross-entropy loss. Deterministic for a given model seed and options. */
  train(samples: readonly TrainingSample[], options: TrainOptions = {}): TrainResult {
    const { epochs = 5, learningRate = 0.2, batchSize = 32, l2 = 1e-4, seed = this.seed, validation, onEpoch } = options;
    if (samples.length === 0) throw new Error('train: no samples');
    if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs must be a whole number >= 1, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a whole number >= 1, got ${batchSize}`);
    if (!(learningRate > 0)) throw new Error(`learningRate must be > 0, got ${learningRate}`);
    const started = performance.now();
    const { inputSize: n, classes: k, weights: w, bias: b } = this;
    const xs = samples.map((s) => this.features(s.pixels));
    const ys = samples.map((s) => this.checkLabel(s.label));
    const valXs = validation?.map((s) => this.features(s.pixels));
    const valYs = validation?.map((s) => this.checkLabel(s.label));

    const rng = createRng(seed ^ 0x5eed);
    const order = samples.map((_, i) => i);
    const gradW = new Float64Array(k * n);
    const gradB = new Float64Array(k);
    const p = new Float64Array(k);
    const history: EpochStats[] = [];

    for (let epoch = 1; epoch <= epochs; epoch++) {
      shuffleInPlace(order, rng);
      for (let start = 0; start < order.length; start += batchSize) {
        const end = Math.min(start + batchSize, order.length);
        gradW.fill(0);
        gradB.fill(0);
        for (let t = start; t < end; t++) {
          const i = order[t]!;
          const x = xs[i]!;
          this.forward(x, p);
          p[ys[i]!]! -= 1; // dLoss/dlogits = p - onehot(y)
          for (let c = 0; c < k; c++) {
            const d = p[c]!;
            gradB[c]! += d;
            if (d === 0) continue;
            const row = c * n;
            for (let j = 0; j < n; j++) gradW[row + j]! += d * x[j]!;
          }
        }
        const scale = learningRate / (end - start);
        const decay = 1 - learningRate * l2;
        for (let q = 0; q < w.length; q++) w[q] = w[q]! * decay - scale * gradW[q]!;
        for (let c = 0; c < k; c++) b[c]! -= scale * gradB[c]!;
      }
      const trainStats = this.lossAndAccuracy(xs, ys);
      const stats: EpochStats =
        valXs && valYs && valXs.length > 0
          ? (() => {
              const v = this.lossAndAccuracy(valXs, valYs);
              return { ...trainStats, validationLoss: v.loss, validationAccuracy: v.accuracy };
            })()
          : trainStats;
      history.push(stats);
      onEpoch?.(epoch, stats);
    }
    this.trainingInfo = { samples: samples.length, epochs, learningRate, batchSize, l2 };
    return { epochs: history, durationMs: performance.now() - started };
  }

  private checkLabel(label: number): number {
    if (!Number.isInteger(label) || label < 0 || label >= this.classes) {
      throw new Error(`label must be a whole number 0..${this.classes - 1}, got ${label}`);
    }
    return label;
  }

  private features(pixels: ArrayLike<number>): Float64Array {
    if (pixels.length !== this.inputSize) throw new Error(`expected ${this.inputSize} pixels, got ${pixels.length}`);
    const x = new Float64Array(this.inputSize);
    for (let j = 0; j < x.length; j++) x[j] = pixels[j]! * this.inputScale;
    return x;
  }

  /** Softmax probabilities of one feature vector into `out`. */
  private forward(x: Float64Array, out: Float64Array): void {
    const { inputSize: n, classes: k, weights: w, bias: b } = this;
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = b[c]!;
      const row = c * n;
      for (let j = 0; j < n; j++) z += w[row + j]! * x[j]!;
      out[c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(out[c]! - max);
      out[c] = e;
      sum += e;
    }
    for (let c = 0; c < k; c++) out[c]! /= sum;
  }

  private lossAndAccuracy(xs: readonly Float64Array[], ys: readonly number[]): { loss: number; accuracy: number } {
    const p = new Float64Array(this.classes);
    let loss = 0;
    let correct = 0;
    for (let i = 0; i < xs.length; i++) {
      this.forward(xs[i]!, p);
      loss -= Math.log(Math.max(p[ys[i]!]!, 1e-300));
      if (argmax(p) === ys[i]) correct++;
    }
    return { loss: loss / xs.length, accuracy: correct / xs.length };
  }
}

export function saveModel(file: string, model: SoftmaxModel): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(model.toJSON()));
}

export function loadModel(file: string): SoftmaxModel {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`Cannot read model file ${file}: ${(err as Error).message}`);
  }
  return SoftmaxModel.fromJSON(json);
}

// ---------------------------------------------------------------------------------------------
// Evaluation helpers

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Fraction of positions where actual and predicted agree (0 for empty input). */
export function accuracy(actual: readonly number[], predicted: readonly number[]): number {
  checkSameLength(actual, predicted);
  if (actual.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] === predicted[i]) correct++;
  return correct / actual.length;
}

export interface ClassMetrics {
  readonly digit: number;
  /** Of the samples predicted as this class, the fraction that are (0 when none were predicted). */
  readonly precision: number;
  /** Of the samples of this class, the fraction found (0 when there are none). */
  readonly recall: number;
  readonly f1: number;
  /** Samples of this class. */
  readonly support: number;
}

export function perClassMetrics(actual: readonly number[], predicted: readonly number[], classes = 10): ClassMetrics[] {
  checkSameLength(actual, predicted);
  const tp = new Array<number>(classes).fill(0);
  const predictedCount = new Array<number>(classes).fill(0);
  const actualCount = new Array<number>(classes).fill(0);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const p = predicted[i]!;
    actualCount[a]!++;
    predictedCount[p]!++;
    if (a === p) tp[a]!++;
  }
  return tp.map((hits, digit) => {
    const precision = predictedCount[digit]! > 0 ? hits / predictedCount[digit]! : 0;
    const recall = actualCount[digit]! > 0 ? hits / actualCount[digit]! : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { digit, precision, recall, f1, support: actualCount[digit]! };
  });
}

/** A confusion matrix as equal-length columns, one row per (actual, predicted) pair, zeros included. */
export type ConfusionColumns = {
  actual: number[];
  predicted: number[];
  count: number[];
};

export function confusionMatrix(actual: readonly number[], predicted: readonly number[], classes = 10): ConfusionColumns {
  checkSameLength(actual, predicted);
  const counts = new Array<number>(classes * classes).fill(0);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const p = predicted[i]!;
    if (!(a >= 0 && a < classes && p >= 0 && p < classes)) throw new Error(`class out of range at ${i}: ${a} / ${p}`);
    counts[a * classes + p]!++;
  }
  const out: ConfusionColumns = { actual: [], predicted: [], count: [] };
  for (let a = 0; a < classes; a++) {
    for (let p = 0; p < classes; p++) {
      out.actual.push(a);
      out.predicted.push(p);
      out.count.push(counts[a * classes + p]!);
    }
  }
  return out;
}

export interface Evaluation {
  readonly count: number;
  readonly accuracy: number;
  /** Mean cross-entropy. */
  readonly loss: number;
  readonly perClass: ClassMetrics[];
  readonly confusion: ConfusionColumns;
  readonly actual: number[];
  readonly predicted: number[];
}

/** Predict every sample and summarise: accuracy, loss, per-class metrics, confusion matrix. */
export function evaluate(model: SoftmaxModel, samples: readonly TrainingSample[]): Evaluation {
  const actual: number[] = [];
  const predicted: number[] = [];
  let loss = 0;
  for (const s of samples) {
    const { label, probabilities } = model.predict(s.pixels);
    actual.push(s.label);
    predicted.push(label);
    loss -= Math.log(Math.max(probabilities[s.label] ?? 0, 1e-300));
  }
  return {
    count: samples.length,
    accuracy: accuracy(actual, predicted),
    loss: samples.length > 0 ? loss / samples.length : 0,
    perClass: perClassMetrics(actual, predicted, model.classes),
    confusion: confusionMatrix(actual, predicted, model.classes),
    actual,
    predicted,
  };
}

function checkSameLength(actual: readonly number[], predicted: readonly number[]): void {
  if (actual.length !== predicted.length) {
    throw new Error(`actual and predicted differ in length: ${actual.length} vs ${predicted.length}`);
  }
}
