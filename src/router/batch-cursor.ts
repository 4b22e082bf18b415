import type { Extractor, PreparedBatch } from '../codec/json.js';
import type { RecordBatch } from '../source/source.js';

/** A batch being routed (routeBatch, routeRun): its fixed parts, the time guard's running state, and the record a full ring stopped. */
export class BatchCursor {
  readonly skip: number;
  readonly isLines: boolean;
  readonly bytesDv: DataView;
  wm = 0;
  fromMs = 0;
  futureLimit = 0;
  aheadRun = 0;
  refUnset = false;
  sourcePartition = 0;
  // The record whose ring was full.
  w = 0;
  bodyLen = 0;
  ts = 0;
  hash = 0;
  kg = 0;
  keyLen = 0;
  idLen = 0;
  start = 0;
  payloadLen = 0;
  /**
   * The extractor's read-ahead of records [0, count) (json-wasm.ts): routeRun takes record i from
   * it while its generation is fastGen (no other batch of the extractor was read since), else
   * extracts the record alone.
   */
  readonly fast: PreparedBatch | null;
  readonly fastGen: number;

  constructor(readonly b: RecordBatch, readonly ex: Extractor, readonly slot: number, readonly t: number,
    readonly bytes: Uint8Array, readonly replayed: boolean, count: number) {
    this.skip = b.recordPrefixBytes ?? 0;
    this.isLines = b.lineDelimited === true;
    this.fast = count > 0 && ex.prepare !== undefined ? ex.prepare(bytes, b.offsets, count, this.skip, this.isLines) : null;
    this.fastGen = this.fast !== null ? this.fast.generation : 0;
    this.bytesDv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  full(w: number, bodyLen: number, ts: number, hash: number, kg: number, keyLen: number, idLen: number, start: number, payloadLen: number): void {
    this.w = w; this.bodyLen = bodyLen; this.ts = ts; this.hash = hash; this.kg = kg;
    this.keyLen = keyLen; this.idLen = idLen; this.start = start; this.payloadLen = payloadLen;
  }
}
