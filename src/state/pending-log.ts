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
 *    the next checkpoint and are never written twice.
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
    let written = 0;
    for (let i = 0; i < n; i++) {
      const ref = p[i << 1], ss = p[(i << 1) + 1];
      const cs = os.classList[os.cls(ref)];
      if (cs.dead) continue;
      const s = ss >>> 1, side = (ss & 1) as Side;
      const d = os.dvs[ref >>> SLAB_SHIFT], o = ref & OFF_MASK;
      const kr = os.keyRefOf(s);
      this.sink.deferredEvent(side, os.groupOf(s), os.hashOf(s), os.dvs[kr >>> SLAB_SHIFT], kr & OFF_MASK, os.keyLenOf(s),
        d.getFloat64(o, true), d, o + EV_HEADER, d.getUint16(o + 8, true), d.getUint32(o + 10, true),
        (d.getUint8(o + E_JOINED) & 1) === 1, cs.maxExpire, os.partitionOf(ref));
      written++;
    }
    os.pendN = 0;
    // A large note list (a busy interval) is not kept for the next one.
    if (p.length > 1 << 16) os.pend = null;
    return written;
  }

  clear(): void {
    for (const slice of this.b.order) if (slice.open !== undefined) slice.open.pendN = 0;
  }

  pending(): number {
    let n = 0;
    for (const slice of this.b.order) if (slice.open !== undefined) n += slice.open.pendN;
    return n;
  }
}
