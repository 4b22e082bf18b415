/**
 * FlatBuffers codec for joinery's records (schema: src/codec/schema/joinery.fbs; generated classes
 * in src/codec/fb/, regenerated with `node tools/gen-flatbuffers.mjs`): reading, here. Encoding
 * through a flatbuffers.Builder is in flat-build.ts, the only file that imports 'flatbuffers' apart
 * from the generated code; the generator's builder-free writer is flat-writer.ts.
 *
 * Reading (the router's hot path) does not go through the generated accessors: they do no bounds
 * checking (a truncated buffer reads `undefined` bytes and yields silent zeros or NaN), so a
 * record from a file or a topic must be validated anyway, and validating and reading in the same
 * pass over the bytes is cheaper than validating and then reading again through a ByteBuffer. The
 * reader below checks the root offset, the vtable and every field it touches against the record's
 * extent [start, end) and allocates nothing per record except the output strings. Tests check it
 * against the generated accessors.
 *
 */
import { writeBytes, writeText } from './canonical.js';
import { extractedTexts, startsLikeJsonObject, type Extractor } from './json.js';

export type FlatTable = 'Impression' | 'Play';

/** Left records are Impressions, right records Plays. */
export const SIDE_TABLE: readonly [FlatTable, FlatTable] = ['Impression', 'Play'];

export interface ImpressionEvent {
  eventId: string;
  profileId: number;
  titleId: number;
  ts: number;
  row: number;
  position: number;
  device: string;
}

export interface PlayEvent {
  eventId: string;
  profileId: number;
  titleId: number;
  ts: number;
  durationMs: number;
  device: string;
}

// ---------------------------------------------------------------------------------------------
// Schema description (field order = schema order = vtable slot order = JSON key order)

const enum FT { String = 0, U32 = 1, U16 = 2, F64 = 3 }

interface FieldDesc {
  readonly name: string;
  /** Offset of the field's entry in the vtable: 4 + 2 × field index. */
  readonly slot: number;
  readonly type: FT;
}

function fields(list: Array<[string, FT]>): readonly FieldDesc[] {
  return list.map(([name, type], i) => ({ name, slot: 4 + 2 * i, type }));
}

const TABLES: Record<FlatTable, readonly FieldDesc[]> = {
  Impression: fields([
    ['eventId', FT.String], ['profileId', FT.U32], ['titleId', FT.U32], ['ts', FT.F64],
    ['row', FT.U16], ['position', FT.U16], ['device', FT.String],
  ]),
  Play: fields([
    ['eventId', FT.String], ['profileId', FT.U32], ['titleId', FT.U32], ['ts', FT.F64],
    ['durationMs', FT.U32], ['device', FT.String],
  ]),
};

const FIELD_SIZE = [4, 4, 2, 8]; // by FT: uoffset, u32, u16, f64

function tableFields(table: FlatTable): readonly FieldDesc[] {
  const t = TABLES[table];
  if (!t) throw new Error(`unknown FlatBuffers table "${String(table)}" (known: ${Object.keys(TABLES).join(', ')})`);
  return t;
}

/** Field names of a table, in schema order. */
export function flatFields(table: FlatTable): string[] {
  return tableFields(table).map((f) => f.name);
}

function fieldOf(table: FlatTable, name: string, role: string): FieldDesc {
  const f = tableFields(table).find((d) => d.name === name);
  if (!f) {
    throw new Error(`unknown ${role} field "${name}" in FlatBuffers table ${table}; its fields are: ${flatFields(table).join(', ')}`);
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Bounds-checked reading

const F64_SCRATCH = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64_SCRATCH.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function u16(b: Uint8Array, p: number): number {
  return b[p] | (b[p + 1] << 8);
}
function i32(b: Uint8Array, p: number): number {
  return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
}
function u32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}
function f64(b: Uint8Array, p: number): number {
  const s = F64_BYTES;
  if (LITTLE_ENDIAN) {
    s[0] = b[p]; s[1] = b[p + 1]; s[2] = b[p + 2]; s[3] = b[p + 3];
    s[4] = b[p + 4]; s[5] = b[p + 5]; s[6] = b[p + 6]; s[7] = b[p + 7];
  } else {
    for (let i = 0; i < 8; i++) s[i] = b[p + 7 - i];
  }
  return F64_SCRATCH[0];
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * A validated view of one table in [start, end). `open` checks the root offset and vtable;
 * `field` checks one field's inline extent; `stringAt` checks a string's extent and terminator.
 * All failures set `error` and return -1 / false; nothing throws, nothing allocates.
 */
class TableCursor {
  bytes: Uint8Array = new Uint8Array(0);
  start = 0;
  end = 0;
  table = 0;
  vtable = 0;
  vtLen = 0;
  objLen = 0;
  error = '';
  // set by stringAt
  strStart = 0;
  strEnd = 0;

  open(bytes: Uint8Array, start: number, end: number): boolean {
    this.bytes = bytes;
    this.start = start;
    this.end = end;
    if (!(start >= 0 && end <= bytes.length && start <= end)) {
      this.error = `record extent [${start}, ${end}) outside the buffer (${bytes.length} bytes)`;
      return false;
    }
    if (end - start < 12) {
      this.error = `FlatBuffer too short (${end - start} bytes)`;
      return false;
    }
    const root = start + u32(bytes, start);
    if (root < start + 4 || root + 4 > end) {
      this.error = 'FlatBuffer root offset out of bounds';
      return false;
    }
    const vt = root - i32(bytes, root);
    if (vt < start || vt + 4 > end) {
      this.error = 'FlatBuffer vtable offset out of bounds';
      return false;
    }
    const vtLen = u16(bytes, vt);
    const objLen = u16(bytes, vt + 2);
    if (vtLen < 4 || (vtLen & 1) !== 0 || vt + vtLen > end) {
      this.error = 'FlatBuffer vtable size invalid';
      return false;
    }
    if (objLen < 4 || root + objLen > end) {
      this.error = 'FlatBuffer table size invalid';
      return false;
    }
    this.table = root;
    this.vtable = vt;
    this.vtLen = vtLen;
    this.objLen = objLen;
    return true;
  }

  /** Absolute position of a field's inline value: 0 when absent (default), -1 when out of bounds. */
  field(slot: number, size: number): number {
    if (slot + 2 > this.vtLen) return 0;
    const fo = u16(this.bytes, this.vtable + slot);
    if (fo === 0) return 0;
    if (fo < 4 || fo + size > this.objLen) {
      this.error = 'FlatBuffer field offset out of bounds';
      return -1;
    }
    return this.table + fo;
  }

  /** Follow the uoffset at `pos` to a string; sets strStart/strEnd. */
  stringAt(pos: number): boolean {
    const b = this.bytes;
    const s = pos + u32(b, pos);
    if (s + 4 > this.end) {
      this.error = 'FlatBuffer string offset out of bounds';
      return false;
    }
    const len = u32(b, s);
    const e = s + 4 + len;
    if (e + 1 > this.end || b[e] !== 0) {
      this.error = 'FlatBuffer string length out of bounds';
      return false;
    }
    this.strStart = s + 4;
    this.strEnd = e;
    return true;
  }

  /** Read a scalar field's value (default 0 when absent); NaN with error set when out of bounds. */
  number(f: FieldDesc): number {
    const p = this.field(f.slot, FIELD_SIZE[f.type]);
    if (p < 0) return NaN;
    if (p === 0) return 0;
    const b = this.bytes;
    switch (f.type) {
      case FT.U32: return u32(b, p);
      case FT.U16: return u16(b, p);
      default: return f64(b, p);
    }
  }
}

const fcc = String.fromCharCode;

/**
 * JSON string literal for UTF-8 bytes [s, e). Short plain-ASCII strings (the common case: ids,
 * device names) are built with one fixed-arity String.fromCharCode call, about 2.5× faster than
 * TextDecoder + JSON.stringify or a per-character loop; anything else is decoded and escaped.
 */
function jsonStringText(b: Uint8Array, s: number, e: number): string {
  const n = e - s;
  if (n > 64) return JSON.stringify(utf8.decode(b.subarray(s, e)));
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(utf8.decode(b.subarray(s, e)));
  }
  switch (n) {
    case 0: return '""';
    case 1: return fcc(34, b[s], 34);
    case 2: return fcc(34, b[s], b[s + 1], 34);
    case 3: return fcc(34, b[s], b[s + 1], b[s + 2], 34);
    case 4: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], 34);
    case 5: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], 34);
    case 6: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], 34);
    case 7: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], 34);
    case 8: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], 34);
    case 9: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], 34);
    case 10: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], 34);
    case 11: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], 34);
    case 12: return fcc(34, b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11], 34);
    default: {
      let out = '"';
      let i = s;
      for (; i + 8 <= e; i += 8) out += fcc(b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
      for (; i < e; i++) out += fcc(b[i]);
      return out + '"';
    }
  }
}

function stringValue(b: Uint8Array, s: number, e: number): string {
  return utf8.decode(b.subarray(s, e));
}

/** Number text as JSON writes it (non-finite → null). */
export function numberText(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** Writes the canonical text of an integer 0 ≤ n < 2^32 (a u16/u32 field) at out[o…); returns the end (past out's length: nothing written). */
export function writeUint(out: Uint8Array, o: number, n: number): number {
  // Comparisons and `>>> 0` (n < 2^32): a loop of Math.floor divisions was the router's second cost.
  const digits = n < 100000
    ? (n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5)
    : (n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10);
  if (o + digits > out.length) return o + digits;
  for (let i = o + digits - 1; i > o; i--) { const q = (n / 10) >>> 0; out[i] = 48 + (n - q * 10); n = q; }
  out[o] = 48 + n;
  return o + digits;
}

/**
 * Reads key, time and id from one FlatBuffers record without decoding the rest. Same contract and
 * same canonical texts as the NDJSON extractor (src/codec/json.ts), so a stream joins identically
 * whichever format it arrives in.
 */
export class FlatExtractor implements Extractor {
  ts = 0;
  error = '';
  keyLen = 0;
  idLen = 0;
  readonly lead = 0;
  private readonly keyDescs: FieldDesc[];
  private readonly timeDesc: FieldDesc;
  private readonly idDesc: FieldDesc;
  /** The table's other fields: bounds-checked too, so flatToJson cannot fail on an accepted record. */
  private readonly restDescs: FieldDesc[];
  private readonly cur = new TableCursor();
  private readonly own = new Uint8Array(4096);

  constructor(readonly table: FlatTable, readonly keyFields: string[], readonly timeField: string, readonly idField: string) {
    tableFields(table);
    if (keyFields.length === 0) throw new Error('no key fields given');
    this.keyDescs = keyFields.map((k) => fieldOf(table, k, 'key'));
    this.timeDesc = fieldOf(table, timeField, 'time');
    this.idDesc = fieldOf(table, idField, 'id');
    const used = new Set([...keyFields, timeField, idField]);
    this.restDescs = tableFields(table).filter((f) => !used.has(f.name));
  }

  /** Key text of the last successful extract without an `out` of the caller's (tests, tools). */
  get keyText(): string { return extractedTexts(this, this.own).keyText; }
  get idText(): string { return extractedTexts(this, this.own).idText; }

  /** Writes one key/id field's canonical text at out[o…); -1 (error set) when it cannot. */
  private scalar(f: FieldDesc, role: string, out: Uint8Array, o: number): number {
    const c = this.cur;
    if (f.type === FT.String) {
      const p = c.field(f.slot, 4);
      if (p === 0) {
        c.error = `missing ${role} field "${f.name}"`;
        return -1;
      }
      if (p < 0 || !c.stringAt(p)) {
        c.error = `${role} field "${f.name}": ${c.error}`;
        return -1;
      }
      const b = c.bytes, s = c.strStart, e = c.strEnd;
      for (let i = s; i < e; i++) {
        const x = b[i];
        if (x < 0x20 || x > 0x7e || x === 0x22 || x === 0x5c) return writeText(out, o, JSON.stringify(stringValue(b, s, e)));
      }
      if (o + e - s + 2 > out.length) return o + e - s + 2;
      out[o] = 34;
      o = writeBytes(out, o + 1, b, s, e);
      out[o] = 34;
      return o + 1;
    }
    const n = c.number(f);
    if (c.error !== '') {
      c.error = `${role} field "${f.name}": ${c.error}`;
      return -1;
    }
    if (!Number.isFinite(n)) {
      c.error = `non-finite ${role} field "${f.name}"`;
      return -1;
    }
    return f.type === FT.F64 ? writeText(out, o, String(n)) : writeUint(out, o, n);
  }

  extract(bytes: Uint8Array, start: number, end: number, out: Uint8Array = this.own): boolean {
    let ok = false;
    try {
      ok = this.extractPlain(bytes, start, end, out) || this.extractUnsafe(bytes, start, end, out);
    } catch (e) {
      this.error = `malformed FlatBuffer: ${(e as Error).message}`;
    }
    if (!ok && startsLikeJsonObject(bytes, start, end)) this.error += ' (the record looks like JSON: pass --format json to read it as JSON; Kafka inputs are read as FlatBuffers unless told)';
    return ok;
  }

  /** The fast path's DataView, over the `bytes` it was made for (one per batch, not per record). */
  private dvBytes: Uint8Array | null = null;
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  /**
   * The common record in one pass through a DataView: every field it reads present and in bounds,
   * numbers finite, strings plain printable ASCII, room in `out`. Anything else returns false
   * without touching the extractor's results, and the general path (extractUnsafe) decides,
   * with its messages: the two agree on every record they both accept (tests hold them to it).
   * The general path's field descriptors, switch and error bookkeeping cost ~60 % of the router's
   * extraction on the benchmark's records.
   */
  private extractPlain(bytes: Uint8Array, start: number, end: number, out: Uint8Array): boolean {
    if (!(start >= 0 && end <= bytes.length && end - start >= 12)) return false;
    if (bytes !== this.dvBytes) { this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); this.dvBytes = bytes; }
    const dv = this.dv;
    const root = start + dv.getUint32(start, true);
    if (root < start + 4 || root + 4 > end) return false;
    const vt = root - dv.getInt32(root, true);
    if (vt < start || vt + 4 > end) return false;
    const vtLen = dv.getUint16(vt, true), objLen = dv.getUint16(vt + 2, true);
    if (vtLen < 4 || (vtLen & 1) !== 0 || vt + vtLen > end || objLen < 4 || root + objLen > end) return false;
    const keys = this.keyDescs;
    out[0] = 91; // [
    let o = 1;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) out[o++] = 44; // ,
      o = this.plainScalar(keys[i], bytes, dv, vt, vtLen, root, objLen, end, out, o);
      if (o < 0) return false;
    }
    out[o] = 93; // ]
    const keyLen = o + 1;
    const tf = this.timeDesc;
    if (tf.type === FT.String || tf.slot + 2 > vtLen) return false;
    const to = dv.getUint16(vt + tf.slot, true);
    if (to < 4 || to + FIELD_SIZE[tf.type] > objLen) return false;
    const tp = root + to;
    const ts = tf.type === FT.F64 ? dv.getFloat64(tp, true) : tf.type === FT.U32 ? dv.getUint32(tp, true) : dv.getUint16(tp, true);
    if (!Number.isFinite(ts)) return false;
    o = this.plainScalar(this.idDesc, bytes, dv, vt, vtLen, root, objLen, end, out, keyLen);
    if (o < 0) return false;
    const rest = this.restDescs;
    for (let i = 0; i < rest.length; i++) {
      const f = rest[i];
      if (f.slot + 2 > vtLen) continue; // absent: default
      const fo = dv.getUint16(vt + f.slot, true);
      if (fo === 0) continue;
      if (fo < 4 || fo + FIELD_SIZE[f.type] > objLen) return false;
      if (f.type === FT.String) {
        const p = root + fo;
        const s = p + dv.getUint32(p, true);
        if (s + 4 > end) return false;
        const e = s + 4 + dv.getUint32(s, true);
        if (e + 1 > end || bytes[e] !== 0) return false;
      }
    }
    this.keyLen = keyLen;
    this.idLen = o - keyLen;
    this.ts = ts;
    return true;
  }

  /** extractPlain's key/id field: its canonical text at out[o…), or -1 (the general path decides). */
  private plainScalar(f: FieldDesc, bytes: Uint8Array, dv: DataView<ArrayBufferLike>, vt: number, vtLen: number, root: number, objLen: number, end: number, out: Uint8Array, o: number): number {
    if (f.slot + 2 > vtLen) return -1;
    const fo = dv.getUint16(vt + f.slot, true);
    if (fo < 4 || fo + FIELD_SIZE[f.type] > objLen) return -1;
    const p = root + fo;
    if (f.type === FT.U32 || f.type === FT.U16) {
      if (o + 12 > out.length) return -1;
      return writeUint(out, o, f.type === FT.U32 ? dv.getUint32(p, true) : dv.getUint16(p, true));
    }
    if (f.type !== FT.String) return -1;
    const s = p + dv.getUint32(p, true);
    if (s + 4 > end) return -1;
    const b = s + 4, e = b + dv.getUint32(s, true);
    if (e + 1 > end || bytes[e] !== 0 || o + (e - b) + 3 > out.length) return -1;
    out[o++] = 34;
    for (let i = b; i < e; i++) {
      const x = bytes[i];
      if (x < 0x20 || x > 0x7e || x === 0x22 || x === 0x5c) return -1;
      out[o++] = x;
    }
    out[o] = 34;
    return o + 1;
  }

  private extractUnsafe(bytes: Uint8Array, start: number, end: number, out: Uint8Array): boolean {
    const c = this.cur;
    c.error = '';
    if (!c.open(bytes, start, end)) {
      this.error = c.error;
      return false;
    }
    const keys = this.keyDescs;
    if (out.length > 0) out[0] = 91; // [
    let o = 1;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) { if (o < out.length) out[o] = 44; o++; } // ,
      o = this.scalar(keys[i], 'key', out, o);
      if (o < 0) {
        this.error = c.error;
        return false;
      }
    }
    if (o < out.length) out[o] = 93; // ]
    const keyLen = o + 1;
    const tf = this.timeDesc;
    let ts: number;
    if (tf.type === FT.String) {
      const p = c.field(tf.slot, 4);
      if (p === 0) { this.error = `missing time field "${tf.name}"`; return false; }
      if (p < 0 || !c.stringAt(p)) { this.error = `time field "${tf.name}": ${c.error}`; return false; }
      const s = stringValue(bytes, c.strStart, c.strEnd);
      ts = s.trim() === '' ? NaN : Number(s);
      if (!Number.isFinite(ts)) { this.error = `non-numeric time field "${tf.name}": ${JSON.stringify(s)}`; return false; }
    } else {
      ts = c.number(tf);
      if (c.error !== '') { this.error = `time field "${tf.name}": ${c.error}`; return false; }
      if (!Number.isFinite(ts)) { this.error = `non-finite time field "${tf.name}": ${ts}`; return false; }
    }
    o = this.scalar(this.idDesc, 'id', out, keyLen);
    if (o < 0) {
      this.error = c.error;
      return false;
    }
    const rest = this.restDescs;
    for (let i = 0; i < rest.length; i++) {
      const f = rest[i];
      const p = c.field(f.slot, FIELD_SIZE[f.type]);
      if (p < 0 || (p > 0 && f.type === FT.String && !c.stringAt(p))) {
        this.error = `field "${f.name}": ${c.error}`;
        return false;
      }
    }
    this.keyLen = keyLen;
    this.idLen = o - keyLen;
    this.ts = ts;
    return true;
  }
}

const jsonCursor = new TableCursor();

/**
 * JSON object text of a whole record, keys in schema order, e.g.
 * `{"eventId":"i-1","profileId":7,"titleId":3,"ts":1767225600000,"row":2,"position":5,"device":"tv"}`.
 * Absent strings are null, absent numbers their default 0. Throws an Error on a malformed record.
 */
export function flatToJson(table: FlatTable, bytes: Uint8Array, start = 0, end = bytes.length): string {
  const descs = tableFields(table);
  const c = jsonCursor;
  c.error = '';
  if (!c.open(bytes, start, end)) throw new Error(`malformed ${table}: ${c.error}`);
  let out = '{';
  for (let i = 0; i < descs.length; i++) {
    const f = descs[i];
    let v: string;
    if (f.type === FT.String) {
      const p = c.field(f.slot, 4);
      if (p < 0) throw new Error(`malformed ${table}: ${c.error}`);
      if (p === 0) v = 'null';
      else {
        if (!c.stringAt(p)) throw new Error(`malformed ${table}: ${c.error}`);
        v = jsonStringText(bytes, c.strStart, c.strEnd);
      }
    } else {
      const n = c.number(f);
      if (c.error !== '') throw new Error(`malformed ${table}: ${c.error}`);
      v = numberText(n);
    }
    out += (i === 0 ? '"' : ',"') + f.name + '":' + v;
  }
  return out + '}';
}

/** `{"name":` / `,"name":` per field, by table, as bytes. */
const FIELD_PREFIXES: Record<FlatTable, Uint8Array[]> = {
  Impression: TABLES.Impression.map((f, i) => Uint8Array.from(Buffer.from((i === 0 ? '{"' : ',"') + f.name + '":', 'latin1'))),
  Play: TABLES.Play.map((f, i) => Uint8Array.from(Buffer.from((i === 0 ? '{"' : ',"') + f.name + '":', 'latin1'))),
};
const NULL_BYTES = Uint8Array.from([110, 117, 108, 108]);

/**
 * Upper bound of the bytes writeFlatJson writes for a record of `recordBytes` bytes: a string's
 * bytes can grow at most sixfold (a control byte becomes \u00XX), a number takes at most 25.
 */
export function flatJsonBound(table: FlatTable, recordBytes: number): number {
  return recordBytes * 6 + tableFields(table).length * 64 + 2;
}

/**
 * flatToJson's text written as UTF-8 straight into out[o…) (the output path: no intermediate
 * string); returns the position after it. `out` must hold flatJsonBound bytes from o. Throws an
 * Error on a malformed record, as flatToJson does.
 */
export function writeFlatJson(table: FlatTable, bytes: Uint8Array, start: number, end: number, out: Uint8Array, o: number): number {
  const descs = tableFields(table);
  const prefixes = FIELD_PREFIXES[table];
  const c = jsonCursor;
  c.error = '';
  if (!c.open(bytes, start, end)) throw new Error(`malformed ${table}: ${c.error}`);
  for (let i = 0; i < descs.length; i++) {
    const f = descs[i];
    o = writeBytes(out, o, prefixes[i], 0, prefixes[i].length);
    if (f.type === FT.String) {
      const p = c.field(f.slot, 4);
      if (p < 0) throw new Error(`malformed ${table}: ${c.error}`);
      if (p === 0) { o = writeBytes(out, o, NULL_BYTES, 0, 4); continue; }
      if (!c.stringAt(p)) throw new Error(`malformed ${table}: ${c.error}`);
      const s = c.strStart, e = c.strEnd;
      let plain = true;
      for (let j = s; j < e; j++) { const x = bytes[j]; if (x < 0x20 || x > 0x7e || x === 0x22 || x === 0x5c) { plain = false; break; } }
      if (plain) {
        out[o] = 34;
        o = writeBytes(out, o + 1, bytes, s, e);
        out[o++] = 34;
      } else {
        o = writeText(out, o, JSON.stringify(stringValue(bytes, s, e)));
      }
    } else {
      const n = c.number(f);
      if (c.error !== '') throw new Error(`malformed ${table}: ${c.error}`);
      o = f.type === FT.F64 ? writeText(out, o, numberText(n)) : writeUint(out, o, n);
    }
  }
  out[o] = 125; // }
  return o + 1;
}
