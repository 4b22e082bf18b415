import type { PartitionRef } from '../source/source.js';

/**
 * Per-partition watermarks (max event time seen − maxDelay) combined into the engine watermark:
 * the minimum over partitions that are neither finished nor idle. A partition that has not yet
 * delivered anything holds the watermark at −∞ until it goes idle. When every live partition is
 * idle the watermark stays where it was (nothing proves time has moved); when every partition
 * has finished it is +∞.
 */
export class WatermarkTracker {
  private readonly index = new Map<string, number>();
  private readonly maxTs: Float64Array;
  private readonly lastSeenMs: Float64Array;
  private readonly ended: Uint8Array;
  private last = -Infinity;

  constructor(private readonly partitions: readonly PartitionRef[], private readonly maxDelayMs: number,
    private readonly idleTimeoutMs: number, startMs: number) {
    partitions.forEach((p, i) => this.index.set(`${p.side}:${p.partition}`, i));
    const n = partitions.length;
    this.maxTs = new Float64Array(n).fill(-Infinity);
    this.lastSeenMs = new Float64Array(n).fill(startMs);
    this.ended = new Uint8Array(n);
  }

  /** Index of a partition for the hot-path calls below. */
  slot(p: PartitionRef): number {
    const i = this.index.get(`${p.side}:${p.partition}`);
    if (i === undefined) throw new Error(`unknown partition ${p.side}:${p.partition}`);
    return i;
  }

  observe(slot: number, ts: number): void {
    if (ts > this.maxTs[slot]) this.maxTs[slot] = ts;
  }

  touch(slot: number, nowMs: number): void {
    this.lastSeenMs[slot] = nowMs;
  }

  /** Max event time seen on a partition (−∞ before its first event). */
  maxTsOf(slot: number): number {
    return this.maxTs[slot];
  }

  /** Neither finished nor idle: the partition holds the watermark back. */
  holdsWatermark(slot: number, nowMs: number): boolean {
    return this.ended[slot] === 0 && nowMs - this.lastSeenMs[slot] < this.idleTimeoutMs;
  }

  get size(): number {
    return this.maxTs.length;
  }

  end(slot: number): void {
    this.ended[slot] = 1;
  }

  /** The engine watermark now. Never decreases. */
  current(nowMs: number): number {
    let min = Infinity;
    let live = 0;
    let active = 0;
    for (let i = 0; i < this.maxTs.length; i++) {
      if (this.ended[i]) continue;
      live++;
      if (nowMs - this.lastSeenMs[i] >= this.idleTimeoutMs) continue; // idle: does not hold back
      active++;
      const w = this.maxTs[i] - this.maxDelayMs;
      if (w < min) min = w;
    }
    let wm: number;
    if (live === 0) wm = Infinity;
    else if (active === 0) wm = this.last;
    else wm = min;
    if (wm > this.last) this.last = wm;
    return this.last;
  }

  /** Per-partition state for a checkpoint. */
  snapshot(): Array<{ side: number; partition: number; maxTsMs: number; ended: boolean }> {
    return this.partitions.map((p, i) => ({ side: p.side, partition: p.partition, maxTsMs: this.maxTs[i], ended: this.ended[i] === 1 }));
  }

  /** Resume from a checkpoint: partitions it knew get their max event time back (not their end:
   * a restored run re-reads to its end), and the watermark its floor. Unknown partitions are new. */
  restore(watermarkMs: number, parts: ReadonlyArray<{ side: number; partition: number; maxTsMs: number }>): void {
    for (const p of parts) {
      const i = this.index.get(`${p.side}:${p.partition}`);
      if (i !== undefined && p.maxTsMs > this.maxTs[i]) this.maxTs[i] = p.maxTsMs;
    }
    if (watermarkMs > this.last) this.last = watermarkMs;
  }

  /**
   * Routing was paused for `ms`: move every partition's last-seen time forward by as much, so the
   * pause does not count as silence (a paused partition must not turn idle and let the watermark
   * jump past records it has not delivered yet).
   */
  shiftIdle(ms: number): void {
    if (ms > 0) for (let i = 0; i < this.lastSeenMs.length; i++) this.lastSeenMs[i] += ms;
  }

  /** Per partition: max event time, watermark, idle and ended flags (for /status and /metrics). */
  view(nowMs: number): Array<{ side: number; partition: number; maxTs: number; watermark: number; idle: boolean; ended: boolean }> {
    return [...this.index.entries()].map(([k, i]) => {
      const [side, partition] = k.split(':').map(Number);
      return { side, partition, maxTs: this.maxTs[i], watermark: this.maxTs[i] - this.maxDelayMs, idle: !this.ended[i] && nowMs - this.lastSeenMs[i] >= this.idleTimeoutMs, ended: this.ended[i] === 1 };
    });
  }

  maxEventTime(): number {
    let m = -Infinity;
    for (let i = 0; i < this.maxTs.length; i++) if (this.maxTs[i] > m) m = this.maxTs[i];
    return m;
  }
}
