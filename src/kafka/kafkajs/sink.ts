/**
 * The kafkajs sinks: KafkaRecordSink (the joined output, keyed; transactional for exactly-once
 * output) and KafkaLineSink (kafka:TOPIC for --late-out and --dead-letter), both over one
 * BatchingProducer each.
 */
import { usageError } from '../../core/errors.js';
import { decodeRecordChunk } from '../../sink/ndjson.js';
import type { GroupMembership, KafkaLineOutput, KafkaProducerOptions, KafkaRecordOutput, TransactionOffset } from '../port.js';
import { BatchingProducer } from './producer.js';

function toBuffer(v: Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  const b = Buffer.allocUnsafe(v.length);
  b.set(v);
  return b;
}

const ARENA_BYTES = 1 << 20;
const ARENA_MAX_COPY = 16 * 1024;

/**
 * Copies of the joined records' keys and values, carved out of 1 MiB buffers. Buffer.allocUnsafe
 * per record took a new 8 KiB pool every ~25 joined records (an ArrayBuffer each, whose external
 * memory also drives the collector); an arena lives until the producer has sent every record in it.
 */
class CopyArena {
  private buf = Buffer.allocUnsafeSlow(ARENA_BYTES);
  private at = 0;

  copy(v: Uint8Array | string): Buffer {
    if (typeof v === 'string' || v.length > ARENA_MAX_COPY) return toBuffer(v);
    const n = v.length;
    if (this.at + n > ARENA_BYTES) { this.buf = Buffer.allocUnsafeSlow(ARENA_BYTES); this.at = 0; }
    const b = this.buf.subarray(this.at, this.at + n);
    b.set(v);
    this.at += n;
    return b;
  }
}

/**
 * The joined output to a Kafka topic: one record per joined pair (FlatBuffers JoinedRecord or
 * JSON), keyed by the join key so a key's records stay on one partition and in order. The value
 * and key bytes are copied, so the caller may reuse its buffers.
 *
 * Back-pressure: write() returns false when the caller should `await sink.ready()` (highWaterRecords,
 * highWaterBytes); the engine then holds routing until it resolves.
 *
 * Exactly-once output (`transactionalId` set): records are written in Kafka transactions, sent in
 * the same large batches as in plain mode while the transaction is open; commitTransaction() ends
 * one together with the input's consumer-group offsets and a metadata string (a checkpoint id),
 * so output, input positions and checkpoint id become visible atomically to read_committed
 * consumers and to fetchCommittedOffsets(). Opening fences older producers with the same id and
 * aborts their open transaction; abortTransaction() and close() abort the open one.
 */
export class KafkaRecordSink implements KafkaRecordOutput {
  readonly spec: string;
  private readonly p: BatchingProducer;
  private readonly arena = new CopyArena();

  private constructor(opts: KafkaProducerOptions) {
    this.spec = `kafka:${opts.topic}`;
    this.p = new BatchingProducer(opts);
  }

  static async open(opts: KafkaProducerOptions): Promise<KafkaRecordSink> {
    const s = new KafkaRecordSink(opts);
    await s.p.start();
    return s;
  }

  get stats(): { records: number; bytes: number; sends: number; commits: number; aborts: number } {
    return this.p.stats;
  }

  /** True when opened with a transactionalId. */
  get transactional(): boolean {
    return this.p.txnId !== null;
  }

  /** See BatchingProducer.commitTransaction: records written so far + offsets (with metadata on each partition), atomically. */
  commitTransaction(groupId: string, offsets: readonly TransactionOffset[], metadata: string, membership?: GroupMembership | null): Promise<void> {
    return this.p.commitTransaction(groupId, offsets, metadata, membership);
  }

  /** Drop the records written since the last commit and abort the open transaction. */
  abortTransaction(): Promise<void> {
    return this.p.abortTransaction();
  }

  /** Records buffered, not yet handed to the broker. */
  get buffered(): number {
    return this.p.buffered;
  }

  /** Key+value bytes held until the broker acknowledges them (buffered and in flight). */
  get bufferedBytes(): number {
    return this.p.bufferedBytes;
  }

  write(key: Uint8Array | string | null, value: Uint8Array | string): boolean {
    return this.p.add(key === null ? null : this.arena.copy(key), this.arena.copy(value));
  }

  /**
   * A handed-over chunk of framed records: each key and value is a view of it, not a copy (the
   * views keep the chunk alive until the producer has sent its last record).
   */
  writeChunk(chunk: Uint8Array): boolean {
    // a Buffer's subarrays are Buffers (what kafkajs's encoder takes as it is)
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let ok = true;
    decodeRecordChunk(buf, (key, value) => { if (!this.p.add(key as Buffer, value as Buffer)) ok = false; });
    return ok;
  }

  ready(): Promise<void> {
    return this.p.ready();
  }

  flush(): Promise<void> {
    return this.p.flush();
  }

  close(): Promise<void> {
    return this.p.close();
  }
}

/**
 * LineSink for `kafka:TOPIC` (late events, dead letters): each newline-terminated line of a chunk
 * becomes one record (without the newline, no key). write() is synchronous like the other line
 * sinks and throws once the sink has failed; flush() and close() return promises the caller should
 * await (a rejected one carries the JoineryError('E_OUTPUT')). Use `needsDrain` / ready() for
 * back-pressure.
 */
export class KafkaLineSink implements KafkaLineOutput {
  readonly spec: string;
  private readonly p: BatchingProducer;
  private partial: Buffer | null = null;

  private constructor(opts: KafkaProducerOptions) {
    this.spec = `kafka:${opts.topic}`;
    this.p = new BatchingProducer(opts);
  }

  static async open(opts: KafkaProducerOptions): Promise<KafkaLineSink> {
    if (opts.transactionalId !== undefined) throw usageError(`kafka:${opts.topic}: transactional output is only available for the joined output (KafkaRecordSink)`);
    const s = new KafkaLineSink(opts);
    await s.p.start();
    return s;
  }

  get stats(): { records: number; bytes: number; sends: number; commits: number; aborts: number } {
    return this.p.stats;
  }

  get needsDrain(): boolean {
    return this.p.buffered >= 65_536;
  }

  ready(): Promise<void> {
    return this.p.ready();
  }

  write(chunk: Uint8Array): void {
    if (this.p.failed) throw this.p.failed;
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 10) continue;
      let line = chunk.subarray(start, i);
      if (this.partial) { line = Buffer.concat([this.partial, line]); this.partial = null; }
      let end = line.length;
      if (end > 0 && line[end - 1] === 13) end--;
      if (end > 0) this.p.add(null, toBuffer(line.subarray(0, end)));
      start = i + 1;
    }
    if (start < chunk.length) {
      const rest = toBuffer(chunk.subarray(start));
      this.partial = this.partial ? Buffer.concat([this.partial, rest]) : rest;
    }
  }

  flush(): Promise<void> {
    if (this.partial && this.partial.length > 0) { this.p.add(null, this.partial); this.partial = null; }
    return this.p.flush();
  }

  async close(): Promise<void> {
    if (this.partial && this.partial.length > 0 && !this.p.failed) { this.p.add(null, this.partial); this.partial = null; }
    return this.p.close();
  }
}

