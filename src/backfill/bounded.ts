/**
 * A file input bounded to an event-time range [from, to) for a backfill. The **cut** is the input's
 * first record with event time ≥ to: the backfill reads the input up to it and no further, and the
 * job that continues from the backfill starts there (`run --rebuild-from … --resume-at CUT`).
 * Records before the cut with event time < from are not routed. A record after the cut belongs to
 * the continuing job even when its time is < to (arrival order decides, as for a rebuild's resume
 * position: that is what makes the two outputs add up to one run).
 *
 * The cut is found from each record's event time (the batch's column extractor for Parquet, the
 * side's extractor otherwise); a record whose fields cannot be read is passed on for the router to
 * dead-letter. At the cut the inner source is rewound to it, so a checkpoint taken afterwards
 * records the cut as the input's position and a resumed backfill stops there again.
 */
import type { Extractor } from '../codec/json.js';
import type { SourcePosition } from '../checkpoint/manifest.js';
import type { FileSource } from '../source/file.js';
import type { ParquetSource } from '../source/parquet.js';
import type { PartitionRef, RecordBatch, Source } from '../source/source.js';

/** Event times beyond this are not times (the router dead-letters them): they never make a cut. */
const MAX_TIME_MS = 8.64e15;

export class BoundedSource implements Source, BoundTrack {
  readonly name: string;
  readonly partitions: readonly PartitionRef[];
  /** The cut was reached (or the input ended before one). */
  reached = false;
  /** Position of the cut: byte offset (NDJSON, FlatBuffers) or row index (Parquet). */
  cutPosition = -1;
  /** Largest event time before the cut so far, and the first one seen (progress). */
  maxTsMs = -Infinity;
  firstTsMs = NaN;
  /** Records passed on to the router, and skipped as before --from. */
  routed = 0;
  skipped = 0;

  constructor(private readonly inner: FileSource | ParquetSource, private readonly ex: Extractor,
    private readonly fromMs: number, private readonly toMs: number) {
    this.name = inner.name;
    this.partitions = inner.partitions;
  }

  checkpointPosition(): SourcePosition {
    return this.inner.checkpointPosition();
  }

  /** Resuming from a checkpoint: the largest event time routed before it (W_cut counts those records too). */
  restoreMaxTs(maxTsMs: number): void {
    if (maxTsMs > this.maxTsMs) this.maxTsMs = maxTsMs;
  }

  async next(): Promise<RecordBatch | null> {
    for (;;) {
      if (this.reached) return null;
      const b = await this.inner.next();
      if (b === null) { this.reached = true; this.cutPosition = this.inner.position(); return null; }
      const out = this.bound(b);
      if (out !== null) return out;
    }
  }

  /** The part of `b` before the cut without the records before --from; null when nothing is left. */
  private bound(b: RecordBatch): RecordBatch | null {
    const r = boundBatch(b, b.extractor ?? this.ex, this.fromMs, this.toMs, this);
    if (r.cut >= 0) {
      this.reached = true;
      this.rewind(b, r.cut);
    }
    return r.batch;
  }

  private rewind(b: RecordBatch, cut: number): void {
    const src = this.inner as { rewindTo(position: number, line: number): void };
    if (b.firstByte !== undefined) {
      this.cutPosition = b.firstByte + (b.offsets[cut] - b.offsets[0]);
      src.rewindTo(this.cutPosition, b.firstPosition + cut);
    } else {
      this.cutPosition = b.firstPosition + cut; // Parquet: a row index
      src.rewindTo(this.cutPosition, 0);
    }
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

const SCRATCH = new Uint8Array(64 * 1024);
let KEEP = new Uint32Array(4097);

/** What a bounded input has seen: the largest and first event time before its cut, records routed and skipped. */
export interface BoundTrack { maxTsMs: number; firstTsMs: number; routed: number; skipped: number }

/**
 * Bound one batch to [fromMs, toMs): `cut` is the index of its first record with event time ≥ toMs
 * (-1 when none), `batch` what is routed of the records before it (those before fromMs taken out;
 * null when nothing is left). Records whose fields cannot be read are kept for the router to
 * dead-letter.
 */
export function boundBatch(b: RecordBatch, ex: Extractor, fromMs: number, toMs: number, track: BoundTrack): { batch: RecordBatch | null; cut: number } {
  const data = b.data, offs = b.offsets, skip = b.recordPrefixBytes ?? 0, isLines = b.lineDelimited === true;
  const bytes = data instanceof Buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data;
  if (KEEP.length < b.count + 1) KEEP = new Uint32Array(b.count + 1);
  const keep = KEEP;
  let kept = 0, cut = b.count;
  for (let i = 0; i < b.count; i++) {
    const start = offs[i] + skip;
    let end = offs[i + 1];
    if (isLines) while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
    if (end > start && ex.extract(bytes, start, end, SCRATCH)) {
      const ts = ex.ts;
      if (ts >= toMs && ts <= MAX_TIME_MS) { cut = i; break; }
      if (ts > track.maxTsMs && ts <= MAX_TIME_MS) track.maxTsMs = ts;
      if (Number.isNaN(track.firstTsMs)) track.firstTsMs = ts;
      if (ts < fromMs) { track.skipped++; continue; }
    }
    keep[kept++] = i;
  }
  track.routed += kept;
  const cutAt = cut < b.count ? cut : -1;
  const withNext = (x: RecordBatch): RecordBatch => {
    // a log: the batch's next offset is the cut's (what a commit of it may say)
    return cutAt >= 0 && b.logPosition !== undefined ? { ...x, logPosition: { ...b.logPosition, offset: String(b.recordOffsets ? b.recordOffsets[cut] : b.firstPosition + cut) } } : x;
  };
  if (kept === 0) return { batch: null, cut: cutAt };
  if (kept === cut) return { batch: cut === b.count ? b : withNext({ ...b, count: cut }), cut: cutAt }; // a prefix: no copy
  // Records before --from taken out: copy the rest (only near the start of the range).
  let size = 0;
  for (let k = 0; k < kept; k++) size += offs[keep[k] + 1] - offs[keep[k]];
  const copy = new Uint8Array(size);
  const offsets = new Uint32Array(kept + 1);
  const positions = new Float64Array(kept);
  let p = 0;
  for (let k = 0; k < kept; k++) {
    const i = keep[k];
    offsets[k] = p;
    copy.set(data.subarray(offs[i], offs[i + 1]), p);
    p += offs[i + 1] - offs[i];
    positions[k] = b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i;
  }
  offsets[kept] = p;
  return { batch: withNext({ ...b, data: copy, offsets, count: kept, recordOffsets: positions, firstPosition: positions[0], firstByte: undefined, extractor: undefined }), cut: cutAt };
}
