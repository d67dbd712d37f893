// The pure building blocks of the demo pipeline (examples/lib): PGM files, the mnist selection,
// corrupt files, the train split, the softmax model, and the step scripts' option parsing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CORRUPTION_KINDS,
  PIXEL_COUNT,
  PgmFormatError,
  decodePgm,
  digitFileName,
  encodePgm,
  loadMnistDigits,
  parseDigitFileName,
  readDigitSplit,
  readLabelsCsv,
  readPgm,
  writeCorruptImages,
  writeDigitImages,
  writeDigitSplit,
  type DigitSample,
} from '../examples/lib/mnist-data.js';
import {
  SoftmaxModel,
  accuracy,
  confusionMatrix,
  evaluate,
  loadModel,
  perClassMetrics,
  saveModel,
} from '../examples/lib/softmax-model.js';
import { UsageError, optionReader, parseFlags } from '../examples/lib/cli.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-lib-'));
  tempDirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

// One load of the mnist package (~0.5 s) shared by the whole file.
let train: DigitSample[];
let test: DigitSample[];
beforeAll(() => {
  train = loadMnistDigits({ count: 1500, seed: 42 });
  test = loadMnistDigits({ count: 500, seed: 42, offset: 1500 });
});

describe('mnist selection', () => {
  it('is deterministic, seeded, and disjoint across offsets', () => {
    const again = loadMnistDigits({ count: 20, seed: 42 });
    expect(again.map((s) => s.id)).toEqual(train.slice(0, 20).map((s) => s.id));
    expect(Buffer.from(again[3]!.pixels).equals(Buffer.from(train[3]!.pixels))).toBe(true);
    const other = loadMnistDigits({ count: 20, seed: 43 });
    expect(other.map((s) => s.id)).not.toEqual(again.map((s) => s.id));
    const trainIds = new Set(train.map((s) => s.id));
    expect(test.some((s) => trainIds.has(s.id))).toBe(false);
  });

  it('gives 784 bytes per digit, labels 0..9, every class present', () => {
    for (const s of train.slice(0, 50)) {
      expect(s.pixels).toBeInstanceOf(Uint8Array);
      expect(s.pixels.length).toBe(PIXEL_COUNT);
      expect(s.id).toMatch(new RegExp(`^mnist-${s.label}-\\d{4}$`));
      expect(Math.max(...s.pixels)).toBeGreaterThan(200); // there is ink
    }
    expect(new Set(train.map((s) => s.label)).size).toBe(10);
  });

  it('rejects a range beyond the package', () => {
    expect(() => loadMnistDigits({ count: 10, offset: 9_995 })).toThrow(/has only 10000/);
  });
});

describe('PGM files', () => {
  it('round-trips a digit through a P5 file', () => {
    const dir = tempDir();
    const rows = writeDigitImages(dir, train.slice(0, 5), { startIndex: 40 });
    expect(rows.map((r) => r.file)).toEqual(train.slice(0, 5).map((s, i) => digitFileName(40 + i, s.label)));
    expect(rows[2]!.file).toMatch(/^digit-00042-label-\d\.pgm$/);
    const file = path.join(dir, rows[2]!.file);
    const raw = fs.readFileSync(file);
    expect(raw.subarray(0, 13).toString('latin1')).toBe('P5\n28 28\n255\n');
    expect(raw.length).toBe(13 + 784);
    const image = readPgm(file, { width: 28, height: 28 });
    expect(image).toMatchObject({ width: 28, height: 28, maxval: 255 });
    expect(Buffer.from(image.pixels).equals(Buffer.from(train[2]!.pixels))).toBe(true);
    expect(parseDigitFileName(file)).toEqual({ index: 42, label: train[2]!.label });
    expect(readLabelsCsv(dir)).toEqual(rows);
    expect(fs.readFileSync(path.join(dir, 'labels.csv'), 'utf8').split('\n')[0]).toBe('file,label');
  });

  it('accepts header comments and other whitespace, as the format allows', () => {
    const pixels = new Uint8Array([0, 1, 2, 3, 4, 5]);
    const data = Buffer.concat([Buffer.from('P5 # made by hand\n3\t2\r\n# max\n7\n'), Buffer.from(pixels)]);
    const image = decodePgm(data);
    expect(image).toMatchObject({ width: 3, height: 2, maxval: 7 });
    expect(Array.from(image.pixels)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(decodePgm(encodePgm(pixels, 3, 2)).pixels)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  const good = () => encodePgm(train[0]!.pixels);
  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['an empty file', () => new Uint8Array(0), /the file is empty/],
    ['truncated pixels', () => good().subarray(0, 400), /truncated pixel data: expected 784 bytes for 28x28, found 387/],
    ['a PNG signature', () => Buffer.from('\x89PNG\r\n\x1a\n....', 'latin1'), /wrong magic number "\\x89PNG" \(expected "P5"/],
    ['ASCII PGM (P2)', () => Buffer.from('P2\n2 1\n255\n0 0\n'), /wrong magic number "P2\\x0a2"/],
    ['a non-numeric height', () => Buffer.from('P5\n28 x\n255\n'), /malformed header: height is not a number/],
    ['a header cut short', () => Buffer.from('P5\n28 28'), /truncated header: missing maxval/],
    ['16-bit samples', () => Buffer.from('P5\n1 1\n65535\n\0\0'), /16-bit samples, which are not supported/],
    ['zero width', () => Buffer.from('P5\n0 28\n255\n'), /bad dimensions 0x28/],
    ['trailing bytes', () => Buffer.concat([good(), Buffer.from('xx')]), /2 unexpected trailing bytes/],
    ['a pixel above maxval', () => Buffer.from('P5\n2 1\n9\n\x05\x0a', 'latin1'), /pixel 1 has value 10, above maxval 9/],
  ];
  it.each(cases)('rejects %s with a clear message', (_name, bytes, message) => {
    let error: unknown;
    try {
      decodePgm(bytes(), { file: 'x.pgm' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PgmFormatError);
    expect((error as Error).message).toMatch(/^Corrupt PGM file x\.pgm: /);
    expect((error as Error).message).toMatch(message);
  });

  it('rejects an image of the wrong size when a size is required', () => {
    expect(() => decodePgm(encodePgm(new Uint8Array(6), 3, 2), { width: 28, height: 28 })).toThrow(/width is 3, expected 28/);
  });

  it('writes corrupt files that readPgm rejects, one kind each, listed in labels.csv', () => {
    const dir = tempDir();
    const goodRows = writeDigitImages(dir, train.slice(0, 3));
    const corrupt = writeCorruptImages(dir, CORRUPTION_KINDS.length, { seed: 3, startIndex: 3, samples: train.slice(0, 10) });
    expect(corrupt.map((c) => c.kind)).toEqual([...CORRUPTION_KINDS]);
    expect(readLabelsCsv(dir)).toEqual([...goodRows, ...corrupt.map(({ file, label }) => ({ file, label }))]);
    for (const row of goodRows) expect(() => readPgm(path.join(dir, row.file))).not.toThrow();
    for (const c of corrupt) {
      expect(c.file).toMatch(/^digit-\d{5}-label-\d\.pgm$/);
      expect(() => readPgm(path.join(dir, c.file)), c.kind).toThrow(PgmFormatError);
      expect(() => readPgm(path.join(dir, c.file)), c.kind).toThrow(new RegExp(`^Corrupt PGM file .*${c.file}: `));
    }
    // Deterministic: the same seed writes the same bytes.
    const dir2 = tempDir();
    writeCorruptImages(dir2, CORRUPTION_KINDS.length, { seed: 3, startIndex: 3, samples: train.slice(0, 10) });
    for (const c of corrupt) {
      expect(fs.readFileSync(path.join(dir2, c.file)).equals(fs.readFileSync(path.join(dir, c.file)))).toBe(true);
    }
  });

  it('places corrupt files at given indices among the good ones, labels.csv sorted', () => {
    const dir = tempDir();
    writeDigitImages(dir, train.slice(0, 3), { indices: [0, 2, 4] });
    const corrupt = writeCorruptImages(dir, 2, { indices: [1, 3], kinds: ['truncated', 'empty'] });
    expect(corrupt.map((c) => parseDigitFileName(c.file)?.index)).toEqual([1, 3]);
    expect(readLabelsCsv(dir).map((r) => parseDigitFileName(r.file)?.index)).toEqual([0, 1, 2, 3, 4]);
    expect(fs.readdirSync(dir).sort()).toHaveLength(6);
    expect(() => writeDigitImages(dir, train.slice(0, 2), { indices: [7] })).toThrow(/indices must be 2 whole numbers/);
  });

  it('round-trips a train split file', () => {
    const file = path.join(tempDir(), 'splits', 'train.json');
    writeDigitSplit(file, train.slice(0, 25));
    const back = readDigitSplit(file);
    expect(back.map((s) => [s.id, s.label])).toEqual(train.slice(0, 25).map((s) => [s.id, s.label]));
    expect(back.every((s, i) => Buffer.from(s.pixels).equals(Buffer.from(train[i]!.pixels)))).toBe(true);
    fs.writeFileSync(file, '{"format":"other"}');
    expect(() => readDigitSplit(file)).toThrow(/not a step-telemetry-demo\/digits v1 split file/);
  });
});

describe('softmax model', () => {
  it('learns: > 0.8 accuracy on held-out digits within a small budget', () => {
    const model = SoftmaxModel.create({ seed: 1 });
    const seen: Array<[number, number, number]> = [];
    const started = performance.now();
    const result = model.train(train, {
      epochs: 3,
      learningRate: 0.2,
      batchSize: 32,
      validation: test.slice(0, 100),
      onEpoch: (epoch, { loss, accuracy: acc, validationAccuracy }) => {
        seen.push([epoch, loss, acc]);
        expect(validationAccuracy).toBeTypeOf('number');
      },
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(seen.map(([e]) => e)).toEqual([1, 2, 3]);
    expect(seen[2]![1]).toBeLessThan(seen[0]![1]); // loss goes down
    expect(result.epochs).toHaveLength(3);
    const heldOut = evaluate(model, test);
    expect(heldOut.accuracy).toBeGreaterThan(0.8);
    expect(heldOut.count).toBe(500);
    const first = model.predict(test[0]!.pixels);
    expect(first.probabilities).toHaveLength(10);
    expect(first.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('is deterministic for a seed', () => {
    const a = SoftmaxModel.create({ seed: 5 });
    const b = SoftmaxModel.create({ seed: 5 });
    a.train(train.slice(0, 200), { epochs: 1 });
    b.train(train.slice(0, 200), { epochs: 1 });
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
  });

  it('gives identical predictions after a JSON round trip (in memory and through a file)', () => {
    const model = SoftmaxModel.create({ seed: 2 });
    model.train(train.slice(0, 500), { epochs: 1 });
    const copy = SoftmaxModel.fromJSON(JSON.parse(JSON.stringify(model)));
    const file = path.join(tempDir(), 'model', 'model.json');
    saveModel(file, model);
    const loaded = loadModel(file);
    for (const s of test.slice(0, 50)) {
      const expected = model.predict(s.pixels);
      expect(copy.predict(s.pixels)).toEqual(expected);
      expect(loaded.predict(s.pixels)).toEqual(expected);
    }
    expect(loaded.toJSON()).toEqual(model.toJSON());
    expect(loaded.toJSON().training).toMatchObject({ samples: 500, epochs: 1 });
  });

  it('rejects a malformed model file', () => {
    const json = SoftmaxModel.create().toJSON();
    expect(() => SoftmaxModel.fromJSON({ ...json, weights: json.weights.slice(1) })).toThrow(/weights must be an array of/);
    expect(() => SoftmaxModel.fromJSON({ ...json, format: 'x' })).toThrow(/Not a valid .* model: format is "x"/);
    expect(() => SoftmaxModel.fromJSON(null)).toThrow(/not an object/);
  });
});

describe('step script options', () => {
  it('takes the flag, else the env variable, else the default, and names a bad value', () => {
    const env = { DEMO_EPOCHS: '7', DEMO_OUTPUT_DIR: '/tmp/demo-root', DEMO_LR: 'x' };
    const read = optionReader({ 'batch-size': '16', out: 'rel/model' }, env);
    expect(read.int('batch-size', 'DEMO_BATCH_SIZE', 32, 1)).toBe(16);
    expect(read.int('epochs', 'DEMO_EPOCHS', 5, 1)).toBe(7);
    expect(read.int('seed', 'DEMO_SEED', 42)).toBe(42);
    expect(read.folder('out', 'DEMO_MODEL_DIR', 'model')).toBe(path.resolve('rel/model'));
    expect(read.folder('data', 'DEMO_DATA_DIR', 'data')).toBe(path.join('/tmp/demo-root', 'data'));
    expect(optionReader({}, {}).folder('data', 'DEMO_DATA_DIR', 'data')).toBe(path.resolve('demo-output', 'data'));
    expect(() => read.positive('lr', 'DEMO_LR', 0.2)).toThrow(UsageError);
    expect(() => read.positive('lr', 'DEMO_LR', 0.2)).toThrow('DEMO_LR: expected a number > 0, got "x"');
    expect(() => optionReader({ epochs: '0' }, {}).int('epochs', 'DEMO_EPOCHS', 5, 1)).toThrow('--epochs: expected a whole number >= 1, got "0"');
    expect(parseFlags(['out'], ['--out=a', '-h'])).toEqual({ values: { out: 'a' }, help: true });
    expect(() => parseFlags(['out'], ['--nope', 'x'])).toThrow(UsageError);
  });
});

describe('evaluation helpers', () => {
  const actual = [0, 0, 1, 1, 2, 2];
  const predicted = [0, 1, 1, 1, 2, 0];

  it('computes accuracy and per-class precision/recall', () => {
    expect(accuracy(actual, predicted)).toBeCloseTo(4 / 6);
    const metrics = perClassMetrics(actual, predicted, 3);
    expect(metrics[0]).toMatchObject({ digit: 0, precision: 0.5, recall: 0.5, support: 2 });
    expect(metrics[1]).toMatchObject({ digit: 1, precision: 2 / 3, recall: 1, support: 2 });
    expect(metrics[2]).toMatchObject({ digit: 2, precision: 1, recall: 0.5, support: 2 });
    expect(perClassMetrics([0], [0], 3)[2]).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(() => accuracy([1], [])).toThrow(/differ in length/);
  });

  it('gives the confusion matrix as equal-length columns, zeros included', () => {
    const m = confusionMatrix(actual, predicted, 3);
    expect(m.actual).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(m.predicted).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(m.count).toEqual([1, 1, 0, 0, 2, 0, 1, 0, 1]);
  });
});
