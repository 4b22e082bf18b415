/**
 * The parts of the kafkajs source that are not the consumer loop: the per-partition state, the
 * start positions computed at open (startOffsets, else the group's committed offsets, else
 * `from`), the check that both input topics still exist with their partition counts, and the
 * pooled buffers batches are copied into.
 */
import type { Admin, Consumer, ConsumerConfig } from 'kafkajs';
import { JoineryError, usageError } from '../../core/errors.js';
import type { PartitionPosition, PartitionRef } from '../../source/source.js';
import type { Side } from '../../state/store.js';
import type { KafkaFrom, KafkaSourceOptions } from '../port.js';
import { describeFromClusterMetadata, describeWith } from './admin.js';
import { coPartitionedAssignerWith } from './assigner.js';
import type { BeforeJoinInfo } from './patches.js';
import type { KafkaHandle } from './client.js';
import { errText, isConnectivityError, sleep } from './errors.js';

export interface PartState {
  topic: string;
  side: Side;
  partition: number;
  /** Start position computed at open when the group had no committed offset, or given in startOffsets (floor for fetched records). */
  floor: number;
  /** floor comes from startOffsets: seek there on the first assignment, whatever the group committed. */
  explicitStart: boolean;
  /** Committed offset at open (-1 = none). */
  committedAtOpen: number;
  /** Next offset accepted into the queue (-1 = none yet in this process). */
  enqueuedNext: number;
  /** Next offset handed to next()'s caller (-1 = none yet). */
  deliveredNext: number;
  assigned: boolean;
  /** Not delivered nor fetched: userPaused || held. */
  paused: boolean;
  userPaused: boolean;
  held: boolean;
  /** Paused by event-time alignment (--max-drift). */
  aligned: boolean;
  /** Highest high watermark seen (at open, and with each fetched batch). */
  highSeen: number;
  /** Bytes and batches of this partition in the queue. */
  queuedBytes: number;
  queuedBatches: number;
}

export const DEFAULTS = {
  queueBytes: 32 * 1024 * 1024,
  minBytes: 256 * 1024,
  maxWaitTimeInMs: 50,
  /**
   * Kafka's and kafkajs's own default. 4 MiB before: a fetch response's records are decoded at
   * once and stay young objects while the router takes the batches before them, so every scavenge
   * of the main thread copied them again (2M JSON events: 1.1–2.1 s of scavenges against 0.5–0.75
   * s, 0.2–0.3 µs per event less CPU in GC threads, ~6 % less CPU in all, 4 interleaved pairs).
   * A fetch still carries 1 MiB per partition: ~20 MB/s per partition at 50 ms round trip.
   */
  maxBytesPerPartition: 1024 * 1024,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  /** How often the input topics' metadata is checked (deleted topic, partition count changed). */
  metadataPollMs: 2_000,
};



/** Call every waiter of a list and return a fresh empty one (waiters are promise resolvers: their continuations run later, never re-entering the old list). */
export function wakeAll(waiters: Array<() => void>): Array<() => void> {
  for (const f of waiters) f();
  return [];
}


/** Key of a topic-partition in the source's maps. */
export function partKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/**
 * What is wrong with the input topics' partition counts (null: nothing): they must be equal
 * (co-partitioned), and equal to those at open (`atOpen`).
 */
export function partitionProblem(opts: Pick<KafkaSourceOptions, 'leftTopic' | 'rightTopic'>, atOpen: readonly [number, number], left: number, right: number): string | null {
  const { leftTopic, rightTopic } = opts;
  const [l0, r0] = atOpen;
  const counts = `"${leftTopic}" (--left) has ${left} partition(s), "${rightTopic}" (--right) has ${right}`;
  if (left !== right) {
    return `Kafka input topics are not co-partitioned: ${counts}${left !== l0 || right !== r0 ? ` (${l0} and ${r0} when the run started)` : ''}; ` +
      'the join reads partition p of both topics together, so both need the same partition count (check with joinery topics)';
  }
  if (left !== l0 || right !== r0) {
    return `the partition count of the Kafka input topics changed while running: ${counts} (${l0} and ${r0} when the run started); ` +
      'restart joinery to read the new partitions (keys may have moved between partitions)';
  }
  return null;
}

/**
 * At open: check both topics, and compute each partition's start (startOffsets, else the group's
 * committed offsets, else `from`).
 */
export async function planPartitions(admin: Admin, h: KafkaHandle, opts: KafkaSourceOptions, from: KafkaFrom):
  Promise<{ parts: Map<string, PartState>; refs: PartitionRef[]; topicParts: [number, number] }> {
  const { leftTopic, rightTopic, groupId } = opts;
  const parts = new Map<string, PartState>();
  const info = await describeWith(admin, [leftTopic, rightTopic]);
  for (const [i, t] of info.entries()) {
    if (!t.exists) {
      throw new JoineryError('E_INPUT', `Kafka topic "${t.topic}" (--${i === 0 ? 'left' : 'right'} kafka:${t.topic}) does not exist on ${h.brokers.join(',')}; ` +
        `create it (joinery gen creates its topics) or check the name`);
    }
    if (t.partitions === 0) throw new JoineryError('E_INPUT', `Kafka topic "${t.topic}" has no partitions`);
  }
  const topicParts: [number, number] = [info[0].partitions, info[1].partitions];
  const skew = partitionProblem(opts, topicParts, info[0].partitions, info[1].partitions);
  if (skew) throw new JoineryError('E_INPUT', skew);
  // Start positions: startOffsets, else committed offsets of the group, else --from.
  const explicit = new Map<string, number>();
  for (const o of opts.startOffsets ?? []) {
    const side = o.topic === leftTopic ? 0 : o.topic === rightTopic ? 1 : -1;
    const off = Number(o.offset);
    if (side < 0) throw usageError(`startOffsets: topic ${JSON.stringify(o.topic)} is neither --left kafka:${leftTopic} nor --right kafka:${rightTopic}`);
    if (!Number.isInteger(o.partition) || o.partition < 0 || o.partition >= info[side].partitions) {
      throw new JoineryError('E_INPUT', `startOffsets: ${o.topic} has no partition ${o.partition} (it has ${info[side].partitions})`);
    }
    if (!Number.isSafeInteger(off) || off < 0) throw usageError(`startOffsets: offset of ${o.topic}/${o.partition} must be a whole number ≥ 0 (got ${String(o.offset)})`);
    explicit.set(partKey(o.topic, o.partition), off);
  }
  const committed = new Map<string, number>();
  // a broker just started answers "coordinator is loading" / "not the coordinator" for a while
  let fetched: Awaited<ReturnType<Admin['fetchOffsets']>> | null = null;
  for (let delayMs = 100, deadline = Date.now() + h.connectTimeoutMs; !fetched;) {
    try {
      fetched = await admin.fetchOffsets({ groupId, topics: [leftTopic, rightTopic] });
    } catch (e) {
      if (!isConnectivityError(e) || Date.now() >= deadline) throw new JoineryError('E_INPUT', `reading the committed offsets of group ${groupId} failed: ${errText(e)}`, { cause: e });
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 1_000);
    }
  }
  for (const t of fetched) {
    for (const p of t.partitions) committed.set(partKey(t.topic, p.partition), Number(p.offset));
  }
  const refs: PartitionRef[] = [];
  for (const [i, t] of info.entries()) {
    const side = i as Side;
    const offs = await admin.fetchTopicOffsets(t.topic);
    const byTime = typeof from === 'number' ? await admin.fetchTopicOffsetsByTimestamp(t.topic, from) : [];
    for (let p = 0; p < t.partitions; p++) {
      const o = offs.find((x) => x.partition === p);
      const low = Number(o?.low ?? 0), high = Number(o?.high ?? 0);
      const start = explicit.get(partKey(t.topic, p));
      if (start !== undefined && (start < low || start > high)) {
        throw new JoineryError('E_INPUT', `start offset ${start} of ${t.topic}/${p} is outside its records [${low}, ${high}]` +
          (start < low ? ' (deleted by retention?)' : ' (a checkpoint of another topic?)') + ': cannot resume exactly there');
      }
      // an explicit start replaces the committed offset in every position computed below
      const c = start !== undefined ? -1 : committed.get(partKey(t.topic, p)) ?? -1;
      let floor = start ?? -1;
      if (c < 0 && start === undefined) {
        if (from === 'earliest') floor = low;
        else if (from === 'latest') floor = high;
        else floor = Math.max(low, Number(byTime.find((x) => x.partition === p)?.offset ?? high));
      }
      parts.set(partKey(t.topic, p), {
        topic: t.topic, side, partition: p, floor, explicitStart: start !== undefined, committedAtOpen: c, enqueuedNext: -1, deliveredNext: -1,
        assigned: false, paused: false, userPaused: false, held: false, aligned: false, queuedBytes: 0, queuedBatches: 0, highSeen: high,
      });
      refs.push({ side, partition: p });
    }
  }
  return { parts, refs, topicParts };
}

/**
 * Both input topics still exist with the partition counts of the start, else `fail` (E_INPUT
 * naming the topic): a deleted topic otherwise looks like a lost broker to kafkajs, and partitions
 * added to one topic break the co-partitioning silently. Connectivity problems are left to the
 * consumer's reconnects. Polled every DEFAULTS.metadataPollMs once started.
 */
export class TopicWatch {
  private timer: NodeJS.Timeout | null = null;
  private admin: Admin | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly h: KafkaHandle, private readonly opts: KafkaSourceOptions, private readonly topicParts: readonly [number, number],
    private readonly fail: (e: Error) => void, private readonly done: () => boolean) {}

  start(): void {
    this.timer = setInterval(() => { void this.check(); }, DEFAULTS.metadataPollMs);
    this.timer.unref();
  }

  check(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.done()) return Promise.resolve();
    // bounded: an unreachable broker must not hold up the reconnects that wait for this
    let timer: NodeJS.Timeout | undefined;
    const bounded = Promise.race([this.checkOnce(), new Promise<void>((r) => { timer = setTimeout(r, 5_000); })]);
    this.inFlight = bounded.finally(() => { clearTimeout(timer); this.inFlight = null; });
    return this.inFlight;
  }

  private async checkOnce(): Promise<void> {
    const { leftTopic, rightTopic } = this.opts;
    try {
      if (!this.admin) { const a = this.h.kafka.admin({ retry: { retries: 1 } }); await a.connect(); this.admin = a; }
      const info = await describeFromClusterMetadata(this.admin, [leftTopic, rightTopic]);
      if (this.done()) return;
      const gone = info.findIndex((t) => !t.exists);
      if (gone >= 0) {
        this.fail(new JoineryError('E_INPUT', `Kafka input topic "${info[gone].topic}" (--${gone === 0 ? 'left' : 'right'}) no longer exists on ${this.h.brokers.join(',')}: it was deleted while the run was reading it`));
        return;
      }
      const problem = partitionProblem(this.opts, this.topicParts, info[0].partitions, info[1].partitions);
      if (problem) this.fail(new JoineryError('E_INPUT', problem));
    } catch {
      const a = this.admin;
      this.admin = null;
      void a?.disconnect().catch(() => {});
    }
  }

  stop(): void {
    if (this.timer) { clearInterval(this.timer); this.timer = null; }
  }

  /** The admin client, for its owner to disconnect at close. */
  releaseAdmin(): Admin | null {
    const a = this.admin;
    this.admin = null;
    return a;
  }
}

/** The kafkajs consumer's settings for `nParts` partitions in all. */
export function consumerConfig(opts: KafkaSourceOptions, nParts: number, beforeJoin: ((info: BeforeJoinInfo) => Promise<void>) | undefined): ConsumerConfig {
  const maxBytesPerPartition = opts.maxBytesPerPartition ?? DEFAULTS.maxBytesPerPartition;
  return {
    groupId: opts.groupId,
    minBytes: opts.minBytes ?? DEFAULTS.minBytes,
    maxWaitTimeInMs: opts.maxWaitTimeInMs ?? DEFAULTS.maxWaitTimeInMs,
    maxBytesPerPartition,
    maxBytes: Math.min(64 * 1024 * 1024, Math.max(10 * 1024 * 1024, nParts * maxBytesPerPartition)),
    sessionTimeout: opts.sessionTimeoutMs ?? DEFAULTS.sessionTimeoutMs,
    heartbeatInterval: opts.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
    allowAutoTopicCreation: false,
    partitionAssigners: [coPartitionedAssignerWith(beforeJoin)],
    // kafkajs's own restart after a crash cannot be stopped while it re-joins the group (its
    // Runner is not yet 'running', so disconnect() skips it and it fetches on afterwards, keeping
    // the process alive): restarts are done here instead (onConsumerGaveUp), with a new consumer.
    retry: { retries: 5, restartOnFailure: async () => false },
  };
}

/** True when every partition of `mine` has been read up to its end offset now. */
export async function partitionsAtEnd(admin: Admin, groupId: string, mine: readonly PartState[]): Promise<boolean> {
  const topics = [...new Set(mine.map((st) => st.topic))];
  const highs = new Map<string, number>();
  for (const t of topics) for (const o of await admin.fetchTopicOffsets(t)) highs.set(partKey(t, o.partition), Number(o.high));
  let committed: Map<string, number> | null = null;
  if (mine.some((st) => st.enqueuedNext < 0 && st.floor < 0)) {
    committed = new Map();
    for (const t of await admin.fetchOffsets({ groupId: groupId, topics })) {
      for (const p of t.partitions) committed.set(partKey(t.topic, p.partition), Number(p.offset));
    }
  }
  for (const st of mine) {
    const k = partKey(st.topic, st.partition);
    let pos = Math.max(st.enqueuedNext, st.floor, st.committedAtOpen);
    if (committed) pos = Math.max(pos, committed.get(k) ?? -1);
    if (pos < (highs.get(k) ?? 0)) return false;
  }
  return true;
}

/** Assigned partitions with records not handed out yet: queued, or below the highest high watermark seen. */
export function unreadOf(parts: Iterable<PartState>): PartitionRef[] {
  const out: PartitionRef[] = [];
  for (const st of parts) {
    if (!st.assigned) continue;
    const pos = Math.max(st.deliveredNext, st.floor, st.committedAtOpen);
    if (st.queuedBatches > 0 || pos < st.highSeen) out.push({ side: st.side, partition: st.partition });
  }
  return out;
}

/** Per assigned partition: next offset to deliver, highest high watermark seen, lag between them. */
export function positionsOf(parts: Iterable<PartState>): PartitionPosition[] {
  return [...parts].filter((st) => st.assigned).map((st) => {
    const offset = Math.max(st.deliveredNext, st.floor, st.committedAtOpen, 0);
    return { side: st.side, partition: st.partition, topic: st.topic, offset, end: st.highSeen, lag: Math.max(0, st.highSeen - offset), paused: st.paused };
  });
}

/** One commit of group offsets through a consumer; throws when it was not sent. */
export async function commitOnce(c: Consumer | null, positions: ReadonlyArray<{ topic: string; partition: number; offset: string | number | bigint }>, metadata?: string): Promise<void> {
  if (!c) throw new Error('consumer closed');
  // kafkajs returns without committing (and without an error) while its consumer is not
  // running, e.g. re-joining the group after a broker restart: only its COMMIT_OFFSETS event
  // says the commit was sent and acknowledged.
  let sent = false;
  const off = c.on(c.events.COMMIT_OFFSETS, () => { sent = true; });
  try {
    await c.commitOffsets(positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: String(p.offset), metadata: metadata ?? null })));
  } finally {
    off();
  }
  if (!sent) throw new Error('the Kafka consumer is not running (re-joining its group); offsets not committed');
}
