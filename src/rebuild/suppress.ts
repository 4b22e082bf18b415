import type { JoinEmitter } from '../join/join.js';
import type { Side } from '../state/store.js';

/**
 * A worker's output during a rebuild's replay: everything the join produces before the
 * REPLAY_END frame was emitted by the lost run already (pairs of two replayed events, unmatched
 * rows of replayed events that expired before the resume position), so it is counted and dropped;
 * from REPLAY_END on it passes through — except unmatched rows of events whose expiry time lies
 * before the watermark at REPLAY_END (W_resume): a store with coarse expiry (the lmdb bucket store)
 * may only now drop them, but the lost run's exact expiry rule places them before the resume
 * position. So unmatched rows are emitted iff expireAt ≥ W_resume, whatever the store. See
 * src/rebuild/replay.ts.
 */
export class SuppressingEmitter implements JoinEmitter {
  suppressing = true;
  readonly suppressed = { pairs: 0, unmatched: [0, 0] as [number, number] };

  private resumeWm = -Infinity;

  constructor(private readonly inner: JoinEmitter, private readonly lowerMs: number, private readonly upperMs: number) {}

  /** REPLAY_END reached, with the worker's watermark there (W_resume). */
  end(watermarkMs: number): void {
    this.suppressing = false;
    this.resumeWm = watermarkMs;
  }

  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array, rightId: Uint8Array, rightTs: number, right: Uint8Array): void {
    if (this.suppressing) { this.suppressed.pairs++; return; }
    this.inner.pair(key, leftId, leftTs, left, rightId, rightTs, right);
  }

  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void {
    // The join's retention rule (join.ts): a left event expires at max(ts, ts + upper), a right one at max(ts, ts − lower).
    const expireAt = side === 0 ? Math.max(ts, ts + this.upperMs) : Math.max(ts, ts - this.lowerMs);
    if (this.suppressing || expireAt < this.resumeWm) { this.suppressed.unmatched[side]++; return; }
    this.inner.unmatched(side, key, id, ts, payload);
  }
}
