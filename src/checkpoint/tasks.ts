/**
 * Checkpoint side work run on the piscina pool (src/checkpoint/pool.ts), off the main thread and
 * off the workers: making state files durable and checksummed, and compacting a chain of deltas
 * into new base files. Each task is coarse (MBs of I/O), as piscina tasks should be. Tasks work on
 * local paths only: files staged or fetched through the CheckpointStorage port (storage.ts), which
 * publishes what they produce.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checksummer, type ChecksumAlgo } from './checksum.js';
import { ChangeWriter } from './change-writer.js';
import { foldChain, type ChainFile } from './fold.js';
import { dropCachedPages } from './page-cache.js';
import type { ExpireAtMax } from './file-expiry.js';
import { currentTid } from '../metrics/cpu.js';

/**
 * `algos[i]`: the checksum to compute for `paths[i]` (a restore verifies what the manifest names);
 * CRC-32 when absent. `dropCache`: the files were just written, and leave the page cache once
 * durable (page-cache.ts); not for a restore's check, whose files are read again right after.
 * `known[i]`: the length and checksum `paths[i]`'s writer computed as it wrote it; then the file is
 * only fsynced, not read back (its pages may already have left the page cache: change-writer.ts
 * `dropSynced`). A file whose length differs from the known one is read and checksummed as it is.
 */
export interface SealTask { paths: string[]; algos?: ChecksumAlgo[]; dropCache?: boolean; known?: Array<{ bytes: number; checksum: string } | undefined> }
export interface SealedFile { path: string; bytes: number; checksum: string }

/**
 * fsync each file (its bytes were written by a worker thread) and compute its checksum; then fsync
 * the directories holding them, so that the files' names, not only their bytes, survive a power
 * loss before the manifest naming them is written.
 */
export function seal(task: SealTask): SealedFile[] {
  const sealed = task.paths.map((p, i) => {
    const fd = fs.openSync(p, 'r');
    try {
      const known = task.known?.[i];
      const { bytes, checksum } = known !== undefined && fs.fstatSync(fd).size === known.bytes ? known : checksumOf(fd, task.algos?.[i]);
      fs.fsyncSync(fd);
      if (task.dropCache) dropCachedPages(p); // durable now, and read again only by a restore
      return { path: p, bytes, checksum };
    } finally {
      fs.closeSync(fd);
    }
  });
  for (const dir of new Set(task.paths.map((p) => path.dirname(p)))) fsyncPath(dir);
  return sealed;
}

/** Reads the whole file for its length and checksum. */
function checksumOf(fd: number, algo: ChecksumAlgo | undefined): { bytes: number; checksum: string } {
  const hash = checksummer(algo);
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, bytes);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    bytes += n;
  }
  return { bytes, checksum: hash.digest() };
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** A base file a compaction wrote: sealed, its key groups, its events' expiry bound (file-expiry.ts). */
export type CompactedFile = SealedFile & { keyGroups: [number, number]; expireAtMaxMs?: ExpireAtMax };

export interface CompactTask {
  files: ChainFile[];
  ranges: Array<[number, number]>;
  outer: [boolean, boolean];
  dropBeforeMs: number;
  /** Where to write each range's base file: staged local files (CheckpointStorage.stage), one per range. */
  outPaths: string[];
  /** Keep only events read from these Kafka partitions (a partition handoff); all when absent. */
  partitions?: number[];
}

/**
 * Fold a chain into one base file per key-group range (the current workers' ranges), keeping only
 * live events with their joined bits; returns the sealed files. Bounded work per range: one file
 * of the chain in memory at a time.
 */
export function compact(task: CompactTask): CompactedFile[] {
  const out: CompactedFile[] = [];
  for (const [i, [from, to]] of task.ranges.entries()) {
    const file = task.outPaths[i];
    const w = new ChangeWriter(file, 'base', { checksum: true });
    // Live events are copied as they are (their bytes, the joined flag updated): no decoding of
    // keys, ids and payloads, and the checksum is taken on the way out rather than read back.
    foldChain(task.files, () => {}, from, to, task.outer, task.dropBeforeMs, (r) => w.copy(r),
      undefined, undefined, task.partitions ? new Set(task.partitions) : null, false);
    if (!w.close()) throw w.lastError ?? new Error(`writing ${file} failed`);
    fsyncPath(file);
    fsyncPath(path.dirname(file));
    dropCachedPages(file);
    out.push({ path: file, bytes: w.bytes, checksum: w.digest(), keyGroups: [from, to], expireAtMaxMs: w.expireAtMaxMs() });
  }
  return out;
}

/** The pool thread's kernel task id (src/metrics/cpu.ts). */
export function tid(): number | null {
  return currentTid();
}
