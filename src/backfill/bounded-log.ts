/**
 * A partitioned log's inputs bounded for a backfill (Kafka's: src/kafka/backfill.ts opens them):
 * each partition is read from the first record whose record timestamp is ≥ --from (the opener
 * finds it) up to its cut — its first record with event time ≥ --to — or, when it has none, up to
 * its end as it was when the backfill started. A partition at its cut is held while the others
 * catch up; it is not idle meanwhile, so it keeps holding the watermark back (W_cut is the minimum
 * over all partitions). At the end the cut offsets are committed to the log (Kafka: for --group):
 * `joinery run --group … --rebuild-from TIME` then resumes exactly there, the live half of the seam.
 *
 * The consumer, the sinks and the engine's PositionsPort are those of `run`: with --checkpoint-dir
 * each checkpoint records the bounded positions (a partition at its cut records the cut, not what
 * was fetched past it) and commits them, with exactly-once output in the checkpoint's output
 * transaction; the last checkpoint, at the end, commits the cuts. A restart resumes from the
 * checkpoint the committed offsets name (transactional output) or the newest one, and reads each
 * partition from its position there.
 */
import type { SourcePosition } from '../checkpoint/manifest.js';
import type { Extractor } from '../codec/json.js';
import { log } from '../core/log.js';
import type { LogPosition, PartitionRef, RecordBatch, Source } from '../source/source.js';
import type { Side } from '../state/store.js';
import { boundBatch, type BoundTrack } from './bounded.js';

/** A batch of a partitioned log: it says where it ends. */
export type LogBatch = RecordBatch & { logPosition: LogPosition };

/** What the bounded source needs of the log input it wraps (src/kafka/port.ts KafkaInput is one). */
export interface LogInput extends Source {
  next(): Promise<LogBatch | null>;
  hold(p: PartitionRef, held: boolean): void;
  align(p: PartitionRef, paused: boolean): void;
  pause(side: Side, partition: number): void;
  resume(side: Side, partition: number): void;
  unreadPartitions(): PartitionRef[];
  interrupt(): void;
  checkpointPosition(): SourcePosition;
  /** Commit next offsets to the log (Kafka: for the consumer group). */
  commit(positions: readonly LogPosition[]): Promise<unknown>;
}

/** One partition's range: read from `start`, at most up to `end` (its end when the backfill started). */
export interface LogPartitionRange { side: 0 | 1; topic: string; partition: number; start: number; end: number }

/** Offset of record i (contiguous batches carry only the first). */
const offsetOf = (b: RecordBatch, i: number): number => (b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i);

interface PartBound { topic: string; partition: number; side: 0 | 1; end: number; cut: number; reached: boolean }

export class BoundedLogSource implements Source, BoundTrack {
  readonly name: string;
  readonly partitions: readonly PartitionRef[];
  readonly live = true;
  maxTsMs = -Infinity;
  firstTsMs = NaN;
  routed = 0;
  skipped = 0;
  /** Per partition, the largest event time before its cut (W_cut is their minimum − max-delay). */
  private readonly maxTsOf = new Map<string, number>();
  private readonly parts = new Map<string, PartBound>();
  private stopped = false;

  /**
   * `commitCutOnClose`: commit the cuts when closing a complete backfill (without checkpoints; with
   * them the last checkpoint commits the cuts, with its id as metadata, which a second commit
   * would erase).
   */
  constructor(private readonly inner: LogInput, private readonly ex: [Extractor, Extractor], private readonly fromMs: number, private readonly toMs: number,
    ends: readonly LogPartitionRange[], private readonly commitCutOnClose = true) {
    this.name = inner.name;
    this.partitions = inner.partitions;
    for (const e of ends) {
      const p: PartBound = { topic: e.topic, partition: e.partition, side: e.side, end: e.end, cut: e.end, reached: e.start >= e.end };
      this.parts.set(`${e.side}:${e.partition}`, p);
    }
  }

  /**
   * Resuming from a checkpoint: each partition's largest event time routed before it (the
   * router's snapshot), so that W_cut counts the records read before the restart too.
   */
  restoreMaxTs(parts: ReadonlyArray<{ side: number; partition: number; maxTsMs: number }>): void {
    for (const p of parts) {
      const key = `${p.side}:${p.partition}`;
      if (!this.parts.has(key) || !(p.maxTsMs > (this.maxTsOf.get(key) ?? -Infinity))) continue;
      this.maxTsOf.set(key, p.maxTsMs);
      if (p.maxTsMs > this.maxTsMs) this.maxTsMs = p.maxTsMs;
    }
  }

  /** Hold the partitions with nothing to read (their start is at their end already). */
  start(): void {
    for (const p of this.parts.values()) if (p.reached) { p.cut = Math.min(p.cut, p.end); this.inner.hold({ side: p.side, partition: p.partition }, true); }
  }

  get reached(): boolean {
    for (const p of this.parts.values()) if (!p.reached) return false;
    return true;
  }

  /** The cut of every partition: the next offset the continuing job reads. */
  cuts(): Array<{ topic: string; partition: number; offset: number }> {
    return [...this.parts.values()].map((p) => ({ topic: p.topic, partition: p.partition, offset: p.cut }));
  }

  /** Minimum over partitions of the largest event time before the cut (-∞ when one has none). */
  minMaxTsMs(): number {
    let m = Infinity;
    for (const p of this.parts.values()) m = Math.min(m, this.maxTsOf.get(`${p.side}:${p.partition}`) ?? -Infinity);
    return m;
  }

  /** The inner consumer's positions, a partition at its cut at the cut (the consumer may have fetched past it). */
  checkpointPosition(): SourcePosition {
    const pos = this.inner.checkpointPosition();
    const atCut = new Map([...this.parts.values()].filter((p) => p.reached).map((p) => [`${p.topic}\0${p.partition}`, p.cut]));
    return { ...pos, log: pos.log?.map((o) => { const c = atCut.get(`${o.topic}\0${o.partition}`); return c === undefined ? o : { ...o, offset: String(c) }; }) };
  }

  unreadPartitions(): PartitionRef[] {
    // at its cut, not idle: it holds the watermark back until every partition has reached its own
    const held = [...this.parts.values()].filter((p) => p.reached).map((p) => ({ side: p.side, partition: p.partition }));
    return [...this.inner.unreadPartitions(), ...held];
  }

  interrupt(): void {
    this.stopped = true;
    this.inner.interrupt();
  }

  align(p: PartitionRef, paused: boolean): void { this.inner.align(p, paused); }
  pause(side: 0 | 1, partition: number): void { this.inner.pause(side, partition); }
  resume(side: 0 | 1, partition: number): void { this.inner.resume(side, partition); }
  positions() { return this.inner.positions?.() ?? []; }

  async next(): Promise<RecordBatch | null> {
    for (;;) {
      if (this.reached || this.stopped) return null;
      const b = await this.inner.next();
      if (b === null) return null;
      const key = `${b.side}:${b.partition}`;
      const p = this.parts.get(key);
      if (!p || p.reached) continue; // fetched before the hold took effect
      // records at or beyond the end seen at the start are not part of the backfill
      let count = b.count;
      while (count > 0 && offsetOf(b, count - 1) >= p.end) count--;
      const track = { maxTsMs: this.maxTsOf.get(key) ?? -Infinity, firstTsMs: this.firstTsMs, routed: 0, skipped: 0 };
      const r = boundBatch(count < b.count ? { ...b, count } : b, this.ex[b.side], this.fromMs, this.toMs, track);
      this.maxTsOf.set(key, track.maxTsMs);
      this.firstTsMs = track.firstTsMs;
      if (track.maxTsMs > this.maxTsMs) this.maxTsMs = track.maxTsMs;
      this.routed += track.routed;
      this.skipped += track.skipped;
      if (r.cut >= 0) p.cut = offsetOf(b, r.cut);
      else if (count < b.count || Number(b.logPosition.offset) >= p.end) p.cut = p.end;
      if (r.cut >= 0 || count < b.count || Number(b.logPosition.offset) >= p.end) {
        p.reached = true;
        this.inner.hold({ side: p.side, partition: p.partition }, true);
      }
      if (r.batch) return r.batch;
    }
  }

  /** Commit the cuts for the group (a complete backfill only), then close. */
  async close(): Promise<void> {
    try {
      if (this.commitCutOnClose && this.reached && !this.stopped) {
        const cuts = this.cuts();
        await this.inner.commit(cuts.map((c) => ({ ...c, offset: String(c.offset) })));
        log.debug('backfill cut committed', { cuts });
      }
    } finally {
      await this.inner.close();
    }
  }
}
