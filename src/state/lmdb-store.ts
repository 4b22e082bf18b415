/**
 * Off-heap join buffer in LMDB (lmdb-js). The only file that imports `lmdb`.
 *
 * One environment per store, one store per worker thread: LMDB has one write lock per environment,
 * so sharing one between threads serialises the writers (docs/architecture.md §1: one LMDB environment per worker).
 *
 * Tables (all keys big-endian so byte order = logical order):
 *
 *   buf  key   [u16 keyGroup][u16 keyLen][key bytes][u8 side][8 B ts, ordered][id bytes]
 *        value [u8 joined][u32 keyHash][f64 expireAtMs][payload]
 *   exp  key   [8 B minExpireAtMs, ordered][u32 seqHi][u32 seqLo]
 *        value a packed record of expiry items, each
 *              [f64 expireAtMs][u32 keyHash][u32 payloadLen][u16 bufKeyLen][buf key]
 *
 *  - Key group first, so a checkpoint can snapshot / restore a contiguous key-group range of `buf`
 *    (the value carries keyHash and expireAtMs, enough to rebuild `exp` and the filter from `buf`).
 *  - The key length before the key keeps a key that is a prefix of another key apart from it.
 *  - Identity (side, key, ts, id) *is* the buf key, so insert's duplicate check is the
 *    MDB_NOOVERWRITE flag of the one put it does anyway: no extra read.
 *  - A probe is one range read: [prefix|ts(from), prefix|ts(to)+1) over the other side's prefix.
 *
 * Why `exp` is packed (a measured deviation from one exp row per event): every lmdb-js put costs
 * ≥ 1.5 µs even when it appends, and a buf put lands on a random page (≈ 3.8 µs at 4096 puts per
 * transaction on this 2-vCPU VM). With one exp row per event, 1M inserts (50k Zipf keys, 120 B
 * payloads) ran at ~170k/s, against ~235k/s with no expiry table at all; packed, ~180–210k/s.
 * insert() appends the expiry item to an in-memory batch buffer; when the batch commits (or before
 * an expire() inside it) the items are sorted by expiry (counting sort on whole milliseconds) and
 * written as records of ≤ RECORD_BYTES (~30 items), each keyed by its smallest expireAt. expire(wm) reads the records whose key is
 * below wm (exclusive end), removes the items with expireAt < wm (and their buf entries), deletes
 * the record, and re-writes the rest of a record that straddles wm under its new minimum. Records are
 * disjoint time ranges per batch, so few straddle. Every item in `exp` is live: its buf entry exists.
 * The record size keeps values inline in a page (LMDB moves values ≳ 2 KB to overflow pages).
 *
 * keyHash must be a function of the key bytes (the router's stable hash): the filter and `exp` use it.
 *
 * Ordered f64: for a non-negative number flip the sign bit, for a negative one flip all bits; then
 * big-endian bytes compare like the numbers (-0 is normalised to 0 first; NaN is rejected).
 *
 * Probe filter: a counting filter per side (Uint32Array slots indexed by a mix of keyHash) counts
 * buffered entries; a probe whose slot is 0 returns without touching LMDB. Most impressions never
 * see a play, so most probes stop there. Counts are exact (incremented on insert, decremented on
 * expire, rebuilt from `exp` on open), so there are no false negatives; collisions only cost a
 * useless range read.
 *
 * Visitors and onExpired callbacks must not call back into the store (the join never does): joined
 * flags set by a probe are written after its range read completes.
 *
 * Durability: noSync. Commits are visible, not durable; a later checkpoint calls sync. A process
 * crash loses nothing committed (pages are in the page cache).
 *
 * No useWritemap, although it makes random inserts faster: with MDB_WRITEMAP, LMDB 0.9 aborts the
 * process in mdb_freelist_save() ("Assertion 'x <= dl[0].mid' failed") when a transaction frees
 * pages it dirtied itself — here, inserting events and expiring them all in one drain (reproduced;
 * the same assertion is lmdb-js issue #212 and why ModSecurity dropped MDB_WRITEMAP). A regression
 * test in test/contract/lmdb-store.test.ts runs that exact pattern.
 */
import * as fs from 'node:fs';
import { openEnv, type Database, type RootDatabase } from './lmdb.js';
import { JoineryError } from '../core/errors.js';
import type { Buffered, Side, StateStore } from './store.js';
import { mkdirs } from '../core/mkdirs.js';

export interface LmdbStoreOptions {
  /** Initial LMDB map size in bytes; lmdb-js grows it as needed. Default 256 MiB. */
  mapSizeBytes?: number;
  /** log2 of the probe filter's slots per side. Default 20 (2 × 4 MiB). */
  filterBits?: number;
}

const TS_BYTES = 8;
const VALUE_HEADER = 1 + 4 + 8; // joined, keyHash, expireAtMs
const ITEM_HEADER = 8 + 4 + 4 + 2; // expireAt, keyHash, payloadLen, bufKeyLen
const EXP_KEY = TS_BYTES + 8; // min expireAt, seq
const BUF_OVERHEAD = 2 + 2 + 1 + TS_BYTES; // keyGroup, keyLen, side, ts
const RECORD_BYTES = 1800; // stays below LMDB's inline node limit (~2 KB with 4 KiB pages)
const EXPIRE_CHUNK = 256; // exp records read per range query during expire
const MAX_KEY = 1978; // LMDB's max key size with 4 KiB pages (env.getMaxKeySize())
const MAX_KEY_PLUS_ID = MAX_KEY - BUF_OVERHEAD;

const NO_OVERWRITE = { noOverwrite: true } as const;
const EMPTY = Buffer.alloc(0);

/** Scratch buffer with the `start`/`end` marks lmdb-js honours on values: no per-put view. */
type MarkedBuffer = Buffer & { start?: number; end?: number };

function markedBuffer(size: number): MarkedBuffer {
  const b: MarkedBuffer = Buffer.allocUnsafeSlow(size); // own ArrayBuffer, byteOffset 0
  b.start = 0;
  b.end = 0;
  return b;
}

export class LmdbStore implements StateStore {
  /** Exact expiry: an entry goes exactly when the watermark passes its expireAtMs. */
  readonly expiryGranularityMs = 0;
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly buf: Database<Buffer, Buffer>;
  private readonly exp: Database<Buffer, Buffer>;
  private readonly filter: [Uint32Array, Uint32Array];
  private readonly filterShift: number;
  private entries = 0;
  private byteCount = 0;
  private depth = 0;
  private closed = false;
  private seq = 0; // next exp record sequence number

  // Scratch: buf key, exp key, values, ts codec.
  private readonly kbuf = Buffer.allocUnsafeSlow(MAX_KEY + 64);
  private readonly ekey = Buffer.allocUnsafeSlow(EXP_KEY); // exact length: passed to lmdb as is
  private vbuf = markedBuffer(4096);
  private readonly rbuf = markedBuffer(RECORD_BYTES + ITEM_HEADER + MAX_KEY + 64);
  private readonly f64 = new DataView(new ArrayBuffer(8));
  private readonly view: Buffered = {
    side: 0, keyGroup: 0, key: EMPTY, ts: 0, id: EMPTY, payload: EMPTY, joined: false,
  };
  // Entries a probe's visitor asked to mark joined; written after the range read finishes.
  private readonly pendingKeys: Buffer[] = [];
  private readonly pendingValues: Buffer[] = [];

  // Expiry items of this batch not yet written to `exp`: bytes in `arena`, item i at itemOff[i].
  private arena = Buffer.allocUnsafeSlow(256 * 1024);
  private arenaLen = 0;
  private items = 0;
  private itemOff = new Uint32Array(4096);
  private itemExp = new Float64Array(4096);
  private order = new Uint32Array(4096);
  private bucketCount = new Uint32Array(4096);

  private constructor(dir: string, options: LmdbStoreOptions) {
    const bits = options.filterBits ?? 20;
    if (!(Number.isInteger(bits) && bits >= 1 && bits <= 28)) {
      throw new JoineryError('E_STATE', `filterBits must be an integer in 1..28, got ${bits}`);
    }
    mkdirs(dir);
    this.root = openEnv({
      path: dir,
      noSubdir: false,
      noSync: true,
      useWritemap: false,
      keyEncoding: 'binary',
      encoding: 'binary',
      maxDbs: 4,
      mapSize: options.mapSizeBytes ?? 256 * 1024 * 1024,
    });
    this.buf = this.root.openDB<Buffer, Buffer>('buf', { keyEncoding: 'binary', encoding: 'binary' });
    this.exp = this.root.openDB<Buffer, Buffer>('exp', { keyEncoding: 'binary', encoding: 'binary' });
    this.filter = [new Uint32Array(1 << bits), new Uint32Array(1 << bits)];
    this.filterShift = 32 - bits;
    this.rebuildCounters();
  }

  /** Opens (creating if missing) the store in `dir`. Synchronous. Existing contents are kept. */
  static open(dir: string, options: LmdbStoreOptions = {}): LmdbStore {
    try {
      return new LmdbStore(dir, options);
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
      // Default flags: abortable, committed before returning. With noSync nothing is fsynced.
      return this.root.transactionSync(() => {
        const result = fn();
        this.flushExpiry();
        return result;
      });
    } catch (err) {
      // The transaction was aborted: forget this batch's expiry items and recount what is stored.
      this.arenaLen = 0;
      this.items = 0;
      this.rebuildCounters();
      throw err;
    } finally {
      this.depth--;
    }
  }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    if (this.depth === 0) return this.batch(() => this.insert(side, keyGroup, keyHash, key, ts, id, payload, joined, expireAtMs));
    if (Number.isNaN(expireAtMs)) throw new JoineryError('E_STATE', 'expireAtMs is NaN');
    const kbuf = this.kbuf;
    const klen = this.writeBufKey(kbuf, side, keyGroup, key, ts, id);

    const vlen = VALUE_HEADER + payload.length;
    let v = this.vbuf;
    if (v.length < vlen) v = this.vbuf = markedBuffer(Math.max(vlen, v.length * 2));
    v[0] = joined ? 1 : 0;
    v.writeUInt32BE(keyHash >>> 0, 1);
    v.writeDoubleBE(expireAtMs, 5);
    v.set(payload, VALUE_HEADER);
    v.end = vlen;
    // Inside a write transaction lmdb-js's putSync returns false when MDB_NOOVERWRITE finds the key
    // (its typings say void).
    if ((this.buf.putSync(kbuf.subarray(0, klen), v, NO_OVERWRITE) as unknown) === false) return false; // duplicate

    this.addExpiryItem(expireAtMs, keyHash, payload.length, kbuf, klen);
    this.filter[side][this.slot(keyHash)]++;
    this.entries++;
    this.byteCount += key.length + id.length + payload.length;
    return true;
  }

  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    this.checkOpen();
    if (this.filter[side][this.slot(keyHash)] === 0) return;
    if (!(fromTs <= toTs)) return;
    const kbuf = this.kbuf;
    const plen = this.writePrefix(kbuf, side, keyGroup, key);
    const start = Buffer.allocUnsafe(plen + TS_BYTES);
    kbuf.copy(start, 0, 0, plen);
    const end = Buffer.allocUnsafe(plen + TS_BYTES);
    kbuf.copy(end, 0, 0, plen);
    this.writeOrderedF64(start, plen, fromTs);
    this.writeOrderedF64(end, plen, toTs);
    // Exclusive end just past every id at ts = toTs: the 8 ts bytes + 1. The ordered encoding of a
    // non-NaN number is never all 0xFF, so the carry stays inside the 8 bytes.
    for (let i = plen + TS_BYTES - 1; i >= plen; i--) {
      if (end[i] !== 0xff) { end[i]++; break; }
      end[i] = 0;
    }

    const view = this.view;
    const pk = this.pendingKeys;
    const pv = this.pendingValues;
    const idStart = plen + TS_BYTES;
    // getRange copies each key and value into fresh Buffers, so they may be kept and modified.
    for (const { key: k, value: v } of this.buf.getRange({ start, end })) {
      view.side = side;
      view.keyGroup = keyGroup;
      view.key = key;
      view.ts = this.readOrderedF64(k, plen);
      view.id = k.subarray(idStart);
      view.payload = v.subarray(VALUE_HEADER);
      view.joined = v[0] === 1;
      if (visit(view) === true && v[0] !== 1) {
        pk.push(k);
        pv.push(v);
      }
    }
    if (pk.length > 0) {
      const write = () => {
        for (let i = 0; i < pk.length; i++) {
          pv[i][0] = 1;
          this.buf.putSync(pk[i], pv[i]);
        }
      };
      try {
        if (this.depth === 0) this.batch(write); else write();
      } finally {
        pk.length = 0;
        pv.length = 0;
      }
    }
  }

  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    if (this.depth === 0) return this.batch(() => this.markJoined(side, keyGroup, keyHash, key, ts, id));
    if (this.filter[side][this.slot(keyHash)] === 0) return;
    const klen = this.writeBufKey(this.kbuf, side, keyGroup, key, ts, id);
    const bufKey = this.kbuf.subarray(0, klen);
    const cur = this.buf.getBinaryFast(bufKey); // valid until the next get
    if (cur === undefined || cur[0] === 1) return;
    // getBinaryFast may return lmdb-js's reusable buffer, whose `length` property is overridden with
    // the value size while the typed array itself is larger: bound every view by `.length`.
    // (Buffer.copy trusts the overridden length and overruns.)
    const len = cur.length;
    let v = this.vbuf;
    if (v.length < len) v = this.vbuf = markedBuffer(Math.max(len, v.length * 2));
    v.set(cur.subarray(0, len), 0);
    v[0] = 1;
    v.end = len;
    this.buf.putSync(bufKey, v);
  }

  expire(watermarkMs: number, onExpired?: (e: Buffered) => void): number {
    if (this.depth === 0) return this.batch(() => this.expire(watermarkMs, onExpired));
    this.flushExpiry();
    if (Number.isNaN(watermarkMs) || watermarkMs === -Infinity || this.entries === 0) return 0;
    const end = Buffer.allocUnsafe(TS_BYTES);
    this.writeOrderedF64(end, 0, watermarkMs); // exclusive end: records whose minimum is < wm
    const view = this.view;
    const rbuf = this.rbuf;
    let removed = 0;
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    // Collect a chunk of records, then change the table: never write under an open cursor.
    for (;;) {
      for (const { key, value } of this.exp.getRange({ end, limit: EXPIRE_CHUNK })) {
        keys.push(key);
        values.push(value);
      }
      for (let r = 0; r < keys.length; r++) {
        const rec = values[r];
        let keepLen = 0;
        let keepMin = Infinity;
        for (let p = 0; p < rec.length;) {
          const expireAt = rec.readDoubleBE(p);
          const bufKeyLen = rec.readUInt16BE(p + 16);
          const itemLen = ITEM_HEADER + bufKeyLen;
          if (expireAt >= watermarkMs) {
            rec.copy(rbuf, keepLen, p, p + itemLen);
            keepLen += itemLen;
            if (expireAt < keepMin) keepMin = expireAt;
            p += itemLen;
            continue;
          }
          const keyHash = rec.readUInt32BE(p + 8);
          const payloadLen = rec.readUInt32BE(p + 12);
          const bufKey = rec.subarray(p + ITEM_HEADER, p + itemLen);
          const keyLen = bufKey.readUInt16BE(2);
          const side = bufKey[4 + keyLen] as Side;
          if (onExpired !== undefined) {
            const v = this.buf.getBinaryFast(bufKey);
            if (v === undefined) throw new JoineryError('E_STATE', 'lmdb store: expiry item without its buffered event');
            view.side = side;
            view.keyGroup = bufKey.readUInt16BE(0);
            view.key = bufKey.subarray(4, 4 + keyLen);
            view.ts = this.readOrderedF64(bufKey, 5 + keyLen);
            view.id = bufKey.subarray(BUF_OVERHEAD + keyLen);
            view.payload = v.subarray(VALUE_HEADER, v.length); // see markJoined on getBinaryFast's length
            view.joined = v[0] === 1;
            onExpired(view);
          }
          this.buf.removeSync(bufKey);
          this.filter[side][this.slot(keyHash)]--;
          this.entries--;
          this.byteCount -= bufKeyLen - BUF_OVERHEAD + payloadLen;
          removed++;
          p += itemLen;
        }
        this.exp.removeSync(keys[r]);
        if (keepLen > 0) {
          // The record straddled the watermark: keep its later items under their new minimum.
          const k = this.ekey;
          this.writeOrderedF64(k, 0, keepMin);
          keys[r].copy(k, TS_BYTES, TS_BYTES, EXP_KEY); // same sequence number
          rbuf.end = keepLen;
          this.exp.putSync(k, rbuf);
        }
      }
      const n = keys.length;
      keys.length = 0;
      values.length = 0;
      if (n < EXPIRE_CHUNK) break;
    }
    return removed;
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
    await this.root.close();
  }

  // ---- expiry items ----

  private addExpiryItem(expireAtMs: number, keyHash: number, payloadLen: number, kbuf: Buffer, klen: number): void {
    const i = this.items;
    if (i === this.itemOff.length) this.growItems();
    const need = ITEM_HEADER + klen;
    if (this.arenaLen + need > this.arena.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.arena.length * 2, this.arenaLen + need));
      this.arena.copy(bigger, 0, 0, this.arenaLen);
      this.arena = bigger;
    }
    const a = this.arena;
    const o = this.arenaLen;
    a.writeDoubleBE(expireAtMs, o);
    a.writeUInt32BE(keyHash >>> 0, o + 8);
    a.writeUInt32BE(payloadLen, o + 12);
    a.writeUInt16BE(klen, o + 16);
    kbuf.copy(a, o + ITEM_HEADER, 0, klen);
    this.itemOff[i] = o;
    this.itemExp[i] = expireAtMs;
    this.arenaLen = o + need;
    this.items = i + 1;
  }

  private growItems(): void {
    const n = this.itemOff.length * 2;
    const off = new Uint32Array(n); off.set(this.itemOff); this.itemOff = off;
    const exp = new Float64Array(n); exp.set(this.itemExp); this.itemExp = exp;
    this.order = new Uint32Array(n);
  }

  /** Writes the batch's expiry items to `exp` as records sorted by expiry. */
  private flushExpiry(): void {
    const n = this.items;
    if (n === 0) return;
    const order = this.sortItems(n);
    const a = this.arena;
    const off = this.itemOff;
    const exps = this.itemExp;
    const rbuf = this.rbuf;
    let len = 0;
    let min = Infinity;
    for (let j = 0; j < n; j++) {
      const i = order[j];
      const o = off[i];
      const itemLen = ITEM_HEADER + a.readUInt16BE(o + 16);
      if (len > 0 && len + itemLen > RECORD_BYTES) {
        this.putRecord(min, len);
        len = 0;
        min = Infinity;
      }
      a.copy(rbuf, len, o, o + itemLen);
      len += itemLen;
      if (exps[i] < min) min = exps[i];
    }
    if (len > 0) this.putRecord(min, len);
    this.items = 0;
    this.arenaLen = 0;
  }

  private putRecord(minExpireAt: number, len: number): void {
    const k = this.ekey;
    this.writeOrderedF64(k, 0, minExpireAt);
    const seq = this.seq++;
    k.writeUInt32BE(Math.floor(seq / 0x1_0000_0000) >>> 0, TS_BYTES);
    k.writeUInt32BE(seq >>> 0, TS_BYTES + 4);
    this.rbuf.end = len;
    this.exp.putSync(k, this.rbuf);
  }

  /**
   * Item indices ordered by expiry. Usually a counting sort on whole milliseconds (O(n + span)):
   * items in one millisecond stay unordered, which only means a record may start a fraction of a
   * millisecond early. Falls back to a comparison sort when the span is wide or unbounded.
   */
  private sortItems(n: number): Uint32Array {
    const exps = this.itemExp;
    const order = this.order;
    let lo = Infinity;
    let hi = -Infinity;
    let sorted = true;
    for (let i = 0; i < n; i++) {
      const e = exps[i];
      if (e < lo) lo = e;
      if (e > hi) hi = e;
      if (i > 0 && e < exps[i - 1]) sorted = false;
    }
    if (sorted) {
      for (let i = 0; i < n; i++) order[i] = i;
      return order;
    }
    const base = Math.floor(lo);
    const span = Math.floor(hi) - base + 1;
    if (!(span <= 4 * n + 4096)) { // also catches ±Infinity
      const idx = order.subarray(0, n);
      for (let i = 0; i < n; i++) idx[i] = i;
      idx.sort((x, y) => exps[x] - exps[y]);
      return order;
    }
    if (this.bucketCount.length < span + 1) this.bucketCount = new Uint32Array(Math.max(span + 1, this.bucketCount.length * 2));
    const cnt = this.bucketCount;
    cnt.fill(0, 0, span + 1);
    for (let i = 0; i < n; i++) cnt[Math.floor(exps[i]) - base + 1]++;
    for (let b = 1; b <= span; b++) cnt[b] += cnt[b - 1];
    for (let i = 0; i < n; i++) order[cnt[Math.floor(exps[i]) - base]++] = i;
    return order;
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.closed) throw new JoineryError('E_STATE', 'state store is closed');
  }

  private slot(keyHash: number): number {
    // Fibonacci hashing: key groups are usually keyHash mod K, so a worker's low hash bits are
    // concentrated; the multiply spreads them over the whole filter.
    return Math.imul(keyHash, 0x9e3779b1) >>> this.filterShift;
  }

  /** [keyGroup][keyLen][key][side] into b; returns its length. */
  private writePrefix(b: Buffer, side: Side, keyGroup: number, key: Uint8Array): number {
    if (key.length > MAX_KEY_PLUS_ID) {
      throw new JoineryError('E_STATE', `join key of ${key.length} bytes is too long for the LMDB store`);
    }
    b.writeUInt16BE(keyGroup, 0);
    b.writeUInt16BE(key.length, 2);
    b.set(key, 4);
    b[4 + key.length] = side;
    return 5 + key.length;
  }

  /** Full buf key into b; returns its length. */
  private writeBufKey(b: Buffer, side: Side, keyGroup: number, key: Uint8Array, ts: number, id: Uint8Array): number {
    if (key.length + id.length > MAX_KEY_PLUS_ID) {
      throw new JoineryError('E_STATE', `key (${key.length} B) + id (${id.length} B) too long for the LMDB store`);
    }
    const p = this.writePrefix(b, side, keyGroup, key);
    this.writeOrderedF64(b, p, ts);
    b.set(id, p + TS_BYTES);
    return p + TS_BYTES + id.length;
  }

  private writeOrderedF64(b: Buffer, off: number, x: number): void {
    if (Number.isNaN(x)) throw new JoineryError('E_STATE', 'time value is NaN');
    const dv = this.f64;
    dv.setFloat64(0, x + 0); // + 0 turns -0 into 0
    let hi = dv.getUint32(0);
    let lo = dv.getUint32(4);
    if (hi & 0x80000000) { hi = ~hi >>> 0; lo = ~lo >>> 0; } else hi = (hi | 0x80000000) >>> 0;
    b.writeUInt32BE(hi, off);
    b.writeUInt32BE(lo, off + 4);
  }

  private readOrderedF64(b: Uint8Array, off: number): number {
    let hi = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
    let lo = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
    if (hi & 0x80000000) hi = (hi & 0x7fffffff) >>> 0; else { hi = ~hi >>> 0; lo = ~lo >>> 0; }
    const dv = this.f64;
    dv.setUint32(0, hi);
    dv.setUint32(4, lo);
    return dv.getFloat64(0);
  }

  /** Recomputes count, bytes, the filter and the next record number from `exp` (on open, after an abort). */
  private rebuildCounters(): void {
    this.filter[0].fill(0);
    this.filter[1].fill(0);
    this.entries = 0;
    this.byteCount = 0;
    let maxSeq = -1;
    for (const { key, value: rec } of this.exp.getRange({})) {
      const seq = key.readUInt32BE(TS_BYTES) * 0x1_0000_0000 + key.readUInt32BE(TS_BYTES + 4);
      if (seq > maxSeq) maxSeq = seq;
      for (let p = 0; p < rec.length;) {
        const keyHash = rec.readUInt32BE(p + 8);
        const payloadLen = rec.readUInt32BE(p + 12);
        const bufKeyLen = rec.readUInt16BE(p + 16);
        const keyLen = rec.readUInt16BE(p + ITEM_HEADER + 2);
        const side = rec[p + ITEM_HEADER + 4 + keyLen] as Side;
        this.filter[side][this.slot(keyHash)]++;
        this.entries++;
        this.byteCount += bufKeyLen - BUF_OVERHEAD + payloadLen;
        p += ITEM_HEADER + bufKeyLen;
      }
    }
    if (maxSeq + 1 > this.seq) this.seq = maxSeq + 1;
  }
}
