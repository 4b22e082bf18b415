/**
 * Reading a topic back from the beginning to its end as seen at the start, without a group commit:
 * `joinery verify --output kafka:TOPIC` and the Kafka tests. It goes through the product's client
 * (createKafka), so kafkajs runs with the same patches as in joinery itself.
 */
import type * as KafkaJS from 'kafkajs';
import type { KafkaTarget } from '../port.js';
import { closeKafka, handleFrom, highWatermarks, waitForBroker, type KafkaHandle } from './client.js';

async function connectedAdmin(h: KafkaHandle): Promise<KafkaJS.Admin> {
  await waitForBroker(h);
  const admin = h.kafka.admin();
  await admin.connect();
  return admin;
}

/**
 * Read every record of a topic from the beginning up to each partition's end as seen at the
 * start (no group commits).
 *
 * `isolation` (default read_committed, as the KafkaSource reads): read_committed returns only
 * records of committed transactions (kafkajs drops aborted ones using the fetch response's
 * aborted-transaction list, and transaction markers) and reads up to the last stable offset: a
 * transaction that is still open ends the read at its first record (records committed after it
 * are not readable before it ends either). read_uncommitted returns aborted and open-transaction
 * records too and reads up to the high watermark.
 */
export async function readTopic(brokers: KafkaTarget, topic: string,
  onRecord: (r: { partition: number; offset: string; key: Buffer | null; value: Buffer | null }) => void,
  opts: { timeoutMs?: number; isolation?: 'read_committed' | 'read_uncommitted' } = {}): Promise<number> {
  const { h, own } = handleFrom(brokers, 'joinery-reader');
  const admin = await connectedAdmin(h);
  let highs: Map<number, number>;
  try {
    // admin's "high" is the last stable offset (kafkajs lists offsets read_committed)
    highs = opts.isolation === 'read_uncommitted' ? await highWatermarks(h, topic)
      : new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
  const remaining = new Set([...highs].filter(([, hi]) => hi > 0).map(([p]) => p));
  if (remaining.size === 0) return 0;
  const consumer = h.kafka.consumer({
    groupId: `joinery-reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 50, minBytes: 1,
    readUncommitted: opts.isolation === 'read_uncommitted',
  });
  let n = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  const reached = (partition: number, lastOffset: string): void => {
    if (Number(lastOffset) + 1 >= (highs.get(partition) ?? 0)) { remaining.delete(partition); if (remaining.size === 0) done(); }
  };
  // a fetch holding only transaction markers or aborted records never reaches eachBatch
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    if (e.payload.topic === topic && e.payload.batchSize === 0) reached(e.payload.partition, e.payload.lastOffset);
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: Math.max(1, highs.size),
      eachBatch: async ({ batch }) => {
        const hi = highs.get(batch.partition) ?? 0;
        for (const m of batch.messages) {
          if (Number(m.offset) >= hi) break;
          onRecord({ partition: batch.partition, offset: m.offset, key: m.key, value: m.value });
          n++;
        }
        reached(batch.partition, batch.lastOffset());
      },
    });
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`reading ${topic} timed out after ${timeoutMs} ms with ${n} records` +
      ` (partitions ${[...remaining].join(', ')} not at their end)`)), timeoutMs); })]);
    clearTimeout(t);
  } finally {
    await consumer.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
  return n;
}
