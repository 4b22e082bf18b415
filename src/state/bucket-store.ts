/**
 * Time-bucketed join buffer (LSM-like): recent events in memory, older ones sealed into LMDB as one
 * sequential (incremental) write per bucket, whole buckets dropped on expiry. Built because every insert into
 * LmdbStore is a random-key B-tree put (~115k puts/s on the 2-core box) while appends in key order
 * run at ~650k+ puts/s and one put here carries all of a key's events in a bucket.
 *
 * Measured (2-vCPU box; 1M events, 50k Zipf(0.8) keys, 80 % left, 80–100 B payloads, 2000 events/s
 * of event time with ±2 s disorder, 4096 per batch, expire(max ts − 4 s) per batch, the join's
 * expiry; events/s): inserts alone, 10-min window — LmdbStore 86–94k, BucketStore (10 s buckets)
 * 530–580k, MemoryStore 160–220k; 1-min window (buckets dropped throughout) 77k / 593k / 180k.
 * With a 10-min-range probe per insert (120 visits per event) 2.7k / 59–63k (30 s buckets 66–73k)
 * / 89–121k; with Zipf(0.6) (11.5 visits per event) 19k / 120–125k (30 s: 164–170k) / 137–155k.
 * V8 heap ~30 MB against ~310 MB for MemoryStore; LMDB file 111 MB against 272 MB for LmdbStore.
 *
 * ## Buckets
 *
 * Event time is cut into *slices* of `bucketMs`: slice t holds ts ∈ [t·bucketMs, (t+1)·bucketMs).
 * Within a slice, entries are split by *retention class* c = ⌊(expireAtMs − ts) / bucketMs⌋; a
 * (slice, class) pair is a *bucket*, the unit of expiry. The join gives every entry of one side the
 * same retention (ts + upper for the left, ts − lower for the right), so in practice a slice has one
 * bucket per side and a bucket's entries expire within bucketMs of each other. Classes are what
 * bound the expiry lag for arbitrary expireAtMs: within a bucket expireAt ∈ [(t+c)·B, (t+c+2)·B),
 * hence `expiryGranularityMs = 2·bucketMs` (for the join's constant retention the lag is < B).
 *
 *  - **Open slice** (in memory, but off the V8 heap): an arena of 64 KiB slabs holds every event,
 *    already in the packed event format below, behind a 16-byte header ([i32 prev][i32 next]
 *    [i32 bucket index][u32 joined flag | ordinal·2]); each key/side is a doubly linked list in (ts, id) order, so an
 *    insert is an append after a short backwards walk (arrivals are nearly in order), which also
 *    finds duplicates. Slots (one per keyGroup + key) live in typed arrays behind an
 *    open-addressing table on keyHash; the slot's LMDB key is written once into the arena. There is
 *    no heap object per key or per event, so the young-generation GC copies nothing per event
 *    (an object per entry cost ~30% of the insert time in a first version).
 *  - **Sealing**: expire(wm) keeps the highest watermark seen; the join never inserts ts < wm after
 *    expire(wm) (the router diverts late events), so a slice with (t+1)·B ≤ wm is complete. It is
 *    written to LMDB, one fresh *named database* per bucket: slots sorted by LMDB key, one
 *    `putSync(…, { append: true })` (MDB_APPEND) per key/side — sequential appends into a fresh tree.
 *    Measured (/tmp, 200 buckets × 10k keys, 240 B values): named DB per bucket 1.42M puts/s, 0.08 ms
 *    per dropSync; one shared DB with a bucket prefix 1.11M puts/s (append) and 13.8 ms per bucket
 *    to delete by range; getBinaryFast 670k/s vs 500k/s. Hence named DBs.
 *  - **Incremental sealing**: a 30 s slice of a worker at 47k events/s holds ~1.2M entries in ~1M
 *    keys: 2–4 s of work (putSync alone costs ~1.2 µs). Written in one call, it stalled the worker
 *    for seconds (`joinery bench --source gen --rate 95000`: p99 latency 2.4–5.9 s). A *seal job*
 *    (SealJob) does it in bounded steps instead: count the slots per key group; scatter them by key
 *    group (a counting sort) along with numeric sort keys (key length and bytes 0–4, bytes 5–10);
 *    quicksort each key group, one partition per step; then per bucket append its values slot by
 *    slot in key order, then build its key filters. Work is counted in units of about one entry
 *    written (≈ 1 µs alone on the 2-vCPU box, 2–3 µs beside the router and the other worker).
 *    Pacing: the slice of t is sealed while event time goes from (t+1)·B to (t+1+sealSpread)·B
 *    (0.8): a call does the share of the job's estimated work that is due by then, expire() at most
 *    sealUnitsPerCall (4096) units. "Event time" is the watermark plus how far inserted event time
 *    moved since it last rose, so that maintain() calls between watermark frames (once per ring
 *    drain) find due work in small pieces. Behind schedule (complete slices queue up) the oldest is
 *    sealed at the cap times the queue length (≤ 8×); a job of at most 2048 units goes at once.
 *    Until its last bucket database is complete the slice stays open and is served from its arena,
 *    which the job never changes (values are copied into a scratch buffer) except to stamp each
 *    entry's ordinal into its header as it writes it; joined flags set meanwhile are noted and set in
 *    the bit arrays at the switch, which turns the slice into its sealed buckets in one step. A bucket
 *    that expires during the seal is dropped with its partial database; a new entry inserted into the
 *    slice (a late insert or a regression) abandons the job and drops its databases, and the slice is
 *    sealed from scratch later. One job runs at a time, oldest complete slice first.
 *  - **Sealed bucket** (LMDB, plus a little heap): per side an exact hash set of the keyHashes it
 *    holds (probes skip buckets without the key: no LMDB read), a joined-bit array indexed by entry
 *    ordinal within the bucket, counts, bytes and max expireAt.
 *  - **Expiry**: a bucket is dropped once its max expireAt < watermark (never early), open or sealed
 *    (sealed: `dropSync`, after iterating it in key order when onExpired is given; open: marked dead,
 *    its entries skipped from then on and freed with the slice; with onExpired that walks the open
 *    slice, its other bucket too). Drops run before sealing, so a bucket that expires as its slice
 *    completes (the join's right side when lower ≥ 0) is never written. expire() itself looks at
 *    every bucket's max expireAt: O(buckets), never O(entries) beyond what goes.
 *  - **Inserting into a sealed slice** (only a watermark regression or a late insert does that): the
 *    duplicate check reads the packed values; a new identity *unseals* the slice (reads it back into
 *    memory, drops its databases); the next expire() seals it again. Correct, slow, never expected.
 *
 * ## LMDB layout (per bucket database `b<n>`, names reused from a pool after a drop commits)
 *
 *   key    [u16 keyGroup][u16 keyLen][key bytes][u8 side]            big-endian, so byte order = order
 *   value  [u32 count][u32 firstOrdinal][i32 keyHash]                little-endian header, then per
 *          event in (ts, id) order: [f64 ts][u16 idLen][u32 payloadLen][id][payload]   (little-endian)
 *
 * (The two lengths precede both byte strings, unlike "ts, idLen, id, payloadLen, payload", so that
 * id + payload are one contiguous copy at seal time.) Entry i of a value has ordinal firstOrdinal + i
 * in its bucket; ordinals follow key order, so they are dense 0..count−1. The joined flag lives in the
 * bucket's in-memory bit array (set at seal from the open entries' flags, later by probes and
 * markJoined); the packed values never change after the seal.
 *
 * Checkpoints (a later issue): sealed buckets are immutable except their joined bits, so an
 * incremental checkpoint can copy each bucket once and afterwards only its bit array; a key-group
 * range of a bucket is a contiguous, ordered key range of its database ([kg][…] prefix). The value
 * header carries keyHash, so the filters can be rebuilt from LMDB; a bucket's class, slice, max
 * expireAt and bits would go in the manifest. Open slices are in memory only and must be written by
 * the checkpoint itself. This store keeps nothing across close(): open() starts empty and deletes a
 * previous environment in `dir` (the engine clears its state directory at start anyway).
 *
 * ## Costs and rules
 *
 *  - Probes visit buckets whose slice overlaps [fromTs, toTs]: open slices by table lookup, sealed
 *    buckets by filter test and, on a hit, one getBinaryFast (decoded lazily, left when ts > toTs).
 *    A probe over W ms of sealed data costs up to ⌈W/bucketMs⌉+1 gets for a key present everywhere.
 *    Entries handed to visitors carry plain Uint8Array views (id, payload): cheaper to make than
 *    Buffer#subarray, and all the interface promises.
 *  - getBinaryFast returns lmdb-js's shared buffer (valid until the next read, `length` overridden
 *    with the value size): a value is fully visited before the next read; the rare multi-bucket
 *    merge copies. Visitors and onExpired callbacks must not call back into the store.
 *  - One environment per store, one store per worker thread (notes/libraries.md §2.4); noSync, no
 *    useWritemap (see lmdb-store.ts: MDB_WRITEMAP aborts in mdb_freelist_save).
 *  - batch() is one LMDB write transaction; all LMDB writes (seal, drop, unseal) happen in expire(),
 *    maintain(), flushSeals() or insert() inside it (maintain() and flushSeals() open one if needed). A batch that throws after LMDB writes leaves memory and LMDB disagreeing:
 *    the store then refuses every call (E_STATE). A batch that throws without LMDB writes keeps its
 *    in-memory changes, like MemoryStore.
 *  - keyHash must be a function of the key bytes (the router's stable hash).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openEnv, type Database, type RootDatabase } from './lmdb.js';
import { JoineryError } from '../core/errors.js';
import type { Buffered, Side, StateStore } from './store.js';

export interface BucketStoreOptions {
  /**
   * Width of a time slice in ms of event time. Default 10_000. Larger: fewer LMDB reads per probe
   * and fewer, larger seals, but more data in memory (open slices span ≈ maxDelay + bucketMs of event
   * time) and coarser expiry (granularity 2·bucketMs).
   */
  bucketMs?: number;
  /** Initial LMDB map size in bytes; lmdb-js grows it as needed. Default 256 MiB. */
  mapSizeBytes?: number;
  /** LMDB maxDbs: at most this many sealed buckets at once. Default 10_000. */
  maxDbs?: number;
  /**
   * Pacing of incremental sealing (see "Sealing" in the file header): a complete slice is sealed
   * while the watermark advances this fraction of a bucket past its end. Default 0.8. 0 seals each
   * complete slice at once, in the expire() that completes it (one stall per bucket, as before
   * incremental sealing).
   */
  sealSpread?: number;
  /** At most this many work units (≈ one entry written each) per expire() call. Default 4096. */
  sealUnitsPerCall?: number;
  /** A seal with at most this many units left is finished at once (within the per-call cap). Default 2048. */
  sealAtOnceUnits?: number;
}

export const DEFAULT_BUCKET_MS = 10_000;
const DEFAULT_SEAL_SPREAD = 0.8;
const DEFAULT_SEAL_UNITS_PER_CALL = 4096;
const DEFAULT_SEAL_AT_ONCE_UNITS = 2048;
/** With k complete slices waiting, the per-call cap is multiplied by min(k, SEAL_BACKLOG_MAX) to catch up. */
const SEAL_BACKLOG_MAX = 8;

const EV_HEADER = 8 + 2 + 4; // ts, idLen, payloadLen
const VALUE_HEADER = 4 + 4 + 4; // count, firstOrdinal, keyHash
const MAX_KEY = 1978 - 5; // LMDB key limit (4 KiB pages) minus keyGroup, keyLen, side
const APPEND = { append: true } as const;
const DB_OPTIONS = { keyEncoding: 'binary', encoding: 'binary' } as const;

// ---- open slices: an arena of slabs, no heap object per key or per event ----
//
// An entry reference (a V8 small integer) is slabIndex·SLAB_BYTES + offset of the event bytes
// [f64 ts][u16 idLen][u32 payloadLen][id][payload]. The ENTRY_HEADER bytes before them hold, while
// the slice is open, [i32 prev][i32 next][i32 bucket (class) index][u32 flags]: each key/side is a
// doubly linked list in (ts, id) order. Bit 0 of flags is the joined flag (read it with & 1); a seal
// job writes the entry's ordinal in its bucket into bits 1–31 as it copies the entry to LMDB.
const SLAB_SHIFT = 16;
const SLAB_BYTES = 1 << SLAB_SHIFT;
const OFF_MASK = SLAB_BYTES - 1;
const MAX_SLABS = 1 << 15; // references stay below 2^31
const BIG = SLAB_BYTES / 4; // larger allocations get a slab of their own
const ENTRY_HEADER = 16;
const E_PREV = -16;
const E_NEXT = -12;
const E_CLASS = -8;
const E_JOINED = -4;
const NONE = -1;

/** A buffer with the `start`/`end` marks lmdb-js honours on put values (then byteOffset must be 0). */
type MarkedBuffer = Buffer & { start: number; end: number };

function markedBuffer(size: number): MarkedBuffer {
  const b = Buffer.allocUnsafeSlow(size) as MarkedBuffer; // own ArrayBuffer, byteOffset 0
  b.start = 0;
  b.end = 0;
  return b;
}

const EMPTY = markedBuffer(0);

/** Statistics of one bucket of an open slice. `dead` once it expired: its entries are then skipped. */
class ClassStat {
  count = 0;
  bytes = 0;
  maxExpire = -Infinity;
  dead = false;
  constructor(readonly c: number, readonly idx: number) {}
}

function grow(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/**
 * The in-memory part of an open slice. Slots (one per keyGroup + key) live in typed arrays,
 * found through an open-addressing table on keyHash; a slot's LMDB key [u16 keyGroup][u16 keyLen]
 * [key][u8 side] is written once into the arena. Entries are references into the arena.
 */
class OpenSlice {
  slabs: MarkedBuffer[] = [];
  dvs: DataView[] = []; // one per slab: DataView reads and writes are several times faster than Buffer's
  private cur = -1; // slab being filled
  private pos = 0; // fill position in it
  n = 0; // slots
  hash = new Int32Array(64);
  group = new Int32Array(64);
  keyRef = new Int32Array(64); // reference of the slot's key bytes (its LMDB key starts 4 before)
  keyLen = new Int32Array(64);
  heads: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(64), new Int32Array(64)]; // per side: first entry
  tails: [Int32Array<ArrayBuffer>, Int32Array<ArrayBuffer>] = [new Int32Array(64), new Int32Array(64)]; // per side: last entry
  private table = new Int32Array(128); // slot + 1, 0 = empty
  private tshift = 32 - 7;
  readonly classes = new Map<number, ClassStat>(); // live buckets by retention class
  readonly classList: ClassStat[] = []; // every bucket of the slice, dead ones too, by index
  lastCls: ClassStat | undefined = undefined;
  job: SealJob | undefined = undefined; // set while the slice is being sealed

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
    const b = markedBuffer(size);
    this.slabs.push(b);
    this.dvs.push(new DataView(b.buffer, 0, size));
  }

  slab(ref: number): MarkedBuffer {
    return this.slabs[ref >>> SLAB_SHIFT];
  }

  /** The slot of (keyGroup, key), or NONE. */
  find(h: number, keyGroup: number, key: Uint8Array): number {
    const table = this.table;
    const mask = table.length - 1;
    for (let i = Math.imul(h, 0x9e3779b1) >>> this.tshift; ; i = (i + 1) & mask) {
      const v = table[i];
      if (v === 0) return NONE;
      const s = v - 1;
      if (this.hash[s] === h && this.group[s] === keyGroup && this.keyIs(s, key)) return s;
    }
  }

  private keyIs(s: number, key: Uint8Array): boolean {
    if (this.keyLen[s] !== key.length) return false;
    const r = this.keyRef[s];
    const b = this.slabs[r >>> SLAB_SHIFT];
    const o = r & OFF_MASK;
    for (let i = 0; i < key.length; i++) if (b[o + i] !== key[i]) return false;
    return true;
  }

  add(h: number, keyGroup: number, key: Uint8Array): number {
    const s = this.n;
    if (s === this.hash.length) {
      const cap = s * 2;
      this.hash = grow(this.hash, cap);
      this.group = grow(this.group, cap);
      this.keyRef = grow(this.keyRef, cap);
      this.keyLen = grow(this.keyLen, cap);
      this.heads = [grow(this.heads[0], cap), grow(this.heads[1], cap)];
      this.tails = [grow(this.tails[0], cap), grow(this.tails[1], cap)];
    }
    if ((s + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    const ref = this.reserve(5 + key.length);
    const b = this.slab(ref);
    const o = ref & OFF_MASK;
    b.writeUInt16BE(keyGroup, o);
    b.writeUInt16BE(key.length, o + 2);
    b.set(key, o + 4);
    this.hash[s] = h;
    this.group[s] = keyGroup;
    this.keyRef[s] = ref + 4;
    this.keyLen[s] = key.length;
    this.heads[0][s] = this.heads[1][s] = this.tails[0][s] = this.tails[1][s] = NONE;
    this.n = s + 1;
    this.place(h, s);
    return s;
  }

  private place(h: number, s: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.tshift;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = s + 1;
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    this.tshift = 32 - Math.log2(size);
    for (let s = 0; s < this.n; s++) this.place(this.hash[s], s);
  }

  key(s: number): Buffer {
    const r = this.keyRef[s];
    return this.slab(r).subarray(r & OFF_MASK, (r & OFF_MASK) + this.keyLen[s]);
  }

  /** [u16 keyGroup][u16 keyLen][key][u8 side] of slot s, as a view (set the side byte before use). */
  lmdbKey(s: number): Buffer {
    const r = this.keyRef[s];
    const o = r & OFF_MASK;
    return this.slab(r).subarray(o - 4, o + this.keyLen[s] + 1);
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
    return this.dvs[ref >>> SLAB_SHIFT].getInt32((ref & OFF_MASK) + E_CLASS, true);
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
    let r = this.tails[side][s];
    while (r !== NONE && this.cmp(r, ts, id) > 0) r = this.prev(r);
    return r;
  }

  /** Links ref after `after` (NONE: at the head) in slot s / side. */
  linkAfter(side: Side, s: number, after: number, ref: number): void {
    const d = this.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    let n: number;
    if (after === NONE) {
      n = this.heads[side][s];
      this.heads[side][s] = ref;
    } else {
      const a = this.dvs[after >>> SLAB_SHIFT];
      const ao = (after & OFF_MASK) + E_NEXT;
      n = a.getInt32(ao, true);
      a.setInt32(ao, ref, true);
    }
    d.setInt32(o + E_PREV, after, true);
    d.setInt32(o + E_NEXT, n, true);
    if (n === NONE) this.tails[side][s] = ref;
    else this.dvs[n >>> SLAB_SHIFT].setInt32((n & OFF_MASK) + E_PREV, ref, true);
  }

  unlink(side: Side, s: number, ref: number): void {
    const p = this.prev(ref);
    const n = this.next(ref);
    if (p === NONE) this.heads[side][s] = n;
    else this.dvs[p >>> SLAB_SHIFT].setInt32((p & OFF_MASK) + E_NEXT, n, true);
    if (n === NONE) this.tails[side][s] = p;
    else this.dvs[n >>> SLAB_SHIFT].setInt32((n & OFF_MASK) + E_PREV, p, true);
  }

}

/** Exact set of 32-bit key hashes (as int32; open addressing, Fibonacci hashing). */
class KeySet {
  private readonly table: Int32Array;
  private readonly shift: number;
  private hasZero = false;
  constructor(n: number) {
    let bits = 2;
    while ((1 << bits) < n * 2) bits++;
    this.table = new Int32Array(1 << bits);
    this.shift = 32 - bits;
  }
  add(h: number): void {
    if (h === 0) { this.hasZero = true; return; }
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === 0) { t[i] = h; return; }
      if (v === h) return;
      i = (i + 1) & mask;
    }
  }
  has(h: number): boolean {
    if (h === 0) return this.hasZero;
    const t = this.table;
    const mask = t.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = t[i];
      if (v === h) return true;
      if (v === 0) return false;
      i = (i + 1) & mask;
    }
  }
  /** Heap bytes held. */
  size(): number {
    return this.table.byteLength;
  }
}

/** A sealed bucket: one named LMDB database plus its in-memory filters and joined bits. */
class Part {
  constructor(
    readonly c: number,
    readonly name: string,
    readonly db: Database<Buffer, Buffer>,
    readonly count: number,
    readonly bytes: number,
    readonly maxExpire: number,
    readonly filters: [KeySet | undefined, KeySet | undefined],
    readonly bits: Uint8Array,
  ) {}
}

class Slice {
  open: OpenSlice | undefined = new OpenSlice(); // undefined once sealed
  parts: Part[] = []; // sealed buckets
  constructor(readonly t: number) {}
}

// ---- incremental sealing ----
//
// A seal job turns one complete open slice into sealed buckets a bounded amount of work at a time.
// Work is counted in units of about one entry written (see "Incremental sealing" in the header).

const PH_COUNT = 0; // count the slots of each key group
const PH_SCATTER = 1; // counting sort by key group into `order`, with each slot's sort keys
const PH_SORT = 2; // sort each key group's range (quicksort, one partition per step)
const PH_WRITE = 3; // append the current bucket's values in key order
const PH_FILTER = 4; // build the current bucket's key filters
/** Ranges up to this size are finished by insertion sort. */
const SMALL_SORT = 12;
/**
 * Work units (≈ one entry written: the write phase counts one per entry plus U_PUT per value) per
 * slot counted, per slot scattered, per element of a partition or an insertion sort, per filter
 * hash. Calibrated on the 2-vCPU box.
 */
const U_COUNT = 1 / 32;
const U_GROUP = 1 / 2048; // per key group looked at (prefix sums, skipping empty groups)
const U_SCATTER = 1 / 8;
const U_PART = 1 / 48;
const U_FILTER = 1 / 16;
const U_PUT = 1;

/** One bucket (retention class) of a slice being sealed: its database as far as written, its bits and filters. */
class ClassSeal {
  name: string | undefined = undefined;
  db: Database<Buffer, Buffer> | undefined = undefined;
  ordinal = 0; // next entry ordinal
  readonly bits: Uint8Array;
  readonly filters: [KeySet | undefined, KeySet | undefined] = [undefined, undefined];
  constructor(readonly cs: ClassStat) {
    this.bits = new Uint8Array((cs.count + 7) >>> 3);
  }
}

/**
 * The sealing of one slice in progress. The slice stays open (in memory, fully served from its
 * arena) until every bucket's database is complete; then it switches to its parts in one step.
 * Any change to the slice's entries (an insert) abandons the job; a bucket that expires meanwhile
 * is dropped from it, its partial database with it.
 */
class SealJob {
  phase = PH_COUNT;
  pos = 0;
  readonly n: number; // slots
  readonly order: Int32Array; // slots, in key order once sorted
  /** Sort keys by position in `order`: keyLen·2^40 + key bytes 0–4, then key bytes 5–10 (big-endian, 0-padded). */
  readonly c1: Float64Array;
  readonly c2: Float64Array;
  readonly gstart = new Int32Array(65537); // counts per key group, then group starts (ends after the scatter)
  g = 0; // sort phase: next key group
  private readonly stack: number[] = []; // sort phase: ranges [a, b) of the current group still to sort
  readonly classes: ClassSeal[];
  ci = 0; // bucket being written (earlier ones are complete)
  fside = 0; // filter phase: side being built
  readonly nHashes = [0, 0];
  readonly hashes: [Int32Array, Int32Array];
  /** Entries whose joined flag was set since the job began (their bits are set at the switch). */
  readonly late: number[] = [];
  /** Work units the job is expected to take (roughly) and those done so far. */
  readonly estimate: number;
  done = 0;

  constructor(readonly slice: Slice, readonly os: OpenSlice) {
    const n = this.n = os.n;
    this.order = new Int32Array(n);
    this.c1 = new Float64Array(n);
    this.c2 = new Float64Array(n);
    this.hashes = [new Int32Array(n), new Int32Array(n)];
    this.classes = [...os.classes.values()].sort((a, b) => a.c - b.c).map((cs) => new ClassSeal(cs));
    let est = 2 * 65536 * U_GROUP + n * (U_COUNT + U_SCATTER + 8 * U_PART);
    for (const cl of this.classes) est += n * U_COUNT + cl.cs.count * (1 + U_PUT + U_FILTER); // ≤ one value per entry
    this.estimate = est;
  }

  /**
   * Sorts the slots, about `budget` units of work per call (at least one small step). Returns the
   * units used; the phase is PH_WRITE once `order` holds the slots in LMDB key order (keyGroup,
   * keyLen, key bytes).
   */
  sortStep(budget: number): number {
    let used = 0;
    const n = this.n;
    const os = this.os;
    while (used < budget && this.phase < PH_WRITE) {
      if (this.phase === PH_COUNT) {
        const counts = this.gstart, group = os.group;
        const end = Math.min(n, this.pos + Math.max(1024, Math.ceil((budget - used) / U_COUNT)));
        for (let s = this.pos; s < end; s++) counts[group[s] + 1]++;
        used += (end - this.pos) * U_COUNT;
        this.pos = end;
        if (end === n) {
          const st = this.gstart;
          for (let g = 1; g <= 65536; g++) st[g] += st[g - 1]; // st[g] = start of group g
          used += 65536 * U_GROUP;
          this.phase = PH_SCATTER;
          this.pos = 0;
        }
      } else if (this.phase === PH_SCATTER) {
        // gstart[g] serves as group g's fill position: afterwards it is the *end* of group g.
        const st = this.gstart, order = this.order, c1 = this.c1, c2 = this.c2;
        const group = os.group, keyRef = os.keyRef, keyLen = os.keyLen, slabs = os.slabs;
        const end = Math.min(n, this.pos + Math.max(256, Math.ceil((budget - used) / U_SCATTER)));
        for (let s = this.pos; s < end; s++) {
          const p = st[group[s]]++;
          order[p] = s;
          const len = keyLen[s];
          const r = keyRef[s];
          const b = slabs[r >>> SLAB_SHIFT];
          const o = r & OFF_MASK;
          let x = 0;
          for (let i = 0; i < 5; i++) x = x * 256 + (i < len ? b[o + i] : 0);
          c1[p] = len * 1099511627776 + x;
          let y = 0;
          if (len > 5) for (let i = 5; i < 11; i++) y = y * 256 + (i < len ? b[o + i] : 0);
          c2[p] = y;
        }
        used += (end - this.pos) * U_SCATTER;
        this.pos = end;
        if (end === n) {
          this.phase = PH_SORT;
          this.g = 0;
          this.pos = 0; // start of group g (the end of group g − 1)
        }
      } else {
        used += this.sortGroups(budget - used);
      }
    }
    return used;
  }

  /** Sorts key group after key group: one partition or one small insertion sort per iteration. */
  private sortGroups(budget: number): number {
    let used = 0;
    const stack = this.stack;
    while (used < budget) {
      if (stack.length === 0) {
        // The next key group with two slots or more (the others need no sorting).
        const st = this.gstart;
        const g0 = this.g;
        let g = g0;
        let lo = this.pos;
        while (g <= 65535 && st[g] - lo <= 1) lo = st[g++];
        used += (g - g0) * U_GROUP;
        if (g > 65535) {
          this.phase = PH_WRITE;
          this.pos = 0;
          return used;
        }
        const hi = st[g];
        this.g = g + 1;
        this.pos = hi;
        stack.push(lo, hi);
        continue;
      }
      const b = stack.pop()!;
      const a = stack.pop()!;
      if (b - a <= SMALL_SORT) {
        this.insertionSort(a, b);
        used += (b - a) * U_PART;
        continue;
      }
      const m = this.partition(a, b);
      used += (b - a) * U_PART;
      // The larger side waits below the smaller: the stack stays O(log n) deep.
      if (m - a > b - m - 1) {
        if (m - a > 1) stack.push(a, m);
        if (b - m - 1 > 1) stack.push(m + 1, b);
      } else {
        if (b - m - 1 > 1) stack.push(m + 1, b);
        if (m - a > 1) stack.push(a, m);
      }
    }
    return used;
  }

  /** Orders position p against (v1, v2, slot s), both in one key group (slots have distinct keys). */
  private cmpAt(p: number, v1: number, v2: number, s: number): number {
    const a1 = this.c1[p];
    if (a1 !== v1) return a1 < v1 ? -1 : 1;
    const a2 = this.c2[p];
    if (a2 !== v2) return a2 < v2 ? -1 : 1;
    return this.cmpTail(this.order[p], s);
  }

  /** Key bytes from 11 on of two slots with equal key lengths. */
  private cmpTail(x: number, y: number): number {
    if (x === y) return 0;
    const os = this.os;
    const rx = os.keyRef[x], ry = os.keyRef[y];
    const bx = os.slabs[rx >>> SLAB_SHIFT], by = os.slabs[ry >>> SLAB_SHIFT];
    const ox = rx & OFF_MASK, oy = ry & OFF_MASK;
    const len = os.keyLen[x];
    for (let i = 11; i < len; i++) if (bx[ox + i] !== by[oy + i]) return bx[ox + i] - by[oy + i];
    return 0;
  }

  private swap(p: number, q: number): void {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    const t1 = c1[p]; c1[p] = c1[q]; c1[q] = t1;
    const t2 = c2[p]; c2[p] = c2[q]; c2[q] = t2;
    const t = order[p]; order[p] = order[q]; order[q] = t;
  }

  private insertionSort(a: number, b: number): void {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    for (let i = a + 1; i < b; i++) {
      const v1 = c1[i], v2 = c2[i], s = order[i];
      let j = i - 1;
      while (j >= a && this.cmpAt(j, v1, v2, s) > 0) {
        c1[j + 1] = c1[j];
        c2[j + 1] = c2[j];
        order[j + 1] = order[j];
        j--;
      }
      c1[j + 1] = v1;
      c2[j + 1] = v2;
      order[j + 1] = s;
    }
  }

  /**
   * Partitions [a, b) (more than SMALL_SORT positions) around a median of three; returns the
   * pivot's final position m: [a, m) sorts before it, (m, b) after.
   */
  private partition(a: number, b: number): number {
    const c1 = this.c1, c2 = this.c2, order = this.order;
    const m = (a + b) >>> 1;
    const z = b - 1;
    if (this.cmpAt(m, c1[a], c2[a], order[a]) < 0) this.swap(m, a);
    if (this.cmpAt(z, c1[a], c2[a], order[a]) < 0) this.swap(z, a);
    if (this.cmpAt(z, c1[m], c2[m], order[m]) < 0) this.swap(z, m);
    // Now a ≤ pivot ≤ z: sentinels for both scans. The pivot waits at z − 1.
    const p = z - 1;
    this.swap(m, p);
    const v1 = c1[p], v2 = c2[p], vs = order[p];
    let i = a, j = p;
    for (;;) {
      do i++; while (this.cmpAt(i, v1, v2, vs) < 0);
      do j--; while (this.cmpAt(j, v1, v2, vs) > 0);
      if (i >= j) break;
      this.swap(i, j);
    }
    this.swap(i, p);
    return i;
  }
}

/** A decoded copy of a sealed entry, for the rare probe that merges several buckets of one slice. */
interface Copied {
  ts: number;
  id: Buffer;
  payload: Buffer;
  part: Part;
  ordinal: number;
}

function cmpIdBytes(v: Uint8Array, off: number, len: number, id: Uint8Array): number {
  const n = len < id.length ? len : id.length;
  for (let i = 0; i < n; i++) {
    const c = v[off + i] - id[i];
    if (c !== 0) return c;
  }
  return len - id.length;
}

export class BucketStore implements StateStore {
  /** See the file header: buckets expire as a whole, at most 2·bucketMs after an entry's expireAtMs. */
  readonly expiryGranularityMs: number;
  readonly bucketMs: number;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly slices = new Map<number, Slice>();
  private readonly order: Slice[] = []; // by t ascending
  private lastSlice: Slice | undefined;
  private entries = 0;
  private byteCount = 0;
  private sealedCount = 0; // entries in sealed buckets
  private depth = 0;
  private closed = false;
  private poisoned = false;
  private dirty = false; // this batch wrote to LMDB
  private wmMax = -Infinity; // highest watermark passed to expire()
  private tsMax = -Infinity; // highest event time inserted
  private tsMaxAtWm = -Infinity; // tsMax when wmMax last rose (see sealClock)
  private minMaxExpire = Infinity; // ≤ every live bucket's max expireAt
  private readonly sealSpread: number;
  private readonly sealUnitsPerCall: number;
  private readonly sealAtOnceUnits: number;
  private job: SealJob | undefined; // the slice being sealed
  private readonly freeNames: string[] = [];
  private readonly releasedNames: string[] = []; // dropped in this batch: reusable after commit
  private nextName = 0;

  private readonly kbuf = Buffer.allocUnsafeSlow(MAX_KEY + 16);
  private vbuf = markedBuffer(64 * 1024);
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0)); // over the buffer of the last value read
  private readonly view: Buffered = {
    side: 0, keyGroup: 0, key: EMPTY, ts: 0, id: EMPTY, payload: EMPTY, joined: false,
  };

  private constructor(dir: string, options: BucketStoreOptions) {
    const bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS;
    if (!(Number.isFinite(bucketMs) && bucketMs > 0)) {
      throw new JoineryError('E_STATE', `bucketMs must be a positive number, got ${bucketMs}`);
    }
    this.bucketMs = bucketMs;
    this.expiryGranularityMs = 2 * bucketMs;
    this.sealSpread = options.sealSpread ?? DEFAULT_SEAL_SPREAD;
    this.sealUnitsPerCall = options.sealUnitsPerCall ?? DEFAULT_SEAL_UNITS_PER_CALL;
    this.sealAtOnceUnits = options.sealAtOnceUnits ?? DEFAULT_SEAL_AT_ONCE_UNITS;
    if (!(this.sealSpread >= 0) || !(this.sealUnitsPerCall > 0) || !(this.sealAtOnceUnits >= 0)) {
      throw new JoineryError('E_STATE', 'sealSpread and sealAtOnceUnits must be ≥ 0, sealUnitsPerCall > 0');
    }
    fs.mkdirSync(dir, { recursive: true });
    // Nothing survives a reopen (open slices were in memory): start from an empty environment.
    for (const f of ['data.mdb', 'lock.mdb']) fs.rmSync(path.join(dir, f), { force: true });
    this.root = openEnv({
      path: dir,
      noSubdir: false,
      noSync: true,
      useWritemap: false,
      keyEncoding: 'binary',
      encoding: 'binary',
      maxDbs: options.maxDbs ?? 10_000,
      mapSize: options.mapSizeBytes ?? 256 * 1024 * 1024,
    });
  }

  /** Opens an empty store in `dir` (created if missing; a previous environment there is deleted). */
  static open(dir: string, options: BucketStoreOptions = {}): BucketStore {
    try {
      return new BucketStore(dir, options);
    } catch (err) {
      if (err instanceof JoineryError) throw err;
      throw new JoineryError('E_STATE', `cannot open LMDB state in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  batch<T>(fn: () => T): T {
    this.checkOpen();
    if (this.depth > 0) return fn();
    this.depth++;
    try {
      return this.root.transactionSync(fn);
    } catch (err) {
      if (this.dirty) this.poisoned = true;
      throw err;
    } finally {
      this.depth--;
      this.dirty = false;
      if (!this.poisoned) for (const n of this.releasedNames) this.freeNames.push(n);
      this.releasedNames.length = 0;
    }
  }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    if (this.depth === 0) return this.batch(() => this.insert(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs));
    if (Number.isNaN(ts)) throw new JoineryError('E_STATE', 'event time is NaN');
    if (Number.isNaN(expireAtMs)) throw new JoineryError('E_STATE', 'expireAtMs is NaN');
    if (key.length > MAX_KEY) throw new JoineryError('E_STATE', `join key of ${key.length} bytes is too long for the bucket store`);
    if (id.length > 0xffff) throw new JoineryError('E_STATE', `event id of ${id.length} bytes is too long for the bucket store`);
    if (!(keyGroup >= 0 && keyGroup <= 0xffff)) throw new JoineryError('E_STATE', `key group ${keyGroup} out of range`);
    ts += 0; // -0 → 0
    if (ts > this.tsMax) this.tsMax = ts;
    const h = keyHash | 0;
    const t = Math.floor(ts / this.bucketMs);
    let slice = this.lastSlice;
    if (slice === undefined || slice.t !== t) {
      slice = this.slices.get(t);
      if (slice === undefined) slice = this.addSlice(t);
      this.lastSlice = slice;
    }
    let os = slice.open;
    if (os === undefined) {
      if (this.findSealed(slice, side, keyGroup, h, key, ts, id, false)) return false;
      os = this.unseal(slice);
    }

    let s = os.find(h, keyGroup, key);
    if (s === NONE) {
      if (os.job !== undefined) this.abandonSeal(os.job);
      s = os.add(h, keyGroup, key);
    }
    // Position: after the last entry ≤ (ts, id); usually the tail.
    let after = os.tails[side][s];
    let dead = NONE;
    if (after !== NONE) {
      let c = os.cmp(after, ts, id);
      while (c > 0) {
        after = os.prev(after);
        if (after === NONE) break;
        c = os.cmp(after, ts, id);
      }
      if (after !== NONE && c === 0) {
        if (!os.dead(after)) return false; // duplicate
        dead = after; // the same identity, expired but not yet swept: take its place
        after = os.prev(after);
      }
    }
    // A new entry in a slice being sealed (only a late insert or a watermark regression does that).
    if (os.job !== undefined) this.abandonSeal(os.job);

    let c = Math.floor((expireAtMs - ts) / this.bucketMs);
    if (Number.isNaN(c)) c = 0; // ∞ − ∞
    let cs = os.lastCls;
    if (cs === undefined || cs.c !== c) {
      cs = os.classes.get(c);
      if (cs === undefined) {
        cs = new ClassStat(c, os.classList.length);
        os.classes.set(c, cs);
        os.classList.push(cs);
      }
      os.lastCls = cs;
    }

    const ref = os.reserve(ENTRY_HEADER + EV_HEADER + id.length + payload.length) + ENTRY_HEADER;
    const b = os.slab(ref);
    const d = os.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    d.setInt32(o + E_CLASS, cs.idx, true);
    b[o + E_JOINED] = joined ? 1 : 0;
    d.setFloat64(o, ts, true);
    d.setUint16(o + 8, id.length, true);
    d.setUint32(o + 10, payload.length, true);
    b.set(id, o + EV_HEADER);
    b.set(payload, o + EV_HEADER + id.length);
    if (dead !== NONE) os.unlink(side, s, dead);
    os.linkAfter(side, s, after, ref);

    const bytes = key.length + id.length + payload.length;
    cs.count++;
    cs.bytes += bytes;
    if (expireAtMs > cs.maxExpire) cs.maxExpire = expireAtMs;
    if (expireAtMs < this.minMaxExpire) this.minMaxExpire = expireAtMs;
    this.entries++;
    this.byteCount += bytes;
    return true;
  }

  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    this.checkOpen();
    if (!(fromTs <= toTs) || this.entries === 0) return;
    const h = keyHash | 0;
    const order = this.order;
    const tTo = Math.floor(toTs / this.bucketMs);
    let i = this.firstSliceAtOrAfter(Math.floor(fromTs / this.bucketMs));
    let lkey: Buffer | undefined; // LMDB key, built for the first sealed bucket that may hold the key
    for (; i < order.length; i++) {
      const slice = order[i];
      if (slice.t > tTo) break;
      if (slice.open !== undefined) {
        this.probeOpen(slice.open, side, keyGroup, h, key, fromTs, toTs, visit);
        continue;
      }
      let hits = 0;
      let hit: Part | undefined;
      for (const p of slice.parts) {
        const f = p.filters[side];
        if (f !== undefined && f.has(h)) { hits++; hit = p; }
      }
      if (hits === 0) continue;
      if (key.length > MAX_KEY) return;
      if (lkey === undefined) lkey = this.lmdbKey(keyGroup, key, side);
      if (hits === 1) {
        const v = hit!.db.getBinaryFast(lkey);
        if (v !== undefined) this.visitValue(v, hit!, side, keyGroup, key, fromTs, toTs, visit);
      } else {
        this.probeMerged(slice, lkey, side, keyGroup, h, key, fromTs, toTs, visit);
      }
    }
  }

  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.checkOpen();
    if (Number.isNaN(ts)) return;
    ts += 0;
    const h = keyHash | 0;
    const slice = this.slices.get(Math.floor(ts / this.bucketMs));
    if (slice === undefined) return;
    const os = slice.open;
    if (os === undefined) {
      this.findSealed(slice, side, keyGroup, h, key, ts, id, true);
      return;
    }
    const s = os.find(h, keyGroup, key);
    if (s === NONE) return;
    const r = os.floor(side, s, ts, id);
    if (r !== NONE && os.cmp(r, ts, id) === 0 && !os.dead(r)) os.setJoined(r);
  }

  expire(watermarkMs: number, onExpired?: (e: Buffered) => void): number {
    if (this.depth === 0) return this.batch(() => this.expire(watermarkMs, onExpired));
    if (Number.isNaN(watermarkMs)) return 0;
    if (watermarkMs > this.wmMax) {
      this.wmMax = watermarkMs;
      this.tsMaxAtWm = this.tsMax;
    }
    let removed = 0;

    // 1. Drop every bucket whose entries all have expireAt < watermark.
    if (watermarkMs > this.minMaxExpire) {
      let min = Infinity;
      for (let i = 0; i < this.order.length; i++) {
        const slice = this.order[i];
        const os = slice.open;
        if (os === undefined) {
          const parts = slice.parts;
          for (let j = 0; j < parts.length; j++) {
            const p = parts[j];
            if (p.maxExpire < watermarkMs) {
              removed += this.dropPart(p, onExpired);
              parts.splice(j--, 1);
            } else if (p.maxExpire < min) min = p.maxExpire;
          }
          if (parts.length === 0) this.removeSlice(i--);
        } else {
          for (const cs of [...os.classes.values()]) {
            if (cs.maxExpire < watermarkMs) removed += this.dropOpenClass(os, cs, onExpired);
            else if (cs.maxExpire < min) min = cs.maxExpire;
          }
          if (os.classes.size === 0) {
            if (os.job !== undefined) this.abandonSeal(os.job);
            this.removeSlice(i--);
          }
        }
      }
      this.minMaxExpire = min;
    }

    // 2. Seal, a bounded amount of work at a time, the open slices no later insert can reach.
    this.sealWork(this.sealUnitsPerCall, true, true);
    return removed;
  }

  /**
   * Does the sealing work that is due (see sealWork), at most `budgetEntries` units (≈ one entry
   * written each; a unit is 1–2 µs on the 2-vCPU box). Optional for callers, who may call it once
   * per ring drain: expire() alone keeps pace, in larger steps (it runs once per watermark); this
   * spreads the same work over more, smaller steps. Opens its own batch when called outside one.
   */
  maintain(budgetEntries: number): void {
    this.checkOpen();
    if (!(budgetEntries > 0) || !this.sealDue()) return; // no transaction for nothing
    if (this.depth === 0) {
      this.batch(() => this.maintain(budgetEntries));
      return;
    }
    this.sealWork(budgetEntries, true, false);
  }

  /** Seals every complete slice now, however long it takes (tests; shutdown paths). */
  flushSeals(): void {
    this.checkOpen();
    if (this.job === undefined && this.nextToSeal() === undefined) return;
    if (this.depth === 0) {
      this.batch(() => this.flushSeals());
      return;
    }
    this.sealWork(Infinity, false, false);
  }

  count(): number {
    return this.entries;
  }

  bytes(): number {
    return this.byteCount;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.job = undefined;
    this.slices.clear();
    this.order.length = 0;
    this.lastSlice = undefined;
    await this.root.close();
  }

  /** Introspection for tests and metrics. */
  stats(): {
    openSlices: number; sealedSlices: number; sealedBuckets: number; openEntries: number; sealedEntries: number;
    lmdbDatabases: number; lmdbRecords: number; heapFilterBytes: number; openArenaBytes: number;
    /** Complete slices not sealed yet (still open, served from memory), the one being sealed included. */
    pendingSeals: number;
  } {
    this.checkOpen();
    let openSlices = 0, sealedSlices = 0, sealedBuckets = 0, lmdbRecords = 0, heapFilterBytes = 0, openArenaBytes = 0;
    for (const s of this.order) {
      if (s.open !== undefined) {
        openSlices++;
        for (const b of s.open.slabs) openArenaBytes += b.length;
        continue;
      }
      sealedSlices++;
      for (const p of s.parts) {
        sealedBuckets++;
        lmdbRecords += (p.db.getStats() as { entryCount: number }).entryCount;
        heapFilterBytes += (p.filters[0]?.size() ?? 0) + (p.filters[1]?.size() ?? 0) + p.bits.byteLength;
      }
    }
    const lmdbDatabases = (this.root.getStats() as { entryCount: number }).entryCount;
    return {
      openSlices, sealedSlices, sealedBuckets, openEntries: this.entries - this.sealedCount, sealedEntries: this.sealedCount,
      lmdbDatabases, lmdbRecords, heapFilterBytes, openArenaBytes, pendingSeals: this.pendingSeals(),
    };
  }

  // ---- slices ----

  private addSlice(t: number): Slice {
    const slice = new Slice(t);
    this.slices.set(t, slice);
    const order = this.order;
    if (order.length === 0 || order[order.length - 1].t < t) order.push(slice);
    else order.splice(this.firstSliceAtOrAfter(t), 0, slice);
    return slice;
  }

  private removeSlice(i: number): void {
    const slice = this.order[i];
    this.order.splice(i, 1);
    this.slices.delete(slice.t);
    if (this.lastSlice === slice) this.lastSlice = undefined;
  }

  private firstSliceAtOrAfter(t: number): number {
    const order = this.order;
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order[mid].t < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // ---- open slices ----

  private probeOpen(os: OpenSlice, side: Side, keyGroup: number, h: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    const s = os.find(h, keyGroup, key);
    if (s === NONE) return;
    let r = os.heads[side][s];
    if (r === NONE) return;
    if (os.ts(r) < fromTs) {
      // The range starts inside the list: find its first entry walking back from the tail.
      r = os.tails[side][s];
      if (os.ts(r) < fromTs) return;
      for (let p = os.prev(r); p !== NONE && os.ts(p) >= fromTs; p = os.prev(p)) r = p;
    }
    const view = this.view;
    for (; r !== NONE; r = os.next(r)) {
      const b = os.slab(r);
      const d = os.dvs[r >>> SLAB_SHIFT];
      const o = r & OFF_MASK;
      const ts = d.getFloat64(o, true);
      if (ts > toTs) return;
      if (os.dead(r)) continue;
      const idLen = d.getUint16(o + 8, true);
      view.side = side;
      view.keyGroup = keyGroup;
      view.key = key;
      view.ts = ts;
      // Plain Uint8Array views (the interface's type): cheaper to make than Buffer#subarray.
      view.id = new Uint8Array(b.buffer, o + EV_HEADER, idLen);
      view.payload = new Uint8Array(b.buffer, o + EV_HEADER + idLen, d.getUint32(o + 10, true));
      view.joined = (b[o + E_JOINED] & 1) === 1;
      if (visit(view) === true) os.setJoined(r);
    }
  }

  /**
   * Expires one bucket of an open slice: reports its entries when asked, then marks it dead. Its
   * entries stay linked (skipped everywhere) until the slice is sealed or emptied, so without a
   * callback this costs nothing per entry.
   */
  private dropOpenClass(os: OpenSlice, cs: ClassStat, onExpired: ((e: Buffered) => void) | undefined): number {
    if (onExpired !== undefined) {
      const view = this.view;
      for (let s = 0; s < os.n; s++) {
        for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
          for (let r = os.heads[side][s]; r !== NONE; r = os.next(r)) {
            if (os.cls(r) !== cs.idx) continue;
            const b = os.slab(r);
            const o = r & OFF_MASK;
            const idEnd = o + EV_HEADER + b.readUInt16LE(o + 8);
            view.side = side;
            view.keyGroup = os.group[s];
            view.key = os.key(s);
            view.ts = b.readDoubleLE(o);
            view.id = b.subarray(o + EV_HEADER, idEnd);
            view.payload = b.subarray(idEnd, idEnd + b.readUInt32LE(o + 10));
            view.joined = (b[o + E_JOINED] & 1) === 1;
            onExpired(view);
          }
        }
      }
    }
    cs.dead = true;
    if (os.job !== undefined) this.dropFromSeal(os.job, cs);
    os.classes.delete(cs.c);
    if (os.lastCls === cs) os.lastCls = undefined;
    this.entries -= cs.count;
    this.byteCount -= cs.bytes;
    return cs.count;
  }

  // ---- sealing ----

  /** The oldest complete open slice (no later insert can reach it), or undefined. */
  private nextToSeal(): Slice | undefined {
    const order = this.order;
    const end = this.wmMax;
    for (let i = 0; i < order.length; i++) {
      const slice = order[i];
      if ((slice.t + 1) * this.bucketMs > end) return undefined;
      if (slice.open !== undefined) return slice;
    }
    return undefined;
  }

  /** Complete open slices: the one being sealed and those waiting. */
  private pendingSeals(): number {
    const order = this.order;
    const end = this.wmMax;
    let n = 0;
    for (let i = 0; i < order.length; i++) {
      const slice = order[i];
      if ((slice.t + 1) * this.bucketMs > end) break;
      if (slice.open !== undefined) n++;
    }
    return n;
  }

  /**
   * Event time for pacing seals: the watermark, advanced by how far inserted event time moved since
   * the watermark last rose (so that calls between watermark frames find work due), at most a bucket.
   */
  private sealClock(): number {
    const ahead = this.tsMax - this.tsMaxAtWm;
    return ahead > 0 ? this.wmMax + Math.min(ahead, this.bucketMs) : this.wmMax;
  }

  /**
   * Units of `job`'s work due now when paced: the slice of t is sealed while the clock (sealClock)
   * goes from its end (t+1)·B to (t+1+sealSpread)·B; all of it once the clock is past that, when
   * complete slices queue behind it, or when at most sealAtOnceUnits are left.
   */
  private due(job: SealJob, clock: number, queued: number): number {
    const left = job.estimate - job.done;
    const f = (clock - (job.slice.t + 1) * this.bucketMs) / (this.sealSpread * this.bucketMs);
    if (queued > 1 || !(f < 1) || left <= this.sealAtOnceUnits) return Infinity;
    return job.estimate * f - job.done;
  }

  /** Would a paced call (maintain) find sealing work to do? */
  private sealDue(): boolean {
    if (this.job === undefined) return this.nextToSeal() !== undefined; // a new job: its first step at least
    return this.sealSpread === 0 || this.due(this.job, this.sealClock(), this.pendingSeals()) > 0;
  }

  /**
   * Advances the sealing of complete slices, oldest first, by at most `cap` units (a step may run
   * over by a little). Paced (expire(), maintain()): only what is due (see due()); with `catchUp`
   * (expire()), the cap is multiplied by the number of complete slices waiting, up to
   * SEAL_BACKLOG_MAX. sealSpread 0: no pacing, no cap.
   */
  private sealWork(cap: number, paced: boolean, catchUp: boolean): void {
    if (paced && this.sealSpread === 0) {
      paced = false;
      cap = Infinity;
    }
    let queued = -1;
    let clock = 0;
    let used = 0;
    while (used < cap) {
      let job = this.job;
      if (job === undefined) {
        const slice = this.nextToSeal();
        if (slice === undefined) break;
        const os = slice.open!;
        job = this.job = os.job = new SealJob(slice, os);
      }
      let budget = cap - used;
      if (paced) {
        if (queued < 0) {
          queued = this.pendingSeals();
          clock = this.sealClock();
          if (catchUp && queued > 1) {
            cap *= Math.min(queued, SEAL_BACKLOG_MAX);
            budget = cap - used;
          }
        }
        const due = this.due(job, clock, queued);
        if (due <= 0) break; // on schedule: nothing to do yet
        if (due < budget) budget = due;
      }
      const u = this.sealStep(job, budget);
      used += u;
      job.done += u;
    }
  }

  /** One bounded step of a job; returns the units used (> 0). */
  private sealStep(job: SealJob, budget: number): number {
    if (job.phase < PH_WRITE) return job.sortStep(budget) + U_COUNT;
    if (job.ci >= job.classes.length) return this.finishSeal(job);
    if (job.phase === PH_WRITE) return this.writeStep(job, budget) + U_COUNT;
    return this.filterStep(job, budget) + U_COUNT;
  }

  /** Appends the current bucket's values, slot after slot in key order, until the budget is used. */
  private writeStep(job: SealJob, budget: number): number {
    const os = job.os;
    const cl = job.classes[job.ci];
    this.dirty = true;
    let db = cl.db;
    if (db === undefined) {
      const name = cl.name = this.takeName();
      try {
        db = this.root.openDB<Buffer, Buffer>(name, DB_OPTIONS);
      } catch (err) {
        throw new JoineryError('E_STATE', `bucket store: cannot create a bucket database: ${(err as Error).message}`, { cause: err });
      }
      if (db === undefined) throw new JoineryError('E_STATE', `bucket store: cannot create bucket database ${name}`);
      cl.db = db;
    }
    const idx = cl.cs.idx;
    const bits = cl.bits;
    const order = job.order;
    const hashes = job.hashes;
    const nHashes = job.nHashes;
    const n = job.n;
    let ordinal = cl.ordinal;
    let used = 0;
    let k = job.pos;
    for (; k < n && used < budget; k++) {
      const s = order[k];
      used += U_COUNT;
      let lkey: Buffer | undefined;
      for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
        const head = os.heads[side][s];
        if (head === NONE) continue;
        // One pass: the value is built in vbuf (copied: the arena stays intact and readable until the switch).
        const first = ordinal;
        let v = this.vbuf;
        let p = VALUE_HEADER;
        for (let r = head; r !== NONE; r = os.next(r)) {
          const d = os.dvs[r >>> SLAB_SHIFT];
          const o = r & OFF_MASK;
          if (d.getInt32(o + E_CLASS, true) !== idx) continue;
          const b = os.slabs[r >>> SLAB_SHIFT];
          const len = EV_HEADER + d.getUint16(o + 8, true) + d.getUint32(o + 10, true);
          if (p + len > v.length) {
            const w = markedBuffer(Math.max(p + len, v.length * 2));
            v.copy(w, 0, 0, p);
            v = this.vbuf = w;
          }
          v.set(new Uint8Array(b.buffer, o, len), p);
          p += len;
          const j = b[o + E_JOINED] & 1;
          if (j === 1) bits[ordinal >>> 3] |= 1 << (ordinal & 7);
          d.setUint32(o + E_JOINED, ordinal * 2 + j, true); // the entry's ordinal, for flags set before the switch
          ordinal++;
        }
        const cnt = ordinal - first;
        if (cnt === 0) continue;
        v.writeUInt32LE(cnt, 0);
        v.writeUInt32LE(first, 4);
        v.writeInt32LE(os.hash[s], 8);
        v.end = p;
        if (lkey === undefined) lkey = os.lmdbKey(s);
        lkey[lkey.length - 1] = side;
        db.putSync(lkey, v, APPEND);
        hashes[side][nHashes[side]++] = os.hash[s];
        used += cnt + U_PUT;
      }
    }
    cl.ordinal = ordinal;
    job.pos = k;
    if (k === n) {
      job.phase = PH_FILTER;
      job.pos = 0;
      job.fside = 0;
    }
    return used;
  }

  /** Builds the current bucket's key filters from the hashes collected while writing. */
  private filterStep(job: SealJob, budget: number): number {
    const cl = job.classes[job.ci];
    let used = 0;
    while (used < budget) {
      const side = job.fside;
      if (side > 1) {
        // This bucket is complete; on to the next.
        job.ci++;
        job.phase = PH_WRITE;
        job.pos = 0;
        job.nHashes[0] = job.nHashes[1] = 0;
        break;
      }
      const cnt = job.nHashes[side];
      if (cnt === 0) { job.fside++; continue; }
      let f = cl.filters[side];
      if (f === undefined) f = cl.filters[side] = new KeySet(cnt);
      const hs = job.hashes[side];
      const end = Math.min(cnt, job.pos + Math.max(64, Math.ceil((budget - used) / U_FILTER)));
      for (let i = job.pos; i < end; i++) f.add(hs[i]);
      used += (end - job.pos) * U_FILTER;
      job.pos = end;
      if (end === cnt) { job.fside++; job.pos = 0; }
    }
    return used;
  }

  /** Every bucket of the job is complete: the slice switches from its arena to its parts. */
  private finishSeal(job: SealJob): number {
    const os = job.os;
    const byIdx: (ClassSeal | undefined)[] = [];
    for (const cl of job.classes) byIdx[cl.cs.idx] = cl;
    // Flags set after an entry was written: its ordinal is in its header.
    for (const r of job.late) {
      const cl = byIdx[os.cls(r)];
      if (cl === undefined) continue;
      const ord = os.dvs[r >>> SLAB_SHIFT].getUint32((r & OFF_MASK) + E_JOINED, true) >>> 1;
      cl.bits[ord >>> 3] |= 1 << (ord & 7);
    }
    const parts: Part[] = [];
    for (const cl of job.classes) {
      const cs = cl.cs;
      parts.push(new Part(cs.c, cl.name!, cl.db!, cs.count, cs.bytes, cs.maxExpire, cl.filters, cl.bits));
      this.sealedCount += cs.count;
    }
    job.slice.parts = parts;
    job.slice.open = undefined;
    os.job = undefined;
    this.job = undefined;
    return 1 + job.late.length * U_FILTER;
  }

  /** Gives up a job (its slice changed): drops the databases written so far. The slice stays open. */
  private abandonSeal(job: SealJob): void {
    for (const cl of job.classes) this.dropSealDb(cl);
    job.classes.length = 0;
    job.os.job = undefined;
    if (this.job === job) this.job = undefined;
  }

  /** A bucket of a slice being sealed expired: it leaves the job, its partial database dropped. */
  private dropFromSeal(job: SealJob, cs: ClassStat): void {
    const j = job.classes.findIndex((cl) => cl.cs === cs);
    if (j < 0) return;
    this.dropSealDb(job.classes[j]);
    job.classes.splice(j, 1);
    if (j < job.ci) {
      job.ci--;
    } else if (j === job.ci && job.phase >= PH_WRITE) {
      job.phase = PH_WRITE;
      job.pos = 0;
      job.fside = 0;
      job.nHashes[0] = job.nHashes[1] = 0;
    }
  }

  private dropSealDb(cl: ClassSeal): void {
    if (cl.db === undefined) return;
    this.dirty = true;
    cl.db.dropSync();
    this.releasedNames.push(cl.name!);
    cl.db = undefined;
  }

  // ---- sealed buckets ----

  private takeName(): string {
    return this.freeNames.pop() ?? `b${this.nextName++}`;
  }

  /** [u16 keyGroup][u16 keyLen][key][u8 side] (big-endian) in a view of scratch memory. */
  private lmdbKey(keyGroup: number, key: Uint8Array, side: Side): Buffer {
    const b = this.kbuf;
    b.writeUInt16BE(keyGroup, 0);
    b.writeUInt16BE(key.length, 2);
    b.set(key, 4);
    b[4 + key.length] = side;
    return b.subarray(0, 5 + key.length);
  }

  /** Visits the entries of one packed value with fromTs ≤ ts ≤ toTs. */
  private visitValue(v: Buffer, part: Part, side: Side, keyGroup: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    const len = v.length; // getBinaryFast: the value's size, not the shared buffer's
    const ab = v.buffer;
    const base = v.byteOffset;
    let d = this.dv;
    if (d.buffer !== ab) d = this.dv = new DataView(ab); // lmdb-js reuses one buffer for most values
    const count = d.getUint32(base, true);
    let ordinal = d.getUint32(base + 4, true);
    const bits = part.bits;
    const view = this.view;
    let p = VALUE_HEADER;
    for (let i = 0; i < count && p < len; i++, ordinal++) {
      const ts = d.getFloat64(base + p, true);
      if (ts > toTs) return;
      const idLen = d.getUint16(base + p + 8, true);
      const payLen = d.getUint32(base + p + 10, true);
      const o = p + EV_HEADER;
      p = o + idLen + payLen;
      if (ts < fromTs) continue;
      const bit = 1 << (ordinal & 7);
      view.side = side;
      view.keyGroup = keyGroup;
      view.key = key;
      view.ts = ts;
      view.id = new Uint8Array(ab, base + o, idLen);
      view.payload = new Uint8Array(ab, base + o + idLen, payLen);
      view.joined = (bits[ordinal >>> 3] & bit) !== 0;
      if (visit(view) === true) bits[ordinal >>> 3] |= bit;
    }
  }

  /** A probe of a slice where several buckets hold the key: copy, merge by (ts, id), visit. */
  private probeMerged(slice: Slice, lkey: Buffer, side: Side, keyGroup: number, h: number, key: Uint8Array,
    fromTs: number, toTs: number, visit: (e: Buffered) => boolean | void): void {
    const got: Copied[] = [];
    for (const part of slice.parts) {
      const f = part.filters[side];
      if (f === undefined || !f.has(h)) continue;
      const v = part.db.getBinaryFast(lkey);
      if (v === undefined) continue;
      const count = v.readUInt32LE(0);
      let ordinal = v.readUInt32LE(4);
      let p = VALUE_HEADER;
      for (let i = 0; i < count; i++, ordinal++) {
        const ts = v.readDoubleLE(p);
        if (ts > toTs) break;
        const idLen = v.readUInt16LE(p + 8);
        const payLen = v.readUInt32LE(p + 10);
        const o = p + EV_HEADER;
        p = o + idLen + payLen;
        if (ts < fromTs) continue;
        got.push({ ts, id: Buffer.from(v.subarray(o, o + idLen)), payload: Buffer.from(v.subarray(o + idLen, p)), part, ordinal });
      }
    }
    got.sort((a, b) => (a.ts !== b.ts ? (a.ts < b.ts ? -1 : 1) : Buffer.compare(a.id, b.id)));
    const view = this.view;
    for (const e of got) {
      const bits = e.part.bits;
      const bit = 1 << (e.ordinal & 7);
      view.side = side;
      view.keyGroup = keyGroup;
      view.key = key;
      view.ts = e.ts;
      view.id = e.id;
      view.payload = e.payload;
      view.joined = (bits[e.ordinal >>> 3] & bit) !== 0;
      if (visit(view) === true) bits[e.ordinal >>> 3] |= bit;
    }
  }

  /** Is (side, key, ts, id) in this sealed slice? With `mark`, also sets its joined bit. */
  private findSealed(slice: Slice, side: Side, keyGroup: number, h: number, key: Uint8Array, ts: number, id: Uint8Array,
    mark: boolean): boolean {
    let lkey: Buffer | undefined;
    for (const part of slice.parts) {
      const f = part.filters[side];
      if (f === undefined || !f.has(h)) continue;
      if (key.length > MAX_KEY) return false;
      if (lkey === undefined) lkey = this.lmdbKey(keyGroup, key, side);
      const v = part.db.getBinaryFast(lkey);
      if (v === undefined) continue;
      const count = v.readUInt32LE(0);
      const first = v.readUInt32LE(4);
      let p = VALUE_HEADER;
      for (let i = 0; i < count; i++) {
        const t = v.readDoubleLE(p);
        if (t > ts) break;
        const idLen = v.readUInt16LE(p + 8);
        const payLen = v.readUInt32LE(p + 10);
        const o = p + EV_HEADER;
        if (t === ts && cmpIdBytes(v, o, idLen, id) === 0) {
          if (mark) {
            const ord = first + i;
            part.bits[ord >>> 3] |= 1 << (ord & 7);
          }
          return true;
        }
        p = o + idLen + payLen;
      }
    }
    return false;
  }

  /** Drops a sealed bucket (reporting its entries first when asked). Returns the entries removed. */
  private dropPart(part: Part, onExpired: ((e: Buffered) => void) | undefined): number {
    this.dirty = true;
    if (onExpired !== undefined) {
      const view = this.view;
      const bits = part.bits;
      // getRange copies each key and value; the cursor is done before the database is dropped.
      for (const { key: k, value: v } of part.db.getRange({})) {
        const keyLen = k.readUInt16BE(2);
        view.side = k[4 + keyLen] as Side;
        view.keyGroup = k.readUInt16BE(0);
        view.key = k.subarray(4, 4 + keyLen);
        const count = v.readUInt32LE(0);
        let ordinal = v.readUInt32LE(4);
        let p = VALUE_HEADER;
        for (let i = 0; i < count; i++, ordinal++) {
          view.ts = v.readDoubleLE(p);
          const idLen = v.readUInt16LE(p + 8);
          const payLen = v.readUInt32LE(p + 10);
          const o = p + EV_HEADER;
          p = o + idLen + payLen;
          view.id = v.subarray(o, o + idLen);
          view.payload = v.subarray(o + idLen, p);
          view.joined = (bits[ordinal >>> 3] & (1 << (ordinal & 7))) !== 0;
          onExpired(view);
        }
      }
    }
    part.db.dropSync();
    this.releasedNames.push(part.name);
    this.entries -= part.count;
    this.byteCount -= part.bytes;
    this.sealedCount -= part.count;
    return part.count;
  }

  /** Reads a sealed slice back into memory and drops its databases (an insert reached it). */
  private unseal(slice: Slice): OpenSlice {
    this.dirty = true;
    const os = new OpenSlice();
    for (const part of slice.parts) {
      const cs = new ClassStat(part.c, os.classList.length);
      cs.count = part.count;
      cs.bytes = part.bytes;
      cs.maxExpire = part.maxExpire;
      os.classes.set(part.c, cs);
      os.classList.push(cs);
      for (const { key: k, value: v } of part.db.getRange({})) {
        const keyLen = k.readUInt16BE(2);
        const keyGroup = k.readUInt16BE(0);
        const side = k[4 + keyLen] as Side;
        const key = k.subarray(4, 4 + keyLen);
        const count = v.readUInt32LE(0);
        let ordinal = v.readUInt32LE(4);
        const h = v.readInt32LE(8);
        let s = os.find(h, keyGroup, key);
        if (s === NONE) s = os.add(h, keyGroup, key);
        let p = VALUE_HEADER;
        for (let i = 0; i < count; i++, ordinal++) {
          const ts = v.readDoubleLE(p);
          const idLen = v.readUInt16LE(p + 8);
          const len = EV_HEADER + idLen + v.readUInt32LE(p + 10);
          const ref = os.reserve(ENTRY_HEADER + len) + ENTRY_HEADER;
          const b = os.slab(ref);
          const o = ref & OFF_MASK;
          v.copy(b, o, p, p + len);
          b[o + E_JOINED] = (part.bits[ordinal >>> 3] & (1 << (ordinal & 7))) !== 0 ? 1 : 0;
          b.writeInt32LE(cs.idx, o + E_CLASS);
          os.linkAfter(side, s, os.floor(side, s, ts, b.subarray(o + EV_HEADER, o + EV_HEADER + idLen)), ref);
          p += len;
        }
      }
      part.db.dropSync();
      this.releasedNames.push(part.name);
      this.sealedCount -= part.count;
      if (part.maxExpire < this.minMaxExpire) this.minMaxExpire = part.maxExpire;
    }
    slice.parts = [];
    slice.open = os;
    return os;
  }

  private checkOpen(): void {
    if (this.closed) throw new JoineryError('E_STATE', 'state store is closed');
    if (this.poisoned) throw new JoineryError('E_STATE', 'bucket store: a batch failed after writing to LMDB; the store is unusable');
  }
}
