import type { JoinEmitter } from '../join/join.js';
import type { Side } from '../state/store.js';

/**
 * A worker's output during a rebuild's replay: everything the join produces before the
 * REPLAY_END frame was emitted by the lost run already (pairs of two replayed events, unmatched
 * rows of replayed events that expired before the resume position), so it is counted and dropped;
 * from REPLAY_END on it passes through. See src/rebuild/replay.ts.
 */
export class SuppressingEmitter implements JoinEmitter {
  suppressing = true;
  readonly suppressed = { pairs: 0, unmatched: [0, 0] as [number, number] };

  constructor(private readonly inner: JoinEmitter) {}

  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array, rightId: Uint8Array, rightTs: number, right: Uint8Array): void {
    if (this.suppressing) { this.suppressed.pairs++; return; }
    this.inner.pair(key, leftId, leftTs, left, rightId, rightTs, right);
  }

  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void {
    if (this.suppressing) { this.suppressed.unmatched[side]++; return; }
    this.inner.unmatched(side, key, id, ts, payload);
  }
}
