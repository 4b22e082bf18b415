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

/** JSON text of one cell; undefined for null (the caller writes null, or refuses it as a key/id/time). */
function cellText(kind: Kind, v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  switch (kind) {
    case 'string': return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(Buffer.from(v as Uint8Array).toString('base64'));
    case 'int': return String(v); // bigint or number: exact digits either way
    case 'number': return Number.isFinite(v as number) ? String(v) : undefined;
    case 'bool': return v ? 'true' : 'false';
    default: return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}

/** Hands the router each row's key, id and time from the decoded columns (see the file comment). */
class ColumnExtractor implements Extractor {
  ts = 0;
  error = '';
  keyLen = 0;
  idLen = 0;
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
  private readonly prefixes: string[];
  private readonly keyCols: number[];
  private readonly timeCol: number;
  private readonly idCol: number;
  private readonly groupStart: number[] = [];
  private readonly identity: FileIdentity;
  /** Next row to hand out (0-based, over the whole file). */
  private row = 0;
  /** The decoded row group: its index, first row and columns (null: none decoded). */
  private group = -1;
  private cols: unknown[][] | null = null;
  private data = Buffer.allocUnsafe(1 << 20);
  private readonly offsets = new Uint32Array(MAX_RECORDS + 1);
  private readonly ex = new ColumnExtractor();

  constructor(readonly path: string, readonly side: Side, fields: ParquetFields, start?: { byte: number; line: number; identity?: FileIdentity }) {
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
    this.prefixes = this.names.map((n, j) => (j === 0 ? '{' : ',') + JSON.stringify(n) + ':');
    const col = (f: string, what: string) => {
      const j = this.names.indexOf(f);
      if (j < 0) throw usageError(`--${sideName} ${path}: no Parquet column "${f}" for the ${what} (columns: ${this.names.join(', ')}); a Parquet input's fields are its top-level columns`);
      return j;
    };
    this.keyCols = fields.key.map((f) => col(f, 'key'));
    this.timeCol = col(fields.time, 'event time');
    this.idCol = col(fields.id, 'id');
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
    const cols: unknown[][] = this.names.map(() => new Array(n).fill(null));
    const at = new Map(this.names.map((name, j) => [name, j]));
    const file = { byteLength: fs.fstatSync(this.fd).size, slice: (s: number, e?: number) => this.read(s, e ?? fs.fstatSync(this.fd).size) };
    try {
      await parquetRead({
        file, metadata: this.metadata, rowStart, rowEnd,
        parsers: {
          timestampFromMilliseconds: (ms: bigint) => Number(ms),
          timestampFromMicroseconds: (us: bigint) => Number(us / 1000n),
          timestampFromNanoseconds: (ns: bigint) => Number(ns / 1_000_000n),
        },
        onChunk: (c) => {
          const j = at.get(c.columnName);
          if (j === undefined) return;
          const from = Math.max(c.rowStart, rowStart), to = Math.min(c.rowEnd, rowEnd);
          const dst = cols[j], src = c.columnData as ArrayLike<unknown>;
          for (let r = from; r < to; r++) dst[r - rowStart] = src[r - c.rowStart];
        },
      });
    } catch (e) {
      throw new JoineryError('E_INPUT', `${this.side === 0 ? 'left' : 'right'} input ${this.path}: cannot decode row group ${g}: ${(e as Error).message}`);
    }
    this.group = g;
    this.cols = cols;
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
    const nCols = names.length;
    let p = 0, k = 0;
    const texts: Array<string | undefined> = new Array(nCols);
    for (let i = 0; i < count; i++) {
      const r = first + i - base;
      let text = '';
      for (let j = 0; j < nCols; j++) {
        const t = cellText(kinds[j], cols[j][r]);
        texts[j] = t;
        text += prefixes[j] + (t ?? 'null');
      }
      text += nCols === 0 ? '{}' : '}';
      if (p + text.length * 3 > this.data.length) this.grow(p + text.length * 3);
      offsets[i] = p;
      p += this.data.write(text, p, 'utf8');
      // key, id and time straight from the columns
      ex.kiStart[i] = k;
      ex.errors[i] = null;
      let key = '[';
      for (let q = 0; q < this.keyCols.length; q++) {
        const t = texts[this.keyCols[q]];
        if (t === undefined) { ex.errors[i] = `missing or non-scalar key field "${names[this.keyCols[q]]}"`; break; }
        key += (q > 0 ? ',' : '') + t;
      }
      const id = texts[this.idCol];
      const tv = cols[this.timeCol][r];
      const ts = typeof tv === 'number' ? tv : typeof tv === 'bigint' ? Number(tv) : typeof tv === 'string' && tv.trim() !== '' ? Number(tv) : NaN;
      if (ex.errors[i] === null) {
        if (id === undefined) ex.errors[i] = `missing or non-scalar id field "${names[this.idCol]}"`;
        else if (!Number.isFinite(ts)) ex.errors[i] = tv === null || tv === undefined ? `missing time field "${names[this.timeCol]}"` : `non-numeric time field "${names[this.timeCol]}": ${texts[this.timeCol]}`;
      }
      if (ex.errors[i] !== null) { ex.keyLens[i] = ex.idLens[i] = 0; continue; }
      key += ']';
      if (k + (key.length + id!.length) * 3 > ex.ki.length) { const b = Buffer.allocUnsafe((k + (key.length + id!.length) * 3) * 2); ex.ki.copy(b, 0, 0, k); ex.ki = b; }
      const kl = ex.ki.write(key, k, 'utf8');
      const il = ex.ki.write(id!, k + kl, 'utf8');
      ex.keyLens[i] = kl;
      ex.idLens[i] = il;
      ex.tsOf[i] = ts;
      k += kl + il;
    }
    offsets[count] = p;
    ex.reset(offsets, count);
    this.row = first + count;
    return {
      side: this.side, partition: 0, format: 'json', data: this.data, offsets, count,
      firstPosition: first, origin: this.path, extractor: ex,
    };
  }

  private grow(min: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(min, this.data.length * 2));
    this.data.copy(bigger);
    this.data = bigger;
  }

  async close(): Promise<void> {
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
  }
}
