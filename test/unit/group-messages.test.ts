/**
 * The group-messages patch (src/kafka/kafkajs/patches.ts): a send's messages grouped by partition
 * exactly as kafkajs's partitioner places them, in order, whether a message names its partition
 * (taken as it is, without calling the partitioner) or leaves it to the key's murmur2 hash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import '../../src/kafka/kafkajs/patches.js'; // kafkajs loaded with the patches

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const req = createRequire(import.meta.url);
const group = req('kafkajs/src/producer/groupMessagesPerPartition.js') as (a: Any) => Record<number, Any[]>;
const { Partitioners } = req('kafkajs') as Any;

test('messages go to the partition they name, or to the one kafkajs\'s default partitioner picks, in order', () => {
  const partitionMetadata = [0, 1, 2, 3].map((p) => ({ partitionId: p, leader: 0 }));
  const messages = Array.from({ length: 200 }, (_, i) => ({
    key: Buffer.from(`[${i * 7919}]`), value: Buffer.from(String(i)),
    // named partitions on most messages, none (null or missing) on the rest: the key's hash decides
    ...(i % 5 === 0 ? {} : i % 5 === 1 ? { partition: null } : { partition: i % 4 }),
  }));
  let calls = 0;
  const kafkajsPartitioner = Partitioners.DefaultPartitioner();
  const counted = (a: Any): number => { calls++; return kafkajsPartitioner(a); };
  const got = group({ topic: 't', partitionMetadata, messages, partitioner: counted });
  const reference = Partitioners.DefaultPartitioner();
  const want: Record<number, Any[]> = {};
  for (const message of messages) (want[reference({ topic: 't', partitionMetadata, message })] ??= []).push(message);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const p of Object.keys(want)) {
    assert.equal(got[Number(p)].length, want[Number(p)].length, `partition ${p}`);
    got[Number(p)].forEach((m, i) => assert.equal(m, want[Number(p)][i], `partition ${p}, message ${i}`));
  }
  assert.equal(calls, 80, 'the partitioner is asked only for messages that name no partition');
  assert.deepEqual(group({ topic: 't', partitionMetadata: [], messages, partitioner: counted }), {}, 'no partitions known: nothing grouped');
});
