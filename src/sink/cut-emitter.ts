import type { JoinEmitter } from '../join/join.js';
import type { Side } from '../state/store.js';

/**
 * A worker's output during a backfill. Everything passes until the REPLAY_END frame, which the
 * router puts in once every input has reached its cut, with the watermark then at W_cut (the
 * minimum over inputs of the largest event time before the cut, minus --max-delay). From there on
 * the inputs end and the buffer expires: pairs cannot form any more, and an unmatched row is
 * emitted iff its expiry time is < W_cut. A later one belongs to the job that goes on from the cut
 * (`run --rebuild-from … --resume-at CUT` emits exactly the unmatched rows expiring at or after
 * W_resume = W_cut; see src/rebuild/suppress.ts, the mirror image of this rule). Decided on the
 * expiry time, not on when the store drops the entry, so the lmdb store's coarse expiry does not
 * matter.
 */
export class CutEmitter implements JoinEmitter {
  readonly suppressed = { pairs: 0, unmatched: [0, 0] as [number, number] };
  private cutWm = Infinity;

  constructor(private readonly inner: JoinEmitter, private readonly lowerMs: number, private readonly upperMs: number) {}

  /** REPLAY_END reached: the worker's watermark there is W_cut. */
  end(watermarkMs: number): void {
    this.cutWm = watermarkMs;
  }

  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array, rightId: Uint8Array, rightTs: number, right: Uint8Array): void {
    this.inner.pair(key, leftId, leftTs, left, rightId, rightTs, right);
  }

  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void {
    // The join's retention rule (join.ts): a left event expires at max(ts, ts + upper), a right one at max(ts, ts − lower).
    const expireAt = side === 0 ? Math.max(ts, ts + this.upperMs) : Math.max(ts, ts - this.lowerMs);
    if (expireAt >= this.cutWm) { this.suppressed.unmatched[side]++; return; }
    this.inner.unmatched(side, key, id, ts, payload);
  }
}
