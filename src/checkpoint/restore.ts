/**
 * Choosing the checkpoint to resume from: the newest manifest that decodes, belongs to this join,
 * and whose every state file is present with its recorded checksum. Torn or corrupt newer ones are
 * reported, set aside (renamed *.corrupt) and the previous one is used. A directory with
 * manifests but none usable is an error: starting from scratch would silently redo or lose output.
 */
import { JoineryError } from '../core/errors.js';
import { algoOf } from './checksum.js';
import { BadManifest, decodeManifest, type Manifest, type StateFileRef } from './manifest.js';
import type { SidePool } from './pool.js';
import type { CheckpointStorage } from './storage.js';

export interface RestorePoint {
  manifest: Manifest;
  /** Reasons newer checkpoints were skipped (for the log). */
  skipped: string[];
  /** A stop checkpoint's unprocessed frames, one file per worker of the run that took it (`partitions`: only events of these Kafka partitions). */
  inflight?: InflightFile[];
  /** Warnings about the restored checkpoint itself (a source state left out), for the log. */
  notes?: string[];
}

/** An in-flight file to route first, in the storage holding it (a group member's may be another member's). */
export interface InflightFile { storage: CheckpointStorage; name: string; partitions?: number[]; checkpoint?: string }

/** Check published files against their recorded size and checksum (on local copies, on the side pool); returns the first that fails. */
export async function verifyFiles<T extends Pick<StateFileRef, 'name' | 'bytes' | 'checksum'>>(storage: CheckpointStorage, pool: SidePool, files: readonly T[]): Promise<T | null> {
  if (files.length === 0) return null;
  const paths = await storage.fetch(files.map((f) => f.name));
  const sealed = await pool.seal({ paths, algos: files.map((f) => algoOf(f.checksum)!) });
  return files.find((f, i) => sealed[i].checksum !== f.checksum || sealed[i].bytes !== f.bytes) ?? null;
}

export function sameJob(a: Manifest['job'], b: Manifest['job']): string | null {
  if (a.join !== b.join) return `join kind ${a.join} vs ${b.join}`;
  if (a.lowerMs !== b.lowerMs || a.upperMs !== b.upperMs) return `bounds [${a.lowerMs}, ${a.upperMs}] ms vs [${b.lowerMs}, ${b.upperMs}] ms`;
  if (JSON.stringify(a.keys) !== JSON.stringify(b.keys)) return `key fields ${JSON.stringify(a.keys)} vs ${JSON.stringify(b.keys)}`;
  return null;
}

export async function findRestorePoint(storage: CheckpointStorage, job: Manifest['job'], pool: SidePool,
  acceptId?: (id: number) => boolean): Promise<RestorePoint | null> {
  const ids = await storage.listManifests();
  if (ids.length === 0) return null;
  const skipped: string[] = [];
  for (const id of ids) {
    const name = `checkpoint ${id}`;
    let m: Manifest;
    try {
      m = decodeManifest(await storage.readManifest(id), name);
    } catch (e) {
      const msg = (e as Error).message;
      skipped.push(e instanceof BadManifest ? msg : `${name}: ${msg}`); // BadManifest already names it
      continue;
    }
    const diff = sameJob(m.job, job);
    if (diff) {
      throw new JoineryError('E_CHECKPOINT', `--checkpoint-dir ${storage.location} holds checkpoints of a different join (${diff}); use another directory, or remove this one to start over`);
    }
    if (acceptId && !acceptId(id)) { skipped.push(`${name}: newer than what the output has committed`); continue; }
    const present = new Set(await storage.listFiles());
    const missing = m.files.filter((f) => !present.has(f.name));
    if (missing.length > 0) { skipped.push(`${name}: state file ${missing[0].name} is missing`); continue; }
    const missingInflight = (m.inflight ?? []).find((f) => !present.has(f.name));
    if (missingInflight) { skipped.push(`${name}: in-flight file ${missingInflight.name} is missing`); continue; }
    const bad = await verifyFiles(storage, pool, m.files);
    if (bad) { skipped.push(`${name}: state file ${bad.name} fails its checksum (torn or corrupt)`); continue; }
    const inflight = m.inflight ?? [];
    const badInflight = await verifyFiles(storage, pool, inflight);
    if (badInflight) { skipped.push(`${name}: in-flight file ${badInflight.name} fails its checksum (torn or corrupt)`); continue; }
    return { manifest: m, skipped, inflight: inflight.map((f) => ({ storage, name: f.name })), notes: await checkSourceStates(storage, pool, m, present) };
  }
  throw Object.assign(new JoineryError('E_CHECKPOINT', `no usable checkpoint in ${storage.location}: ${skipped.join('; ')}. Nothing was started: starting from scratch would redo or lose output. To start over, move the directory (and the old output) away, or rebuild the join buffer with --rebuild-from TIME`), { noUsableCheckpoint: true });
}

/**
 * A source state (manifest.ts StateRef) missing or failing its checksum is left out of the
 * manifest, not the checkpoint: the source then resumes from its position alone (slower).
 */
async function checkSourceStates(storage: CheckpointStorage, pool: SidePool, m: Manifest, present: Set<string>): Promise<string[]> {
  const notes: string[] = [];
  for (const p of m.sources) {
    if (!p.state) continue;
    let why: string | null;
    try {
      why = !present.has(p.state.name) ? 'is missing' : await verifyFiles(storage, pool, [p.state]) ? 'fails its checksum' : null;
    } catch (e) {
      why = `cannot be read (${(e as Error).message})`;
    }
    if (why === null) continue;
    notes.push(`checkpoint ${m.id}: ${p.name}'s state file ${p.state.name} ${why}: it resumes from its position alone`);
    delete p.state;
  }
  return notes;
}

/** Set aside manifests newer than the one restored so they are not tried again (kept for forensics). */
export async function setAsideNewer(storage: CheckpointStorage, restoredId: number, suffix = '.corrupt'): Promise<number[]> {
  const moved: number[] = [];
  for (const id of await storage.listManifests()) {
    if (id <= restoredId) continue;
    moved.push(id);
    await storage.setAsideManifest(id, suffix);
  }
  return moved.reverse();
}
