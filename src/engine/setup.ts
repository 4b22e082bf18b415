/** What a run needs before its threads start: extractors, the state directory, the output cut back to a checkpoint. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Manifest } from '../checkpoint/manifest.js';
import { FlatExtractor } from '../codec/flat.js';
import { JsonExtractor, type Extractor } from '../codec/json.js';
import { filePathOfSpec, type SinkEndpoint } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import type { Side } from '../state/store.js';
import { mkdirs } from '../core/mkdirs.js';

export type InputFormats = ['json' | 'flatbuffers', 'json' | 'flatbuffers'];

function sideFields(cfg: Config, side: Side) {
  return {
    key: (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key,
    time: (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time,
    id: (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id,
  };
}

export function makeExtractors(cfg: Config, formats: InputFormats) {
  const make = (side: Side) => {
    const f = sideFields(cfg, side);
    const flat = () => {
      try {
        return new FlatExtractor(side === 0 ? 'Impression' : 'Play', f.key, f.time, f.id) as Extractor;
      } catch (e) {
        throw new JoineryError('E_USAGE', `--${side === 0 ? 'left' : 'right'} (FlatBuffers): ${(e as Error).message}`);
      }
    };
    if (formats[side] === 'flatbuffers') flat(); // validate field names before any work
    return { json: () => new JsonExtractor(f.key, f.time, f.id) as Extractor, flatbuffers: flat };
  };
  return { 0: make(0), 1: make(1) } as Record<Side, Record<'json' | 'flatbuffers', () => Extractor>>;
}

/** Prepare the state directory: create it, prove it is writable, and clear old worker environments. */
export function prepareStateDir(dir: string): void {
  try {
    mkdirs(dir);
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new JoineryError('E_OUTPUT', `--state-dir ${dir} is not writable: ${(e as Error).message}`);
  }
  for (const name of fs.readdirSync(dir)) {
    if (/^worker-\d+$/.test(name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/** Bucket size of the lmdb store: a twentieth of the join window, within 1 s..30 s (measured: probes get cheaper up to ~30 s buckets; recent events wait in memory for about a bucket + max-delay). */
export function bucketMsFor(cfg: Config): number {
  return cfg.bucketMs ?? Math.min(30_000, Math.max(1_000, Math.round((cfg.upperMs - cfg.lowerMs) / 20)));
}

const FROZEN_GROUPS_PER_WINDOW = 4;

/**
 * Slices per frozen group of the lmdb store (src/state/frozen.ts): a sealed slice behind the
 * watermark leaves the key index for its group's compact table, and a probe walks one table per
 * group its range overlaps. About 4 groups per window (lower..upper plus max-delay), within 4..512
 * slices per group (a 24 h window: 512 slices of 30 s, ~6 groups). Measured on a full 24 h window
 * (`run` with the generator, 25M events, 200 events/s of event time): 16 groups per window cost
 * each worker 1.72–1.76 µs per event, 8 groups 1.61, 6 groups 1.55–1.60. Larger groups hold their
 * expired entries longer (a group's table goes with its last live part): ~+7 % of anonymous memory
 * at 3 GiB buffered.
 */
export function freezeGroupSlicesFor(cfg: Config): number {
  const spanMs = cfg.upperMs - cfg.lowerMs + cfg.maxDelayMs;
  return Math.min(512, Math.max(4, Math.round(spanMs / FROZEN_GROUPS_PER_WINDOW / bucketMsFor(cfg))));
}

/**
 * The lmdb store's memory budget for open buckets, all workers together: --state-memory, or
 * min(1 GiB, a quarter of what the process may use: physical memory, or a cgroup limit below it).
 * Measured on `bench` (2 workers): sealing every bucket once complete and probing it in LMDB cost
 * ~0.45 µs of CPU per event (2.57 → 2.09 µs when the buffer stayed in memory).
 */
export function stateMemoryBytesFor(cfg: Config): number {
  if (cfg.stateMemoryBytes !== undefined) return cfg.stateMemoryBytes;
  return Math.min(1024 ** 3, Math.floor(processMemoryBytes() / 4));
}

/** What the process may use: physical memory, or a cgroup limit below it. */
function processMemoryBytes(): number {
  const avail = os.totalmem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return limit !== undefined && limit > 0 && limit < avail ? limit : avail;
}

/**
 * Per worker, the LMDB file size from which the lmdb store compresses newly sealed buckets
 * (--state-compression; BucketStoreOptions.lz4AboveBytes): auto = a worker's share of a quarter of
 * the memory the process may use, so that a state the page cache holds is not compressed, where
 * LZ4 only costs CPU (~0.8 µs per event when everything is sealed). Off by default: in the 24 h
 * large-state run in a 3 GiB cgroup (docs/architecture.md §5) it cut the LMDB file by a third and
 * major faults per event by a third to a half, +11 % events/s at 2.4–2.8 GiB buffered but none at
 * 3 GiB, where the CPU it costs ate what it saved, and the restart after kill -9 took 74 s
 * instead of 55 s (the restore compresses all it seals).
 */
export function lz4AboveBytesFor(cfg: Config): number {
  if (cfg.stateCompression === 'none') return Infinity;
  if (cfg.stateCompression === 'lz4') return 0;
  return Math.floor(processMemoryBytes() / 4 / cfg.workers);
}

/** Cut the output file back to what the restored checkpoint committed (exactly-once on restart). */
export function cutOutput(out: Extract<SinkEndpoint, { kind: 'file' }>, m: Manifest): void {
  const { spec, path: file } = out;
  // the manifest holds the spec as it was given then
  const was = m.output.spec, wasFile = filePathOfSpec(was);
  // The length is only meaningful for the file it was measured on: another output would be cut
  // (or emptied) to it, destroying what it held and missing everything before the checkpoint.
  if (wasFile === null || path.resolve(wasFile) !== path.resolve(file)) {
    throw new JoineryError('E_CHECKPOINT', `checkpoint ${m.id} was taken with --out ${was}; this run writes ${spec}, which the checkpoint never measured (its output before the checkpoint is not there): use --out ${was}, or start over with a new --checkpoint-dir`);
  }
  const want = m.output.lengthBytes ?? 0;
  let size: number;
  try { size = fs.statSync(file).size; } catch { size = -1; }
  if (size < want) {
    throw new JoineryError('E_CHECKPOINT', `output ${file} has ${size < 0 ? 'gone' : `${size} bytes`} but checkpoint ${m.id} committed ${want} bytes of it: the output was changed since; restore it or start over with a new --checkpoint-dir`);
  }
  if (size > want) fs.truncateSync(file, want);
}
