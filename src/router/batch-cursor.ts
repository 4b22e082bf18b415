import type { Extractor } from '../codec/json.js';
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

  constructor(readonly b: RecordBatch, readonly ex: Extractor, readonly slot: number, readonly t: number,
    readonly bytes: Uint8Array, readonly replayed: boolean) {
    this.skip = b.recordPrefixBytes ?? 0;
    this.isLines = b.lineDelimited === true;
    this.bytesDv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  full(w: number, bodyLen: number, ts: number, hash: number, kg: number, keyLen: number, idLen: number, start: number, payloadLen: number): void {
    this.w = w; this.bodyLen = bodyLen; this.ts = ts; this.hash = hash; this.kg = kg;
    this.keyLen = keyLen; this.idLen = idLen; this.start = start; this.payloadLen = payloadLen;
  }
}
