/**
 * Admin calls of the kafkajs adapter: topics (describe, create, delete, add partitions), offsets
 * (low/high per partition, offsets for a time) and a group's committed offsets with their
 * metadata. Each call takes a client handle or a broker list (then it opens and closes its own).
 */
import type { Admin } from 'kafkajs';
import { JoineryError, usageError, type ErrorCode } from '../../core/errors.js';
import type { EnsureResult, KafkaTarget, TopicInfo } from '../port.js';
import { log } from '../../core/log.js';
import { formatDurationMs } from '../../core/units.js';
import { closeKafka, connectedAdmin, handleFrom, highWatermarks, privateCluster, waitForBroker, type KafkaHandle, type PrivateCluster } from './client.js';
import { errText, sleep } from './errors.js';
import { REQUIRE_STABLE, type OffsetFetchResponse } from './offset-fetch.js';

/** Existence and partition count of each topic. */
export async function describeTopics(brokers: KafkaTarget, topics: readonly string[],
  opts: { connectTimeoutMs?: number } = {}): Promise<TopicInfo[]> {
  const { h, own } = handleFrom(brokers, 'joinery-admin', opts.connectTimeoutMs);
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    return await describeWith(admin, topics);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

export async function describeWith(admin: Admin, topics: readonly string[]): Promise<TopicInfo[]> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  const counts = new Map<string, number>();
  if (present.length > 0) {
    const meta = await admin.fetchTopicMetadata({ topics: [...new Set(present)] });
    for (const t of meta.topics) counts.set(t.name, t.partitions.length);
  }
  return topics.map((topic) => ({ topic, exists: existing.has(topic), partitions: counts.get(topic) ?? 0 }));
}

/**
 * describeWith for an admin client kept across calls: one metadata request for every topic.
 * Asking for a deleted topic by name makes kafkajs refresh (and retry) it for a long time.
 */
export async function describeFromClusterMetadata(admin: Admin, topics: readonly string[]): Promise<TopicInfo[]> {
  const meta = await admin.fetchTopicMetadata();
  const counts = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  return topics.map((topic) => ({ topic, exists: counts.has(topic), partitions: counts.get(topic) ?? 0 }));
}

/**
 * Create the topics that do not exist yet (replication factor min(3, brokers in the cluster)),
 * waiting for their leaders. Existing topics are left alone; the result says what they have.
 */
export async function ensureTopics(brokers: KafkaTarget, specs: ReadonlyArray<{ topic: string; partitions: number }>,
  opts: { connectTimeoutMs?: number; code?: ErrorCode } = {}): Promise<EnsureResult[]> {
  const code = opts.code ?? 'E_OUTPUT';
  const { h, own } = handleFrom(brokers, 'joinery-admin', opts.connectTimeoutMs);
  for (const s of specs) {
    if (!Number.isInteger(s.partitions) || s.partitions < 1) throw usageError(`topic ${s.topic}: partitions must be a whole number ≥ 1 (got ${s.partitions})`);
  }
  const admin = await connectedAdmin(h, code);
  try {
    const before = await describeWith(admin, specs.map((s) => s.topic));
    const missing = specs.filter((s, i) => !before[i].exists);
    if (missing.length > 0) {
      const cluster = await admin.describeCluster();
      const rf = Math.max(1, Math.min(3, cluster.brokers.length));
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.partitions, replicationFactor: rf })),
        });
      } catch (e) {
        // a concurrent creator may have won the race; re-check below
        const again = await describeWith(admin, missing.map((s) => s.topic));
        if (again.some((t) => !t.exists)) throw new JoineryError(code, `creating Kafka topics ${missing.map((s) => s.topic).join(', ')} failed: ${errText(e)}`, { cause: e });
      }
    }
    const after = await describeWith(admin, specs.map((s) => s.topic));
    return after.map((t, i) => ({ topic: t.topic, created: !before[i].exists, partitions: t.partitions }));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Delete topics (tests and tools). Missing topics are ignored. */
export async function deleteTopics(brokers: KafkaTarget, topics: readonly string[]): Promise<void> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_OUTPUT');
  try {
    const existing = new Set(await admin.listTopics());
    const del = topics.filter((t) => existing.has(t));
    if (del.length > 0) await admin.deleteTopics({ topics: del });
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Raise a topic's partition count to `count` (tests and tools). */
export async function addPartitions(brokers: KafkaTarget, topic: string, count: number): Promise<void> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_OUTPUT');
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count }] });
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/**
 * Low watermark and end offset per partition of a topic (tests, tools, idle checks). `high` is the
 * last stable offset (kafkajs lists offsets read_committed): the high watermark, except that a
 * transaction still open holds it at that transaction's first record — the end a read_committed
 * consumer (KafkaSource) can reach. With `isolation: 'read_uncommitted'`, `high` is the high
 * watermark. Both are equal once no transaction is open on the partition; note that a committed
 * (or aborted) transaction's markers are written just after commitTransaction returns, so the
 * last stable offset can lag it by a few milliseconds.
 */
export async function topicOffsets(brokers: KafkaTarget, topic: string,
  opts: { isolation?: 'read_committed' | 'read_uncommitted' } = {}): Promise<Array<{ partition: number; low: string; high: string }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const o = await admin.fetchTopicOffsets(topic);
    const hw = opts.isolation === 'read_uncommitted' ? await highWatermarks(h, topic) : null;
    return o.map((p) => ({ partition: p.partition, low: p.low, high: hw ? String(hw.get(p.partition) ?? p.high) : p.high })).sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/**
 * Per partition of a topic: the first offset whose record timestamp is ≥ timeMs (Kafka's
 * offsets-for-times), or the partition's end when there is none; with its low and high offsets.
 */
export async function offsetsForTime(brokers: KafkaTarget, topic: string, timeMs: number): Promise<Array<{ partition: number; offset: number; low: number; high: number }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, timeMs);
    return ends.map((e) => {
      const t = Number(byTime.find((x) => x.partition === e.partition)?.offset ?? -1);
      const low = Number(e.low), high = Number(e.high);
      return { partition: e.partition, offset: t < 0 ? high : Math.max(low, Math.min(high, t)), low, high };
    }).sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** Committed offsets of a consumer group ('-1' = none). */
export async function groupOffsets(brokers: KafkaTarget, groupId: string, topics: string[]): Promise<Array<{ topic: string; partition: number; offset: string }>> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const r = await admin.fetchOffsets({ groupId, topics });
    return r.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}

/** A group's committed offset of one partition, with its metadata. */
export interface CommittedOffset { topic: string; partition: number; offset: string; metadata: string | null }

/**
 * How long a stable read waits for the group's pending transactional offsets: the producers'
 * transaction timeout (60 s; the coordinator then aborts the transaction) plus the coordinator's
 * check for timed-out transactions (every 10 s by default) and its markers.
 */
export const STABLE_OFFSETS_WAIT_MS = 90_000;

/**
 * Committed offsets of a consumer group with the metadata string stored with each ('-1' and null
 * = nothing committed). Offsets committed in a Kafka transaction show here once it is committed
 * (its markers written), never when it was aborted; the metadata is what
 * KafkaRecordSink.commitTransaction or KafkaSource.commit stored (e.g. the checkpoint id). Sorted
 * by topic, partition.
 *
 * With `requireStable`, a transaction that has sent offsets for one of these partitions and not
 * ended yet is waited for (OffsetFetch v7 require_stable, patch offset-fetch-stable: the
 * coordinator answers UNSTABLE_OFFSET_COMMIT until its markers are written), so the answer is
 * never the offsets that transaction is about to replace; after `stableWaitMs` it fails (E_INPUT,
 * naming the group). Without v7 (a broker older than Kafka 2.5, or the patch not installed) the
 * offsets are read until two reads 200 ms apart agree, with a warning (once) that the read is not
 * stable: a transaction ending just after those reads is missed.
 */
export async function fetchCommittedOffsets(brokers: KafkaTarget, groupId: string, topics: readonly string[],
  opts: { requireStable?: boolean; stableWaitMs?: number } = {}): Promise<CommittedOffset[]> {
  const { h, own } = handleFrom(brokers, 'joinery-admin');
  try {
    if (opts.requireStable) {
      const stable = await stableOffsets(h, groupId, topics, opts.stableWaitMs ?? STABLE_OFFSETS_WAIT_MS);
      if (stable) return stable;
      if (!unstableWarned) {
        unstableWarned = true;
        log.warn(`Kafka: the committed offsets of consumer group ${groupId} are not read stably (OffsetFetch v7 require_stable needs Kafka ≥ 2.5 and the kafkajs patch offset-fetch-stable): ` +
          'reading them until two reads agree, which misses an output transaction that ends just after', { code: 'E_INPUT' });
      }
      return await agreeingReads(h, groupId, topics);
    }
    return await plainRead(h, groupId, topics);
  } finally {
    if (own) closeKafka(h);
  }
}

let unstableWarned = false;

const byPartition = (a: CommittedOffset, b: CommittedOffset) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);

async function plainRead(h: KafkaHandle, groupId: string, topics: readonly string[]): Promise<CommittedOffset[]> {
  const admin = await connectedAdmin(h, 'E_INPUT');
  try {
    const r = await admin.fetchOffsets({ groupId, topics: [...topics] });
    return r.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null }))).sort(byPartition);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** The fallback without require_stable: read until two reads a moment apart agree. */
async function agreeingReads(h: KafkaHandle, groupId: string, topics: readonly string[]): Promise<CommittedOffset[]> {
  const key = (cs: CommittedOffset[]) => cs.map((c) => `${c.topic}/${c.partition}@${c.offset}:${c.metadata ?? ''}`).join(',');
  let prev = await plainRead(h, groupId, topics);
  for (let i = 0; i < 25; i++) {
    await sleep(200);
    const now = await plainRead(h, groupId, topics);
    if (key(now) === key(prev)) return now;
    prev = now;
  }
  return prev;
}

/**
 * OffsetFetch with require_stable to the group coordinator, through a private kafkajs cluster
 * (kafkajs's admin.fetchOffsets builds its own topics array, so the flag cannot ride on it).
 * UNSTABLE_OFFSET_COMMIT and the coordinator's other retriable answers are retried (20 ms doubling
 * to 500 ms) until `waitMs`. Null when the answer was not a stable one (the broker negotiated
 * OffsetFetch below v7, the patch is not installed, or kafkajs's private cluster factory is gone).
 */
async function stableOffsets(h: KafkaHandle, groupId: string, topics: readonly string[], waitMs: number): Promise<CommittedOffset[] | null> {
  await waitForBroker(h, 'E_INPUT');
  let cluster: PrivateCluster;
  try {
    cluster = privateCluster(h, { allowAutoTopicCreation: false }, 'fetch stable offsets');
  } catch {
    return null; // another kafkajs: read as without v7
  }
  const start = Date.now();
  let delayMs = 20;
  let unstable = 0;
  let last: unknown;
  try {
    await cluster.connect();
    const request: Array<{ topic: string; partitions: Array<{ partition: number }> }> & { [REQUIRE_STABLE]?: boolean } = [];
    for (const topic of new Set(topics)) {
      await cluster.addTargetTopic(topic);
      await cluster.refreshMetadataIfNecessary();
      request.push({ topic, partitions: cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId })).sort((a, b) => a.partition - b.partition) });
    }
    request[REQUIRE_STABLE] = true;
    for (;;) {
      try {
        const coordinator = await cluster.findGroupCoordinator({ groupId });
        const r = await coordinator.offsetFetch({ groupId, topics: request }) as Partial<OffsetFetchResponse>;
        if (r.requireStable !== true || !r.responses) return null;
        if (unstable > 0) log.debug(`Kafka: the committed offsets of consumer group ${groupId} became stable`, { waitedMs: Date.now() - start, unstableAnswers: unstable });
        return r.responses.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset, metadata: p.metadata ?? null }))).sort(byPartition);
      } catch (e) {
        const err = e as { type?: string; retriable?: boolean };
        if (err.type === 'UNSTABLE_OFFSET_COMMIT') unstable++;
        else if (!err.retriable) throw e;
        last = e;
      }
      const leftMs = start + waitMs - Date.now();
      if (leftMs <= 0) {
        throw new JoineryError('E_INPUT', unstable > 0
          ? `the committed offsets of consumer group ${groupId} stayed unstable for ${formatDurationMs(waitMs)}: a transaction with offsets for the group did not end (UNSTABLE_OFFSET_COMMIT)`
          : `reading the committed offsets of consumer group ${groupId} failed for ${formatDurationMs(waitMs)}: ${errText(last)}`, { cause: last });
      }
      await sleep(Math.min(delayMs, leftMs));
      delayMs = Math.min(delayMs * 2, 500);
    }
  } catch (e) {
    if (e instanceof JoineryError) throw e;
    throw new JoineryError('E_INPUT', `reading the committed offsets of consumer group ${groupId} failed: ${errText(e)}`, { cause: e });
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}
