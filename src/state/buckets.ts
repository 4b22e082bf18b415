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
import { GroupScratch, type SealJob } from './seal-sort.js';
import { SealedReader, Slice, type Part } from './sealed-io.js';
import type { Side } from './store.js';

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
  readonly groupScratch = new GroupScratch(); // seal jobs' per-key-group counters
  /** Initial slot capacity of a new open slice: the last sealed slice's keys, rounded up (slices are alike). */
  slotHint = 64;

  constructor(readonly bucketMs: number, readonly root: RootDatabase<Buffer, Buffer>) {}

  addSlice(t: number): Slice {
    const slice = new Slice(t, this.slotHint);
    this.slices.set(t, slice);
    const order = this.order;
    if (order.length === 0 || order[order.length - 1].t < t) order.push(slice);
    else order.splice(this.firstSliceAtOrAfter(t), 0, slice);
    return slice;
  }

  /** Removes the slice at position i of `order` (it holds nothing live any more). */
  removeSlice(i: number): void {
    const slice = this.order[i];
    if (slice.open !== undefined) this.unindexOpen(slice.open, slice.t, undefined);
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

  /**
   * Removes the index entries of open slice t's keys. With `kept` (the parts the slice was just
   * sealed into), only those of keys whose entries on a side all expired before the seal: the
   * parts' filters tell which (by hash, so a colliding live key keeps the entry, as it must).
   */
  unindexOpen(os: OpenSlice, t: number, kept: Part[] | undefined): void {
    const index = this.index;
    for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
      const heads = os.heads[side];
      for (let s = 0; s < os.n; s++) {
        if (heads[s] === NONE) continue;
        const h = os.hash[s];
        if (kept !== undefined && heldBy(kept, side, h)) continue;
        index.remove(h, side, t);
      }
    }
  }

  /** Removes the index entries of a sealed bucket that just left slice t, except keys another bucket of t still holds. */
  unindexPart(part: Part, t: number, rest: Part[]): void {
    const index = this.index;
    for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
      const f = part.filters[side];
      if (f === undefined) continue;
      if (f.hasZeroHash() && !heldBy(rest, side, 0)) index.remove(0, side, t);
      const hs = f.slots();
      for (let i = 0; i < hs.length; i++) {
        const h = hs[i];
        if (h !== 0 && (rest.length === 0 || !heldBy(rest, side, h))) index.remove(h, side, t);
      }
    }
  }
}

function heldBy(parts: Part[], side: Side, h: number): boolean {
  for (const p of parts) {
    const f = p.filters[side];
    if (f !== undefined && f.has(h)) return true;
  }
  return false;
}
