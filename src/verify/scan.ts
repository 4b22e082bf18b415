/**
 * The first pass of `joinery verify`: read records, extract what the comparison needs with the
 * router's extractors and acceptance rules (so that an event counts here exactly when `run` would
 * join it), and append them, partitioned by key hash, to spill records (spill.ts). Input events
 * keep their position in their chunk and the newest time of the chunk before them, from which the
 * join pass tells the events that may have been late in the run. Output rows keep their canonical
 * key and ids (the extractor's own routine re-canonicalises the ids, so `1.50` written by another
 * tool still equals the engine's `1.5`).
 */
import { FlatExtractor } from '../codec/flat.js';
import { JsonFieldScanner, VT } from '../codec/json-scan.js';
import { JsonExtractor, writeCanonicalScalar, type Extractor } from '../codec/json.js';
import { JoineryError } from '../core/errors.js';
import { FileSource } from '../source/file.js';
import { EVENT_HEADER_BYTES } from '../ring/frame.js';
import type { Side } from '../state/store.js';
import { FastRow } from './fast-row.js';
import { hashBytes } from './keys.js';
import { EV_HEAD, NULL_LEN, padded, partitionOf, ROW_HEAD, type PartitionWriter } from './spill.js';

/** The router's limits (src/router/router.ts): an event beyond them is a dead letter, never joined. */
const MAX_TIME_MS = 8.64e15;
const MAX_KEY_ID_BYTES = 1500;
export interface SideFields {
  key: string[]; time: string; id: string;
  /** The largest event the run's rings take (ring.ts maxFrameBytesFor(--ring-size)): the router dead-letters larger ones. */
  maxEventBytes: number;
}
/** Record bytes per Parquet row (an event's key and id, about as from NDJSON). */
export const RECORD_BYTES_PER_ROW = 64;

/** A source's format: Parquet is read by ParquetSource, whose batches bring their own extractor. */
export type Format = 'json' | 'flatbuffers' | 'parquet';

export function extractorFor(side: Side, format: Format, f: SideFields): Extractor {
  // Parquet rows reach the router as JSON text: their key, id and time bytes are the JSON extractor's
  if (format === 'json' || format === 'parquet') return new JsonExtractor(f.key, f.time, f.id);
  try {
    return new FlatExtractor(side === 0 ? 'Impression' : 'Play', f.key, f.time, f.id);
  } catch (e) {
    throw new JoineryError('E_USAGE', `--${side === 0 ? 'left' : 'right'} (FlatBuffers): ${(e as Error).message}`);
  }
}

/** What one chunk (a byte range of a file, or a Kafka partition) held. */
export interface ChunkStats {
  chunk: number;
  /** Records (lines, blank ones included; or Kafka records) the chunk spans. */
  positions: number;
  read: number; dead: number;
  /** Newest accepted event time of the chunk (−∞ if none). */
  maxTs: number;
  rows: number; unreadable: number;
  unreadableExamples: Array<{ chunk: number; pos: number; reason: string }>;
}

export function newStats(chunk: number): ChunkStats {
  return { chunk, positions: 0, read: 0, dead: 0, maxTs: -Infinity, rows: 0, unreadable: 0, unreadableExamples: [] };
}

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

export class EventScanner {
  private readonly scratchView = new Uint8Array(64 * 1024);
  private readonly ex: Extractor;

  private readonly maxEventBytes: number;

  constructor(side: Side, format: Format, fields: SideFields, private readonly w: PartitionWriter, private readonly bits: number) {
    this.ex = extractorFor(side, format, fields);
    this.maxEventBytes = fields.maxEventBytes;
  }

  /**
   * One record bytes[start, end) at position pos of chunk st.chunk (blank lines already skipped);
   * `ex`: the batch's own extractor (Parquet), else the format's.
   */
  record(bytes: Uint8Array, start: number, end: number, pos: number, st: ChunkStats, ex: Extractor = this.ex): void {
    st.read++;
    const scratch = this.scratchView;
    if (!ex.extract(bytes, start, end, scratch)) { st.dead++; return; }
    const ts = ex.ts, keyLen = ex.keyLen, idLen = ex.idLen;
    if (ts > MAX_TIME_MS || ts < -MAX_TIME_MS || keyLen + idLen > MAX_KEY_ID_BYTES) { st.dead++; return; }
    if (EVENT_HEADER_BYTES + keyLen + idLen + (end - start - ex.lead) > this.maxEventBytes) { st.dead++; return; }
    const h = hashBytes(scratch, 0, keyLen);
    const p = partitionOf(h, this.bits), m = keyLen + idLen, n = padded(EV_HEAD + m);
    const v = this.w.room(p, n), o = this.w.used[p];
    const f = v.f64, u16 = v.u16, u8 = v.u8, i8 = o >> 3, i2 = (o >> 1) + 14;
    f[i8] = ts; f[i8 + 1] = pos; f[i8 + 2] = st.maxTs;
    v.u32[(o >> 2) + 6] = h >>> 0;
    u16[i2] = keyLen; u16[i2 + 1] = idLen; u16[i2 + 2] = st.chunk;
    for (let j = 0, d = o + EV_HEAD; j < m; j++) u8[d + j] = scratch[j];
    this.w.wrote(p, n);
    if (ts > st.maxTs) st.maxTs = ts;
  }
}

/** Rows whose key or an id is this long are left to the general scanner (its limits then apply). */
const FAST_ID_BYTES = 4096;
const F_LEFT_ID = 0, F_RIGHT_ID = 1, F_KEY = 2, F_LEFT_TS = 3, F_RIGHT_TS = 4;

export class RowScanner {
  private readonly sc = new JsonFieldScanner(['leftId', 'rightId', 'key', 'leftTs', 'rightTs']);
  private readonly scratch = Buffer.alloc(64 * 1024);
  private readonly fast = new FastRow();

  constructor(private readonly w: PartitionWriter, private readonly bits: number, private readonly maxExamples: number) {}

  bad(pos: number, reason: string, st: ChunkStats): void {
    st.unreadable++;
    if (st.unreadableExamples.length < this.maxExamples) st.unreadableExamples.push({ chunk: st.chunk, pos, reason });
  }

  /** One JSON row, data[start, end). */
  json(data: Latin1Buffer, bytes: Uint8Array, start: number, end: number, pos: number, st: ChunkStats): void {
    const f = this.fast;
    if (f.read(bytes, start, end) && f.leftEnd - f.leftStart < FAST_ID_BYTES && f.rightEnd - f.rightStart < FAST_ID_BYTES && f.keyEnd - f.keyStart < FAST_ID_BYTES) {
      this.row(bytes, f.keyStart, f.keyEnd, bytes, f.leftStart, f.leftStart < 0 ? NULL_LEN : f.leftEnd - f.leftStart,
        f.rightStart, f.rightStart < 0 ? NULL_LEN : f.rightEnd - f.rightStart, f.leftTs, f.rightTs, pos, st);
      return;
    }
    const sc = this.sc;
    if (!sc.scan(bytes, start, end)) { this.bad(pos, 'not a JSON object', st); return; }
    const scratch = this.scratch;
    const lEnd = idText(sc, F_LEFT_ID, bytes, scratch, 0);
    const rEnd = lEnd === -1 ? -1 : idText(sc, F_RIGHT_ID, bytes, scratch, lEnd === NULL_MARK ? 0 : lEnd);
    const leftTs = tsOf(sc, F_LEFT_TS, data), rightTs = tsOf(sc, F_RIGHT_TS, data);
    if (lEnd === -1 || rEnd === -1) { this.bad(pos, 'leftId and rightId must be strings, numbers, booleans or null', st); return; }
    if (leftTs === undefined || rightTs === undefined) { this.bad(pos, 'leftTs and rightTs must be numbers or null', st); return; }
    if (sc.type[F_KEY] !== VT.Array) { this.bad(pos, 'key must be a JSON array', st); return; }
    const lLen = lEnd === NULL_MARK ? NULL_LEN : lEnd;
    const rStart = lEnd === NULL_MARK ? 0 : lEnd;
    const rLen = rEnd === NULL_MARK ? NULL_LEN : rEnd - rStart;
    this.row(bytes, sc.start[F_KEY], sc.end[F_KEY], scratch, 0, lLen, rStart, rLen, leftTs, rightTs, pos, st);
  }

  /**
   * One row: key bytes kb[ks, ke); ids ib[ls, ls + lLen) and ib[rs, rs + rLen) (NULL_LEN = absent
   * side), canonical UTF-8.
   */
  row(kb: Uint8Array, ks: number, ke: number, ib: Uint8Array, ls: number, lLen: number, rs: number, rLen: number,
    leftTs: number | null, rightTs: number | null, pos: number, st: ChunkStats): void {
    if ((lLen === NULL_LEN) !== (leftTs === null) || (rLen === NULL_LEN) !== (rightTs === null) || (lLen === NULL_LEN && rLen === NULL_LEN)) {
      this.bad(pos, 'a row has a left side, a right side or both, each with its id and time', st); return;
    }
    const keyLen = ke - ks;
    if (keyLen >= NULL_LEN || keyLen + (lLen === NULL_LEN ? 0 : lLen) + (rLen === NULL_LEN ? 0 : rLen) > 3 * 64 * 1024) { this.bad(pos, 'key and ids too long', st); return; }
    st.rows++;
    const h = hashBytes(kb, ks, ke);
    const p = partitionOf(h, this.bits);
    const lb = lLen === NULL_LEN ? 0 : lLen, rb = rLen === NULL_LEN ? 0 : rLen;
    const n = padded(ROW_HEAD + keyLen + lb + rb);
    const v = this.w.room(p, n), o = this.w.used[p];
    const f = v.f64, u16 = v.u16, u8 = v.u8, i8 = o >> 3, i2 = (o >> 1) + 14;
    f[i8] = leftTs ?? 0; f[i8 + 1] = rightTs ?? 0; f[i8 + 2] = pos;
    v.u32[(o >> 2) + 6] = h >>> 0;
    u16[i2] = keyLen; u16[i2 + 1] = lLen; u16[i2 + 2] = rLen; u16[i2 + 3] = st.chunk;
    let d = o + ROW_HEAD;
    for (let j = ks; j < ke; j++) u8[d++] = kb[j];
    for (let j = 0; j < lb; j++) u8[d++] = ib[ls + j];
    for (let j = 0; j < rb; j++) u8[d++] = ib[rs + j];
    this.w.wrote(p, n);
  }
}

const NULL_MARK = -2;

/** Writes the canonical text of an id at out[o…): its end, NULL_MARK for null, −1 when unusable. */
function idText(sc: JsonFieldScanner, t: number, bytes: Uint8Array, out: Buffer, o: number): number {
  if (sc.type[t] === VT.Null) return NULL_MARK;
  const e = writeCanonicalScalar(sc, t, bytes, out, o);
  return e < 0 || e > out.length || e - o >= NULL_LEN ? -1 : e;
}

/** An event time, null, or undefined when it is neither a number nor null. */
function tsOf(sc: JsonFieldScanner, t: number, data: Latin1Buffer): number | null | undefined {
  const type = sc.type[t];
  if (type === VT.Null) return null;
  if (type !== VT.Number) return undefined;
  const s = sc.start[t], e = sc.end[t];
  if (sc.flags[t] === 0 && e - s <= 15 && data[s] !== 45) { // plain non-negative integer: exact as digits
    let v = 0;
    for (let p = s; p < e; p++) v = v * 10 + (data[p] - 48);
    return v;
  }
  return Number(data.latin1Slice(s, e));
}

/** A JSON value starts with `{` (after blanks); a JoinedRecord FlatBuffer with its root offset. */
export function isJsonValue(v: Buffer): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === 123) return true;
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return false;
  }
  return false;
}

/**
 * Scans the records of a file that start in [fromByte, toByte) (a chunk of an NDJSON file split at
 * line starts, or a whole FlatBuffers file), positions counted from 1 at fromByte.
 */
export async function scanFileChunk(file: string, side: Side, format: 'json' | 'flatbuffers', fromByte: number, toByte: number,
  onRecord: (data: Buffer, bytes: Uint8Array, start: number, end: number, pos: number) => void, onBytes: (bytes: number, records: number) => void): Promise<number> {
  const src = new FileSource(file, side, format, fromByte > 0 ? { byte: fromByte, line: 1 } : undefined);
  let positions = 0;
  try {
    for (let b = await src.next(); b; b = await src.next()) {
      const data = b.data, offs = b.offsets, skip = b.recordPrefixBytes ?? 0, isLines = b.lineDelimited === true;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const base = b.firstByte! - offs[0];
      let i = 0;
      for (; i < b.count; i++) {
        if (base + offs[i] >= toByte) break;
        const start = offs[i] + skip;
        let end = offs[i + 1];
        if (isLines) {
          while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
          if (end === start) continue;
        }
        onRecord(data as Buffer, bytes, start, end, b.firstPosition + i);
      }
      positions += i;
      onBytes(offs[i] - offs[0], i);
      if (i < b.count) break;
    }
  } finally {
    await src.close();
  }
  return positions;
}

/**
 * Scans rows [fromRow, toRow) of a Parquet file (whole row groups), positions counted from 1 at
 * fromRow: a chunk's base plus its position is the record number (row index + 1), as for the
 * lines of the file's NDJSON twin, so that both give the same report.
 * Each record comes with the batch's column extractor: the key, id and time bytes `run` routes by.
 */
export async function scanParquetChunk(file: string, side: Side, fields: SideFields, fromRow: number, toRow: number, bytesPerRow: number,
  onRecord: (bytes: Uint8Array, start: number, end: number, pos: number, ex: Extractor) => void, onBytes: (bytes: number, records: number) => void): Promise<number> {
  // loaded when needed: hyparquet is most of a verify thread's start-up otherwise
  const { ParquetSource } = await import('../source/parquet.js');
  const src = new ParquetSource(file, side, fields, fromRow > 0 ? { byte: fromRow, line: fromRow + 1 } : undefined, true); // the payload is not compared
  let positions = 0;
  try {
    for (let b = await src.next(); b; b = await src.next()) {
      const offs = b.offsets, data = b.data, ex = b.extractor!;
      const n = Math.min(b.count, toRow - b.firstPosition);
      const base = b.firstPosition - fromRow + 1;
      for (let i = 0; i < n; i++) onRecord(data, offs[i], offs[i + 1], base + i, ex);
      positions += Math.max(0, n);
      onBytes(Math.round(Math.max(0, n) * bytesPerRow), Math.max(0, n));
      if (n < b.count) break;
    }
  } finally {
    await src.close();
  }
  return positions;
}
