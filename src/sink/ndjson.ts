import { flatJsonBound, writeFlatJson, writeUint, type FlatTable } from '../codec/flat.js';
import { encodeJoined } from '../codec/flat-build.js';
import type { JoinEmitter } from '../join/join.js';
import type { Side } from '../state/store.js';

const TABLES: [FlatTable, FlatTable] = ['Impression', 'Play'];
const b = (s: string) => Buffer.from(s, 'latin1');
const P_LEFT_ID = b('{"leftId":'), P_RIGHT_ID = b(',"rightId":'), P_KEY = b(',"key":'), P_LEFT_TS = b(',"leftTs":'),
  P_RIGHT_TS = b(',"rightTs":'), P_LEFT = b(',"left":'), P_RIGHT = b(',"right":'), P_END = b('}\n'), P_CLOSE = b('}'), NULL = b('null');

/**
 * How output records are laid out in a chunk:
 * - `ndjson`: newline-terminated JSON lines (files, stdout);
 * - `records-json` / `records-flatbuffers`: keyed records for a record sink (Kafka), each framed
 *   as [u16 keyLen][key][u32 valueLen][value] with the canonical join key as the record's key and
 *   the JSON record or a FlatBuffers JoinedRecord as the value. See decodeRecordChunk.
 */
export type OutputFraming = 'ndjson' | 'records-json' | 'records-flatbuffers';

/**
 * Builds the output record of docs/architecture.md §2 by concatenation: ids and key are already canonical
 * JSON text, JSON payloads are copied verbatim, FlatBuffers payloads are rendered to JSON (or
 * nested as they are in a JoinedRecord). `take()` hands the accumulated bytes to the caller's sink.
 */
export class NdjsonEmitter implements JoinEmitter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private len = 0;
  private valueStart = 0;
  records = 0;

  constructor(private readonly formats: readonly ['json' | 'flatbuffers', 'json' | 'flatbuffers'], private readonly discard = false,
    private readonly framing: OutputFraming = 'ndjson') {}

  /** Kafka framing: key header, then reserve the value length (patched by end()). */
  private begin(key: Uint8Array): void {
    if (this.framing === 'ndjson') return;
    this.ensure(6 + key.length);
    this.buf.writeUInt16LE(key.length, this.len);
    this.buf.set(key, this.len + 2);
    this.len += 2 + key.length + 4;
    this.valueStart = this.len;
  }
  private end(): void {
    if (this.framing === 'ndjson') { this.bytes(P_END); return; }
    this.bytes(P_CLOSE);
    this.buf.writeUInt32LE(this.len - this.valueStart, this.valueStart - 4);
  }
  private flatRecord(key: Uint8Array, leftId: Uint8Array | null, leftTs: number | null, left: Uint8Array | null,
    rightId: Uint8Array | null, rightTs: number | null, right: Uint8Array | null): void {
    const v = encodeJoined({ key, leftId, leftTs, left, rightId, rightTs, right });
    this.ensure(6 + key.length + v.length);
    this.buf.writeUInt16LE(key.length, this.len);
    this.buf.set(key, this.len + 2);
    this.len += 2 + key.length;
    this.buf.writeUInt32LE(v.length, this.len);
    this.buf.set(v, this.len + 4);
    this.len += 4 + v.length;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
  private bytes(u: Uint8Array): void {
    const n = u.length;
    this.ensure(n);
    const buf = this.buf, o = this.len;
    // short pieces (prefixes, ids, keys) by hand: cheaper than a native call each
    if (n <= 48) for (let i = 0; i < n; i++) buf[o + i] = u[i];
    else buf.set(u, o);
    this.len = o + n;
  }
  private num(n: number): void {
    if (Number.isSafeInteger(n) && n >= 0) { // event times: digits written directly, as String(n) would
      // In two halves below 2^32 (below 2^53 the high one is < 2^27): integer division by 10 compiles to a
      // multiply, where doubles each took a division and a floor (~70 → ~33 ns per event time).
      this.ensure(16);
      const hi = Math.floor(n / 1e8), lo = n - hi * 1e8;
      if (hi === 0) { this.len = writeUint(this.buf, this.len, lo); return; }
      const o = writeUint(this.buf, this.len, hi);
      const buf = this.buf;
      let x = lo | 0;
      for (let i = o + 7; i >= o; i--) { const q = (x / 10) | 0; buf[i] = 48 + (x - q * 10); x = q; }
      this.len = o + 8;
      return;
    }
    const s = String(n);
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }
  private payload(side: Side, p: Uint8Array): void {
    if (this.formats[side] === 'json') { this.bytes(p); return; }
    this.ensure(flatJsonBound(TABLES[side], p.length));
    this.len = writeFlatJson(TABLES[side], p, 0, p.length, this.buf, this.len);
  }

  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array, rightId: Uint8Array, rightTs: number, right: Uint8Array): void {
    this.records++;
    if (this.discard) return;
    if (this.framing === 'records-flatbuffers') { this.flatRecord(key, leftId, leftTs, left, rightId, rightTs, right); return; }
    this.begin(key);
    this.bytes(P_LEFT_ID); this.bytes(leftId);
    this.bytes(P_RIGHT_ID); this.bytes(rightId);
    this.bytes(P_KEY); this.bytes(key);
    this.bytes(P_LEFT_TS); this.num(leftTs);
    this.bytes(P_RIGHT_TS); this.num(rightTs);
    this.bytes(P_LEFT); this.payload(0, left);
    this.bytes(P_RIGHT); this.payload(1, right);
    this.end();
  }

  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void {
    this.records++;
    if (this.discard) return;
    if (this.framing === 'records-flatbuffers') {
      if (side === 0) this.flatRecord(key, id, ts, payload, null, null, null);
      else this.flatRecord(key, null, null, null, id, ts, payload);
      return;
    }
    this.begin(key);
    this.bytes(P_LEFT_ID); if (side === 0) this.bytes(id); else this.bytes(NULL);
    this.bytes(P_RIGHT_ID); if (side === 1) this.bytes(id); else this.bytes(NULL);
    this.bytes(P_KEY); this.bytes(key);
    this.bytes(P_LEFT_TS); if (side === 0) this.num(ts); else this.bytes(NULL);
    this.bytes(P_RIGHT_TS); if (side === 1) this.num(ts); else this.bytes(NULL);
    this.bytes(P_LEFT); if (side === 0) this.payload(0, payload); else this.bytes(NULL);
    this.bytes(P_RIGHT); if (side === 1) this.payload(1, payload); else this.bytes(NULL);
    this.end();
  }

  pendingBytes(): number {
    return this.len;
  }

  /** The bytes produced since the last take (a copy the caller owns). */
  take(): Uint8Array | null {
    if (this.len === 0) return null;
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }
}

/** Split a chunk of keyed records (`records-*` framing) into (key, value) views. */
export function decodeRecordChunk(chunk: Uint8Array, each: (key: Uint8Array, value: Uint8Array) => void): void {
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let p = 0;
  while (p < chunk.length) {
    const kl = dv.getUint16(p, true);
    const key = chunk.subarray(p + 2, p + 2 + kl);
    p += 2 + kl;
    const vl = dv.getUint32(p, true);
    each(key, chunk.subarray(p + 4, p + 4 + vl));
    p += 4 + vl;
  }
}
