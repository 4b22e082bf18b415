/**
 * The Kafka port's boundaries, read from the sources: kafkajs enters only through its adapter
 * (src/kafka/kafkajs/), the rest of src reaches the adapter only through src/kafka/adapters.ts,
 * source and sink kinds are parsed only in src/config/endpoints.ts, batches carry their log
 * position explicitly (RecordBatch.logPosition), and the adapter's modules stay small.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { srcFiles } from './src-files.js';

const all = srcFiles();

test('only src/kafka/kafkajs/ loads kafkajs', () => {
  const outside = all.filter((f) => !f.file.startsWith('src/kafka/kafkajs/') && /(from|require\(|import\()\s*'kafkajs(\/[^']*)?'/.test(f.text));
  assert.deepEqual(outside.map((f) => f.file), []);
});

test('outside the adapter, src reaches it only through src/kafka/adapters.ts', () => {
  const users = all.filter((f) => !f.file.startsWith('src/kafka/kafkajs/') && f.file !== 'src/kafka/adapters.ts' && /['/]kafkajs\/[a-z-]+\.js'/.test(f.text));
  assert.deepEqual(users.map((f) => f.file), []);
});

test('file:, kafka:, gen:, stdout and null are parsed only in src/config/endpoints.ts', () => {
  const prefix = /startsWith\('(file|kafka|gen):'\)|(?<![kK]ind) === '(stdout|null)'|\.slice\((5|6)\)/;
  const parsers = all.filter((f) => f.file !== 'src/config/endpoints.ts' && f.file.match(/^src\/(cli|member|engine|config|core|sink|source|kafka\/[a-z-]+|rebuild|verify|worker|router|checkpoint)/) && prefix.test(f.text));
  assert.deepEqual(parsers.map((f) => f.file), []);
});

test('no batch is duck-typed as a Kafka batch: its position is the explicit batch.logPosition', () => {
  const duck = /as \{ topic\?|RecordBatch & \{ (topic|kafkaPartition|nextOffset)\??:/;
  assert.deepEqual(all.filter((f) => duck.test(f.text)).map((f) => f.file), []);
});

test('the Kafka modules stay under ~600 lines', () => {
  const big = all.filter((f) => f.file.startsWith('src/kafka/') && f.text.split('\n').length > 600).map((f) => `${f.file}: ${f.text.split('\n').length}`);
  assert.deepEqual(big, []);
});
