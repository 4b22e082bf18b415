/**
 * The bucket store's shared state: its slices in time order, the key index over them, counters,
 * the LMDB environment and its pool of bucket database names. sealer.ts, expiry.ts and
 * bucket-store.ts all work on one Buckets; it knows how to add and remove slices and how to keep
 * the key index in step when a slice or a bucket goes.
 */
import * as fs from 'node:fs';
import { markedBuffer, NONE, type MarkedBuffer } from './bucket-format.js';
import type { Freezer } from './frozen.js';
import { KeyIndex, type KeySet } from './key-index.js';
import type { RootDatabase } from './lmdb.js';
import type { OpenSlice } from './open-slice.js';
import type { PendingLog } from './pending-log.js';
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

/**
 * Keys leaving the key index: of a dropped sealed bucket (`part`: filter `side`, hash-table
 * position `pos` next) or of an expired open slice (`os`: slot `pos` next, both sides at once).
 */
interface Unindexing {
  readonly part: Part | undefined;
  /** A frozen part's KeySets (its filters are the group's now): every key goes, whatever other buckets hold. */
  readonly keys?: readonly [KeySet | undefined, KeySet | undefined];
  readonly os: OpenSlice | undefined;
  readonly t: number;
  side: number;
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
  sealGen = 0; // slices sealed so far (the freezer searches again when it moves)
  dirty = false; // this batch wrote to LMDB
  wmMax = -Infinity; // highest watermark passed to expire()
  tsMax = -Infinity; // highest event time inserted
  tsMaxAtWm = -Infinity; // tsMax when wmMax last rose (see Sealer.sealClock)
  minMaxExpire = Infinity; // ≤ every live bucket's max expireAt
  job: SealJob | undefined; // the slice being sealed
  /** Freezes old sealed slices out of the key index (frozen.ts); set by the store. */
  freezer: Freezer | undefined;
  /** The deferred change log, once a checkpointing worker asked for one (pending-log.ts). */
  pending: PendingLog | undefined;
  readonly freeNames: string[] = [];
  readonly releasedNames: string[] = []; // dropped in this batch: reusable after commit
  private nextName = 0;
  vbuf: MarkedBuffer = markedBuffer(64 * 1024); // a value being sealed
  /** Initial slot capacity of a new open slice: the last sealed slice's keys, rounded up (slices are alike). */
  slotHint = 64;

  /**
   * `lz4AboveBytes`: new sealed buckets are compressed (lmdb.ts DB_LZ4) once the environment's
   * file reaches this size (0: from the first; Infinity: never; the root must be opened with `lz4`
   * unless never). `dataPath`: the environment's data file.
   */
  constructor(readonly bucketMs: number, readonly root: RootDatabase<Buffer, Buffer>,
    private readonly lz4AboveBytes = Infinity, private readonly dataPath = '') {
    this.lz4 = lz4AboveBytes === 0;
  }

  /** Whether new sealed buckets are compressed (see compressNext); once on, it stays on. */
  lz4: boolean;

  /**
   * Whether the bucket database about to be created should hold compressed values. LZ4 costs CPU
   * in every seal and every sealed read (~0.8 µs per event on the 24 h large-state run, all of it
   * sealed), and pays back only in page-cache misses: so only once the sealed state is large
   * against the memory there is (the engine's `--state-compression auto` threshold). The file's
   * size is its high-water mark, so compression stays on once the state has been that large.
   */
  compressNext(): boolean {
    if (this.lz4) return true;
    if (this.lz4AboveBytes === Infinity) return false;
    if (this.lz4AboveBytes > 0) {
      let size = 0;
      try { size = fs.statSync(this.dataPath).size; } catch { /* not there yet: nothing sealed */ }
      if (size < this.lz4AboveBytes) return false;
    }
    return (this.lz4 = true);
  }

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

  /**
   * Removes the slice at position i of `order` (it holds nothing live any more); `unindex` false:
   * the caller clears the index. An open slice's keys leave the index in bounded steps
   * (unindexWork), as a dropped sealed bucket's do: with a memory budget, most slices expire
   * without ever being sealed, and a slice of a million keys took a quarter of a second at once.
   */
  removeSlice(i: number, unindex = true): void {
    const slice = this.order[i];
    const os = slice.open;
    if (os !== undefined && unindex) {
      os.releaseArena();
      this.unindexing.push({ part: undefined, os, t: slice.t, side: 0, pos: 0 });
    }
    this.order.splice(i, 1);
    this.slices.delete(slice.t);
    if (this.lastSlice === slice) this.lastSlice = undefined;
  }

  /** Memory the open slices hold (OpenSlice.memoryBytes): what the store's memory budget counts. */
  openMemoryBytes(): number {
    let n = 0;
    for (const s of this.order) if (s.open !== undefined) n += s.open.memoryBytes();
    return n;
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
   * A sealed bucket left slice t (dropped): its keys leave the key index, except those another
   * bucket of t holds, in bounded steps (unindexWork) rather than all at once: ~0.25 µs per key,
   * a quarter of a second in one call for a bucket of a million keys. Until then a probe may visit
   * slice t for such a key and find nothing there (or no slice t at all), never miss anything;
   * anything that puts entries into slice t again first finishes its pending removals (flushUnindex).
   */
  unindexPart(part: Part, t: number): void {
    this.unindexing.push({ part, os: undefined, t, side: 0, pos: -1 });
  }

  /** A part just frozen (frozen.ts): its keys leave the key index in bounded steps, as a dropped bucket's do. */
  unindexFrozen(part: Part, t: number, keys: readonly [KeySet | undefined, KeySet | undefined]): void {
    this.unindexing.push({ part, keys, os: undefined, t, side: 0, pos: -1 });
  }

  /** A sealed bucket went (dropped, or read back into memory). */
  partGone(part: Part): void {
    part.live = false;
    this.freezer?.partGone(part);
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

  /** Up to `budget` units of an expired open slice's removals (each slot costs U_KEY, each removal U_REMOVE). */
  private unindexOpenStep(u: Unindexing, os: OpenSlice, budget: number): number {
    const n = os.n;
    const to = budget === Infinity ? n : Math.min(n, u.pos + Math.max(1, Math.floor(budget / (U_KEY + 2 * U_REMOVE))));
    unindexSlots(this.index, os, u.t, u.pos, to);
    const used = (to - u.pos) * (U_KEY + 2 * U_REMOVE);
    u.pos = to;
    if (to === n) u.side = 2;
    return used;
  }

  private unindexStep(u: Unindexing, budget: number): number {
    if (u.os !== undefined) return this.unindexOpenStep(u, u.os, budget);
    const index = this.index;
    // Its slice's other buckets (a slice with dropped buckets stays sealed: see flushUnindex); none
    // for a frozen part, whose slice leaves the index whole.
    const rest = u.keys !== undefined ? [] : this.slices.get(u.t)?.parts ?? [];
    let used = 0;
    while (u.side <= 1 && used < budget) {
      const side = u.side;
      const f = (u.keys ?? u.part!.filters as [KeySet | undefined, KeySet | undefined])[side as Side];
      if (f === undefined) { u.side++; u.pos = -1; continue; }
      if (u.pos < 0) {
        if (f.hasZeroHash() && !heldBy(rest, side as Side, 0)) index.remove(0, side as Side, u.t);
        u.pos = 0;
      }
      const hs = f.slots();
      let i = u.pos;
      for (; i < hs.length && used < budget; i++) {
        const h = hs[i];
        used += U_KEY;
        if (h !== 0 && (rest.length === 0 || !heldBy(rest, side as Side, h))) {
          index.remove(h, side as Side, u.t);
          used += U_REMOVE;
        }
      }
      u.pos = i;
      if (i === hs.length) { u.side++; u.pos = -1; }
    }
    return used;
  }
}

/** Slots whose key index removals are staged together (unindexSlots). */
const STAGE = 16;
const links = new Int32Array(STAGE * 2);
/** Keeps the staged loads' values (so that they are not optimised away). */
let stageSink = 0;

/**
 * Steps of Buckets.unindexOpenStep: slot s of an expired open slice, both sides (mirrors the adds
 * of OpenSlice inserts). A removal is three dependent cache misses (the key's table line, its
 * newest occurrence, the oldest one, which is nearly always the one removed: slices go oldest
 * first), ~11 % of a worker's time on `bench`. So the slots go STAGE at a time, each miss issued
 * for all of them before the next: independent loads overlap, and the removals then hit.
 */
function unindexSlots(index: KeyIndex, os: OpenSlice, t: number, from: number, to: number): void {
  let x = 0;
  for (let s0 = from; s0 < to; s0 += STAGE) {
    const end = Math.min(to, s0 + STAGE);
    for (let s = s0; s < end; s++) x ^= index.preload(os.hashOf(s));
    for (let s = s0, i = 0; s < end; s++, i += 2) {
      const h = os.hashOf(s);
      links[i] = os.head(0, s) !== NONE ? index.preloadNewest(h, 0) : NONE;
      links[i + 1] = os.head(1, s) !== NONE ? index.preloadNewest(h, 1) : NONE;
    }
    for (let i = 0; i < (end - s0) * 2; i++) x ^= index.preloadOldest(links[i]);
    for (let s = s0; s < end; s++) {
      if (os.head(0, s) !== NONE) index.remove(os.hashOf(s), 0, t);
      if (os.head(1, s) !== NONE) index.remove(os.hashOf(s), 1, t);
    }
  }
  stageSink ^= x;
}

function heldBy(parts: Part[], side: Side, h: number): boolean {
  for (const p of parts) {
    const f = p.filters[side];
    if (f !== undefined && f.has(h)) return true;
  }
  return false;
}
