/**
 * The bucket store's shared state: its slices in time order, the key index over them, counters,
 * the LMDB environment and its pool of bucket database names. sealer.ts, expiry.ts and
 * bucket-store.ts all work on one Buckets; it knows how to add and remove slices and how to keep
 * the key index in step when a slice or a bucket goes.
 */
import { markedBuffer, NONE, type MarkedBuffer } from './bucket-format.js';
import { KeyIndex } from './key-index.js';
import type { RootDatabase } from './lmdb.js';
import type { OpenSlice } from './open-slice.js';
import type { SealJob } from './seal-job.js';
import { SealedReader, Slice, type Part } from './sealed-io.js';
import type { Side } from './store.js';

/**
 * New open slices start with at most this many slots: 2M (48 MiB of slot arrays, filled as used,
 * and a 16 MiB table). Was 64k: slices of a 30 s bucket at 50k events/s per worker hold ~1M keys,
 * and each doubling on the way there stalled the worker (~70 ms CPU for the last one).
 */
const MAX_SLOT_HINT = 1 << 21;
/** Work units (see seal-job.ts) per key of a dropped bucket checked, and per key index removal. */
const U_KEY = 1 / 32;
const U_REMOVE = 1 / 4;

/** The initial slot capacity for a slice expected to hold n keys. */
export function slotsFor(n: number): number {
  return Math.min(MAX_SLOT_HINT, Math.max(64, 2 ** Math.ceil(Math.log2(n + 1))));
}

/** A dropped sealed bucket whose keys are leaving the key index: filter `side`, hash-table position `pos` next. */
interface Unindexing {
  readonly part: Part;
  readonly t: number;
  side: Side;
  pos: number;
}

export class Buckets {
  readonly slices = new Map<number, Slice>();
  readonly order: Slice[] = []; // by t ascending
  lastSlice: Slice | undefined;
  /** Per keyHash and side, the live slices holding it (see key-index.ts). */
  readonly index = new KeyIndex();
  readonly reader = new SealedReader();
  entries = 0;
  probedSlices = 0; // slices visited by probes (stats)
  byteCount = 0;
  sealedCount = 0; // entries in sealed buckets
  dirty = false; // this batch wrote to LMDB
  wmMax = -Infinity; // highest watermark passed to expire()
  tsMax = -Infinity; // highest event time inserted
  tsMaxAtWm = -Infinity; // tsMax when wmMax last rose (see Sealer.sealClock)
  minMaxExpire = Infinity; // ≤ every live bucket's max expireAt
  job: SealJob | undefined; // the slice being sealed
  readonly freeNames: string[] = [];
  readonly releasedNames: string[] = []; // dropped in this batch: reusable after commit
  private nextName = 0;
  vbuf: MarkedBuffer = markedBuffer(64 * 1024); // a value being sealed
  /** Initial slot capacity of a new open slice: the last sealed slice's keys, rounded up (slices are alike). */
  slotHint = 64;

  constructor(readonly bucketMs: number, readonly root: RootDatabase<Buffer, Buffer>) {}

  addSlice(t: number): Slice {
    this.flushUnindex(t); // a bucket of an earlier slice t may still be leaving the index
    // Slices are alike: start at the size of the newest one (it is nearly complete when the next
    // begins) or of the last sealed one, not grow to it by doubling (each doubling copies every slot).
    const newest = this.order[this.order.length - 1];
    const hint = newest?.open !== undefined && newest.open.n >= this.slotHint ? slotsFor(newest.open.n) : this.slotHint;
    const slice = new Slice(t, hint);
    this.slices.set(t, slice);
    const order = this.order;
    if (order.length === 0 || order[order.length - 1].t < t) order.push(slice);
    else order.splice(this.firstSliceAtOrAfter(t), 0, slice);
    return slice;
  }

  /** Removes the slice at position i of `order` (it holds nothing live any more); `unindex` false: the caller clears the index. */
  removeSlice(i: number, unindex = true): void {
    const slice = this.order[i];
    if (slice.open !== undefined && unindex) this.unindexOpen(slice.open, slice.t);
    this.order.splice(i, 1);
    this.slices.delete(slice.t);
    if (this.lastSlice === slice) this.lastSlice = undefined;
  }

  firstSliceAtOrAfter(t: number): number {
    const order = this.order;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order[mid].t < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  takeName(): string {
    return this.freeNames.pop() ?? `b${this.nextName++}`;
  }

  /** Removes the index entries of open slice t's keys (the slice goes). */
  unindexOpen(os: OpenSlice, t: number): void {
    const index = this.index;
    for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
      const heads = os.heads[side];
      for (let s = 0; s < os.n; s++) if (heads[s] !== NONE) index.remove(os.hash[s], side, t);
    }
  }

  /**
   * A sealed bucket left slice t (dropped): its keys leave the key index, except those another
   * bucket of t holds, in bounded steps (unindexWork) rather than all at once: ~0.25 µs per key,
   * a quarter of a second in one call for a bucket of a million keys. Until then a probe may visit
   * slice t for such a key and find nothing there (or no slice t at all), never miss anything;
   * anything that puts entries into slice t again first finishes its pending removals (flushUnindex).
   */
  unindexPart(part: Part, t: number): void {
    this.unindexing.push({ part, t, side: 0, pos: -1 });
  }

  /** Key index removals of dropped buckets still to do (their buckets). */
  pendingUnindex(): number {
    return this.unindexing.length;
  }

  /** Does up to `budget` work units of pending key index removals (oldest bucket first); returns the units used. */
  unindexWork(budget: number): number {
    const q = this.unindexing;
    let used = 0;
    while (q.length > 0 && used < budget) {
      used += this.unindexStep(q[0], budget - used);
      if (q[0].side > 1) q.shift();
    }
    return used;
  }

  /** Finishes the pending removals of slice t's dropped buckets (entries are about to go into slice t). */
  flushUnindex(t: number): void {
    const q = this.unindexing;
    for (let i = 0; i < q.length; i++) {
      if (q[i].t !== t) continue;
      this.unindexStep(q[i], Infinity);
      q.splice(i--, 1);
    }
  }

  /** Every slice went: nothing is left to unindex (the caller cleared the index). */
  dropUnindexing(): void {
    this.unindexing.length = 0;
  }

  private readonly unindexing: Unindexing[] = [];

  private unindexStep(u: Unindexing, budget: number): number {
    const index = this.index;
    const rest = this.slices.get(u.t)?.parts ?? []; // its other buckets (a slice with dropped buckets stays sealed: see flushUnindex)
    let used = 0;
    while (u.side <= 1 && used < budget) {
      const side = u.side;
      const f = u.part.filters[side];
      if (f === undefined) { u.side++; u.pos = -1; continue; }
      if (u.pos < 0) {
        if (f.hasZeroHash() && !heldBy(rest, side, 0)) index.remove(0, side, u.t);
        u.pos = 0;
      }
      const hs = f.slots();
      let i = u.pos;
      for (; i < hs.length && used < budget; i++) {
        const h = hs[i];
        used += U_KEY;
        if (h !== 0 && (rest.length === 0 || !heldBy(rest, side, h))) {
          index.remove(h, side, u.t);
          used += U_REMOVE;
        }
      }
      u.pos = i;
      if (i === hs.length) { u.side++; u.pos = -1; }
    }
    return used;
  }
}

function heldBy(parts: Part[], side: Side, h: number): boolean {
  for (const p of parts) {
    const f = p.filters[side];
    if (f !== undefined && f.has(h)) return true;
  }
  return false;
}
