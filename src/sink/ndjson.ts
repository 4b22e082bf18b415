import { flatToJson, type FlatTable } from '../codec/flat.js';
import type { JoinEmitter } from '../join/join.js';
import type { Side } from '../state/store.js';

const TABLES: [FlatTable, FlatTable] = ['Impression', 'Play'];
const b = (s: string) => Buffer.from(s, 'latin1');
const P_LEFT_ID = b('{"leftId":'), P_RIGHT_ID = b(',"rightId":'), P_KEY = b(',"key":'), P_LEFT_TS = b(',"leftTs":'),
  P_RIGHT_TS = b(',"rightTs":'), P_LEFT = b(',"left":'), P_RIGHT = b(',"right":'), P_END = b('}\n'), NULL = b('null');

/**
 * Builds the output record of DESIGN.md §2 as NDJSON bytes by concatenation: ids and key are
 * already canonical JSON text, JSON payloads are copied verbatim, FlatBuffers payloads are
 * rendered to JSON. `take()` hands the accumulated bytes to the caller's sink.
 */
export class NdjsonEmitter implements JoinEmitter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private len = 0;
  records = 0;

  constructor(private readonly formats: readonly ['json' | 'flatbuffers', 'json' | 'flatbuffers'], private readonly discard = false) {}

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
  private bytes(u: Uint8Array): void {
    this.ensure(u.length);
    this.buf.set(u, this.len);
    this.len += u.length;
  }
  private num(n: number): void {
    const s = String(n);
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }
  private payload(side: Side, p: Uint8Array): void {
    if (this.formats[side] === 'json') { this.bytes(p); return; }
    const s = flatToJson(TABLES[side], p, 0, p.length);
    this.ensure(Buffer.byteLength(s));
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  pair(key: Uint8Array, leftId: Uint8Array, leftTs: number, left: Uint8Array, rightId: Uint8Array, rightTs: number, right: Uint8Array): void {
    this.records++;
    if (this.discard) return;
    this.bytes(P_LEFT_ID); this.bytes(leftId);
    this.bytes(P_RIGHT_ID); this.bytes(rightId);
    this.bytes(P_KEY); this.bytes(key);
    this.bytes(P_LEFT_TS); this.num(leftTs);
    this.bytes(P_RIGHT_TS); this.num(rightTs);
    this.bytes(P_LEFT); this.payload(0, left);
    this.bytes(P_RIGHT); this.payload(1, right);
    this.bytes(P_END);
  }

  unmatched(side: Side, key: Uint8Array, id: Uint8Array, ts: number, payload: Uint8Array): void {
    this.records++;
    if (this.discard) return;
    this.bytes(P_LEFT_ID); if (side === 0) this.bytes(id); else this.bytes(NULL);
    this.bytes(P_RIGHT_ID); if (side === 1) this.bytes(id); else this.bytes(NULL);
    this.bytes(P_KEY); this.bytes(key);
    this.bytes(P_LEFT_TS); if (side === 0) this.num(ts); else this.bytes(NULL);
    this.bytes(P_RIGHT_TS); if (side === 1) this.num(ts); else this.bytes(NULL);
    this.bytes(P_LEFT); if (side === 0) this.payload(0, payload); else this.bytes(NULL);
    this.bytes(P_RIGHT); if (side === 1) this.payload(1, payload); else this.bytes(NULL);
    this.bytes(P_END);
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
