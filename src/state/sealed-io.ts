/**
 * The bucket store's sealed buckets in LMDB (see bucket-store.ts, "LMDB layout"): what a sealed
 * bucket is (Part: runs of keys, one LMDB value each, see bucket-format.ts), what a slice is (open,
 * or sealed into parts), and every read of a bucket
 * database: probes, identity look-ups, and full scans (expiry reports, unsealing). Writes happen in
 * sealer.ts; the `lmdb` package itself is reached only through lmdb.ts.
 */
import { cmpIdBytes, EMPTY, EV_HEADER, MAX_KEY, REC_HASH, REC_KEY, REC_SIDE, ScratchViews, VALUE_HEADER, WORD_COPY_MAX } from './bucket-format.js';
import type { FrozenGroup } from './frozen.js';
import type { RunFilter } from './key-index.js';
import type { Database } from './lmdb.js';
import { OpenSlice } from './open-slice.js';
import type { Buffered, Side } from './store.js';

/** A sealed bucket: one named LMDB database plus its in-memory filters and joined bits. */
export class Part {
  /** False once dropped or read back into memory (a frozen group's table may still name it). */
  live = true;
  /** The frozen group whose table stands in for its filters (frozen.ts), once frozen. */
  group: FrozenGroup | undefined = undefined;
  constructor(
    readonly c: number,
    readonly name: string,
    readonly db: Database<Buffer, Buffer>,
    readonly count: number,
    readonly bytes: number,
    readonly maxExpire: number,
    public filters: [RunFilter | undefined, RunFilter | undefined],
    readonly bits: Uint8Array,
  ) {}
}

/** The events of one time slice: in memory while open, then sealed into one part per bucket. */
export class Slice {
  open: OpenSlice | undefined; // undefined once sealed
  parts: Part[] = []; // sealed buckets
  /** Its parts are in a frozen group and its keys are (or are leaving) out of the key index (frozen.ts). */
  frozen = false;
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

/** Calls fn with each (key, side) record of a run value: the key's packed value is v[vo, ve). */
export function forEachRecord(v: Buffer, fn: (side: Side, keyGroup: number, key: Buffer, vo: number, ve: number, keyHash: number) => void): void {
  for (let p = 0; p < v.length;) {
    const end = p + v.readUInt32LE(p);
    const keyLen = v.readUInt16BE(p + REC_KEY + 2);
    const k = p + REC_KEY + 4;
    fn(v[p + REC_SIDE] as Side, v.readUInt16BE(p + REC_KEY), v.subarray(k, k + keyLen), k + keyLen, end, v.readInt32LE(p + REC_HASH));
    p = end;
  }
}

/** Reads sealed buckets; holds the scratch key buffer and the one reused visitor view. */
export class SealedReader {
  private readonly kbuf = Buffer.allocUnsafeSlow(4);
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0)); // over the buffer of the last value read
  private dvOther: DataView<ArrayBufferLike> = this.dv; // the one before: plain and LZ4 buckets read into two buffers
  /** The id and payload of a visited entry (see ScratchViews). */
  private readonly matchViews = new ScratchViews(2);
  readonly view: Buffered = {
    side: 0, keyGroup: 0, key: EMPTY, ts: 0, id: EMPTY, payload: EMPTY, joined: false,
  };
  // Set by locate(): the key's packed value is found[vo, ve).
  private found: Buffer = EMPTY;
  private vo = 0;
  private ve = 0;

  /** The LMDB key of run r (scratch memory). */
  runKey(r: number): Buffer {
    this.kbuf.writeUInt32BE(r, 0);
    return this.kbuf;
  }

  /** A view over `ab`, the current one from now on; kept with the one before, to switch back without a new view. */
  private viewOf(ab: ArrayBufferLike): DataView<ArrayBufferLike> {
    const o = this.dvOther;
    this.dvOther = this.dv;
    return (this.dv = o.buffer === ab ? o : new DataView(ab));
  }

  /**
   * Finds the record of (side, keyGroup, key) in `part` (whose filter for `side` holds hash h):
   * reads the run(s) the filter names and scans their records. Sets found/vo/ve.
   */
  private locate(part: Part, side: Side, keyGroup: number, h: number, key: Uint8Array): boolean {
    const f = part.filters[side];
    if (f === undefined) return false;
    const first = f.run(h);
    if (first < 0) return false;
    const last = f.lastRun(h, first);
    const kl = key.length;
    for (let r = first; r <= last; r++) {
      const v = part.db.getBinaryFast(this.runKey(r));
      if (v === undefined) continue;
      const len = v.length; // getBinaryFast: the value's size, not the shared buffer's
      const base = v.byteOffset;
      let d = this.dv;
      if (d.buffer !== v.buffer) d = this.viewOf(v.buffer); // lmdb-js reuses one buffer for most values
      for (let p = 0; p < len;) {
        const end = p + d.getUint32(base + p, true);
        if (d.getInt32(base + p + REC_HASH, true) === h && v[p + REC_SIDE] === side && d.getUint16(base + p + REC_KEY) === keyGroup
          && d.getUint16(base + p + REC_KEY + 2) === kl) {
          const k = p + REC_KEY + 4;
          let i = 0;
          while (i < kl && v[k + i] === key[i]) i++;
          if (i === kl) {
            this.found = v;
            this.vo = k + kl;
            this.ve = end;
            return true;
          }
        }
        p = end;
      }
    }
    return false;
  }

  /** Visits the entries of one packed value (v[vo, ve)) with fromTs ≤ ts ≤ toTs. */
  visitValue(v: Buffer, vo: number, ve: number, part: Part, side: Side, keyGroup: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    const ab = v.buffer;
    const base = v.byteOffset + vo;
    const len = ve - vo;
    let d = this.dv;
    if (d.buffer !== ab) d = this.viewOf(ab); // lmdb-js reuses one buffer for most values
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
      view.id = idLen <= WORD_COPY_MAX ? this.matchViews.copy(0, d, base + o, idLen) : new Uint8Array(ab, base + o, idLen);
      view.payload = payLen <= WORD_COPY_MAX ? this.matchViews.copy(1, d, base + o + idLen, payLen) : new Uint8Array(ab, base + o + idLen, payLen);
      view.joined = (bits[ordinal >>> 3] & bit) !== 0;
      if (visit(view) === true) bits[ordinal >>> 3] |= bit;
    }
  }

  /** A probe of a slice where several buckets hold the key: copy, merge by (ts, id), visit. */
  probeMerged(slice: Slice, side: Side, keyGroup: number, h: number, key: Uint8Array,
    fromTs: number, toTs: number, visit: (e: Buffered) => boolean | void): void {
    const got: Copied[] = [];
    for (const part of slice.parts) {
      if (!this.locate(part, side, keyGroup, h, key)) continue;
      const v = this.found;
      const vo = this.vo;
      const count = v.readUInt32LE(vo);
      let ordinal = v.readUInt32LE(vo + 4);
      let p = vo + VALUE_HEADER;
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
    if (key.length > MAX_KEY) return false;
    for (const part of slice.parts) {
      if (!this.locate(part, side, keyGroup, h, key)) continue;
      const v = this.found;
      const vo = this.vo;
      const count = v.readUInt32LE(vo);
      const first = v.readUInt32LE(vo + 4);
      let p = vo + VALUE_HEADER;
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
    if (hits === 1) {
      if (this.locate(hit!, side, keyGroup, h, key)) this.visitValue(this.found, this.vo, this.ve, hit!, side, keyGroup, key, fromTs, toTs, visit);
    } else {
      this.probeMerged(slice, side, keyGroup, h, key, fromTs, toTs, visit);
    }
  }

  /** Calls fn with every entry of a sealed bucket, key after key (slot order), each in (ts, id) order (views valid during the call). */
  forEachEntry(part: Part, fn: (e: Buffered) => void): void {
    const view = this.view;
    const bits = part.bits;
    // getRange copies each key and value; the cursor is done before the caller drops the database.
    for (const { value: run } of part.db.getRange({})) {
      forEachRecord(run, (side, keyGroup, key, vo) => {
        const v = run;
        view.side = side;
        view.keyGroup = keyGroup;
        view.key = key;
        const count = v.readUInt32LE(vo);
        let ordinal = v.readUInt32LE(vo + 4);
        let p = vo + VALUE_HEADER;
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
      });
    }
  }
}
