/**
 * The bucket store's deferred change log (StateStore.deferLogging; see checkpoint/logged-store.ts
 * for why). Each open slice keeps a note (entry, slot, side) of every entry inserted on a deferred
 * side since its last flush (OpenSlice.notePending: two Int32s, no copy of the event). A flush
 * hands the live ones to the sink, their bytes read from the arena, and forgets the notes:
 *  - at each checkpoint barrier, every slice (flush());
 *  - when a slice is sealed into LMDB, that slice, before its arena goes (Sealer.finishSeal): the
 *    sealed form keeps no partition, and reading it back for the log would cost an LMDB read;
 *  - never for a slice dropped because everything in it expired: its notes go with it. That is the
 *    saving: on a replay, where event time runs far ahead of the clock, most events expire before
 *    the next checkpoint and are never written twice;
 *  - ahead of the barrier, in bounded steps between drains (writeAhead), for entries whose bucket
 *    will most likely outlive the next barrier: on a live stream nearly all of them, and writing
 *    them all at the barrier stalled the worker for ~0.4 s per 10 s interval (p99 18 → 260 ms).
 * An entry whose bucket expired (dead) is skipped: a restore would drop it anyway, since only inner
 * sides defer (an outer side's expiry emits a row, so it is logged at once, with its MARK and
 * EXPIRED records). Its expireAt is written as its bucket's latest expireAt, which is when the
 * store would let it go: an inner entry kept a little longer after a restore can join nothing more.
 */
import { E_JOINED, EV_HEADER, OFF_MASK, SLAB_SHIFT } from './bucket-format.js';
import type { Buckets } from './buckets.js';
import type { OpenSlice } from './open-slice.js';
import type { DeferredLog, DeferredSink, Side } from './store.js';

export class PendingLog implements DeferredLog {
  partition = 0;

  constructor(private readonly b: Buckets, readonly sides: readonly [boolean, boolean], private readonly sink: DeferredSink) {}

  flush(): number {
    let n = 0;
    for (const slice of this.b.order) if (slice.open !== undefined && slice.open.pendN > 0) n += this.flushSlice(slice.open);
    return n;
  }

  /** Hands the live entries noted in `os` to the sink and forgets its notes; returns how many. */
  flushSlice(os: OpenSlice): number {
    const p = os.pend, n = os.pendN;
    if (p === null || n === 0) return 0;
    const written = this.write(os, p, 0, os.pendKept) + this.write(os, p, os.pendRead, n);
    os.pendN = os.pendKept = os.pendRead = 0;
    // A large note list (a busy interval) is not kept for the next one.
    if (p.length > 1 << 16) os.pend = null;
    return written;
  }

  /**
   * Looks at up to `budget` notes not looked at yet: writes now those whose bucket's latest
   * expireAt is at least `minExpireMs` (they will most likely still be live at the next barrier,
   * where writing them would stall the worker: a live stream's whole interval at once), forgets
   * those whose bucket expired, and keeps the others for the barrier. Returns the notes looked at.
   */
  writeAhead(budget: number, minExpireMs: number): number {
    let seen = 0;
    for (const slice of this.b.order) {
      const os = slice.open;
      if (os === undefined || os.pendRead === os.pendN) continue;
      const p = os.pend!, end = Math.min(os.pendN, os.pendRead + (budget - seen));
      let kept = os.pendKept;
      for (let i = os.pendRead; i < end; i++) {
        const ref = p[i << 1], ss = p[(i << 1) + 1];
        const cs = os.classList[os.cls(ref)];
        if (cs.dead) continue;
        if (cs.maxExpire >= minExpireMs) this.writeEntry(os, ref, ss, cs.maxExpire);
        else { p[kept << 1] = ref; p[(kept << 1) + 1] = ss; kept++; }
      }
      seen += end - os.pendRead;
      os.pendKept = kept;
      os.pendRead = end;
      if (seen >= budget) break;
    }
    return seen;
  }

  /** Writes the live entries of notes [from, to); returns how many. */
  private write(os: OpenSlice, p: Int32Array, from: number, to: number): number {
    let written = 0;
    for (let i = from; i < to; i++) {
      const ref = p[i << 1];
      const cs = os.classList[os.cls(ref)];
      if (cs.dead) continue;
      this.writeEntry(os, ref, p[(i << 1) + 1], cs.maxExpire);
      written++;
    }
    return written;
  }

  /** Hands entry `ref` (note `ss`: slot·2 + side) to the sink, its bytes read from the arena. */
  private writeEntry(os: OpenSlice, ref: number, ss: number, expireAtMs: number): void {
    const s = ss >>> 1, side = (ss & 1) as Side;
    const d = os.dvs[ref >>> SLAB_SHIFT], o = ref & OFF_MASK;
    const kr = os.keyRefOf(s);
    this.sink.deferredEvent(side, os.groupOf(s), os.hashOf(s), os.dvs[kr >>> SLAB_SHIFT], kr & OFF_MASK, os.keyLenOf(s),
      d.getFloat64(o, true), d, o + EV_HEADER, d.getUint16(o + 8, true), d.getUint32(o + 10, true),
      (d.getUint8(o + E_JOINED) & 1) === 1, expireAtMs, os.partitionOf(ref));
  }

  pending(): number {
    let n = 0;
    for (const slice of this.b.order) if (slice.open !== undefined) n += slice.open.pendKept + slice.open.pendN - slice.open.pendRead;
    return n;
  }
}
