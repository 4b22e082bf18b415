/**
 * The kafkajs adapter: the Kafka port (../port.ts) implemented over kafkajs 2.2.4.
 *
 *   patches.ts       loads kafkajs with every require-cache/prototype patch and the fast codec; the start-up check
 *   fast-codec.ts    faster record-batch codec and CRC32C installed into kafkajs's protocol modules
 *   client.ts        connection settings, socket tracking, waiting for a broker, kafkajs logs
 *   admin.ts         topics, offsets, committed offsets
 *   assigner.ts      the co-partitioned group assignment with the re-join hook
 *   source*.ts       KafkaSource (consumer loop, start positions, topic watch, batch queue)
 *   producer.ts      the batching idempotent/transactional producer; sink.ts the two sinks over it
 *   read-topic.ts    reading a topic back to its end (verify, tests)
 *   errors.ts        which kafkajs errors are retried, reconnected or final
 *
 * Only this folder imports kafkajs. Tests and tools may import its classes directly (below).
 */
import type { KafkaAdapter, KafkaClient } from '../port.js';
import * as admin from './admin.js';
import { closeKafka, createKafka, type KafkaHandle } from './client.js';
import { checkKafkajsPatches, partitionForKey } from './patches.js';
import { readTopic } from './read-topic.js';
import { KafkaLineSink, KafkaRecordSink } from './sink.js';
import { KafkaSource } from './source.js';

export const kafkajsAdapter: KafkaAdapter = {
  name: 'kafkajs',
  checkClient: checkKafkajsPatches,
  openClient: (brokers, clientId, opts) => createKafka(brokers, clientId, opts),
  closeClient: (client: KafkaClient) => { closeKafka(client as KafkaHandle); },
  openSource: (opts) => KafkaSource.open(opts),
  openRecordSink: (opts) => KafkaRecordSink.open(opts),
  openLineSink: (opts) => KafkaLineSink.open(opts),
  admin: {
    describeTopics: admin.describeTopics, ensureTopics: admin.ensureTopics, deleteTopics: admin.deleteTopics, addPartitions: admin.addPartitions,
    topicOffsets: admin.topicOffsets, offsetsForTime: admin.offsetsForTime, groupOffsets: admin.groupOffsets, fetchCommittedOffsets: admin.fetchCommittedOffsets,
  },
  partitionForKey,
  readTopic,
};

export * from './admin.js';
export { closeKafka, createKafka, highWatermarks, waitForBroker, type KafkaHandle } from './client.js';
export { checkKafkajsPatches, kafkajsPatchStatus, partitionForKey, type KafkajsPatchName, type KafkajsPatchStatus } from './patches.js';
export { readTopic } from './read-topic.js';
export { KafkaLineSink, KafkaRecordSink } from './sink.js';
export { KafkaSource } from './source.js';
export * from '../port.js';
export { parseBrokers, parseFrom } from '../options.js';
