import type { SourcePosition } from '../checkpoint/manifest.js';
import type { Side } from '../state/store.js';
import type { Extractor } from '../codec/json.js';

/**
 * A batch of raw records from one partition of one side. Records are laid end to end in `data`;
 * record i is data[offsets[i], offsets[i+1]). The router reads key, time and id from the bytes and
 * copies each record into a worker's ring, so a batch may be reused once next() is called again.
 */
export interface RecordBatch {
  side: Side;
  /** Partition index within the side (a file is one partition; a partitioned log one per log partition). Watermarks are per partition. */
  partition: number;
  format: 'json' | 'flatbuffers';
  data: Uint8Array;
  offsets: Uint32Array;   // length ≥ count + 1
  count: number;
  /** Bytes to skip at the start of each record (4 for size-prefixed FlatBuffers files); default 0. */
  recordPrefixBytes?: number;
  /** NDJSON file records: each ends with its newline, and blank lines are skipped rather than dead-lettered. */
  lineDelimited?: boolean;
  /** Exact position of each record when positions are not contiguous (log offsets with gaps). */
  recordOffsets?: Float64Array;
  /** Position of the first record for error reports: 1-based line number for NDJSON files, record index otherwise. */
  firstPosition: number;
  /** File sources: byte offset in the file of the first record (positions for --resume-at). */
  firstByte?: number;
  /** Human name of where the batch came from (file path, generator), for error reports. */
  origin: string;
  /**
   * Key, id and time already known per record (Parquet: from the decoded columns), used by the
   * router instead of scanning the bytes; valid for this batch only. Its answers equal those of the
   * format's extractor on the same bytes, so a copy of the batch may simply leave it out.
   */
  extractor?: Extractor;
  /**
   * Partitioned-log sources: the log partition and the position just after the batch (its last
   * record's offset, or that of trailing control records, + 1), committed once its records are
   * applied. Its presence also says the partition travels with each event into the checkpoints.
   */
  logPosition?: LogPosition;
}

/**
 * A place in one partition of a partitioned, offset-addressed log (a Kafka topic-partition: the
 * adapter in src/kafka/ fills it in): `offset` is the next record to read there. Offsets are
 * decimal strings, as they may pass 2^53. Batches, checkpoint manifests, commits of applied
 * positions and rebuild plans carry it; the core needs nothing else to know about such a source.
 */
export interface LogPosition {
  /** The named log the partition belongs to (Kafka: the topic). */
  topic: string;
  partition: number;
  offset: string;
}

export interface PartitionRef { side: Side; partition: number }

export interface Source {
  readonly name: string;
  /** Every partition this source will deliver, known before the first batch (watermarks wait for all of them). */
  readonly partitions: readonly PartitionRef[];
  /** The next batch, or null at end of input. */
  next(): Promise<RecordBatch | null>;
  /**
   * Partitions known to hold records not delivered yet (e.g. a log partition whose position is
   * below its high watermark while the broker is away): they are behind, not idle, so they keep
   * holding the watermark back however long nothing arrives from them.
   */
  unreadPartitions?(): PartitionRef[];
  /**
   * The engine is stopping (a stop signal, a group re-join): make a pending next() return null
   * soon, and every later one. Sources whose next() never waits long need not have it; a Kafka
   * source waiting for records would otherwise keep the stop waiting until data arrives.
   */
  interrupt?(): void;
  /**
   * Stop (held) or go on delivering one partition, independently of pause: a rebuild holds a
   * partition that reached its resume position until the others have (see src/rebuild/replay.ts).
   * One-partition sources may leave it out (the router then simply does not read them).
   */
  hold?(p: PartitionRef, held: boolean): void;
  /**
   * Event-time alignment (--max-drift): stop (true) or go on delivering one partition that runs
   * ahead of the slowest one. Independent of pause and hold. Sources without it are simply not
   * read while every partition of theirs is ahead (files; the generator keeps its sides together).
   */
  align?(p: PartitionRef, paused: boolean): void;
  /**
   * Records arrive as they happen (Kafka, the paced generator): event times far ahead of the wall
   * clock are wrong, not early (--max-future).
   */
  readonly live?: boolean;
  /**
   * Work before the first batch that may overlap the workers' restore of a checkpoint (the
   * generator regenerates what the checkpoint says it delivered). The engine calls it once while
   * the workers start; next() waits for it.
   */
  prepare?(): Promise<void>;
  /** Position after the last batch handed out (the router routes a batch whole before the next). */
  checkpointPosition?(): SourcePosition;
  /**
   * Bytes a checkpoint stores beside that position, handed back at a resume (the generator's
   * state, so that it need not regenerate what it delivered); null: none this time.
   */
  checkpointState?(): Uint8Array | null;
  /** Read position and lag per partition, where the source knows them (Kafka), for /status and /metrics. */
  positions?(): PartitionPosition[];
  close(): Promise<void>;
}

export interface PartitionPosition extends PartitionRef {
  topic?: string;
  /** Next position to be handed to the router (Kafka: next offset). */
  offset: number;
  /** End of the partition as last seen (Kafka: highest high watermark seen). */
  end?: number;
  /** Records behind the end: end − offset. */
  lag?: number;
  paused?: boolean;
}
