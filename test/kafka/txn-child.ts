/**
 * Child process for test/kafka/txn.test.ts (not a test itself): opens a transactional
 * KafkaRecordSink, writes records into a transaction, sends them to the broker (flush, no commit),
 * prints "flushed N" and waits to be killed (SIGKILL), leaving its transaction open.
 *
 *   node dist/test/kafka/txn-child.js BROKER TOPIC TRANSACTIONAL_ID COUNT
 */
import { KafkaRecordSink } from '../../src/kafka/kafkajs/index.js';

const [broker, topic, transactionalId, count] = process.argv.slice(2);
const sink = await KafkaRecordSink.open({ brokers: [broker], topic, transactionalId, transactionTimeoutMs: 120_000, connectTimeoutMs: 10_000 });
const n = Number(count);
for (let i = 0; i < n; i++) {
  if (!sink.write(`k${i}`, `open-${i}`)) await sink.ready();
}
await sink.flush();
process.stdout.write(`flushed ${n}\n`);
setInterval(() => {}, 60_000); // keep the transaction open until killed
