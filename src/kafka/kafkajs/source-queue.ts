/**
 * The kafkajs source's queue: fetched batches, copied into pooled buffers, waiting for next().
 * Counts bytes in all and of partitions not paused (the fetch loop waits while either is over
 * its limit).
 */
import type { KafkaMessage } from 'kafkajs';
import type { KafkaRecordBatch } from '../port.js';
import { copyValues, offsetOf, valueLengthOf } from './lean-record.js';
import type { PartState } from './source-state.js';

const POOL_MAX = 16;
const MIN_DATA_BYTES = 64 * 1024;

function pow2AtLeast(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}

/** Buffers batches are copied into, reused once the router is done with a batch. */
export class BatchBuffers {
  private readonly dataPool: Buffer[] = [];
  private readonly offsPool: Uint32Array[] = [];
  /** The pooled buffer behind each batch's data view. */
  private readonly bufOf = new WeakMap<KafkaRecordBatch, Buffer>();

  takeData(bytes: number): Buffer {
    for (let i = 0; i < this.dataPool.length; i++) {
      if (this.dataPool[i].length >= bytes) return this.dataPool.splice(i, 1)[0];
    }
    return Buffer.allocUnsafeSlow(pow2AtLeast(Math.max(bytes, MIN_DATA_BYTES)));
  }

  takeOffsets(n: number): Uint32Array {
    for (let i = 0; i < this.offsPool.length; i++) {
      if (this.offsPool[i].length >= n) return this.offsPool.splice(i, 1)[0];
    }
    return new Uint32Array(pow2AtLeast(Math.max(n, 4096)));
  }

  /** `b`'s data is a view of `buf`. */
  own(b: KafkaRecordBatch, buf: Buffer): void {
    this.bufOf.set(b, buf);
  }

  recycle(b: KafkaRecordBatch): void {
    const buf = this.bufOf.get(b);
    if (buf && this.dataPool.length < POOL_MAX) this.dataPool.push(buf);
    if (this.offsPool.length < POOL_MAX) this.offsPool.push(b.offsets);
  }

  clear(): void {
    this.dataPool.length = 0;
    this.offsPool.length = 0;
  }
}
/**
 * The records of a fetched batch from index `first` on, copied into pooled buffers (kafkajs's
 * message objects are then garbage) as one RecordBatch.
 */
export function copyBatch(buffers: BatchBuffers, st: PartState, format: 'json' | 'flatbuffers', msgs: readonly KafkaMessage[], first: number,
  lastOffset: string, highWatermark: string): KafkaRecordBatch {
    const count = msgs.length - first;
    let bytes = 0;
    for (let i = first; i < msgs.length; i++) bytes += valueLengthOf(msgs[i]);
    const data = buffers.takeData(bytes);
    const offsets = buffers.takeOffsets(count + 1);
    offsets[0] = 0;
    copyValues(msgs, first, data, offsets);
    const firstOffset = offsetOf(msgs[first]);
    const lastMsgOffset = offsetOf(msgs[msgs.length - 1]);
    let recordOffsets: Float64Array | undefined;
    if (lastMsgOffset - firstOffset + 1 !== count) {
      recordOffsets = new Float64Array(count);
      for (let i = first, k = 0; i < msgs.length; i++, k++) recordOffsets[k] = offsetOf(msgs[i]);
    }
    const nextOffset = String(BigInt(lastOffset) + 1n);
    const kb: KafkaRecordBatch = {
      side: st.side, partition: st.partition, format,
      data: data.subarray(0, bytes), offsets, count,
      firstPosition: firstOffset, origin: `${st.topic}/${st.partition}`,
      kafka: { topic: st.topic, partition: st.partition, nextOffset }, logPosition: { topic: st.topic, partition: st.partition, offset: nextOffset },
      highWatermark: highWatermark, recordOffsets,
    };
    buffers.own(kb, data);
    return kb;
}

export class BatchQueue {
  private readonly batches: KafkaRecordBatch[] = [];
  /** Bytes queued, and of those the bytes of partitions not paused. */
  private bytes = 0;
  private unpausedBytes = 0;
  readonly buffers = new BatchBuffers();

  constructor(private readonly limitBytes: number, private readonly partOf: (b: KafkaRecordBatch) => PartState) {}

  push(st: PartState, b: KafkaRecordBatch): void {
    const n = b.data.byteLength;
    this.batches.push(b);
    this.bytes += n;
    st.queuedBytes += n;
    st.queuedBatches++;
    if (!st.paused) this.unpausedBytes += n;
  }

  private unqueue(st: PartState, b: KafkaRecordBatch): void {
    const n = b.data.byteLength;
    this.bytes -= n;
    st.queuedBytes -= n;
    st.queuedBatches--;
    if (!st.paused) this.unpausedBytes -= n;
  }

  /** Remove (and recycle) the batches `drop` selects; returns how many went. */
  drop(drop: (b: KafkaRecordBatch, st: PartState) => boolean): number {
    const keep: KafkaRecordBatch[] = [];
    let n = 0;
    for (const b of this.batches) {
      const st = this.partOf(b);
      if (!drop(b, st)) { keep.push(b); continue; }
      this.unqueue(st, b);
      this.buffers.recycle(b);
      n++;
    }
    this.batches.length = 0;
    this.batches.push(...keep);
    return n;
  }

  /** The first batch of a partition that is not paused, taken out of the queue; null if none. */
  take(): KafkaRecordBatch | null {
    for (let i = 0; i < this.batches.length; i++) {
      const b = this.batches[i];
      const st = this.partOf(b);
      // A queue full of batches of partitions paused for alignment would keep out the batches of
      // the slowest partition they wait for: then those go out anyway (alignment is a bound on
      // memory, not on correctness).
      if (st.paused && !(st.aligned && !st.userPaused && !st.held && this.bytes >= 4 * this.limitBytes)) continue;
      if (i === 0) this.batches.shift(); else this.batches.splice(i, 1);
      this.unqueue(st, b);
      return b;
    }
    return null;
  }

  tooFull(): boolean {
    return this.unpausedBytes >= this.limitBytes || this.bytes >= 4 * this.limitBytes;
  }

  /** A partition was paused or resumed: its queued bytes move between the counts. */
  pauseChanged(st: PartState): void {
    if (st.paused) this.unpausedBytes -= st.queuedBytes;
    else this.unpausedBytes += st.queuedBytes;
  }

  clear(): void {
    this.batches.length = 0;
    this.buffers.clear();
  }
}
