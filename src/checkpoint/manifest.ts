/**
 * The checkpoint manifest: everything needed to resume — source positions, router watermark
 * state, the output's committed length, and the chain of state files per key-group range with
 * their checksums. It is the commit point of a checkpoint (docs/architecture.md §3): written with fsync and
 * an atomic rename only after every file it names is durable.
 */
import { createHash } from 'node:crypto';
import { algoOf } from './checksum.js';
import { validExpireAtMax, type ExpireAtMax } from './file-expiry.js';
import type { JoinKind } from '../config/schema.js';
import type { LogPosition } from '../source/source.js';

/**
 * Format 1: state files with a `sha256` each. Format 2: the same, with in-flight frames (a stop
 * checkpoint), which a format-1 joinery, ignoring them, would lose; it refuses them instead.
 * Format 3 (written now): each file's `checksum` names its algorithm (checksum.ts; CRC-32 for new
 * files). A format-2 joinery would find no `sha256` and take every file for corrupt — silently
 * falling back to an older checkpoint; the new number makes it refuse, saying why. Formats 1 and 2
 * are still read: their `sha256` becomes `checksum: 'sha256:…'`, verified as such.
 * Format 4 (written now): the same fields; the change files it names may hold version-2 records
 * (delta.ts: 20-byte headers instead of 40). A format-3 joinery would read those files' header as
 * bad and set the checkpoint aside as corrupt; the new number makes it refuse instead. The chain of
 * a format-4 manifest may mix both record versions (files written before an upgrade).
 */
export const MANIFEST_FORMAT = 4;
export const MANIFEST_FORMATS_READ = [1, 2, 3, 4] as const;

export interface StateFileRef {
  /** File name inside the checkpoint directory's data/ folder. */
  name: string;
  kind: 'delta' | 'base';
  /** Key groups [from, to) whose changes the file may hold. */
  keyGroups: [number, number];
  bytes: number;
  /** `<algorithm>:<hex>` of the whole file (checksum.ts). */
  checksum: string;
  /**
   * The latest expireAt of the file's events per side (null: no event of that side); absent when
   * the file also holds MARK or EXPIRED records, or was written before this field (file-expiry.ts).
   * Readers that do not know it ignore it: it only lets a later checkpoint drop the file unread.
   */
  expireAtMaxMs?: ExpireAtMax;
}

/**
 * What a file input held before its checkpointed position, so a resume can tell the same file from
 * another one (or the same one edited or prepended to). Bounded: SHA-256 of at most the first and
 * the last 64 KiB before the position, whatever the file's size. Absent in older manifests.
 */
export interface InflightRef {
  /** File name inside data/. */
  name: string;
  /** Key groups of the worker whose ring held them (the frames carry each event's key group). */
  keyGroups: [number, number];
  bytes: number;
  checksum: string;
  events: number;
}

export interface FileIdentity {
  /** The file's size when the checkpoint was taken (it may have grown since: appending is fine). */
  sizeBytes: number;
  headBytes: number;
  headSha256: string;
  /** The `tailBytes` bytes just before the position. */
  tailBytes: number;
  tailSha256: string;
}

export interface SourcePosition {
  /** file: byte offset and line of the next unread record; gen: events delivered per side; log: next offset per log partition. */
  kind: 'file' | 'gen' | 'log';
  name: string;
  file?: { byte: number; line: number; side?: 0 | 1; identity?: FileIdentity };
  gen?: { delivered: [number, number]; baseMs: number };
  log?: LogPosition[];
  /**
   * A file in data/ with the source's own state at the position (the generator's: a resume loads
   * it instead of regenerating what was delivered). Optional in every sense: a joinery that does
   * not know it, or finds the file missing or corrupt, resumes from the position alone.
   */
  state?: StateRef;
}

export interface StateRef { name: string; bytes: number; checksum: string }

/**
 * On disk a partitioned log's positions are `{"kind":"kafka","name":…,"kafka":[{topic, partition,
 * offset}]}`, exactly as every earlier release wrote them (Kafka was the only such source then);
 * in memory they are the source-neutral `{kind: 'log', log}`. The on-disk names stay: a checkpoint
 * written before an upgrade must restore after it, members of one group on different releases read
 * each other's manifests (partition handoff), and a manifest written now must stay readable by the
 * release before (a downgrade). The mapping is only here, in encode and decode.
 */
const LOG_ON_DISK = 'kafka';

interface SourcePositionOnDisk extends Omit<SourcePosition, 'kind' | 'log'> {
  kind: Exclude<SourcePosition['kind'], 'log'> | typeof LOG_ON_DISK;
  [LOG_ON_DISK]?: LogPosition[];
}

function toDisk(s: SourcePosition): SourcePositionOnDisk {
  if (s.kind !== 'log') return s as SourcePositionOnDisk;
  const { kind: _kind, log, ...rest } = s;
  return { kind: LOG_ON_DISK, ...rest, [LOG_ON_DISK]: log };
}

function fromDisk(s: SourcePositionOnDisk): SourcePosition {
  if (s.kind !== LOG_ON_DISK) return s as SourcePosition;
  const { kind: _kind, [LOG_ON_DISK]: log, ...rest } = s;
  return { kind: 'log', ...rest, log };
}

export interface Manifest {
  format: number;
  id: number;
  createdAtMs: number;
  /** The join it belongs to: restoring under a different join would silently change results. */
  job: { join: JoinKind; lowerMs: number; upperMs: number; keys: [string[], string[]] };
  sources: SourcePosition[];
  router: { watermarkMs: number; partitions: Array<{ side: number; partition: number; maxTsMs: number; ended: boolean }> };
  /** File output: its length when every record before the barrier had been written. */
  output: { spec: string; lengthBytes?: number };
  workers: Array<{ keyGroups: [number, number]; watermarkMs: number }>;
  /** State chain, oldest first: bases then deltas. */
  files: StateFileRef[];
  /**
   * A stop checkpoint (taken at a cut, without draining the rings): per worker of the run that took
   * it, the frames routed to it but not processed (events and watermarks, in ring order, framed as
   * in the ring). They lie before the source positions: a resume routes them before reading.
   */
  inflight?: InflightRef[];
  stats: { stateBytes: number; newBytes: number; durationMs: number };
}

// JSON has no ±Infinity: watermarks are written as strings when infinite.
const replacer = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
const reviveNum = (v: unknown): number => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : Number(v));

export function encodeManifest(m: Manifest): string {
  const body = JSON.stringify({ ...m, sources: m.sources.map(toDisk) }, replacer);
  const sha = createHash('sha256').update(body).digest('hex');
  return `{"sha256":"${sha}","manifest":${body}}\n`;
}

export class BadManifest extends Error {}

/** Parse and verify a manifest's own checksum (file checksums are verified separately). */
export function decodeManifest(text: string, name: string): Manifest {
  const m = /^\{"sha256":"([0-9a-f]{64})","manifest":(.*)\}\n?$/s.exec(text);
  if (!m) throw new BadManifest(`${name}: torn or not a manifest`);
  const sha = createHash('sha256').update(m[2]).digest('hex');
  if (sha !== m[1]) throw new BadManifest(`${name}: checksum mismatch (torn or corrupt)`);
  const man = JSON.parse(m[2]) as Manifest;
  man.sources = (man.sources as SourcePositionOnDisk[]).map(fromDisk);
  if (!(MANIFEST_FORMATS_READ as readonly number[]).includes(man.format)) throw new BadManifest(`${name}: format ${man.format}, this joinery reads ${MANIFEST_FORMATS_READ.join(', ')}`);
  for (const f of [...man.files, ...(man.inflight ?? [])]) {
    const old = f as { sha256?: unknown; checksum?: string };
    if (man.format < 3) { f.checksum = `sha256:${String(old.sha256)}`; delete old.sha256; }
    // A checksum that cannot be verified refuses the checkpoint: restoring it unverified could resume from a corrupt file.
    if (!algoOf(f.checksum)) throw new BadManifest(`${name}: file ${f.name} has no checksum this joinery can verify (${JSON.stringify(f.checksum)})`);
  }
  // A source state is only a shortcut: one that cannot be verified is left out, not the checkpoint.
  for (const p of man.sources) if (p.state && (typeof p.state.name !== 'string' || !algoOf(p.state.checksum))) delete p.state;
  // A malformed bound could only drop a file too early: without it the file is kept (and compacted).
  for (const f of man.files) if (f.expireAtMaxMs !== undefined && !validExpireAtMax(f.expireAtMaxMs)) delete f.expireAtMaxMs;
  man.router.watermarkMs = reviveNum(man.router.watermarkMs);
  for (const p of man.router.partitions) p.maxTsMs = reviveNum(p.maxTsMs);
  for (const w of man.workers) w.watermarkMs = reviveNum(w.watermarkMs);
  return man;
}
