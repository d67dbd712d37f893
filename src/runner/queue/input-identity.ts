// The identity of a job's input, as every node of a queue computes it from the listing alone,
// without cutting the input: how it is cut (input_type, mini_batch_size, partition_keys, or the run
// folder of --input-failed) and the files the cut reads, in the order it reads them, each by its
// path and, where the cut depends on what a file holds (tabular files, failed-items files), its
// size. The node that enqueues stores it with the job's totals; every node that joins the job (a
// follower, a second enqueuer, --resume) compares its own with it and is refused when they differ,
// told what differs.
// Sizes, not modification times: nodes with their own copy of the input (downloaded per node, or a
// pod restarted on a fresh copy) see other times for the same files. No size for a files input: its
// mini-batches are the names, and a stat of each of a million files (on a network file system, a
// round trip each) would hold up every node's start. An edit that keeps every size is not seen: a
// digest of the content would read the whole input on every node.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ResolvedRunConfig } from '../config.js';
import { RunnerConfigError } from '../config-error.js';
import { listInputFiles } from '../partition.js';
import { failedItemFiles } from '../resume.js';

/** What the job state keeps of the identity beside the listing. */
export interface InputSummary {
  /** How the input is cut, in words: `input_type files, mini_batch_size 2`. */
  readonly cut: string;
  readonly files: number;
  /** Bytes of the files that could be read (undefined: a files input, not measured). */
  readonly bytes: number | undefined;
  /** Of `cut` and the listing: equal digests, equal inputs. */
  readonly digest: string;
}

export interface InputIdentity extends InputSummary {
  /** ENTRY bytes per file in listing order: two 32-bit hashes of its path, its size (float64; -1: cannot be read; 0 when not measured). */
  readonly listing: Buffer;
  readonly paths: readonly string[];
}

const ENTRY = 16;

/** Two independent 32-bit hashes of `s` (FNV-1a and djb2 variants): 64 bits, so a million paths do not collide. */
function pathHash(s: string, out: Buffer, at: number): void {
  let a = 0x811c9dc5;
  let b = 5381;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = (Math.imul(b, 33) ^ c) | 0;
  }
  out.writeUInt32BE(a >>> 0, at);
  out.writeUInt32BE(b >>> 0, at + 4);
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1; // an item that will fail with its reason
  }
}

/** The identity of the input `config` names (the input the leader would cut, here only listed). */
export function inputIdentity(config: ResolvedRunConfig): InputIdentity {
  let paths: string[];
  try {
    paths = config.inputFailed ? failedItemFiles(config.inputFailed) : listInputFiles(config.inputs, config.inputPattern);
  } catch (error) {
    throw new RunnerConfigError([{ field: 'input', source: 'input', expected: 'readable input files and folders', got: (error as Error).message }]);
  }
  const cut = [
    config.inputFailed ? `input_failed ${config.inputFailed}` : undefined,
    `input_type ${config.inputType}`,
    `mini_batch_size ${config.miniBatchSize}`,
    config.partitionKeys.length > 0 ? `partition_keys ${config.partitionKeys.join(',')}` : undefined,
  ]
    .filter((s) => s !== undefined)
    .join(', ');
  const sized = config.inputFailed !== undefined || config.inputType !== 'files';
  const listing = Buffer.alloc(paths.length * ENTRY);
  let bytes = 0;
  for (let i = 0; i < paths.length; i++) {
    const size = sized ? sizeOf(paths[i]!) : 0;
    pathHash(paths[i]!, listing, i * ENTRY);
    listing.writeDoubleBE(size, i * ENTRY + 8);
    if (size > 0) bytes += size;
  }
  const digest = createHash('sha256').update(cut).update('\0').update(listing).digest('hex').slice(0, 16);
  return { cut, files: paths.length, bytes: sized ? bytes : undefined, digest, listing, paths };
}

export function summaryText(id: InputIdentity): string {
  const { cut, files, bytes, digest } = id;
  return JSON.stringify({ cut, files, bytes, digest } satisfies InputSummary);
}

/** The summary the job state holds (undefined: a job enqueued without one). */
export function parseSummary(text: string | undefined): InputSummary | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as InputSummary;
  } catch {
    return undefined;
  }
}

const plural = (n: number, one: string): string => `${n.toLocaleString('en-US')} ${one}${n === 1 ? '' : 's'}`;
const bytesText = (n: number): string => plural(n, 'byte');
const shown = (names: string[], more: number): string => names.join(', ') + (more > names.length ? ` and ${more - names.length} more` : '');
const SHOW = 3;

/**
 * What differs between this node's input and the job's, in words (empty: the same input). `held`
 * is the job's listing (undefined: not read; only the totals are compared).
 */
export function differences(ours: InputIdentity, job: InputSummary, held: Buffer | undefined): string[] {
  if (ours.digest === job.digest) return [];
  const out: string[] = [];
  if (ours.cut !== job.cut) out.push(`it is cut with ${ours.cut} (the job's: ${job.cut})`);
  if (ours.files !== job.files || ours.bytes !== job.bytes) {
    const of = (bytes: number | undefined): string => (bytes === undefined ? '' : ` of ${bytesText(bytes)}`);
    out.push(`${plural(ours.files, 'file')}${of(ours.bytes)} (the job's: ${plural(job.files, 'file')}${of(job.bytes)})`);
  }
  if (held && held.length % ENTRY === 0) {
    const sizes = new Map<string, number>();
    for (let at = 0; at < held.length; at += ENTRY) sizes.set(held.toString('hex', at, at + 8), held.readDoubleBE(at + 8));
    const added: string[] = [];
    const resized: string[] = [];
    let addedCount = 0;
    let resizedCount = 0;
    for (let i = 0; i < ours.files; i++) {
      const at = i * ENTRY;
      const key = ours.listing.toString('hex', at, at + 8);
      const was = sizes.get(key);
      const size = ours.listing.readDoubleBE(at + 8);
      const name = ours.paths[i]!;
      if (was === undefined) {
        if (addedCount++ < SHOW) added.push(name);
      } else {
        sizes.delete(key);
        if (was !== size && resizedCount++ < SHOW) resized.push(`${name} (${size < 0 ? 'cannot be read' : bytesText(size)}; the job's: ${was < 0 ? 'could not be read' : bytesText(was)})`);
      }
    }
    if (resizedCount > 0) out.push(`${plural(resizedCount, 'file')} changed size: ${shown(resized, resizedCount)}`);
    if (addedCount > 0) out.push(`${plural(addedCount, 'file')} not in the job's input: ${shown(added, addedCount)}`);
    if (sizes.size > 0) out.push(`${plural(sizes.size, 'file')} of the job's input ${sizes.size === 1 ? 'is' : 'are'} missing here`);
  }
  if (out.length === 0) out.push(held ? 'the same files and sizes in another order' : 'the names or sizes of its files');
  return out;
}
