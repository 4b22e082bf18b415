import type { JoinKind } from '../config/schema.js';
import type { Buffered, Side, StateStore } from '../state/store.js';
import { HOT_PAIRS_PER_EVENT, type HotKeys } from './hot-keys.js';

/** Where join results go. Byte views are valid only during the call. */
export interface JoinEmitter {
  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array,
    rightId: Uint8Array, rightTs: number, right: Uint8Array): void;
  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void;
}

export interface JoinCounters {
  duplicates: number;
  pairs: number;
  unmatchedLeft: number;
  unmatchedRight: number;
  expired: number;
}

/** An event the --max-key-entries guard kept out of the join (neither buffered nor probed). */
export type OverflowSink = (side: Side, key: Uint8Array, ts: number, payload: Uint8Array, reason: string) => void;

/**
 * The interval join of docs/architecture.md §2: l and r join when lower ≤ r.ts − l.ts ≤ upper. One routine
 * serves both sides (Flink's habit): for a right event the bounds are negated and swapped. Every
 * pair is produced exactly once, by whichever of its two events arrives second, because the first
 * is buffered before the second probes.
 *
 * Retention: a left event can no longer join once watermark > ts + upper, a right one once
 * watermark > ts − lower. It is kept at least until watermark > ts, though, so that a duplicate
 * delivery of it (same ts) is recognised rather than joined again; after that a duplicate would
 * be late and never reach the join.
 */
export class IntervalJoin {
  readonly counters: JoinCounters = { duplicates: 0, pairs: 0, unmatchedLeft: 0, unmatchedRight: 0, expired: 0 };
  private readonly outer: [boolean, boolean];
  private watermark = -Infinity;
  // The probing event, captured for the visitor without allocating a closure per event.
  private side: Side = 0;
  private key!: Uint8Array;
  private id!: Uint8Array;
  private ts = 0;
  private payload!: Uint8Array;
  private matches = 0;
  private readonly visit = (e: Buffered): boolean => {
    this.matches++;
    if (this.side === 0) this.emitter.pair(this.key, this.id, this.ts, this.payload, e.id, e.ts, e.payload);
    else this.emitter.pair(this.key, e.id, e.ts, e.payload, this.id, this.ts, this.payload);
    return this.outer[e.side] && !e.joined;
  };
  private readonly onExpired = (e: Buffered): void => {
    if (this.outer[e.side] && !e.joined) {
      if (e.side === 0) this.counters.unmatchedLeft++; else this.counters.unmatchedRight++;
      this.emitter.unmatched(e.side, e.key, e.id, e.ts, e.payload);
    }
  };

  /**
   * `probeStore`: what probes go to, when not `store` itself: a checkpointing worker's logged
   * store only logs probes of an outer side (their MARKs), so an inner join probes the store under
   * it and saves a call layer per event (and V8 inlines the store's probe again).
   */
  constructor(private readonly store: StateStore, kind: JoinKind, private readonly lowerMs: number,
    private readonly upperMs: number, private readonly emitter: JoinEmitter,
    private readonly hot: HotKeys | null = null, private readonly onOverflow: OverflowSink | null = null,
    probeStore?: StateStore) {
    this.outer = [kind === 'left' || kind === 'full', kind === 'right' || kind === 'full'];
    this.probeStore = probeStore !== undefined && !this.outer[0] && !this.outer[1] ? probeStore : store;
  }

  private readonly probeStore: StateStore;

  /** Join one event. Returns false when it was a duplicate or diverted by the guard (nothing emitted, nothing stored). */
  onEvent(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array, payload: Uint8Array): boolean {
    const expireAt = side === 0 ? Math.max(ts, ts + this.upperMs) : Math.max(ts, ts - this.lowerMs);
    const hot = this.hot;
    const held = hot !== null ? hot.check(side, keyGroup, keyHash, key) : -1;
    if (held >= 0 && hot!.maxEntries > 0 && held >= hot!.maxEntries) {
      const reason = hot!.divert(side, keyHash, held);
      this.onOverflow?.(side, key, ts, payload, reason);
      return false;
    }
    if (!this.store.insert(side, keyGroup, keyHash, key, ts, id, payload, false, expireAt)) {
      this.counters.duplicates++;
      return false;
    }
    if (hot !== null) hot.inserted(side, keyHash, key, ts, held);
    const from = side === 0 ? ts + this.lowerMs : ts - this.upperMs;
    const to = side === 0 ? ts + this.upperMs : ts - this.lowerMs;
    this.side = side; this.key = key; this.id = id; this.ts = ts; this.payload = payload;
    this.matches = 0;
    this.probeStore.probe((1 - side) as Side, keyGroup, keyHash, key, from, to, this.visit);
    this.counters.pairs += this.matches;
    if (this.matches >= HOT_PAIRS_PER_EVENT && hot !== null) hot.manyPairs(keyHash, key, this.matches);
    if (this.matches > 0 && this.outer[side]) this.store.markJoined(side, keyGroup, keyHash, key, ts, id);
    return true;
  }

  /** Expire what can no longer join; outer kinds emit their unmatched events now. */
  onWatermark(watermarkMs: number): void {
    if (watermarkMs <= this.watermark) return;
    this.watermark = watermarkMs;
    this.hot?.onWatermark(watermarkMs);
    const needPayload = this.outer[0] || this.outer[1];
    this.counters.expired += this.store.expire(watermarkMs, needPayload ? this.onExpired : undefined);
  }
}
