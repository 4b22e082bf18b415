/**
 * A StateStore decorator that records every change a checkpoint needs (see delta.ts) into the
 * current change file while passing calls through. Store-agnostic, so every store implementation
 * checkpoints the same way and the stores stay ignorant of durability (their files are working
 * state, rebuilt from checkpoints on restore).
 */
import type { Buffered, Side, StateStore } from '../state/store.js';
import { ChangeWriter } from './delta.js';

export class LoggedStore implements StateStore {
  private probeVisit: ((e: Buffered) => boolean | void) | null = null;
  private probeHash = 0;
  private expiredCb: ((e: Buffered) => void) | undefined;
  /** Kafka partition + 1 of the event being joined (0: not from Kafka); logged with the events it buffers. */
  sourcePartition = 0;
  /**
   * Where the key, id and payload of the event being joined lie back to back (a worker's ring
   * frame), so that its EVENT record copies them in one go: `rawAt` < 0 when unknown. The worker
   * sets it around each event; the lengths are checked against the views given to insert.
   */
  raw: DataView | null = null;
  rawAt = -1;
  rawBytes = 0;

  constructor(readonly inner: StateStore, private readonly outer: readonly [boolean, boolean], public writer: ChangeWriter) {}

  get expiryGranularityMs(): number { return this.inner.expiryGranularityMs; }

  batch<T>(fn: () => T): T { return this.inner.batch(fn); }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    const ok = this.inner.insert(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs);
    if (!ok) return false;
    if (this.rawAt >= 0 && key.length + id.length + payload.length === this.rawBytes) {
      this.writer.eventFrom(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, this.sourcePartition, this.raw!, this.rawAt);
    } else this.writer.event(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs, this.sourcePartition);
    return ok;
  }

  private readonly visitAndLog = (e: Buffered): boolean | void => {
    const r = this.probeVisit!(e);
    if (r === true && this.outer[e.side] && !e.joined) this.writer.mark(e.side, e.keyGroup, this.probeHash, e.key, e.ts, e.id);
    return r;
  };

  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    if (!this.outer[side]) { this.inner.probe(side, keyGroup, keyHash, key, fromTs, toTs, visit); return; }
    this.probeVisit = visit;
    this.probeHash = keyHash;
    try {
      this.inner.probe(side, keyGroup, keyHash, key, fromTs, toTs, this.visitAndLog);
    } finally {
      this.probeVisit = null;
    }
  }

  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.inner.markJoined(side, keyGroup, keyHash, key, ts, id);
    if (this.outer[side]) this.writer.mark(side, keyGroup, keyHash, key, ts, id);
  }

  private readonly expireAndLog = (e: Buffered): void => {
    // keyHash is not part of Buffered; the restore matches identities by (side, key, ts, id) only.
    if (this.outer[e.side]) this.writer.expired(e.side, e.keyGroup, 0, e.key, e.ts, e.id);
    this.expiredCb?.(e);
  };

  expire(watermarkMs: number, onExpired?: (e: Buffered) => void): number {
    if (!this.outer[0] && !this.outer[1]) return this.inner.expire(watermarkMs, onExpired);
    this.expiredCb = onExpired;
    try {
      return this.inner.expire(watermarkMs, this.expireAndLog);
    } finally {
      this.expiredCb = undefined;
    }
  }

  maintain(budgetEntries: number): void { this.inner.maintain?.(budgetEntries); }
  count(): number { return this.inner.count(); }
  bytes(): number { return this.inner.bytes(); }
  close(): Promise<void> { return this.inner.close(); }
}
