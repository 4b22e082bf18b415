/**
 * Stable reads of a group's committed offsets against the real broker (patch offset-fetch-stable,
 * OffsetFetch v7 require_stable): while a transaction that sent offsets for the group is open, a
 * plain read (and the old "two reads that agree") answers the previous offsets; the stable read
 * waits until the transaction ends and answers what it committed (or, aborted, the previous ones),
 * and gives up after its bound with E_INPUT naming the group. A group member plans from the stable
 * read (src/member.ts), so it never restores a checkpoint older than output already committing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { JoineryError } from '../../src/core/errors.js';
import { closeKafka, createKafka, deleteTopics, ensureTopics, fetchCommittedOffsets, kafkajsPatchStatus } from '../../src/kafka/kafkajs/index.js';
import { brokers, sleep, uniq } from './support.js';
import { checkpointMetadata } from '../../src/checkpoint/handoff.js';
import type { Config } from '../../src/config/schema.js';
import { committedCheckpointId } from '../../src/kafka/io.js';

const T = { timeout: 120_000 };
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'; // the raw kafkajs producer below
const created: string[] = [];
after(async () => {
  const b = process.env.JOINERY_TEST_KAFKA?.trim();
  if (b && created.length > 0) await deleteTopics([b], created).catch(() => {});
});

test('a stable read waits for an open transaction\'s offsets (require_stable); a plain read answers the previous ones', T, async () => {
  assert.equal(kafkajsPatchStatus().find((s) => s.name === 'offset-fetch-stable')?.active, true);
  const topic = uniq('stable'), group = uniq('stable-g');
  await ensureTopics(brokers(), [{ topic, partitions: 2 }]);
  created.push(topic);
  const h = createKafka(brokers(), 'joinery-test-stable', { connectTimeoutMs: 30_000 });
  const producer = h.kafka.producer({ transactionalId: uniq('stable-txn'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const offsets = (offset: number, metadata: string) => ({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: String(offset), metadata }] }] });
  const p0 = (cs: Array<{ topic: string; partition: number; offset: string; metadata: string | null }>) => {
    const c = cs.find((x) => x.topic === topic && x.partition === 0);
    return c && { offset: c.offset, metadata: c.metadata };
  };
  try {
    // A fresh broker's group coordinator may still be loading (COORDINATOR_LOAD_IN_PROGRESS,
    // NOT_COORDINATOR; kafkajs retries neither OffsetFetch nor TxnOffsetCommit): the first
    // read and commit are retried.
    for (let attempt = 1; ; attempt++) {
      const first = await producer.transaction();
      try {
        assert.deepEqual(p0(await fetchCommittedOffsets(brokers(), group, [topic])), { offset: '-1', metadata: null });
        await first.sendOffsets(offsets(10, 'ckpt-10'));
        await first.commit();
        break;
      } catch (e) {
        await first.abort().catch(() => {});
        if (attempt >= 30 || !(e as { retriable?: boolean }).retriable) throw e;
        await sleep(500);
      }
    }
    assert.deepEqual(p0(await fetchCommittedOffsets(brokers(), group, [topic], { requireStable: true })), { offset: '10', metadata: 'ckpt-10' });

    const open = await producer.transaction();
    await open.sendOffsets(offsets(42, 'ckpt-42'));
    // The old path: a plain read, and two reads 200 ms apart, agree on the previous offsets.
    const plain = p0(await fetchCommittedOffsets(brokers(), group, [topic]));
    await sleep(200);
    assert.deepEqual(plain, { offset: '10', metadata: 'ckpt-10' });
    assert.deepEqual(p0(await fetchCommittedOffsets(brokers(), group, [topic])), plain);

    // Bounded: the stable read gives up with E_INPUT naming the group.
    await assert.rejects(fetchCommittedOffsets(brokers(), group, [topic], { requireStable: true, stableWaitMs: 1_000 }),
      (e: unknown) => e instanceof JoineryError && e.code === 'E_INPUT' && e.message.includes(`consumer group ${group}`) && /unstable/.test(e.message));

    let settledAt = 0;
    const stable = fetchCommittedOffsets(brokers(), group, [topic], { requireStable: true }).finally(() => { settledAt = Date.now(); });
    await sleep(2_000);
    assert.equal(settledAt, 0, 'the stable read answered while the transaction was still open');
    const commitAt = Date.now();
    await open.commit();
    assert.deepEqual(p0(await stable), { offset: '42', metadata: 'ckpt-42' });
    assert.ok(settledAt >= commitAt, `answered ${commitAt - settledAt} ms before the commit`);

    // An aborted transaction's offsets never show: the stable read then answers the committed ones.
    const aborted = await producer.transaction();
    await aborted.sendOffsets(offsets(77, 'ckpt-77'));
    let abortedSettledAt = 0;
    const afterAbort = fetchCommittedOffsets(brokers(), group, [topic], { requireStable: true }).finally(() => { abortedSettledAt = Date.now(); });
    await sleep(1_000);
    assert.equal(abortedSettledAt, 0, 'the stable read answered while the aborted transaction was still open');
    await aborted.abort();
    assert.deepEqual(p0(await afterAbort), { offset: '42', metadata: 'ckpt-42' });

    // A single node's restart reads which checkpoint committed last the same way: a run killed
    // between sending checkpoint 9's offsets and committing leaves them pending.
    await ensureTopics(brokers(), [{ topic: `${topic}-r`, partitions: 2 }]);
    created.push(`${topic}-r`);
    const cfg = { brokers: brokers().join(','), group, left: `kafka:${topic}`, right: `kafka:${topic}-r` } as unknown as Config;
    const single = await producer.transaction();
    await single.sendOffsets(offsets(90, checkpointMetadata(null, 9)));
    let idAt = 0;
    const id = committedCheckpointId(cfg).finally(() => { idAt = Date.now(); });
    await sleep(1_000);
    assert.equal(idAt, 0, 'the committed checkpoint was read while a commit was in flight');
    await single.commit();
    assert.equal(await id, 9);
  } finally {
    await producer.disconnect().catch(() => {});
    closeKafka(h);
  }
});
