/**
 * Choosing the checkpoint to resume from: the newest manifest that decodes, belongs to this join,
 * and whose every state file is present with its recorded checksum. Torn or corrupt newer ones are
 * reported, set aside (renamed *.corrupt) and the previous one is used. A directory with
 * manifests but none usable is an error: starting from scratch would silently redo or lose output.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JoineryError } from '../core/errors.js';
import { algoOf } from './checksum.js';
import { decodeManifest, type Manifest } from './manifest.js';
import type { SidePool } from './pool.js';
import type { CheckpointStorage } from './storage.js';

export interface RestorePoint {
  manifest: Manifest;
  /** Reasons newer checkpoints were skipped (for the log). */
  skipped: string[];
  /** A stop checkpoint's unprocessed frames, one file per worker of the run that took it (`partitions`: only events of these Kafka partitions). */
  inflight?: Array<{ path: string; partitions?: number[]; checkpoint?: string }>;
}

export function sameJob(a: Manifest['job'], b: Manifest['job']): string | null {
  if (a.join !== b.join) return `join kind ${a.join} vs ${b.join}`;
  if (a.lowerMs !== b.lowerMs || a.upperMs !== b.upperMs) return `bounds [${a.lowerMs}, ${a.upperMs}] ms vs [${b.lowerMs}, ${b.upperMs}] ms`;
  if (JSON.stringify(a.keys) !== JSON.stringify(b.keys)) return `key fields ${JSON.stringify(a.keys)} vs ${JSON.stringify(b.keys)}`;
  return null;
}

export async function findRestorePoint(storage: CheckpointStorage, job: Manifest['job'], pool: SidePool,
  acceptId?: (id: number) => boolean): Promise<RestorePoint | null> {
  const ids = storage.listManifests();
  if (ids.length === 0) return null;
  const skipped: string[] = [];
  for (const id of ids) {
    const name = `checkpoint ${id}`;
    let m: Manifest;
    try {
      m = decodeManifest(storage.readManifest(id), name);
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const diff = sameJob(m.job, job);
    if (diff) {
      throw new JoineryError('E_CHECKPOINT', `--checkpoint-dir ${storage.location} holds checkpoints of a different join (${diff}); use another directory, or remove this one to start over`);
    }
    if (acceptId && !acceptId(id)) { skipped.push(`${name}: newer than what the output has committed`); continue; }
    const present = new Set(storage.listFiles());
    const missing = m.files.filter((f) => !present.has(f.name));
    if (missing.length > 0) { skipped.push(`${name}: state file ${missing[0].name} is missing`); continue; }
    const missingInflight = (m.inflight ?? []).find((f) => !present.has(f.name));
    if (missingInflight) { skipped.push(`${name}: in-flight file ${missingInflight.name} is missing`); continue; }
    const sealed = await pool.seal({ paths: m.files.map((f) => path.join(storage.dataDir, f.name)), algos: m.files.map((f) => algoOf(f.checksum)!) });
    const bad = m.files.find((f, i) => sealed[i].checksum !== f.checksum || sealed[i].bytes !== f.bytes);
    if (bad) { skipped.push(`${name}: state file ${bad.name} fails its checksum (torn or corrupt)`); continue; }
    const inflight = m.inflight ?? [];
    const sealedInflight = inflight.length ? await pool.seal({ paths: inflight.map((f) => path.join(storage.dataDir, f.name)), algos: inflight.map((f) => algoOf(f.checksum)!) }) : [];
    const badInflight = inflight.find((f, i) => sealedInflight[i].checksum !== f.checksum || sealedInflight[i].bytes !== f.bytes);
    if (badInflight) { skipped.push(`${name}: in-flight file ${badInflight.name} fails its checksum (torn or corrupt)`); continue; }
    return { manifest: m, skipped, inflight: inflight.map((f) => ({ path: path.join(storage.dataDir, f.name) })) };
  }
  throw Object.assign(new JoineryError('E_CHECKPOINT', `no usable checkpoint in ${storage.location}: ${skipped.join('; ')}. Nothing was started: starting from scratch would redo or lose output. To start over, move the directory (and the old output) away, or rebuild the join buffer with --rebuild-from TIME`), { noUsableCheckpoint: true });
}

/** Rename manifests newer than the one restored so they are not tried again (kept for forensics). */
export function setAsideNewer(storage: CheckpointStorage & { manifestPathOf?: (id: number) => string }, restoredId: number, suffix = '.corrupt'): number[] {
  const moved: number[] = [];
  for (const id of storage.listManifests()) {
    if (id <= restoredId) continue;
    moved.push(id);
    const p = storage.manifestPathOf?.(id);
    if (p) fs.renameSync(p, `${p}${suffix}`);
    else storage.removeManifest(id);
  }
  return moved.reverse();
}
