/**
 * Writing raw records, for the Kafka tests (moved out of the product: it has no
 * use for it); reading a topic back is the product's own (src/kafka/kafkajs/read-topic.ts, used by verify).
 */
import { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';
import { closeKafka, createKafka, waitForBroker, type KafkaHandle } from '../../src/kafka/kafkajs/index.js';
export { readTopic } from '../../src/kafka/kafkajs/read-topic.js';

const CONNECT_TIMEOUT_MS = 30_000;

function handleFrom(h: KafkaHandle | readonly string[], clientId: string): { h: KafkaHandle; own: boolean } {
  if (!Array.isArray(h) && typeof (h as KafkaHandle).kafka === 'object') return { h: h as KafkaHandle, own: false };
  return { h: createKafka([...(h as readonly string[])], clientId, { connectTimeoutMs: CONNECT_TIMEOUT_MS }), own: true };
}

// required only when used, i.e. after src/kafka/kafkajs/patches.ts has installed its patches
const kafkajs = (): typeof KafkaJS => createRequire(import.meta.url)('kafkajs') as typeof KafkaJS;

/** A throw-away raw producer for tests: sends values (and optional keys) as they are, no batching logic. */
export async function produceRaw(brokers: KafkaHandle | readonly string[], topic: string,
  records: ReadonlyArray<{ key?: string | Buffer | null; value: string | Buffer | null; partition?: number }>): Promise<void> {
  const { h, own } = handleFrom(brokers, 'joinery-raw');
  // Idempotent: a send retried after a timeout (a broker just started, a loaded machine) must not
  // write its batch twice — a test's expected counts come from what it meant to produce.
  const producer = h.kafka.producer({ createPartitioner: kafkajs().Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 5_000) {
      await producer.send({ topic, acks: -1, messages: records.slice(i, i + 5_000).map((r) => ({ key: r.key ?? null, value: r.value, partition: r.partition })) });
    }
  } finally {
    await producer.disconnect().catch(() => {});
    if (own) closeKafka(h);
  }
}
