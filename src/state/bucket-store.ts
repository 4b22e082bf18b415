/**
 * Time-bucketed join buffer (LSM-like): recent events in memory, older ones sealed into LMDB as one
 * sequential (incremental) write per bucket, whole buckets dropped on expiry. Built because every insert into
 * LmdbStore is a random-key B-tree put (~115k puts/s on the 2-core box) while appends run at
 * ~650k+ puts/s and one put here carries a run of keys with all their events in a bucket.
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
 *    written to LMDB, one fresh *named database* per bucket: slot after slot, their (key, side)
 *    records gathered into runs of up to 16 (within 2022 bytes), one `putSync(…, { append: true })`
 *    (MDB_APPEND) per run — sequential appends into a fresh tree.
 *    Measured (/tmp, 200 buckets × 10k keys, 240 B values): named DB per bucket 1.42M puts/s, 0.08 ms
 *    per dropSync; one shared DB with a bucket prefix 1.11M puts/s (append) and 13.8 ms per bucket
 *    to delete by range; getBinaryFast 670k/s vs 500k/s. Hence named DBs.
 *  - **Memory budget** (`memoryBytes`, the engine's --state-memory divided among workers): a
 *    complete slice is sealed only while the open slices hold more than the budget (arena, slot
 *    records and tables: OpenSlice.memoryBytes); the others stay open for life and expire from
 *    memory, where a probe is a table lookup instead of an LMDB read. Over the budget, the newest
 *    complete slices within half of it (the *recent share*, where matches of a stream that follows
 *    the other are) stay; of the others the *newest* is sealed first: it lives longest, so its seal
 *    frees memory for longest per byte written (Sealer.recentFrom says why both). Measured on
 *    `joinery bench` (2 workers, 8M events, the whole buffer within the budget): 2.57 → 2.09 µs of
 *    CPU per event; with half of it over the budget, ~2.6. A budget-driven seal is paced from the
 *    moment it became due (SealJob.startClock).
 *    Budget 0 (the store's default; tests): every slice is sealed once complete, oldest first.
 *  - **Incremental sealing**: a 30 s slice of a worker at 47k events/s holds ~1.2M entries in ~1M
 *    keys: 2–4 s of work (putSync alone costs ~1.2 µs). Written in one call, it stalled the worker
 *    for seconds (`joinery bench --source gen --rate 95000`: p99 latency 2.4–5.9 s). A *seal job*
 *    (SealJob) does it in bounded steps instead: per bucket append its records slot by slot (slot
 *    order: no sort, see seal-job.ts), then build its key filters. Work is counted in units of about one entry
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
 *    (sealed: `dropSync`, after iterating it when onExpired is given; open: marked dead,
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
 *   key    [u32 run number]                                           big-endian, so puts append
 *   value  the run's records back to back, in slot order, each
 *          [u32 recordLen][i32 keyHash][u8 side][u16 keyGroup BE][u16 keyLen BE][key bytes] then
 *          [u32 count][u32 firstOrdinal]                             little-endian header, then per
 *          event in (ts, id) order: [f64 ts][u16 idLen][u32 payloadLen][id][payload]   (little-endian)
 *
 * A run takes records while it stays within 2022 bytes (LMDB's largest inline value: a larger one
 * takes a 4 KiB overflow page of its own), up to 16 (bucket-format.ts): an LMDB put costs ~0.8 µs
 * CPU, so one per record (nearly one per event on realistic data) made it most of the seal. The
 * bucket's KeySet per side maps each key hash to its run (keys sharing a hash may be in several:
 * the set keeps the first and last), so a probe reads one value and scans its records.
 * (The two lengths precede both byte strings, unlike "ts, idLen, id, payloadLen, payload", so that
 * id + payload are one contiguous copy at seal time.) Entry i of a value has ordinal firstOrdinal + i
 * in its bucket; ordinals follow record order, so they are dense 0..count−1. The joined flag lives in the
 * bucket's in-memory bit array (set at seal from the open entries' flags, later by probes and
 * markJoined); the packed values never change after the seal.
 *
 * This store keeps nothing across close(): open() starts empty and deletes a previous environment
 * in `dir` (checkpoints are the change log's job: checkpoint/logged-store.ts).
 *
 * ## Key index (key-index.ts)
 *
 * One index over the live slices, open and sealed: per keyHash and side, the slices holding the key
 * on that side (a chain of occurrences sorted by slice). A probe costs one index lookup, then one
 * look-up per slice that holds its key, plus its matches; a key with nothing on the probed side
 * costs the one lookup. Before it, a probe looked its key up in every slice its range overlapped
 * (~120 per probe for a 1-hour window: 47–51 % of a worker's time). Keyed by hash (colliding keys
 * share a chain); de-duplication stays in the slice the entry's ts names. Occurrences come and go
 * with (key, side, slice), removals in bounded steps (Buckets.unindexPart, the seal job's phase).
 * Sealed slices of groups well behind the watermark leave it for one compact table per group
 * (frozen.ts). Why, and the alternatives measured: docs/architecture.md §5 "Key index".
 *
 * Modules, imports flowing one way: bucket-format (byte layouts) → key-index → open-slice (arena,
 * lists, slot table) → sealed-io (parts, LMDB reads) → seal-job (seal job state) → buckets
 * (shared state, index upkeep) → sealer (pacing, writes, unseal) → expiry → frozen → bucket-store
 * (the StateStore). lmdb.ts stays the only importer of the `lmdb` package.
 *
 * ## Costs and rules
 *
 *  - Probes visit the slices the key index names within [fromTs, toTs]: open slices by table
 *    lookup, sealed buckets by filter test and, on a hit, one getBinaryFast (decoded lazily, left when ts > toTs).
 *    A probe over W ms of sealed data costs up to ⌈W/bucketMs⌉+1 gets for a key present everywhere.
 *    Entries handed to visitors carry plain Uint8Array views (id, payload): cheaper to make than
 *    Buffer#subarray, and all the interface promises.
 *  - getBinaryFast returns lmdb-js's shared buffer (valid until the next read, `length` overridden
 *    with the value size): a value is fully visited before the next read; the rare multi-bucket
 *    merge copies. Visitors and onExpired callbacks must not call back into the store.
 *  - One environment per store, one store per worker thread (docs/architecture.md §1: one LMDB environment per worker); noSync, no
 *    useWritemap (see lmdb-store.ts: MDB_WRITEMAP aborts in mdb_freelist_save).
 *  - batch() is one LMDB write transaction; all LMDB writes (seal, drop, unseal) happen in expire(),
 *    maintain(), flushSeals() or insert() inside it (maintain() and flushSeals() open one if needed). A batch that throws after LMDB writes leaves memory and LMDB disagreeing:
 *    the store then refuses every call (E_STATE). A batch that throws without LMDB writes keeps its
 *    in-memory changes, like MemoryStore.
 *  - keyHash must be a function of the key bytes (the router's stable hash).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JoineryError } from '../core/errors.js';
import { E_CLASS, E_JOINED, ENTRY_HEADER, EV_HEADER, MAX_CLASSES, MAX_KEY, NONE, OFF_MASK, SLAB_SHIFT } from './bucket-format.js';
import { Buckets } from './buckets.js';
import { dropExpired } from './expiry.js';
import { Freezer } from './frozen.js';
import { openEnv } from './lmdb.js';
import { ClassStat } from './open-slice.js';
import { PendingLog } from './pending-log.js';
import { Sealer } from './sealer.js';
import type { Buffered, DeferredLog, DeferredSink, Side, StateStore } from './store.js';
import { mkdirs } from '../core/mkdirs.js';

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
  /**
   * Memory budget of the open slices in bytes (see "Memory budget" in the file header): complete
   * slices stay open, probed in memory, until the open slices exceed it; then complete ones are
   * sealed into LMDB (Sealer.nextToSeal). Default 0: every slice is sealed once complete, oldest first.
   */
  memoryBytes?: number;
  /**
   * Slices per frozen group (see frozen.ts): a sealed slice behind the watermark leaves the key
   * index for the compact table of its group of this many slices. Default 0: never (the
   * engine sets it from the window: about 16 groups per window).
   */
  freezeGroupSlices?: number;
  /** Sealed buckets are LZ4-compressed once the LMDB file reaches this size (buckets.ts compressNext): 0 always, default Infinity never. */
  lz4AboveBytes?: number;
}

export const DEFAULT_BUCKET_MS = 10_000;
const NO_SLICES: readonly number[] = [];
const DEFAULT_SEAL_SPREAD = 0.8;
const DEFAULT_SEAL_UNITS_PER_CALL = 4096;
const DEFAULT_SEAL_AT_ONCE_UNITS = 2048;
export class BucketStore implements StateStore {
  /** See the file header: buckets expire as a whole, at most 2·bucketMs after an entry's expireAtMs. */
  readonly expiryGranularityMs: number;
  readonly bucketMs: number;
  private readonly b: Buckets;
  private readonly sealer: Sealer;
  private readonly sealUnitsPerCall: number;
  private depth = 0;
  private closed = false;
  private poisoned = false;

  private constructor(dir: string, options: BucketStoreOptions) {
    const bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS;
    if (!(Number.isFinite(bucketMs) && bucketMs > 0)) {
      throw new JoineryError('E_STATE', `bucketMs must be a positive number, got ${bucketMs}`);
    }
    this.bucketMs = bucketMs;
    this.expiryGranularityMs = 2 * bucketMs;
    const sealSpread = options.sealSpread ?? DEFAULT_SEAL_SPREAD;
    const sealUnitsPerCall = this.sealUnitsPerCall = options.sealUnitsPerCall ?? DEFAULT_SEAL_UNITS_PER_CALL;
    const sealAtOnceUnits = options.sealAtOnceUnits ?? DEFAULT_SEAL_AT_ONCE_UNITS;
    const memoryBytes = options.memoryBytes ?? 0;
    const freezeGroupSlices = options.freezeGroupSlices ?? 0;
    if (!(sealSpread >= 0) || !(sealUnitsPerCall > 0) || !(sealAtOnceUnits >= 0) || !(memoryBytes >= 0)) {
      throw new JoineryError('E_STATE', 'sealSpread, sealAtOnceUnits and memoryBytes must be ≥ 0, sealUnitsPerCall > 0');
    }
    if (!(Number.isInteger(freezeGroupSlices) && freezeGroupSlices >= 0)) {
      throw new JoineryError('E_STATE', `freezeGroupSlices must be a whole number ≥ 0, got ${freezeGroupSlices}`);
    }
    mkdirs(dir);
    // Nothing survives a reopen (open slices were in memory): start from an empty environment.
    for (const f of ['data.mdb', 'lock.mdb']) fs.rmSync(path.join(dir, f), { force: true });
    const lz4AboveBytes = options.lz4AboveBytes ?? Infinity;
    if (!(lz4AboveBytes >= 0)) throw new JoineryError('E_STATE', `lz4AboveBytes must be ≥ 0 (Infinity: never), got ${lz4AboveBytes}`);
    const root = openEnv({
      path: dir,
      noSubdir: false,
      noSync: true, useWritemap: false, keyEncoding: 'binary', encoding: 'binary',
      maxDbs: options.maxDbs ?? 10_000,
      mapSize: options.mapSizeBytes ?? 256 * 1024 * 1024,
    }, lz4AboveBytes !== Infinity);
    this.b = new Buckets(bucketMs, root, lz4AboveBytes, path.join(dir, 'data.mdb'));
    if (freezeGroupSlices > 0) this.b.freezer = new Freezer(this.b, freezeGroupSlices, memoryBytes);
    this.sealer = new Sealer(this.b, { sealSpread, sealUnitsPerCall, sealAtOnceUnits, memoryBytes });
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
    const b = this.b;
    this.depth++;
    try {
      return b.root.transactionSync(fn);
    } catch (err) {
      if (b.dirty) this.poisoned = true;
      throw err;
    } finally {
      this.depth--;
      b.dirty = false;
      if (!this.poisoned) for (const n of b.releasedNames) b.freeNames.push(n);
      b.releasedNames.length = 0;
    }
  }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    if (this.depth === 0) return this.insertInBatch(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs);
    if (Number.isNaN(ts)) throw new JoineryError('E_STATE', 'event time is NaN');
    if (Number.isNaN(expireAtMs)) throw new JoineryError('E_STATE', 'expireAtMs is NaN');
    if (key.length > MAX_KEY) throw new JoineryError('E_STATE', `join key of ${key.length} bytes is too long for the bucket store`);
    if (id.length > 0xffff) throw new JoineryError('E_STATE', `event id of ${id.length} bytes is too long for the bucket store`);
    if (!(keyGroup >= 0 && keyGroup <= 0xffff)) throw new JoineryError('E_STATE', `key group ${keyGroup} out of range`);
    const b = this.b;
    ts += 0; // -0 → 0
    if (ts > b.tsMax) b.tsMax = ts;
    const h = keyHash | 0;
    const t = Math.floor(ts / this.bucketMs);
    let slice = b.lastSlice;
    if (slice === undefined || slice.t !== t) {
      slice = b.slices.get(t);
      if (slice === undefined) slice = b.addSlice(t);
      b.lastSlice = slice;
    }
    // De-duplication: an identity can only be in the slice its ts names.
    let os = slice.open;
    if (os === undefined) {
      if (b.reader.findSealed(slice, side, keyGroup, h, key, ts, id, false)) return false;
      os = this.sealer.unseal(slice);
    }

    let s = os.find(h, keyGroup, key);
    if (s === NONE) {
      if (b.job?.os === os) this.sealer.abandonSeal(b.job);
      s = os.add(h, keyGroup, key);
    }
    // Position: after the last entry ≤ (ts, id); usually the tail.
    let after = os.tail(side, s);
    const first = after === NONE; // the key's first entry on this side of the slice
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
    if (b.job?.os === os) this.sealer.abandonSeal(b.job);

    let c = Math.floor((expireAtMs - ts) / this.bucketMs);
    if (Number.isNaN(c)) c = 0; // ∞ − ∞
    let cs = os.lastCls;
    if (cs === undefined || cs.c !== c) {
      cs = os.classes.get(c);
      if (cs === undefined) {
        if (os.classList.length >= MAX_CLASSES) throw new JoineryError('E_STATE', `bucket store: more than ${MAX_CLASSES} expiry buckets in one slice (expireAt − ts spans too many buckets of ${this.bucketMs} ms)`);
        cs = new ClassStat(c, os.classList.length);
        os.classes.set(c, cs);
        os.classList.push(cs);
      }
      os.lastCls = cs;
    }

    const ref = os.reserve(ENTRY_HEADER + EV_HEADER + id.length + payload.length) + ENTRY_HEADER;
    const buf = os.slab(ref);
    const d = os.dvs[ref >>> SLAB_SHIFT];
    const o = ref & OFF_MASK;
    const pl = b.pending;
    d.setInt32(o + E_CLASS, pl === undefined ? cs.idx : cs.idx | (pl.partition << 16), true); // E_PARTITION is the upper half
    buf[o + E_JOINED] = joined ? 1 : 0;
    d.setFloat64(o, ts, true);
    d.setUint16(o + 8, id.length, true);
    d.setUint32(o + 10, payload.length, true);
    const idLen = id.length;
    // Ids are short: a byte loop beats set's native call (~50 ns) below about 24 bytes.
    if (idLen <= 24) for (let i = 0; i < idLen; i++) buf[o + EV_HEADER + i] = id[i];
    else buf.set(id, o + EV_HEADER);
    buf.set(payload, o + EV_HEADER + idLen);
    if (dead !== NONE) os.unlink(side, s, dead);
    os.linkAfter(side, s, after, ref);
    if (first) b.index.add(h, side, t, s);
    if (pl !== undefined && pl.sides[side]) os.notePending(ref, s, side);

    const bytes = key.length + id.length + payload.length;
    cs.count++;
    cs.bytes += bytes;
    if (expireAtMs > cs.maxExpire) cs.maxExpire = expireAtMs;
    if (expireAtMs < b.minMaxExpire) b.minMaxExpire = expireAtMs;
    b.entries++;
    b.byteCount += bytes;
    return true;
  }

  /**
   * insert() outside a batch. Its own method: a closure over insert()'s parameters made them
   * context-allocated, so every insert allocated a context (~130 bytes, the worker's third-largest
   * allocation per event) even inside a batch, where the closure is never made.
   */
  private insertInBatch(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    return this.batch(() => this.insert(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs));
  }

  /**
   * Loads, ahead of time, the memory an insert and probe of (keyHash, ts) will read first: the key
   * index's table position and the open slice's. Returns a value to keep (so the loads stay).
   */
  prefetch(keyHash: number, ts: number): number {
    const h = keyHash | 0;
    const b = this.b;
    let x = b.index.preload(h);
    const slice = b.lastSlice;
    if (slice !== undefined && slice.open !== undefined && slice.t === Math.floor(ts / this.bucketMs)) x ^= slice.open.preload(h);
    return x;
  }

  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    this.checkOpen();
    const b = this.b;
    if (!(fromTs <= toTs) || b.entries === 0) return;
    const h = keyHash | 0;
    const index = b.index;
    let o = index.head(h, side);
    const fz = b.freezer;
    const frozen = fz !== undefined && fz.groups.length > 0;
    if (o === NONE && !frozen) return; // the common case: nothing on this side for this key
    const tFrom = Math.floor(fromTs / this.bucketMs);
    const tTo = Math.floor(toTs / this.bucketMs);
    // The chain is newest first: find its oldest slice in range, then visit forward in time.
    let first = NONE;
    for (; o !== NONE; o = index.older(o)) {
      const t = index.sliceOf(o);
      if (t < tFrom) break;
      if (t <= tTo) first = o;
    }
    // Frozen slices holding the key (frozen.ts), ascending, merged with the chain by slice.
    const fts = frozen ? fz!.slicesOf(h, side, tFrom, tTo) : NO_SLICES;
    if (first === NONE && fts.length === 0) return;
    const slices = b.slices;
    const view = b.reader.view;
    let k = 0;
    for (o = first; o !== NONE; o = index.newer(o)) {
      const t = index.sliceOf(o);
      if (t > tTo) break;
      while (k < fts.length && fts[k] < t) fz!.probeSlice(fts[k++], side, keyGroup, h, key, fromTs, toTs, visit);
      const slice = slices.get(t);
      if (slice === undefined || slice.frozen) continue; // its last bucket went (its keys are still leaving the index: Buckets.unindexPart), or frozen
      b.probedSlices++;
      if (slice.open !== undefined) slice.open.probe(view, side, keyGroup, h, key, fromTs, toTs, visit, index.slotOf(o));
      else b.reader.probeSlice(slice, side, keyGroup, h, key, fromTs, toTs, visit);
    }
    while (k < fts.length) fz!.probeSlice(fts[k++], side, keyGroup, h, key, fromTs, toTs, visit);
  }

  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.checkOpen();
    if (Number.isNaN(ts)) return;
    ts += 0;
    const h = keyHash | 0;
    const slice = this.b.slices.get(Math.floor(ts / this.bucketMs));
    if (slice === undefined) return;
    const os = slice.open;
    if (os === undefined) {
      this.b.reader.findSealed(slice, side, keyGroup, h, key, ts, id, true);
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
    const b = this.b;
    if (watermarkMs > b.wmMax) {
      b.wmMax = watermarkMs;
      b.tsMaxAtWm = b.tsMax;
    }
    // 1. Drop every bucket whose entries all have expireAt < watermark.
    const removed = dropExpired(b, this.sealer, watermarkMs, onExpired);
    this.upkeep(false);
    return removed;
  }

  /**
   * What expire() does besides dropping, each a bounded amount at a time: key index removals of
   * dropped or frozen buckets (more when several wait), seals of the open slices no later insert
   * can reach, freezing (frozen.ts). Paced by event time in expire(); `restoring`: unpaced and in
   * larger steps, since a restore inserts far faster than event time moves and must not outrun it.
   */
  private upkeep(restoring: boolean): void {
    const b = this.b;
    const units = this.sealUnitsPerCall;
    if (b.pendingUnindex() > 0) b.unindexWork(units * (restoring ? 8 : Math.min(b.pendingUnindex(), 8)));
    if (restoring) this.sealer.sealWork(units * 4, false, false); else this.sealer.sealWork(units, true, true);
    b.freezer?.work(units);
  }

  /**
   * Does the sealing work that is due (see Sealer.sealWork), at most `budgetEntries` units (≈ one
   * entry written each; a unit is 1–2 µs on the 2-vCPU box). Optional for callers, who may call it
   * once per ring drain: expire() alone keeps pace, in larger steps (it runs once per watermark);
   * this spreads the same work over more, smaller steps. Opens its own batch when called outside one.
   */
  maintain(budgetEntries: number): void {
    this.checkOpen();
    if (!(budgetEntries > 0) || !this.sealer.sealDue()) return; // no transaction for nothing
    if (this.depth === 0) {
      this.batch(() => this.maintain(budgetEntries));
      return;
    }
    this.sealer.sealWork(budgetEntries, true, false);
  }

  deferLogging(sides: readonly [boolean, boolean], sink: DeferredSink): DeferredLog {
    this.checkOpen();
    return (this.b.pending = new PendingLog(this.b, sides, sink));
  }

  /** Seals every complete slice now, whatever the memory budget and however long it takes (tests). */
  flushSeals(): void {
    this.checkOpen();
    if (this.b.job === undefined && this.sealer.nextToSeal(true) === undefined) return;
    if (this.depth === 0) {
      this.batch(() => this.flushSeals());
      return;
    }
    this.sealer.sealWork(Infinity, false, false, true);
  }

  count(): number {
    return this.b.entries;
  }

  bytes(): number {
    return this.b.byteCount;
  }

  memoryBytes(): number {
    return this.b.openMemoryBytes();
  }

  restoreHorizon(horizonMs: number): void {
    this.checkOpen();
    const b = this.b;
    if (this.depth === 0 || !(horizonMs > b.wmMax)) return;
    b.wmMax = horizonMs;
    b.tsMaxAtWm = b.tsMax;
    this.upkeep(true);
  }

  indexMemoryBytes(): number {
    const b = this.b;
    let n = b.index.heapBytes() + (b.freezer?.heapBytes() ?? 0);
    for (const s of b.order) for (const p of s.parts) n += (p.filters[0]?.size() ?? 0) + (p.filters[1]?.size() ?? 0) + p.bits.byteLength;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const b = this.b;
    b.job = undefined;
    b.slices.clear();
    b.order.length = 0;
    b.lastSlice = undefined;
    await b.root.close();
  }

  /** Introspection for tests and metrics. */
  stats(): {
    openSlices: number; sealedSlices: number; sealedBuckets: number; openEntries: number; sealedEntries: number;
    lmdbDatabases: number; lmdbRecords: number; heapFilterBytes: number; openArenaBytes: number;
    /** Pages of the sealed bucket databases: B-tree leaves and overflow pages (values too large for a leaf). */
    lmdbLeafPages: number; lmdbOverflowPages: number;
    /** Complete slices to seal (still open, served from memory), the one being sealed included: beyond the memory budget only. */
    pendingSeals: number;
    /** Memory of the open slices (what the memory budget counts). */
    openMemoryBytes: number;
    /** Key index: hashes, (hash, side, slice) occurrences, heap bytes. */
    indexKeys: number; indexOccurrences: number; indexHeapBytes: number;
    /** Slices visited by probes since the store opened (the index sends a probe only to slices holding its key). */
    probedSlices: number;
    /** Frozen groups (frozen.ts): groups, their sealed slices out of the key index, their tables' bytes. */
    frozenGroups: number; frozenSlices: number; frozenHeapBytes: number;
    /** Whether new sealed buckets are LZ4-compressed (lz4AboveBytes). */
    lz4: boolean;
  } {
    this.checkOpen();
    const b = this.b;
    let openSlices = 0, sealedSlices = 0, sealedBuckets = 0, lmdbRecords = 0, heapFilterBytes = 0, openArenaBytes = 0;
    let lmdbLeafPages = 0, lmdbOverflowPages = 0, frozenSlices = 0;
    for (const s of b.order) {
      if (s.frozen) frozenSlices++;
      if (s.open !== undefined) {
        openSlices++;
        for (const slab of s.open.slabs) openArenaBytes += slab.length;
        continue;
      }
      sealedSlices++;
      for (const p of s.parts) {
        sealedBuckets++;
        const ds = p.db.getStats() as { entryCount: number; treeLeafPageCount: number; overflowPages: number };
        lmdbRecords += ds.entryCount;
        lmdbLeafPages += ds.treeLeafPageCount;
        lmdbOverflowPages += ds.overflowPages;
        heapFilterBytes += (p.filters[0]?.size() ?? 0) + (p.filters[1]?.size() ?? 0) + p.bits.byteLength;
      }
    }
    const lmdbDatabases = (b.root.getStats() as { entryCount: number }).entryCount;
    return {
      openSlices, sealedSlices, sealedBuckets, openEntries: b.entries - b.sealedCount, sealedEntries: b.sealedCount,
      lmdbDatabases, lmdbRecords, lmdbLeafPages, lmdbOverflowPages, heapFilterBytes, openArenaBytes, pendingSeals: this.sealer.pendingSeals(), openMemoryBytes: b.openMemoryBytes(),
      indexKeys: b.index.size(), indexOccurrences: b.index.occurrences(), indexHeapBytes: b.index.heapBytes(),
      probedSlices: b.probedSlices,
      frozenGroups: b.freezer?.groups.length ?? 0, frozenSlices, frozenHeapBytes: b.freezer?.heapBytes() ?? 0, lz4: b.lz4,
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new JoineryError('E_STATE', 'state store is closed');
    if (this.poisoned) throw new JoineryError('E_STATE', 'bucket store: a batch failed after writing to LMDB; the store is unusable');
  }
}
