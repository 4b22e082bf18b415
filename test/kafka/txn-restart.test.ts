/**
 * The transactional KafkaRecordSink through a broker stop and restart in the middle of a
 * transaction: sends are resent while the broker is away (idempotent: no duplicates), and the
 * commit (offsets with metadata + EndTxn) goes through once it is back. Read back read_committed:
 * every record exactly once, the offsets and metadata of the last commit.
 *
 * Starts its OWN broker (own JOINERY_KAFKA_STATE and data dir), like restart.test.ts, so the
 * shared broker of the other tests is never restarted. On failure the data dir is kept.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, fetchCommittedOffsets, KafkaRecordSink, topicOffsets } from '../../src/kafka/kafkajs/index.js';
import { readTopic } from './topic-io.js';
import { useOwnBroker } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-txn-restart-'));

const tail = (s: string, n = 40): string => s.trim().split('\n').slice(-n).join('\n');

describe('transactional sink through a broker restart', () => {
  const broker = useOwnBroker(tmp, '[txn-restart.test]');

  test('records sent before, during and after the outage commit exactly once with their offsets', { timeout: 150_000 }, async () => {
    const out = `txr-out-${process.pid}`, src = `txr-src-${process.pid}`, group = `txr-g-${process.pid}`;
    await ensureTopics([broker.bootstrap], [{ topic: out, partitions: 3 }, { topic: src, partitions: 2 }]);
    const sink = await KafkaRecordSink.open({ brokers: [broker.bootstrap], topic: out, transactionalId: `txr-${process.pid}`, connectTimeoutMs: 60_000, reconnectTimeoutMs: 90_000 });
    const write = async (prefix: string, n: number) => { for (let i = 0; i < n; i++) if (!sink.write(`k${i % 101}`, `${prefix}-${i}`)) await sink.ready(); };

    await write('a', 20_000);
    await sink.commitTransaction(group, [{ topic: src, partition: 0, offset: 10 }, { topic: src, partition: 1, offset: 10 }], 'ckpt-1');
    await write('b', 20_000);
    await sink.flush(); // in the open transaction

    const restarting = broker.tool('restart', ['--down-for', '3']);
    await new Promise((r) => setTimeout(r, 1_000)); // broker going down / down
    await write('c', 20_000); // sent while the broker is away, resent when it is back
    const rs = await restarting;
    assert.equal(rs.code, 0, `tools/kafka/restart failed:\n${tail(rs.stderr)}`);
    await sink.commitTransaction(group, [{ topic: src, partition: 0, offset: 20 }, { topic: src, partition: 1, offset: 30 }], 'ckpt-2');
    await sink.close();

    // the commit markers are written just after EndTxn returns: wait for the last stable offset
    for (let i = 0; ; i++) {
      const [lso, hw] = await Promise.all([topicOffsets([broker.bootstrap], out), topicOffsets([broker.bootstrap], out, { isolation: 'read_uncommitted' })]);
      if (lso.every((o, k) => o.high === hw[k].high)) break;
      assert.ok(i < 1_500, 'the transaction markers were not written within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const got = new Map<string, number>();
    await readTopic([broker.bootstrap], out, (r) => { const v = r.value!.toString(); got.set(v, (got.get(v) ?? 0) + 1); }, { timeoutMs: 60_000 });
    assert.equal(got.size, 60_000, 'every record');
    assert.ok([...got.values()].every((n) => n === 1), 'no record twice');
    assert.deepEqual(await fetchCommittedOffsets([broker.bootstrap], group, [src]), [
      { topic: src, partition: 0, offset: '20', metadata: 'ckpt-2' },
      { topic: src, partition: 1, offset: '30', metadata: 'ckpt-2' },
    ]);
    broker.failed = false;
  });
});
