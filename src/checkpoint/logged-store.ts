/**
 * A StateStore decorator that records every change a checkpoint needs (see delta.ts) into the
 * current change file while passing calls through. Store-agnostic, so every store implementation
 * checkpoints the same way and the stores stay ignorant of durability (their files are working
 * state, rebuilt from checkpoints on restore).
 *
 * Deferred EVENT records (startDeferring()): with a store that can (StateStore.deferLogging, the
 * bucket store), an event inserted on an inner side is not written when it arrives. The store
 * notes it, and flushPending() writes those still live at the checkpoint barrier, into the change
 * file that closes there. A checkpoint must hold what is live at its barrier, and no more: an
 * inner-side event that expired before it can join nothing after it. Writing every event as it
 * came cost `bench` 13 % of its throughput with checkpoints every 10 s, where event time runs ahead
 * of the clock and most events expire within one interval; written at the barrier, only the
 * survivors are (see docs/architecture.md, "Checkpoints"). On a live stream nearly every event
 * survives its interval: then the same records are written, later and in one go per barrier.
 * Outer sides stay logged at once: their MARK and EXPIRED records must follow their EVENT record.
 */
import type { Buffered, DeferredLog, DeferredSink, Side, StateStore } from '../state/store.js';
import { ChangeWriter } from './change-writer.js';

/**
 * The predicted advance of the watermark until the next barrier is taken at this share. Below 1,
 * a guess that is off errs towards writing ahead: an entry written ahead that then expires before
 * the barrier costs one record, as every entry did before deferral; an entry kept that survives
 * is written at the barrier, where all such entries make one stall. (At 1.5, on a live stream with
 * an interval longer than its window, the entries of the third of a window before each barrier
 * would all have been written at it.)
 */
const HORIZON_FACTOR = 0.8;
/** The least part of an interval over which the watermark's rate of advance is measured. */
const PACE_MIN_ELAPSED_MS = 500;

export class LoggedStore implements StateStore, DeferredSink {
  /** The store's deferred log (startDeferring()), or null: every event is logged as it is inserted. */
  private deferred: DeferredLog | null = null;
  private readonly defers: [boolean, boolean] = [false, false];

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

  /** `intervalMs`: the time between checkpoints (paceDeferred's horizon). */
  constructor(readonly inner: StateStore, private readonly outer: readonly [boolean, boolean], public writer: ChangeWriter,
    private readonly intervalMs = 10_000) {}

  get expiryGranularityMs(): number { return this.inner.expiryGranularityMs; }

  /**
   * From now on, inner sides' EVENT records are deferred to flushPending(), if the store can.
   * Called once the store holds only what is already in the chain (after a restore).
   */
  startDeferring(): boolean {
    if (this.deferred !== null || this.inner.deferLogging === undefined) return this.deferred !== null;
    const sides: [boolean, boolean] = [!this.outer[0], !this.outer[1]];
    if (!sides[0] && !sides[1]) return false;
    this.deferred = this.inner.deferLogging(sides, this);
    this.defers[0] = sides[0];
    this.defers[1] = sides[1];
    return true;
  }

  /**
   * Writes the deferred EVENT records of the entries still live into the current change file (at
   * a barrier, whose watermark and time are given); returns how many.
   */
  flushPending(watermarkMs: number, nowMs: number): number {
    if (this.deferred === null) return 0;
    const rate = this.rateSinceBarrier(watermarkMs, nowMs);
    if (rate >= 0) this.lastRate = rate;
    this.intervalStartMs = nowMs;
    this.intervalStartWm = watermarkMs;
    return this.deferred.flush();
  }

  /** Pacing of deferred records (paceDeferred): when the current interval began, and its watermark then. */
  private intervalStartMs = NaN;
  private intervalStartWm = -Infinity;
  /** Event-time ms the watermark advanced per ms of the clock in the last interval (NaN: not known). */
  private lastRate = NaN;

  /**
   * Once per drain: writes ahead, `budget` notes at most, the deferred records of the entries that
   * will most likely still be live at the next barrier (PendingLog.writeAhead), so that a barrier
   * does not write a live stream's whole interval at once. "Most likely": the bucket's expiry lies
   * beyond where the watermark will be at the next barrier: its advance over the time left until
   * then (interval − time since the last barrier), at the rate of the current interval (the last
   * one's until half a second has passed), times HORIZON_FACTOR. A replay, whose event
   * time runs ahead of the clock, writes nearly nothing ahead until the barrier is near; a live
   * stream nearly everything; so does any stream with an interval longer than its window, as the
   * barrier comes near (the entries noted early, which will be gone by then, are kept).
   */
  paceDeferred(watermarkMs: number, nowMs: number, budget: number): void {
    if (this.deferred === null) return;
    // No watermark yet (an input that has sent nothing): nothing can expire, so nothing waits.
    if (!(watermarkMs > -Infinity)) { this.deferred.writeAhead(budget, -Infinity); return; }
    if (Number.isNaN(this.intervalStartMs) || this.intervalStartWm === -Infinity) {
      this.intervalStartMs = nowMs;
      this.intervalStartWm = watermarkMs;
      return;
    }
    const measured = this.rateSinceBarrier(watermarkMs, nowMs);
    const rate = Number.isNaN(measured) ? this.lastRate : measured;
    if (!(rate >= 0)) return;
    this.deferred.writeAhead(budget, watermarkMs + rate * Math.max(0, this.intervalMs - (nowMs - this.intervalStartMs)) * HORIZON_FACTOR);
  }

  /** Event-time ms the watermark advanced per ms of the clock since the last barrier; NaN before PACE_MIN_ELAPSED_MS of it. */
  private rateSinceBarrier(watermarkMs: number, nowMs: number): number {
    const elapsedMs = nowMs - this.intervalStartMs;
    return elapsedMs >= PACE_MIN_ELAPSED_MS ? (watermarkMs - this.intervalStartWm) / elapsedMs : NaN;
  }

  /** Entries inserted since the last flush whose records wait (live or not). */
  pendingRecords(): number {
    return this.deferred === null ? 0 : this.deferred.pending();
  }

  deferredEvent(side: Side, keyGroup: number, keyHash: number, keySrc: DataView, keyAt: number, keyLen: number, ts: number,
    tailSrc: DataView, tailAt: number, idLen: number, payloadLen: number, joined: boolean, expireAtMs: number, sourcePartition: number): void {
    this.writer.eventParts(side, keyGroup, keyHash, keySrc, keyAt, keyLen, ts, tailSrc, tailAt, idLen, payloadLen, joined, expireAtMs, sourcePartition);
  }

  batch<T>(fn: () => T): T { return this.inner.batch(fn); }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    if (this.defers[side]) {
      this.deferred!.partition = this.sourcePartition;
      return this.inner.insert(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs);
    }
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
