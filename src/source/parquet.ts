/**
 * Parquet files as inputs (`file:PATH.parquet`, or `--format parquet`), read with hyparquet one row
 * group at a time, column by column. Each batch hands the router two things:
 *  - the records as JSON text (one object per row, the columns in file order: int64 as exact
 *    digits, strings as JSON strings, timestamps as epoch milliseconds, nulls as null), which
 *    travel on as the event's payload, so the output's `left`/`right` carry the row's columns;
 *  - a column extractor (`RecordBatch.extractor`) holding each row's key and id canonical bytes and
 *    its event time, taken from the decoded columns — the router copies them into the frame instead
 *    of scanning the JSON text.
 * Positions count rows (0-based): checkpoints record the next row, `--resume-at` takes row indexes,
 * dead letters name the row. A checkpoint's identity check covers the whole file (a Parquet file
 * cannot be appended to: its footer moves), so a resume needs the very same file.
 */
import * as fs from 'node:fs';
import { parquetMetadata, parquetRead, type FileMetaData, type SchemaElement } from 'hyparquet';
import { JoineryError, usageError } from '../core/errors.js';
import type { Extractor } from '../codec/json.js';
import type { FileIdentity, SourcePosition } from '../checkpoint/manifest.js';
import type { Side } from '../state/store.js';
import { fileIdentity } from './file.js';
import type { PartitionRef, RecordBatch, Source } from './source.js';

const MAX_RECORDS = 4096;
const MAGIC = 0x31524150; // "PAR1", little-endian

type Kind = 'string' | 'int' | 'number' | 'bool' | 'other';

export interface ParquetFields { key: string[]; time: string; id: string }

/** True when the file starts with Parquet's magic bytes (format sniffing). */
export function looksParquet(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31;
}

function kindOf(e: SchemaElement): Kind {
  if (e.type === 'BYTE_ARRAY' || e.type === 'FIXED_LEN_BYTE_ARRAY') return e.converted_type === 'UTF8' || e.logical_type?.type === 'STRING' || e.converted_type === undefined ? 'string' : 'other';
  if (e.type === 'INT64' || e.type === 'INT32') return 'int'; // timestamps too: the parsers below keep them epoch ms numbers
  if (e.type === 'FLOAT' || e.type === 'DOUBLE') return 'number';
  if (e.type === 'BOOLEAN') return 'bool';
  return 'other';
}

/** A column not decoded (fieldsOnly): never read. */
const NOT_READ: Column = { values: [], lo: null, hi: null, div: 1 };

/** Bytes written for an absent cell: JSON null (a key, id or time cell that is null is refused). */
const NULL_BYTES = [110, 117, 108, 108];
const TWO_32 = 4294967296;
/** int64 halves within this bound make an exact double. */
const SAFE_HI = 1 << 21;

/**
 * A decoded column of the current row group: hyparquet's array (plain JS values, or a
 * BigInt64Array for plain int64 columns, read here through 32-bit halves so that no BigInt is made
 * per value).
 */
interface Column { values: ArrayLike<unknown>; lo: Uint32Array | null; hi: Int32Array | null; div: number }

function columnOf(values: ArrayLike<unknown>, div: number): Column {
  if (values instanceof BigInt64Array) {
    return { values, lo: new Uint32Array(values.buffer, values.byteOffset, values.length * 2), hi: new Int32Array(values.buffer, values.byteOffset, values.length * 2), div };
  }
  return { values, lo: null, hi: null, div };
}

/** Cell r of an int64 column as a number (a timestamp in milliseconds), exact where it fits a double. */
function int64At(c: Column, r: number): number {
  if (c.hi) {
    const hi = c.hi[2 * r + 1];
    if (hi > -SAFE_HI && hi < SAFE_HI) { const n = hi * TWO_32 + c.lo![2 * r]; return c.div === 1 ? n : Math.floor(n / c.div); }
    const v = (c.values as BigInt64Array)[r];
    return Number(c.div === 1 ? v : v / BigInt(c.div) - (v < 0n && v % BigInt(c.div) !== 0n ? 1n : 0n));
  }
  const v = c.values[r];
  if (typeof v === 'bigint') return Number(c.div === 1 ? v : v / BigInt(c.div) - (v < 0n && v % BigInt(c.div) !== 0n ? 1n : 0n));
  return typeof v === 'number' ? (c.div === 1 ? v : Math.floor(v / c.div)) : NaN;
}

/** Hands the router each row's key, id and time from the decoded columns (see the file comment). */
class ColumnExtractor implements Extractor {
  ts = 0;
  error = '';
  keyLen = 0;
  idLen = 0;
  readonly lead = 0;
  readonly tsOf = new Float64Array(MAX_RECORDS);
  readonly keyLens = new Uint32Array(MAX_RECORDS);
  readonly idLens = new Uint32Array(MAX_RECORDS);
  readonly kiStart = new Uint32Array(MAX_RECORDS + 1);
  readonly errors: Array<string | null> = new Array(MAX_RECORDS).fill(null);
  ki: Buffer = Buffer.allocUnsafe(MAX_RECORDS * 64);
  offsets: Uint32Array = new Uint32Array(0);
  count = 0;
  private cursor = 0;

  reset(offsets: Uint32Array, count: number): void {
    this.offsets = offsets;
    this.count = count;
    this.cursor = 0;
  }

  extract(_bytes: Uint8Array, start: number, _end: number, out: Uint8Array): boolean {
    let i = this.cursor;
    if (i >= this.count || this.offsets[i] !== start) { // rows are read in order, but a batch may be read twice (a backfill's bound)
      let lo = 0, hi = this.count - 1;
      while (lo < hi) { const mid = (lo + hi) >>> 1; if (this.offsets[mid] < start) lo = mid + 1; else hi = mid; }
      if (this.offsets[lo] !== start) { this.error = 'internal: row not in the current Parquet batch'; return false; }
      i = lo;
    }
    this.cursor = i + 1;
    const err = this.errors[i];
    if (err !== null) { this.error = err; return false; }
    this.ts = this.tsOf[i];
    const k = this.keyLens[i], d = this.idLens[i], s = this.kiStart[i];
    if (k + d <= out.length) out.set(this.ki.subarray(s, s + k + d), 0);
    this.keyLen = k;
    this.idLen = d;
    return true;
  }
}

export class ParquetSource implements Source {
  readonly name: string;
  readonly partitions: readonly PartitionRef[];
  readonly rows: number;
  private readonly fd: number;
  private readonly metadata: FileMetaData;
  private readonly names: string[];
  private readonly kinds: Kind[];
  /** Per column: int64 timestamp units per millisecond (1 for everything else). */
  private readonly msDivisor: number[];
  private readonly prefixes: Uint8Array[];
  /** The columns written into a record's text, in file order (all, or the key, time and id ones). */
  private readonly emit: number[];
  /** Columns hyparquet decodes (undefined: all). */
  private readonly decoded: string[] | undefined;
  private readonly keyCols: number[];
  private readonly timeCol: number;
  private readonly idCol: number;
  private readonly groupStart: number[] = [];
  private readonly identity: FileIdentity;
  /** Next row to hand out (0-based, over the whole file). */
  private row = 0;
  /** The decoded row group: its index, first row and columns (null: none decoded). */
  private group = -1;
  private cols: Column[] | null = null;
  private readonly digits = new Uint8Array(24);
  private data = Buffer.allocUnsafe(1 << 20);
  private readonly offsets = new Uint32Array(MAX_RECORDS + 1);
  private readonly ex = new ColumnExtractor();

  /**
   * `fieldsOnly`: decode and write only the key, time and id columns (a record's text then holds
   * just those: for readers that never look at the payload, such as verify).
   */
  constructor(readonly path: string, readonly side: Side, fields: ParquetFields, start?: { byte: number; line: number; identity?: FileIdentity }, fieldsOnly = false) {
    const sideName = side === 0 ? 'left' : 'right';
    this.name = `file:${path}`;
    this.partitions = [{ side, partition: 0 }];
    let size: number;
    try {
      this.fd = fs.openSync(path, 'r');
      const st = fs.fstatSync(this.fd);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (e) {
      throw new JoineryError('E_INPUT', `cannot read ${sideName} input ${path}: ${(e as Error).message}`);
    }
    const notParquet = (why: string) => new JoineryError('E_INPUT', `${sideName} input ${path} is not a Parquet file (${why})`);
    if (size < 12) throw notParquet(`${size} bytes`);
    const head = this.read(0, 4), tail = this.read(size - 8, size);
    const tv = new DataView(tail);
    if (new DataView(head).getUint32(0, true) !== MAGIC || tv.getUint32(4, true) !== MAGIC) throw notParquet('no PAR1 magic bytes at its start and end');
    const metaLen = tv.getUint32(0, true);
    if (metaLen + 12 > size) throw notParquet(`its footer claims ${metaLen} bytes`);
    try {
      this.metadata = parquetMetadata(this.read(size - 8 - metaLen, size));
    } catch (e) {
      throw notParquet(`unreadable footer: ${(e as Error).message}`);
    }
    const leaves = this.metadata.schema.slice(1);
    if (leaves.some((e) => (e.num_children ?? 0) > 0)) throw new JoineryError('E_INPUT', `${sideName} input ${path}: nested Parquet columns are not supported (columns must be flat: int64, string, timestamp, …)`);
    this.names = leaves.map((e) => e.name);
    this.kinds = leaves.map(kindOf);
    // int64 timestamps are read as plain int64 (a BigInt64Array, no value made per row) and scaled to
    // milliseconds here: hyparquet would otherwise convert every value through a BigInt
    this.msDivisor = leaves.map((e) => {
      if (e.type !== 'INT64') return 1;
      const unit = e.converted_type === 'TIMESTAMP_MICROS' ? 1000 : e.converted_type === 'TIMESTAMP_MILLIS' ? 1
        : e.logical_type?.type === 'TIMESTAMP' ? ({ MILLIS: 1, MICROS: 1000, NANOS: 1_000_000 } as Record<string, number>)[(e.logical_type as { unit: string }).unit] ?? 1 : 0;
      if (unit === 0) return 1;
      e.converted_type = undefined;
      e.logical_type = undefined;
      return unit;
    });
    this.cellStart = new Uint32Array(this.names.length);
    this.cellEnd = new Uint32Array(this.names.length);
    const col = (f: string, what: string) => {
      const j = this.names.indexOf(f);
      if (j < 0) throw usageError(`--${sideName} ${path}: no Parquet column "${f}" for the ${what} (columns: ${this.names.join(', ')}); a Parquet input's fields are its top-level columns`);
      return j;
    };
    this.keyCols = fields.key.map((f) => col(f, 'key'));
    this.timeCol = col(fields.time, 'event time');
    this.idCol = col(fields.id, 'id');
    this.emit = fieldsOnly ? [...new Set([...this.keyCols, this.timeCol, this.idCol])].sort((a, b) => a - b) : this.names.map((_, j) => j);
    this.decoded = fieldsOnly ? this.emit.map((j) => this.names[j]) : undefined;
    this.prefixes = this.names.map((n, j) => Buffer.from((j === this.emit[0] ? '{' : ',') + JSON.stringify(n) + ':', 'utf8'));
    let n = 0;
    for (const g of this.metadata.row_groups) { this.groupStart.push(n); n += Number(g.num_rows); }
    this.groupStart.push(n);
    this.rows = n;
    this.identity = fileIdentity(this.fd, size);
    if (start) {
      const id = start.identity;
      const what = (why: string) => new JoineryError('E_CHECKPOINT', `${sideName} input ${path} is not the file the checkpoint read: ${why}. ` +
        'Resuming would join from the wrong place. Give the original file back; or start over with a new --checkpoint-dir (and a new output); or rebuild with --rebuild-from TIME --resume-at (see README, Rebuild)');
      if (start.byte > n) throw what(`it has ${n} rows but the checkpoint resumes it at row ${start.byte}`);
      if (id && (id.sizeBytes !== size || id.headSha256 !== this.identity.headSha256 || id.tailSha256 !== this.identity.tailSha256)) {
        throw what(`its bytes differ from those the checkpoint recorded (${id.sizeBytes} bytes then, ${size} now: a Parquet file is replaced, not appended to)`);
      }
      this.row = start.byte;
    }
    this.name = `file:${path}`;
  }

  private read(from: number, to: number): ArrayBuffer {
    const ab = new ArrayBuffer(to - from);
    const u8 = new Uint8Array(ab);
    let n = 0;
    while (n < u8.length) {
      const r = fs.readSync(this.fd, u8, n, u8.length - n, from + n);
      if (r === 0) break;
      n += r;
    }
    return ab;
  }

  checkpointPosition(): SourcePosition {
    return { kind: 'file', name: this.name, file: { byte: this.row, line: this.row + 1, side: this.side, identity: this.identity } };
  }

  /** First row of each row group, then the row count: where the file splits for readers in parallel (verify). */
  rowGroupStarts(): readonly number[] {
    return this.groupStart;
  }

  /** Next row to be handed out (a position for --resume-at). */
  position(): number {
    return this.row;
  }

  /** Go back to row `row` (a backfill cut inside the last batch): the next batch starts there. */
  rewindTo(row: number): void {
    this.row = row;
  }

  private async decodeGroup(g: number): Promise<void> {
    const rowStart = this.groupStart[g], rowEnd = this.groupStart[g + 1];
    const n = rowEnd - rowStart;
    const whole: Array<ArrayLike<unknown> | null> = this.names.map(() => null);
    const pieces: Array<unknown[] | null> = this.names.map(() => null);
    const at = new Map(this.names.map((name, j) => [name, j]));
    const file = { byteLength: fs.fstatSync(this.fd).size, slice: (s: number, e?: number) => this.read(s, e ?? fs.fstatSync(this.fd).size) };
    try {
      await parquetRead({
        file, metadata: this.metadata, rowStart, rowEnd, columns: this.decoded,
        onChunk: (c) => {
          const j = at.get(c.columnName);
          if (j === undefined) return;
          const src = c.columnData as ArrayLike<unknown>;
          if (c.rowStart === rowStart && c.rowEnd === rowEnd && pieces[j] === null) { whole[j] = src; return; }
          // a column split into several chunks: gathered into one array
          let dst = pieces[j];
          if (dst === null) {
            dst = new Array(n).fill(null);
            const w = whole[j];
            if (w) for (let r = 0; r < n; r++) dst[r] = w[r];
            pieces[j] = dst;
          }
          const from = Math.max(c.rowStart, rowStart), to = Math.min(c.rowEnd, rowEnd);
          for (let r = from; r < to; r++) dst[r - rowStart] = src[r - c.rowStart];
        },
      });
    } catch (e) {
      throw new JoineryError('E_INPUT', `${this.side === 0 ? 'left' : 'right'} input ${this.path}: cannot decode row group ${g}: ${(e as Error).message}`);
    }
    this.group = g;
    const emitted = new Set(this.emit);
    this.cols = this.names.map((_, j) => (emitted.has(j) ? columnOf(pieces[j] ?? whole[j] ?? new Array(n).fill(null), this.msDivisor[j]) : NOT_READ));
  }

  async next(): Promise<RecordBatch | null> {
    if (this.row >= this.rows) return null;
    let g = this.group;
    if (g < 0 || this.row < this.groupStart[g] || this.row >= this.groupStart[g + 1]) {
      g = 0;
      while (this.groupStart[g + 1] <= this.row) g++;
      await this.decodeGroup(g);
    }
    const cols = this.cols!;
    const base = this.groupStart[g];
    const first = this.row;
    const count = Math.min(MAX_RECORDS, this.groupStart[g + 1] - first);
    const ex = this.ex, offsets = this.offsets, names = this.names, kinds = this.kinds, prefixes = this.prefixes;
    const emit = this.emit, nCols = emit.length, keyCols = this.keyCols, nKeys = keyCols.length;
    const cellStart = this.cellStart, cellEnd = this.cellEnd;
    let p = 0, k = 0;
    for (let i = 0; i < count; i++) {
      const r = first + i - base;
      offsets[i] = p;
      for (let x = 0; x < nCols; x++) {
        const j = emit[x], pre = prefixes[j];
        p = this.ensure(p, pre.length + 32);
        const data = this.data;
        for (let q = 0; q < pre.length; q++) data[p + q] = pre[q];
        p += pre.length;
        cellStart[j] = p;
        p = this.writeCell(kinds[j], cols[j], r, p);
        cellEnd[j] = p;
      }
      p = this.ensure(p, 2);
      this.data[p++] = nCols === 0 ? 123 : 125; // { or }
      if (nCols === 0) this.data[p++] = 125;
      // key, id and time straight from the columns: the canonical texts are the cells' JSON bytes
      ex.kiStart[i] = k;
      ex.errors[i] = null;
      const tc = cols[this.timeCol];
      const tv = tc.hi || tc.div !== 1 ? (this.isNull(tc, r) ? null : int64At(tc, r)) : tc.values[r];
      const ts = typeof tv === 'number' ? tv : typeof tv === 'bigint' ? Number(tv) : typeof tv === 'string' && tv.trim() !== '' ? Number(tv) : NaN;
      for (let q = 0; q < nKeys; q++) {
        const c = keyCols[q];
        if (this.isNull(cols[c], r) || (kinds[c] === 'number' && !Number.isFinite(cols[c].values[r]))) { ex.errors[i] = `missing or non-scalar key field "${names[c]}"`; break; }
      }
      if (ex.errors[i] === null) {
        if (this.isNull(cols[this.idCol], r)) ex.errors[i] = `missing or non-scalar id field "${names[this.idCol]}"`;
        else if (!Number.isFinite(ts)) ex.errors[i] = tv === null || tv === undefined ? `missing time field "${names[this.timeCol]}"` : `non-numeric time field "${names[this.timeCol]}": ${JSON.stringify(typeof tv === 'bigint' ? String(tv) : tv)}`;
      }
      if (ex.errors[i] !== null) { ex.keyLens[i] = ex.idLens[i] = 0; continue; }
      let need = nKeys + 1 + cellEnd[this.idCol] - cellStart[this.idCol];
      for (let q = 0; q < nKeys; q++) need += cellEnd[keyCols[q]] - cellStart[keyCols[q]];
      if (k + need > ex.ki.length) { const bigger = Buffer.allocUnsafe((k + need) * 2); ex.ki.copy(bigger, 0, 0, k); ex.ki = bigger; }
      const ki = ex.ki, data = this.data;
      const k0 = k;
      ki[k++] = 91; // [
      for (let q = 0; q < nKeys; q++) {
        if (q > 0) ki[k++] = 44; // ,
        const c = keyCols[q];
        for (let x = cellStart[c]; x < cellEnd[c]; x++) ki[k++] = data[x];
      }
      ki[k++] = 93; // ]
      ex.keyLens[i] = k - k0;
      const i0 = k;
      for (let x = cellStart[this.idCol]; x < cellEnd[this.idCol]; x++) ki[k++] = data[x];
      ex.idLens[i] = k - i0;
      ex.tsOf[i] = ts;
    }
    offsets[count] = p;
    ex.reset(offsets, count);
    this.row = first + count;
    return {
      side: this.side, partition: 0, format: 'json', data: this.data, offsets, count,
      firstPosition: first, origin: this.path, extractor: ex,
    };
  }

  private cellStart = new Uint32Array(0);
  private cellEnd = new Uint32Array(0);

  /** Room for `need` more bytes at p in the record buffer; returns p. */
  private ensure(p: number, need: number): number {
    if (p + need > this.data.length) {
      const bigger = Buffer.allocUnsafe(Math.max(p + need, this.data.length * 2));
      this.data.copy(bigger, 0, 0, p);
      this.data = bigger;
    }
    return p;
  }

  private isNull(c: Column, r: number): boolean {
    if (c.hi) return false;
    const v = c.values[r];
    return v === null || v === undefined;
  }

  /** Writes the JSON text of cell r of column c at p (int64 as exact digits, no BigInt made where the value fits a double); returns the end. */
  private writeCell(kind: Kind, c: Column, r: number, p: number): number {
    if (c.div !== 1 && !this.isNull(c, r)) return this.writeInteger(int64At(c, r), p); // a timestamp, in ms
    if (c.hi) {
      const hi = c.hi[2 * r + 1], lo = c.lo![2 * r];
      if (hi > -SAFE_HI && hi < SAFE_HI) return this.writeInteger(hi * TWO_32 + lo, p);
      return this.writeAscii(String((c.values as BigInt64Array)[r]), p);
    }
    const v = c.values[r];
    if (v === null || v === undefined) {
      const data = this.data;
      for (let q = 0; q < 4; q++) data[p + q] = NULL_BYTES[q];
      return p + 4;
    }
    switch (kind) {
      case 'string':
        if (typeof v === 'string') return this.writeString(v, p);
        return this.writeString(Buffer.from(v as Uint8Array).toString('base64'), p);
      case 'int':
        if (typeof v === 'number') return Number.isSafeInteger(v) ? this.writeInteger(v, p) : this.writeAscii(String(v), p);
        if (typeof v === 'bigint') return v > -9007199254740992n && v < 9007199254740992n ? this.writeInteger(Number(v), p) : this.writeAscii(v.toString(), p);
        return this.writeAscii(String(v), p);
      case 'number':
        return this.writeAscii(Number.isFinite(v as number) ? String(v) : 'null', p);
      case 'bool':
        return this.writeAscii(v ? 'true' : 'false', p);
      default: {
        const text = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
        p = this.ensure(p, Buffer.byteLength(text));
        return p + this.data.write(text, p, 'utf8');
      }
    }
  }

  /** A safe integer's decimal digits. */
  private writeInteger(n: number, p: number): number {
    const data = this.data;
    if (n === 0) { data[p] = 48; return p + 1; }
    if (n < 0) { data[p++] = 45; n = -n; }
    const d = this.digits;
    let m = 0;
    while (n > 0) { const q = Math.floor(n / 10); d[m++] = 48 + (n - q * 10); n = q; }
    while (m > 0) data[p++] = d[--m];
    return p;
  }

  private writeAscii(text: string, p: number): number {
    p = this.ensure(p, text.length);
    const data = this.data;
    for (let q = 0; q < text.length; q++) data[p + q] = text.charCodeAt(q);
    return p + text.length;
  }

  /** A JSON string: printable ASCII without quote or backslash is copied as it is, anything else goes through JSON.stringify. */
  private writeString(v: string, p: number): number {
    p = this.ensure(p, v.length + 2);
    const data = this.data;
    let q = p + 1;
    for (let x = 0; x < v.length; x++) {
      const ch = v.charCodeAt(x);
      if (ch < 0x20 || ch > 0x7e || ch === 34 || ch === 92) {
        const text = JSON.stringify(v);
        p = this.ensure(p, Buffer.byteLength(text));
        return p + this.data.write(text, p, 'utf8');
      }
      data[q++] = ch;
    }
    data[p] = 34;
    data[q++] = 34;
    return q;
  }

  async close(): Promise<void> {
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
  }
}
