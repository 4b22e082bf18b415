/**
 * The bucket store's sealed buckets in LMDB (see bucket-store.ts, "LMDB layout"): what a sealed
 * bucket is (Part), what a slice is (open, or sealed into parts), and every read of a bucket
 * database: probes, identity look-ups, and full scans (expiry reports, unsealing). Writes happen in
 * sealer.ts; the `lmdb` package itself is reached only through lmdb.ts.
 */
import { cmpIdBytes, EMPTY, EV_HEADER, MAX_KEY, VALUE_HEADER } from './bucket-format.js';
import type { KeySet } from './key-index.js';
import type { Database } from './lmdb.js';
import { OpenSlice } from './open-slice.js';
import type { Buffered, Side } from './store.js';

/** A sealed bucket: one named LMDB database plus its in-memory filters and joined bits. */
export class Part {
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

/** The events of one time slice: in memory while open, then sealed into one part per bucket. */
export class Slice {
  open: OpenSlice | undefined; // undefined once sealed
  parts: Part[] = []; // sealed buckets
  constructor(readonly t: number, slots?: number) {
    this.open = new OpenSlice(slots);
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

/** Reads sealed buckets; holds the scratch key buffer and the one reused visitor view. */
export class SealedReader {
  private readonly kbuf = Buffer.allocUnsafeSlow(MAX_KEY + 16);
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0)); // over the buffer of the last value read
  readonly view: Buffered = {
    side: 0, keyGroup: 0, key: EMPTY, ts: 0, id: EMPTY, payload: EMPTY, joined: false,
  };

  /** [u16 keyGroup][u16 keyLen][key][u8 side] (big-endian) in a view of scratch memory. */
  lmdbKey(keyGroup: number, key: Uint8Array, side: Side): Buffer {
    const b = this.kbuf;
    b.writeUInt16BE(keyGroup, 0);
    b.writeUInt16BE(key.length, 2);
    b.set(key, 4);
    b[4 + key.length] = side;
    return b.subarray(0, 5 + key.length);
  }

  /** Visits the entries of one packed value with fromTs ≤ ts ≤ toTs. */
  visitValue(v: Buffer, part: Part, side: Side, keyGroup: number, key: Uint8Array, fromTs: number, toTs: number,
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
  probeMerged(slice: Slice, lkey: Buffer, side: Side, keyGroup: number, h: number, key: Uint8Array,
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
  findSealed(slice: Slice, side: Side, keyGroup: number, h: number, key: Uint8Array, ts: number, id: Uint8Array,
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


  /** Visits the entries of `side` with this key and fromTs ≤ ts ≤ toTs in a sealed slice, in (ts, id) order. */
  probeSlice(slice: Slice, side: Side, keyGroup: number, h: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    let hits = 0;
    let hit: Part | undefined;
    for (const p of slice.parts) {
      const f = p.filters[side];
      if (f !== undefined && f.has(h)) { hits++; hit = p; }
    }
    if (hits === 0 || key.length > MAX_KEY) return;
    const lkey = this.lmdbKey(keyGroup, key, side);
    if (hits === 1) {
      const v = hit!.db.getBinaryFast(lkey);
      if (v !== undefined) this.visitValue(v, hit!, side, keyGroup, key, fromTs, toTs, visit);
    } else {
      this.probeMerged(slice, lkey, side, keyGroup, h, key, fromTs, toTs, visit);
    }
  }

  /** Calls fn with every entry of a sealed bucket, in key then (ts, id) order (views valid during the call). */
  forEachEntry(part: Part, fn: (e: Buffered) => void): void {
    const view = this.view;
    const bits = part.bits;
    // getRange copies each key and value; the cursor is done before the caller drops the database.
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
        fn(view);
      }
    }
  }
}
