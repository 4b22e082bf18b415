/**
 * The Kafka port: what the engine, the CLI and the group member need from a Kafka client, in
 * joinery's own types. One adapter implements it (src/kafka/kafkajs/, over kafkajs 2.2.4); no
 * kafkajs type appears here, so another client is one more adapter (see adapters.ts and
 * docs/architecture.md).
 *
 * - KafkaInput: two co-partitioned topics as one Source, read by a consumer group: assignment
 *   (onAssignment, assignedKafkaPartitions, awaitGeneration), the re-join hook (beforeRejoin),
 *   commit with metadata, pause/resume per partition, resetTo for a new assignment.
 * - KafkaRecordOutput: the joined output, keyed; transactional (commitTransaction commits the
 *   records so far with the input's group offsets) or plain.
 * - KafkaLineOutput: one record per line (late events, dead letters).
 * - KafkaAdmin: topics, offsets, a group's committed offsets with their metadata.
 */
import type { SourcePosition } from '../checkpoint/manifest.js';
import type { LineSink, RecordSink } from '../sink/sink.js';
import type { LogPosition, PartitionRef, RecordBatch, Source } from '../source/source.js';
import type { Side } from '../state/store.js';
import type { KafkaFrom } from './options.js';

export type { KafkaFrom } from './options.js';

/**
 * A connection shared by several sources, sinks and admin calls (openClient); opaque outside its
 * adapter. Sources and sinks given none open their own.
 */
export interface KafkaClient {
  readonly brokers: readonly string[];
}

/** Where admin calls connect: a shared client, or a broker list (a client for the one call). */
export type KafkaTarget = KafkaClient | readonly string[];

export interface TopicInfo {
  topic: string;
  exists: boolean;
  /** Partition count (0 when the topic does not exist). */
  partitions: number;
}

export interface EnsureResult {
  topic: string;
  created: boolean;
  /** Partition count now (an existing topic keeps its own count). */
  partitions: number;
}

/** Where a Kafka batch ends, in Kafka's terms (the adapter's own bookkeeping, its tests). */
export interface KafkaBatchPosition {
  topic: string;
  partition: number;
  /** Next offset after the batch (offset of its last record, or of trailing control records, + 1). */
  nextOffset: string;
}

/**
 * A RecordBatch from Kafka, with what the engine needs to commit and report positions: the core
 * reads `logPosition` (the same place as `kafka`, source-neutral); `kafka` stays for the adapter.
 */
export interface KafkaRecordBatch extends RecordBatch {
  kafka: KafkaBatchPosition;
  logPosition: LogPosition;
  /** The partition's high watermark when the batch was fetched. */
  highWatermark: string;
  /**
   * Kafka offset of each record when the batch's offsets are not contiguous (compacted topics,
   * transaction markers); undefined otherwise, and then record i has offset firstPosition + i.
   */
  recordOffsets?: Float64Array;
}

export interface KafkaSourceOptions {
  brokers: string[];
  /** Reuse a client (else one is created). */
  kafka?: KafkaClient;
  clientId?: string;
  groupId: string;
  leftTopic: string;
  rightTopic: string;
  /** Record format of the values (the router decodes them). */
  format: 'json' | 'flatbuffers';
  /** Start of partitions the group has no committed offset for (default earliest). */
  from?: KafkaFrom;
  /**
   * Exact start positions (next offset to read) of some partitions, e.g. from a checkpoint: they
   * override the group's committed offsets and `from`. Applied (seek) when the partition is first
   * assigned to this process, before any of its batches is delivered. An offset outside
   * [earliest, end] of its partition fails open (records were deleted, or the checkpoint does not
   * belong to this topic), since starting elsewhere would lose or repeat records.
   */
  startOffsets?: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>;
  /** next() returns null once every assigned partition has sat at its end this long (0 = never). */
  exitWhenIdleMs?: number;
  connectTimeoutMs?: number;
  /** How long to keep reconnecting after losing the broker mid-run (default max(60 s, connectTimeoutMs)). */
  reconnectTimeoutMs?: number;
  /** Bytes of fetched records held between eachBatch and next() (default 32 MiB). */
  queueBytes?: number;
  minBytes?: number;
  maxWaitTimeInMs?: number;
  maxBytesPerPartition?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Called on every group join with the partitions gained and lost (side/partition). */
  onAssignment?: (change: { assigned: PartitionRef[]; revoked: PartitionRef[]; generation: number }) => void;
  /**
   * Awaited before this member re-joins its group (a rebalance, or a new consumer after a lost
   * broker), while it still owns its partitions: the place to commit what has been applied of
   * them (a checkpoint). Delivery is suspended from then on (next() returns null) until
   * resetTo(). Without it, re-joins happen at once and delivery goes on. `evicted` (an error
   * type such as UNKNOWN_MEMBER_ID) says the group no longer counts this member in the generation
   * it holds: its partitions may be another member's already, so nothing may be committed.
   */
  beforeRejoin?: (info: { evicted: string | null }) => Promise<void>;
}

/**
 * This member's place in its consumer group (the last join): a transactional offset commit that
 * carries it is refused by the group coordinator once the member was evicted (KIP-447).
 */
export interface GroupMembership { generationId: number; memberId: string; groupInstanceId?: string | null }

export type KafkaCompression = 'none' | 'gzip';

export interface KafkaProducerOptions {
  brokers: string[];
  kafka?: KafkaClient;
  clientId?: string;
  topic: string;
  compression?: KafkaCompression;
  connectTimeoutMs?: number;
  /** Create the topic with this many partitions when it is missing (else a missing topic is an error). */
  createPartitions?: number;
  /** A send carries at least this many records unless the linger time passes first (default 1000). */
  batchRecords?: number;
  /** Longest wait before a partial batch is sent (default 20 ms). */
  lingerMs?: number;
  /** Most records in one produce request (default 16384). */
  maxSendRecords?: number;
  /**
   * Most key+value bytes for one partition in one produce request (default 900 KiB): a partition's
   * records form one record batch, which the broker rejects above message.max.bytes (1 MiB by default).
   */
  maxBatchBytes?: number;
  /** write() returns false above this many buffered records (default 65536) … */
  highWaterRecords?: number;
  /**
   * … or above this many key+value bytes buffered, the send in flight included (default 32 MiB;
   * keep it above two sends, see maxSendRecords and maxBatchBytes, or sends get smaller).
   */
  highWaterBytes?: number;
  /** kafkajs retries of one send (default 10; backoff 200 ms × 2 up to 5 s) … */
  retries?: number;
  /** … and, while the broker is unreachable, how long the same send is repeated before the sink fails (default 60 s). */
  reconnectTimeoutMs?: number;
  /**
   * Transactional mode (KafkaRecordSink only): records go into Kafka transactions under this id,
   * committed with commitTransaction() together with consumer-group offsets. Opening the sink
   * fences every earlier producer with the same id and aborts its open transaction, so one
   * transactional id per output stream and engine instance (a restart reuses it).
   */
  transactionalId?: string;
  /**
   * The broker aborts a transaction that stays open longer than this (ms, default 60000, at most
   * the broker's transaction.max.timeout.ms, 15 min by default): commit at least this often
   * while writing. The clock starts with the first send after a commit.
   */
  transactionTimeoutMs?: number;
}

/** A consumer-group position committed with a transaction (offset = next offset to read). */
export interface TransactionOffset {
  topic: string;
  partition: number;
  offset: string | number | bigint;
}

/** Counters of a Kafka sink. */
export interface KafkaSinkStats { records: number; bytes: number; sends: number; commits: number; aborts: number }

/** The joined output to a topic: keyed records, optionally in transactions (exactly-once). */
export interface KafkaRecordOutput extends RecordSink {
  readonly stats: KafkaSinkStats;
  /** True when opened with a transactionalId. */
  readonly transactional: boolean;
  /** Records buffered, not yet handed to the broker. */
  readonly buffered: number;
  /** Key+value bytes held until the broker acknowledges them. */
  readonly bufferedBytes: number;
  write(key: Uint8Array | string | null, value: Uint8Array | string): boolean;
  /**
   * Records written so far + the group's offsets (each with `metadata`), atomically. With
   * `membership` the coordinator checks it: a member it evicted gets JoineryError('E_GROUP_EVICTED'),
   * its transaction aborted (the sink stays usable).
   */
  commitTransaction(groupId: string, offsets: readonly TransactionOffset[], metadata: string, membership?: GroupMembership | null): Promise<void>;
  /** Drop the records written since the last commit and abort the open transaction. */
  abortTransaction(): Promise<void>;
}

/** One record per line (late events, dead letters). flush() and close() return promises. */
export interface KafkaLineOutput extends LineSink {
  readonly stats: KafkaSinkStats;
  readonly needsDrain: boolean;
  ready(): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Counters of a Kafka input. */
export interface KafkaInputStats {
  batches: number; records: number; bytes: number; droppedBelowPosition: number; rebalances: number;
  purgedBatches: number; queueWaits: number; reconnects: number;
}

/** Two topics (left → side 0, right → side 1) read as one Source by a member of a consumer group. */
export interface KafkaInput extends Source {
  readonly format: 'json' | 'flatbuffers';
  readonly stats: KafkaInputStats;
  next(): Promise<KafkaRecordBatch | null>;
  /** Group generations joined so far (0 before the first assignment). */
  readonly generationSeen: number;
  /** The consumer's generation id and member id of the last join (null before it, or without a re-join hook). */
  readonly membership: GroupMembership | null;
  /**
   * Forget every position handed out and drop what is queued: this member was evicted, its work
   * since the last commit is void, and every partition it gets again is read from where the
   * group's committed offsets (or resetTo) say. Suspends delivery until resetTo().
   */
  discardPositions(): void;
  /** Resolves once a group join after generation `after` has happened. */
  awaitGeneration(after: number): Promise<number>;
  /** Kafka partitions (numbers, as both topics share them) assigned to this member now. */
  assignedKafkaPartitions(): number[];
  assignedPartitions(): PartitionRef[];
  /** Stop delivering and fetching until resetTo(). */
  suspend(): void;
  readonly isSuspended: boolean;
  interrupt(): void;
  /** Start the current assignment afresh at these next offsets. */
  resetTo(startOffsets: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>): void;
  pause(side: Side, partition: number): void;
  resume(side: Side, partition: number): void;
  isPaused(side: Side, partition: number): boolean;
  hold(p: PartitionRef, held: boolean): void;
  align(p: PartitionRef, paused: boolean): void;
  unreadPartitions(): PartitionRef[];
  /** Next offset handed out so far per assigned partition. */
  deliveredPositions(): Array<{ topic: string; partition: number; offset: string }>;
  checkpointPosition(): SourcePosition;
  /** Commit next offsets for the group (partitions not assigned any more are skipped), each with `metadata`. */
  commit(positions: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>, metadata?: string): Promise<{ skipped: number }>;
}

/** Admin calls; each takes a shared client or a broker list. */
export interface KafkaAdmin {
  describeTopics(target: KafkaTarget, topics: readonly string[], opts?: { connectTimeoutMs?: number }): Promise<TopicInfo[]>;
  ensureTopics(target: KafkaTarget, specs: ReadonlyArray<{ topic: string; partitions: number }>,
    opts?: { connectTimeoutMs?: number; code?: 'E_INPUT' | 'E_OUTPUT' }): Promise<EnsureResult[]>;
  deleteTopics(target: KafkaTarget, topics: readonly string[]): Promise<void>;
  addPartitions(target: KafkaTarget, topic: string, count: number): Promise<void>;
  /** Low and end offset per partition (end: last stable offset, or the high watermark with read_uncommitted). */
  topicOffsets(target: KafkaTarget, topic: string, opts?: { isolation?: 'read_committed' | 'read_uncommitted' }): Promise<Array<{ partition: number; low: string; high: string }>>;
  /** Per partition: the first offset whose timestamp is ≥ timeMs (else the end), with low and high. */
  offsetsForTime(target: KafkaTarget, topic: string, timeMs: number): Promise<Array<{ partition: number; offset: number; low: number; high: number }>>;
  groupOffsets(target: KafkaTarget, groupId: string, topics: string[]): Promise<Array<{ topic: string; partition: number; offset: string }>>;
  /**
   * A group's committed offsets with the metadata stored with each ('-1' and null: none). With
   * `requireStable`, an open transaction holding offsets for these partitions is waited for (up to
   * `stableWaitMs`, then E_INPUT) instead of answering the offsets it is about to replace.
   */
  fetchCommittedOffsets(target: KafkaTarget, groupId: string, topics: readonly string[],
    opts?: { requireStable?: boolean; stableWaitMs?: number }): Promise<Array<{ topic: string; partition: number; offset: string; metadata: string | null }>>;
}

/** A Kafka client library behind the port. */
export interface KafkaAdapter {
  readonly name: string;
  /**
   * The start-up self-check of the client: log (debug) what is patched or active, warn about
   * what is missing, and throw (E_KAFKA_PATCH) when `groupMemberCheckpoints` needs a hook the
   * client lacks (checkpointing before a rebalance).
   */
  checkClient(opts: { groupMemberCheckpoints: boolean }): void;
  openClient(brokers: string[], clientId: string, opts: { connectTimeoutMs: number }): KafkaClient;
  /** Close what is left of a shared client's connections, once its users are closed. */
  closeClient(client: KafkaClient): void;
  openSource(opts: KafkaSourceOptions): Promise<KafkaInput>;
  openRecordSink(opts: KafkaProducerOptions): Promise<KafkaRecordOutput>;
  openLineSink(opts: KafkaProducerOptions): Promise<KafkaLineOutput>;
  readonly admin: KafkaAdmin;
  /** Partition of a keyed record, as the Java client's default partitioner computes it. */
  partitionForKey(key: Buffer | string, partitions: number): number;
  /** Every record of a topic from its beginning to its end as seen at the start (no group commits). */
  readTopic(target: KafkaTarget, topic: string, onRecord: (r: { partition: number; offset: string; key: Buffer | null; value: Buffer | null }) => void,
    opts?: { timeoutMs?: number; isolation?: 'read_committed' | 'read_uncommitted' }): Promise<number>;
}
