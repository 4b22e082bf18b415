import type { PartitionRef, Source } from '../source/source.js';
import type { WatermarkTracker } from './watermarks.js';

/**
 * Event-time alignment (--max-drift), after Flink's watermark alignment: a partition whose event
 * time runs more than `maxDriftMs` ahead of the slowest partition that still holds the watermark
 * back is paused until that one catches up. The join buffer holds what lies between the watermark
 * (set by the slowest partition) and the fastest one's position, so without alignment a fast input
 * (a short file, a Kafka topic with a small backlog next to one with a large backlog) fills it
 * with everything it is ahead; with alignment that is at most the drift plus one batch.
 *
 * Never deadlocks: the slowest partition is never paused, and a partition only counts as the
 * slowest while it holds the watermark back (not finished, not idle) and still has records to
 * deliver (Kafka: not sitting at its end, where pausing the others would not make it deliver
 * sooner). A paused partition counts as busy, not idle (the router touches it), so pausing never
 * lets the watermark pass records it has not delivered: nothing turns late because of a pause.
 */
/**
 * Default --max-drift: 4 × max-delay, at least 1 minute. Above max-delay, so the disorder within
 * a partition (up to max-delay backwards) and a batch's span do not make partitions flap between
 * paused and running (a Kafka pause/resume costs a fetch round trip); small next to usual join
 * windows, so the buffer stays close to (upper − lower) + max-delay.
 */
export function defaultMaxDriftMs(maxDelayMs: number): number {
  return Math.max(4 * maxDelayMs, 60_000);
}

export class Aligner {
  /** Per tracker slot: 1 while paused for running ahead. */
  readonly paused: Uint8Array;
  /** How many times a partition was paused (summary, tests). */
  pauses = 0;
  private readonly refs: Array<{ slot: number; p: PartitionRef; source: Source }> = [];
  private readonly unread: Uint8Array;

  constructor(private readonly tracker: WatermarkTracker, private readonly sources: readonly Source[], readonly maxDriftMs: number) {
    this.paused = new Uint8Array(tracker.size);
    this.unread = new Uint8Array(tracker.size);
    for (const s of sources) for (const p of s.partitions) this.refs.push({ slot: tracker.slot(p), p, source: s });
  }

  get enabled(): boolean {
    return this.maxDriftMs > 0;
  }

  /** Recompute which partitions run ahead, and tell sources that pause per partition (Kafka). */
  update(nowMs: number): void {
    if (!this.enabled) return;
    const t = this.tracker, unread = this.unread;
    unread.fill(1);
    for (const s of this.sources) {
      if (!s.unreadPartitions) continue;
      for (const r of this.refs) if (r.source === s) unread[r.slot] = 0;
      for (const p of s.unreadPartitions()) unread[t.slot(p)] = 1;
    }
    let floor = Infinity;
    for (const r of this.refs) {
      if (unread[r.slot] && t.holdsWatermark(r.slot, nowMs)) floor = Math.min(floor, t.maxTsOf(r.slot));
    }
    const limit = floor + this.maxDriftMs;
    // A paused partition goes on only once it is within half the drift: partitions close to the
    // limit do not flap (each Kafka pause and resume costs a fetch).
    const resumeAt = floor + this.maxDriftMs / 2;
    for (const r of this.refs) {
      const ahead = t.maxTsOf(r.slot) > (this.paused[r.slot] ? resumeAt : limit) ? 1 : 0;
      if (ahead === this.paused[r.slot]) continue;
      this.paused[r.slot] = ahead;
      if (ahead) this.pauses++;
      r.source.align?.(r.p, ahead === 1);
    }
  }

  /** Lift every alignment pause (alignment is suspended, e.g. during a rebuild's replay). */
  releaseAll(): void {
    for (const r of this.refs) {
      if (!this.paused[r.slot]) continue;
      this.paused[r.slot] = 0;
      r.source.align?.(r.p, false);
    }
  }

  /** A source may be asked for a batch: one of its partitions is not paused for alignment. */
  readable(s: Source): boolean {
    for (const r of this.refs) if (r.source === s && !this.paused[r.slot]) return true;
    return false;
  }

  /** Paused partitions are busy, not idle: keep them from turning idle (see WatermarkTracker). */
  touchPaused(nowMs: number): void {
    for (const r of this.refs) if (this.paused[r.slot]) this.tracker.touch(r.slot, nowMs);
  }
}
