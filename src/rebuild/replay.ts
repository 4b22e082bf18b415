/**
 * Rebuilding the join buffer when checkpoints are gone (`--rebuild-from TIME`), Netflix's backfill
 * strategy: replay the inputs from TIME up to a *resume position* per partition (what the lost run
 * had processed and emitted the output of), then go on normally.
 *
 * The router routes the replay as a prefix of the run: a partition that reaches its resume position
 * is held (a file source is not read, a Kafka partition is paused; the rest of a straddling batch
 * is kept aside) until every partition has reached its own. Then it advances the watermark, puts a
 * REPLAY_END frame into every ring, routes what it kept aside and releases the holds. So every
 * replayed event is routed before any event after the resume position, and the workers only have
 * to suppress *all* output before REPLAY_END:
 *  - a pair of two replayed events is produced before REPLAY_END (by whichever arrives second):
 *    suppressed — the lost run emitted it;
 *  - a pair with an event after the resume position is produced after REPLAY_END: emitted;
 *  - an unmatched (outer) row of a replayed event that expires during the replay, i.e. with
 *    expireAt < the watermark at the resume position: suppressed; later ones are emitted.
 * No per-event flag has to live in the join buffer, so the stores and checkpoints are unchanged.
 * Replayed records with event time < TIME are read (their time counts for the watermark) but not
 * joined; late and malformed replayed records are counted, not written again to --late-out or
 * --dead-letter. Kafka offsets are not committed for replayed batches (the group's offsets never
 * move back), and checkpoints wait until the replay is over (a checkpoint taken mid-replay could
 * not be resumed exactly).
 */
import * as fs from 'node:fs';
import { JoineryError, usageError } from '../core/errors.js';
import { decodeManifest, type Manifest } from '../checkpoint/manifest.js';
import type { PartitionRef, RecordBatch, Source } from '../source/source.js';

export interface ResumePoint {
  side: number;
  partition: number;
  /** First position after the replay: Kafka offset, or byte offset in a file. Records before it are replayed. */
  position: number;
}

export interface ReplayPlan {
  /** Event time from which replayed records are joined (earlier ones are skipped). */
  fromMs: number;
  /** Partitions with something to replay; every other partition starts after its resume position already. */
  resume: ResumePoint[];
  /** The lost run's watermark at the resume position, when known (a surviving manifest): the replay ends with at least this watermark. */
  watermarkFloorMs?: number;
  /** For messages. */
  describe: string;
}

/** `--resume-at` in its byte form: `LEFT_BYTE,RIGHT_BYTE`; null when it is not that form (a manifest path). */
export function parseByteResume(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Read a checkpoint manifest named by --resume-at (its state files may be gone: only positions and watermark are used). */
export function readResumeManifest(file: string): Manifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new JoineryError('E_INPUT', `--resume-at ${file}: not LEFT_BYTE,RIGHT_BYTE and not a readable manifest file: ${(e as Error).message}`);
  }
  let m: Manifest;
  try {
    m = decodeManifest(text, file);
  } catch (e) {
    throw new JoineryError('E_INPUT', `--resume-at ${file}: ${(e as Error).message}`);
  }
  refuseStopCheckpoint(m, `--resume-at ${file}`, 'with --out file:, give an earlier manifest of the same directory (a lower ckpt-… id) as --resume-at (the file is cut back to it); with Kafka output, restore the in-flight files instead (an earlier checkpoint would repeat committed output)');
  return m;
}

/**
 * A stop checkpoint's positions lie after events it kept unjoined (in-flight files, gone with the
 * state): a replay up to them cannot tell those from the events whose output exists.
 */
export function refuseStopCheckpoint(m: Manifest, what: string, hint: string): void {
  const held = (m.inflight ?? []).reduce((n, f) => n + f.events, 0);
  if (held === 0) return;
  throw usageError(`${what}: checkpoint ${m.id} was taken at a stop (a cut) and kept ${held} event(s) read but not yet joined in its in-flight files; a rebuild cannot tell them from the events whose output exists: ${hint}`);
}

const keyOf = (side: number, partition: number) => `${side}:${partition}`;

/** Position of record i of a batch: log offset, or file byte offset. */
function positionOf(b: RecordBatch, i: number): number {
  if (b.firstByte !== undefined) return b.firstByte + (b.offsets[i] - b.offsets[0]);
  return b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i;
}

/** Position just after a batch (the next record's). */
function endOf(b: RecordBatch): number {
  if (b.firstByte !== undefined) return b.firstByte + (b.offsets[b.count] - b.offsets[0]);
  return b.logPosition !== undefined ? Number(b.logPosition.offset) : b.firstPosition + b.count;
}

/** The router's view of a replay in progress. */
export class Replay {
  active = true;
  private readonly resume = new Map<string, number>();
  private readonly reached = new Set<string>();
  private stash: RecordBatch[] = [];
  readonly counters = { replayed: 0, skipped: 0, rejected: 0 };

  constructor(readonly plan: ReplayPlan, private readonly sources: readonly Source[]) {
    const known = new Set(sources.flatMap((s) => s.partitions.map((p) => keyOf(p.side, p.partition))));
    for (const r of plan.resume) {
      const k = keyOf(r.side, r.partition);
      if (!known.has(k)) throw new JoineryError('E_INTERNAL', `replay plan names unknown partition ${k}`);
      if (r.position > 0) this.resume.set(k, r.position);
    }
    for (const k of known) if (!this.resume.has(k)) this.reached.add(k);
    if (this.reached.size === known.size) this.active = false;
  }

  /**
   * Index of the first record of `b` at or after its partition's resume position (b.count when the
   * whole batch is replayed). Marks the partition reached when the batch gets there, and keeps a
   * copy of the records after the cut to be routed once the replay is over.
   */
  cut(b: RecordBatch): number {
    const k = keyOf(b.side, b.partition);
    const resume = this.resume.get(k);
    if (resume === undefined || this.reached.has(k)) return 0; // cannot happen: held partitions are not read
    let i = 0;
    while (i < b.count && positionOf(b, i) < resume) i++;
    if (b.firstByte !== undefined && i > 0) {
      // Files: the resume position must be a record boundary.
      const at = i < b.count ? positionOf(b, i) : endOf(b);
      if (at > resume) {
        throw new JoineryError('E_USAGE', `--resume-at: byte ${resume} of ${b.origin} is inside a record (records start at ${positionOf(b, i - 1)} and ${at}): give the byte offset of the first record not processed`);
      }
    }
    if (i < b.count) {
      this.stash.push(sliceBatch(b, i));
      this.reached.add(k);
    } else if (endOf(b) >= resume) {
      this.reached.add(k);
    }
    return i;
  }

  /** The partition reached its resume position (or its input ended before it). */
  isReached(p: PartitionRef): boolean {
    return this.reached.has(keyOf(p.side, p.partition));
  }

  /** Mark every partition of a source reached (its input ended). */
  endSource(s: Source): void {
    for (const p of s.partitions) this.reached.add(keyOf(p.side, p.partition));
  }

  allReached(): boolean {
    let n = 0;
    for (const s of this.sources) n += s.partitions.length;
    return this.reached.size >= n;
  }

  /** A one-partition source without hold() whose partition reached its resume: the router does not read it until the replay ends. */
  sourceHeld(s: Source): boolean {
    return this.active && !s.hold && s.partitions.length === 1 && this.isReached(s.partitions[0]);
  }

  /** Records kept aside at the cut, in the order they were cut; emptied. */
  takeStash(): RecordBatch[] {
    const s = this.stash;
    this.stash = [];
    return s;
  }
}

/** A copy of records [from, count) of a batch (the source reuses its buffers). */
function sliceBatch(b: RecordBatch, from: number): RecordBatch {
  const start = b.offsets[from], end = b.offsets[b.count];
  const data = new Uint8Array(end - start);
  data.set(b.data.subarray(start, end));
  const n = b.count - from;
  const offsets = new Uint32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = b.offsets[from + i] - start;
  const out: RecordBatch & Record<string, unknown> = {
    ...(b as RecordBatch & Record<string, unknown>),
    data, offsets, count: n, extractor: undefined, // the copy's offsets are its own: the format's extractor reads the same values
    firstPosition: b.recordOffsets ? b.firstPosition : b.firstPosition + from,
  };
  if (b.recordOffsets) { out.recordOffsets = b.recordOffsets.slice(from, b.count); out.firstPosition = out.recordOffsets[0]; }
  if (b.firstByte !== undefined) out.firstByte = b.firstByte + (start - b.offsets[0]);
  return out;
}
