/**
 * The in-memory part of an open slice (see bucket-store.ts, "Open slice"): an arena of 64 KiB slabs
 * off the V8 heap holding every event in its packed format behind a 16-byte header, per key/side a
 * doubly linked list in (ts, id) order, and the slice's slots (one per keyGroup + key) in typed
 * arrays behind an open-addressing table on keyHash. No heap object per key or per event.
 */
import { JoineryError } from '../core/errors.js';
import {
  BIG, cmpIdBytes, E_CLASS, E_JOINED, E_PARTITION, E_NEXT, E_PREV, EV_HEADER, markedBuffer, MAX_SLABS, NONE, OFF_MASK,
  ScratchViews, SLAB_BYTES, SLAB_SHIFT, WORD_COPY_MAX, type MarkedBuffer,
} from './bucket-format.js';
import type { Buffered, Side } from './store.js';

/** What an open slice tells the seal job in progress on it: entries whose joined flag was set meanwhile. */
export interface SealNotes {
  readonly late: number[];
}

/** Statistics of one bucket of an open slice. `dead` once it expired: its entries are then skipped. */
export class ClassStat {
  count = 0;
  bytes = 0;
  maxExpire = -Infinity;
  dead = false;
  constructor(readonly c: number, readonly idx: number) {}
}

/** The id and payload of a visited entry (one probe at a time per thread; see ScratchViews). */
const matchViews = new ScratchViews(2);

/** Int32s per slot record (OpenSlice.slots) and the fields' positions in it (the hash is at 0). */
const SLOT_INTS = 8;
const S_GROUP = 1;
const S_KEYREF = 2;
const S_KEYLEN = 3;
const S_HEAD = 4; // + side
const S_TAIL = 6; // + side

/** Positions of the previous table moved to the grown one per add (see OpenSlice.startRehash). */
const MOVED_PER_ADD = 32;

/**
 * An Int32Array of n entries, not zeroed. The slot arrays need no zeros (add() writes every array
 * at a new slot and nothing reads past `n`), and zeroing is not free: glibc serves a calloc below
 * its (moving) mmap threshold from the heap and clears it there, touching every page at once
 * (~10 ms for 16 MiB here), in the add that allocates.
 */
function unzeroed(n: number): Int32Array<ArrayBuffer> {
  const b = Buffer.allocUnsafeSlow(n * 4); // own ArrayBuffer, byteOffset 0
  return new Int32Array(b.buffer as ArrayBuffer, b.byteOffset, n);
}


/**
 * Slabs of slices gone from memory, kept (per thread: one worker's store) for the slices that come
 * next. A slab freed to glibc went back to the kernel when its heap was trimmed, and the next slab
 * in that place was faulted in and zeroed page by page again: on `bench`, the kernel's page
 * clearing was ~6 % of the process's CPU, all of it in inserts. At most SLAB_POOL_MAX slabs (64 MiB)
 * wait here, outside the store's memory budget; a slice expiring from memory usually hands on what
 * the next one needs.
 */
const SLAB_POOL_MAX = 1024;
const poolSlabs: MarkedBuffer[] = [];
const poolDvs: DataView[] = [];

/** Slabs waiting in this thread's pool (for tests). */
export function pooledSlabs(): number {
  return poolSlabs.length;
}

/**
 * Slot arrays of at least this many slots get their doubled copies allocated ahead (see
 * OpenSlice.prepareSlots); below it the eight copies take under 2 MiB.
 */
const SLOTS_AHEAD_FROM = 1 << 16;

/**
 * The in-memory part of an open slice. Slots (one per keyGroup + key) live in typed arrays,
 * found through an open-addressing table on keyHash; a slot's LMDB key [u16 keyGroup][u16 keyLen]
 * [key][u8 side] is written once into the arena. Entries are references into the arena.
 */
export class OpenSlice {
  slabs: MarkedBuffer[] = [];
  dvs: DataView[] = []; // one per slab: DataView reads and writes are several times faster than Buffer's
  private arenaBytes = 0; // of every slab
  private cur = -1; // slab being filled
  private pos = 0; // fill position in it
  n = 0; // slots
  /**
   * The slots, SLOT_INTS per slot: [hash][keyGroup][key ref][key length][head left][head right]
   * [tail left][tail right] (key ref: the reference of the slot's key bytes, whose LMDB key starts 4
   * before; head/tail: per side, the first and last entry). One 32-byte record per slot, so that a
   * lookup and the list ends it reads next share a cache line: as eight separate arrays, a probe of
   * a slice took a cache miss in each.
   */
  slots: Int32Array<ArrayBuffer>;
  private cap: number; // slots that fit in `slots`
  private table: Int32Array; // slot + 1, 0 = empty
  private tshift: number;
  private oldTable: Int32Array | undefined = undefined; // while the table grows (see startRehash)
  private oldShift = 0;
  private moved = 0; // positions of oldTable moved over so far
  readonly classes = new Map<number, ClassStat>(); // live buckets by retention class
  readonly classList: ClassStat[] = []; // every bucket of the slice, dead ones too, by index
  lastCls: ClassStat | undefined = undefined;
  job: SealNotes | undefined = undefined; // set while the slice is being sealed

  /** `slots`: expected keys (a power of two ≥ 64), so that the slot arrays and table need not grow. */
  constructor(slots = 64) {
    this.slots = unzeroed(slots * SLOT_INTS);
    this.cap = slots;
    this.table = new Int32Array(slots * 2);
    this.tshift = 32 - Math.log2(slots * 2);
  }

  /**
   * Memory the slice holds (the store's memory budget counts it): its arena, the slot arrays as far
   * as used (they are allocated unzeroed, so the rest is not resident) and its slot tables.
   */
  memoryBytes(): number {
    return this.arenaBytes + 32 * this.n + 4 * (this.table.length + (this.oldTable?.length ?? 0)) + (this.pend?.byteLength ?? 0);
  }

  /** Lets go of the arena (the slice went; only its keys are still leaving the key index). */
  releaseArena(): void {
    // Nothing reads the arena after this (the slice is gone; its keys leave the index from `slots`).
    const slabs = this.slabs, dvs = this.dvs;
    for (let i = 0; i < slabs.length && poolSlabs.length < SLAB_POOL_MAX; i++) {
      if (slabs[i].length === SLAB_BYTES) { poolSlabs.push(slabs[i]); poolDvs.push(dvs[i]); }
    }
    this.pend = null;
    this.pendN = this.pendKept = this.pendRead = 0;
    this.slabs = [];
    this.dvs = [];
    this.arenaBytes = 0;
    this.cur = -1;
  }

  /** Reserves len bytes in the arena (never across slabs); returns their reference. */
  reserve(len: number): number {
    if (len <= BIG && this.cur >= 0 && this.pos + len <= SLAB_BYTES) {
      const ref = this.cur * SLAB_BYTES + this.pos;
      this.pos += len;
      return ref;
    }
    const slabs = this.slabs;
    if (slabs.length >= MAX_SLABS) throw new JoineryError('E_STATE', 'bucket store: an open slice outgrew its arena (2 GiB); use smaller buckets');
    if (len > BIG) {
      this.addSlab(len);
      return (slabs.length - 1) * SLAB_BYTES;
    }
    this.addSlab(SLAB_BYTES);
    this.cur = slabs.length - 1;
    this.pos = len;
    return this.cur * SLAB_BYTES;
  }

  private addSlab(size: number): void {
    const pooled = size === SLAB_BYTES && poolSlabs.length > 0;
    const b = pooled ? poolSlabs.pop()! : markedBuffer(size);
    this.arenaBytes += size;
    this.slabs.push(b);
    this.dvs.push(pooled ? poolDvs.pop()! : new DataView(b.buffer, 0, size));
  }

  slab(ref: number): MarkedBuffer {
    return this.slabs[ref >>> SLAB_SHIFT];
  }

  /**
   * The last slot found or added: the join probes right after it inserts, for the same key and
   * nearly always in this slice, and the table read is a cache miss (slots are never removed).
   */
  private memo = NONE;

  /** The slot of (keyGroup, key), or NONE. */
  find(h: number, keyGroup: number, key: Uint8Array): number {
    const m = this.memo;
    const sl = this.slots;
    if (m !== NONE && sl[m << 3] === h && sl[(m << 3) + S_GROUP] === keyGroup && this.keyIs(m, key)) return m;
    const table = this.table;
    const mask = table.length - 1;
    for (let i = Math.imul(h, 0x9e3779b1) >>> this.tshift; ; i = (i + 1) & mask) {
      const v = table[i];
      if (v === 0) return this.oldTable === undefined ? NONE : this.findOld(h, keyGroup, key);
      const s = v - 1;
      if (sl[s << 3] === h && sl[(s << 3) + S_GROUP] === keyGroup && this.keyIs(s, key)) return (this.memo = s);
    }
  }

  /** Reads hash h's first table position (a load issued ahead of find(), see BucketStore.prefetch). */
  preload(h: number): number {
    return this.table[Math.imul(h, 0x9e3779b1) >>> this.tshift];
  }

  /** A slot added before the table began to grow and not moved yet is still found in the old one. */
  private findOld(h: number, keyGroup: number, key: Uint8Array): number {
    const table = this.oldTable!;
    const mask = table.length - 1;
    const sl = this.slots;
    for (let i = Math.imul(h, 0x9e3779b1) >>> this.oldShift; ; i = (i + 1) & mask) {
      const v = table[i];
      if (v === 0) return NONE;
      const s = v - 1;
      if (sl[s << 3] === h && sl[(s << 3) + S_GROUP] === keyGroup && this.keyIs(s, key)) return (this.memo = s);
    }
  }

  private keyIs(s: number, key: Uint8Array): boolean {
    if (this.slots[(s << 3) + S_KEYLEN] !== key.length) return false;
    const r = this.slots[(s << 3) + S_KEYREF];
    const b = this.slabs[r >>> SLAB_SHIFT];
    const o = r & OFF_MASK;
    for (let i = 0; i < key.length; i++) if (b[o + i] !== key[i]) return false;
    return true;
  }

  add(h: number, keyGroup: number, key: Uint8Array): number {
    const s = this.n;
    const sl = this.cap;
    if (s === sl) this.growSlots(sl * 2);
    else if (s * 4 >= sl * 3 && sl >= SLOTS_AHEAD_FROM) this.prepareSlots(sl * 2, s);
    const tl = this.table.length;
    if ((s + 1) * 2 > tl) this.startRehash(tl * 2);
    else {
      if (this.oldTable !== undefined) this.moveOld(MOVED_PER_ADD);
      if (s * 8 >= tl * 3) this.prepare(tl * 2, s);
    }
    const kl = key.length;
    const ref = this.reserve(5 + kl);
    const b = this.slab(ref);
    const o = ref & OFF_MASK;
    // Bytes written in place: Buffer#writeUInt16BE is node's shared JS, whose element stores see
    // every kind of Buffer in the process and go through V8's generic store stubs; `set` is a
    // native call, which a short key's byte loop beats (as for ids in BucketStore.insert).
    b[o] = keyGroup >>> 8;
    b[o + 1] = keyGroup;
    b[o + 2] = kl >>> 8;
    b[o + 3] = kl;
    if (kl <= 24) for (let i = 0; i < kl; i++) b[o + 4 + i] = key[i];
    else b.set(key, o + 4);
    const a = this.slots, x = s << 3;
    a[x] = h;
    a[x + S_GROUP] = keyGroup;
    a[x + S_KEYREF] = ref + 4;
    a[x + S_KEYLEN] = key.length;
    a[x + S_HEAD] = a[x + S_HEAD + 1] = a[x + S_TAIL] = a[x + S_TAIL + 1] = NONE;
    this.n = s + 1;
    this.place(h, s);
    this.memo = s;
    return s;
  }

  private place(h: number, s: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.tshift;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = s + 1;
  }

  /**
   * The table doubles without a stall: rehashing every slot at once (a random write each) took ~70 ms
   * of CPU at 1M slots, inside one ring drain, so every event queued behind it waited. The
   * old table stays, read-only (its probe chains intact), until its positions have moved over,
   * MOVED_PER_ADD per add: done long before the new table fills (that takes `size / 4` adds), and
   * meanwhile a key missing from the new table is looked up in the old one too. (The slot arrays
   * still double at once, by copy: see growSlots.)
   */
  private startRehash(size: number): void {
    if (this.oldTable !== undefined) this.moveOld(Infinity);
    this.oldTable = this.table;
    this.oldShift = this.tshift;
    this.moved = 0;
    const nx = this.nextTable;
    if (nx !== undefined && nx.length === size) {
      if (this.zeroed << 10 < size) nx.fill(0, this.zeroed << 10);
      this.table = nx;
    } else this.table = new Int32Array(size);
    this.nextTable = undefined;
    this.tshift = 32 - Math.log2(size);
  }

  /**
   * The next table, allocated at 3/8 load unzeroed and cleared one 4 KiB page per 32 adds (it has
   * 2 pages per 1024 positions of the current one; 3/8 to 1/2 load is 1/8 of them in adds), so that
   * neither its clearing (see unzeroed) nor the page faults of the moves right after the switch,
   * random writes all over it, come at once (~15 ms of CPU in one batch of adds at 1M slots).
   */
  private nextTable: Int32Array<ArrayBuffer> | undefined = undefined;
  private zeroed = 0; // pages of `nextTable` cleared

  private prepare(size: number, s: number): void {
    let nx = this.nextTable;
    if (nx === undefined || nx.length !== size) {
      nx = this.nextTable = unzeroed(size);
      this.zeroed = 0;
    }
    const p = this.zeroed;
    if ((s & 31) === 0 && p << 10 < size) { nx.fill(0, p << 10, (p + 1) << 10); this.zeroed = p + 1; }
  }

  /**
   * The slot records double by copy; from SLOTS_AHEAD_FROM on into an array allocated at 3/4 load
   * (unzeroed: mapped, not touched), then the half the copy will fill touched one page per 16 adds,
   * so that the doubling copies into memory already mapped; the other half faults in as slots are
   * added. Copying into fresh memory took 35–40 ms of CPU at 1M slots (in one add) and 25–165 ms in
   * the engine: first-touch page faults (~2 µs each here) and the scavenges that each large
   * allocation sets off (external memory pressure), in one drain and at the same moment in every
   * worker (keys spread evenly). Tried: growing in place (resizable ArrayBuffers): no copy, but
   * every access cost more (a find ~60 % slower on Node 20); touching all of the next array from
   * half load: ~100 ns more per add where the slice stops short of the doubling.
   */
  private nextSlots: Int32Array<ArrayBuffer> | undefined = undefined;
  private slotPagesTouched = 0;

  private prepareSlots(cap: number, s: number): void {
    let nx = this.nextSlots;
    if (nx === undefined || nx.length !== cap * SLOT_INTS) {
      nx = this.nextSlots = unzeroed(cap * SLOT_INTS);
      this.slotPagesTouched = 0;
    }
    const p = this.slotPagesTouched;
    if ((s & 15) === 0 && p < (this.cap * SLOT_INTS) >>> 10) { nx[p << 10] = 0; this.slotPagesTouched = p + 1; }
  }

  private growSlots(cap: number): void {
    let nx = this.nextSlots;
    if (nx === undefined || nx.length !== cap * SLOT_INTS) nx = unzeroed(cap * SLOT_INTS);
    nx.set(this.slots);
    this.slots = nx;
    this.cap = cap;
    this.nextSlots = undefined;
  }

  private moveOld(positions: number): void {
    const old = this.oldTable!;
    const end = Math.min(old.length, this.moved + positions);
    for (let i = this.moved; i < end; i++) {
      const v = old[i];
      if (v !== 0) this.place(this.slots[(v - 1) << 3], v - 1);
    }
    this.moved = end;
    if (end === old.length) this.oldTable = undefined;
  }

  key(s: number): Buffer {
    const r = this.slots[(s << 3) + S_KEYREF];
    return this.slab(r).subarray(r & OFF_MASK, (r & OFF_MASK) + this.slots[(s << 3) + S_KEYLEN]);
  }

  // -- slot fields (for the other modules; this one indexes `slots` directly) --
  hashOf(s: number): number {
    return this.slots[s << 3];
  }
  groupOf(s: number): number {
    return this.slots[(s << 3) + S_GROUP];
  }
  /** Reference of slot s's key bytes. */
  keyRefOf(s: number): number {
    return this.slots[(s << 3) + S_KEYREF];
  }
  keyLenOf(s: number): number {
    return this.slots[(s << 3) + S_KEYLEN];
  }
  /** The first entry of slot s on `side`, or NONE. */
  head(side: Side, s: number): number {
    return this.slots[(s << 3) + S_HEAD + side];
  }
  /** The last entry of slot s on `side`, or NONE. */
  tail(side: Side, s: number): number {
    return this.slots[(s << 3) + S_TAIL + side];
  }

  // -- entries --
  ts(ref: number): number {
    return this.dvs[ref >>> SLAB_SHIFT].getFloat64(ref & OFF_MASK, true);
  }
  prev(ref: number): number {
    return this.dvs[ref >>> SLAB_SHIFT].getInt32((ref & OFF_MASK) + E_PREV, true);
  }
  next(ref: number): number {
    return this.dvs[ref >>> SLAB_SHIFT].getInt32((ref & OFF_MASK) + E_NEXT, true);
  }
  cls(ref: number): number {
    return this.dvs[ref >>> SLAB_SHIFT].getUint16((ref & OFF_MASK) + E_CLASS, true);
  }
  /** The source partition + 1 an entry came from (0: another source, or not recorded). */
  partitionOf(ref: number): number {
    return this.dvs[ref >>> SLAB_SHIFT].getUint16((ref & OFF_MASK) + E_PARTITION, true);
  }

  // -- the deferred change log's notes (pending-log.ts): (entry, slot·2 + side) per entry inserted since its last flush --
  pend: Int32Array<ArrayBuffer> | null = null;
  pendN = 0; // pairs in `pend`
  pendKept = 0; // pairs [0, pendKept) were looked at by PendingLog.writeAhead and kept for the barrier
  pendRead = 0; // pairs [pendKept, pendRead) are gone (written ahead or dead); [pendRead, pendN) not looked at yet

  notePending(ref: number, s: number, side: Side): void {
    let p = this.pend;
    const i = this.pendN << 1;
    if (p === null || i === p.length) {
      const grown = new Int32Array(p === null ? 1024 : p.length * 2);
      if (p !== null) grown.set(p);
      p = this.pend = grown;
    }
    p[i] = ref;
    p[i + 1] = (s << 1) | side;
    this.pendN++;
  }
  dead(ref: number): boolean {
    return this.classList[this.cls(ref)].dead;
  }
  /** Sets the joined flag; while the slice is being sealed, also notes the entry for its bucket's bits. */
  setJoined(ref: number): void {
    const b = this.slabs[ref >>> SLAB_SHIFT];
    const o = (ref & OFF_MASK) + E_JOINED;
    if ((b[o] & 1) === 1) return;
    b[o] |= 1;
    if (this.job !== undefined) this.job.late.push(ref);
  }
  /** Bytes of the event (from ts to the end of the payload). */
  evLen(ref: number): number {
    const d = this.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    return EV_HEADER + d.getUint16(o + 8, true) + d.getUint32(o + 10, true);
  }

  /** Orders entry ref against (ts, id). */
  cmp(ref: number, ts: number, id: Uint8Array): number {
    const d = this.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    const t = d.getFloat64(o, true);
    if (t < ts) return -1;
    if (t > ts) return 1;
    return cmpIdBytes(this.slabs[ref >>> SLAB_SHIFT], o + EV_HEADER, d.getUint16(o + 8, true), id);
  }

  /** The last entry of slot s / side ≤ (ts, id), or NONE; walks back from the tail (arrivals are nearly in order). */
  floor(side: Side, s: number, ts: number, id: Uint8Array): number {
    let r = this.slots[(s << 3) + S_TAIL + side];
    while (r !== NONE && this.cmp(r, ts, id) > 0) r = this.prev(r);
    return r;
  }

  /** Links ref after `after` (NONE: at the head) in slot s / side. */
  linkAfter(side: Side, s: number, after: number, ref: number): void {
    const d = this.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    let n: number;
    const a = this.slots, x = s << 3;
    if (after === NONE) {
      n = a[x + S_HEAD + side];
      a[x + S_HEAD + side] = ref;
    } else {
      const a = this.dvs[after >>> SLAB_SHIFT];
      const ao = (after & OFF_MASK) + E_NEXT;
      n = a.getInt32(ao, true);
      a.setInt32(ao, ref, true);
    }
    d.setInt32(o + E_PREV, after, true);
    d.setInt32(o + E_NEXT, n, true);
    if (n === NONE) a[x + S_TAIL + side] = ref;
    else this.dvs[n >>> SLAB_SHIFT].setInt32((n & OFF_MASK) + E_PREV, ref, true);
  }

  unlink(side: Side, s: number, ref: number): void {
    const p = this.prev(ref);
    const n = this.next(ref);
    if (p === NONE) this.slots[(s << 3) + S_HEAD + side] = n;
    else this.dvs[p >>> SLAB_SHIFT].setInt32((p & OFF_MASK) + E_NEXT, n, true);
    if (n === NONE) this.slots[(s << 3) + S_TAIL + side] = p;
    else this.dvs[n >>> SLAB_SHIFT].setInt32((n & OFF_MASK) + E_PREV, p, true);
  }

  /** Visits the live entries of (key, side) with fromTs ≤ ts ≤ toTs, in (ts, id) order, through `view`. */
  probe(view: Buffered, side: Side, keyGroup: number, h: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void, slotHint = -1): void {
    // The key index's hint saves the table lookup (a cache miss) when it names the key's slot.
    const x = slotHint << 3, sl = this.slots;
    const s = slotHint >= 0 && slotHint < this.n && sl[x] === h && sl[x + S_GROUP] === keyGroup && this.keyIs(slotHint, key)
      ? slotHint : this.find(h, keyGroup, key);
    if (s === NONE) return;
    let r = this.slots[(s << 3) + S_HEAD + side];
    if (r === NONE) return;
    if (this.ts(r) < fromTs) {
      // The range starts inside the list: find its first entry walking back from the tail.
      r = this.slots[(s << 3) + S_TAIL + side];
      if (this.ts(r) < fromTs) return;
      for (let p = this.prev(r); p !== NONE && this.ts(p) >= fromTs; p = this.prev(p)) r = p;
    }
    for (; r !== NONE; r = this.next(r)) {
      const b = this.slab(r);
      const d = this.dvs[r >>> SLAB_SHIFT];
      const o = r & OFF_MASK;
      const ts = d.getFloat64(o, true);
      if (ts > toTs) return;
      if (this.dead(r)) continue;
      const idLen = d.getUint16(o + 8, true);
      const payLen = d.getUint32(o + 10, true);
      view.side = side;
      view.keyGroup = keyGroup;
      view.key = key;
      view.ts = ts;
      // Short fields through reused views (no allocation), long ones as plain Uint8Array views.
      view.id = idLen <= WORD_COPY_MAX ? matchViews.copy(0, d, o + EV_HEADER, idLen) : new Uint8Array(b.buffer, o + EV_HEADER, idLen);
      view.payload = payLen <= WORD_COPY_MAX ? matchViews.copy(1, d, o + EV_HEADER + idLen, payLen)
        : new Uint8Array(b.buffer, o + EV_HEADER + idLen, payLen);
      view.joined = (b[o + E_JOINED] & 1) === 1;
      if (visit(view) === true) this.setJoined(r);
    }
  }

}
