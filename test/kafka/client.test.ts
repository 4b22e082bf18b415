/**
 * The Kafka layer against a real broker (JOINERY_TEST_KAFKA=HOST:PORT, set by test/run-tests.ts
 * which starts one). Every test fails — never skips — when the variable is unset. Topics are
 * created per test with unique names and deleted at the end.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { JoineryError } from '../../src/core/errors.js';
import {
  deleteTopics, describeTopics, ensureTopics, groupOffsets, KafkaLineSink, KafkaRecordSink, KafkaSource, topicOffsets, type KafkaRecordBatch, type KafkaSourceOptions,
} from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { runTopicsCheck } from '../../src/kafka/topics.js';
import { runGenToKafka } from '../../src/gen-kafka.js';
import { parseArgs } from '../../src/config/parse.js';
import { FlatExtractor, SIDE_TABLE } from '../../src/codec/flat.js';
import { brokers, uniq, sleep } from './support.js';

const T = { timeout: 90_000 };
const created: string[] = [];

async function topics(partitions = 3): Promise<{ left: string; right: string }> {
  const left = uniq('left'), right = uniq('right');
  await ensureTopics(brokers(), [{ topic: left, partitions }, { topic: right, partitions }]);
  created.push(left, right);
  return { left, right };
}

after(async () => {
  const b = process.env.JOINERY_TEST_KAFKA?.trim();
  if (b && created.length > 0) await deleteTopics([b], created).catch(() => {});
});

function open(t: { left: string; right: string }, over: Partial<KafkaSourceOptions> = {}): Promise<KafkaSource> {
  return KafkaSource.open({
    brokers: brokers(), groupId: uniq('group'), leftTopic: t.left, rightTopic: t.right, format: 'json',
    connectTimeoutMs: 10_000, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000, ...over,
  });
}

interface Got { side: number; partition: number; offset: number; value: string }

function records(b: KafkaRecordBatch): Got[] {
  const out: Got[] = [];
  for (let i = 0; i < b.count; i++) {
    out.push({
      side: b.side, partition: b.partition, offset: b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i,
      value: Buffer.from(b.data.subarray(b.offsets[i], b.offsets[i + 1])).toString('utf8'),
    });
  }
  return out;
}

/** next() until null (exit-when-idle) or `until` says stop; checks every batch's bookkeeping. */
async function drain(s: KafkaSource, until?: (got: Got[]) => boolean, batches?: KafkaRecordBatch[]): Promise<Got[]> {
  const got: Got[] = [];
  for (;;) {
    const b = await s.next();
    if (!b) return got;
    assert.equal(b.partition, b.kafka.partition);
    assert.equal(b.origin, `${b.kafka.topic}/${b.kafka.partition}`);
    assert.ok(b.count > 0);
    if (!b.recordOffsets) assert.equal(Number(b.kafka.nextOffset), b.firstPosition + b.count, 'nextOffset = last offset + 1');
    assert.ok(Number(b.kafka.nextOffset) <= Number(b.highWatermark));
    batches?.push({ ...b, offsets: b.offsets.slice(), data: b.data.slice() });
    got.push(...records(b));
    if (until?.(got)) return got;
  }
}

function jsonRecords(prefix: string, n: number): Array<{ key: string; value: string }> {
  return Array.from({ length: n }, (_, i) => ({ key: `[${i % 97},${i % 13}]`, value: JSON.stringify({ eventId: `${prefix}-${i}`, profileId: i % 97, titleId: i % 13, ts: 1000 + i }) }));
}


test('KafkaSource delivers every record exactly once across 3 partitions, with partition and next offsets', T, async () => {
  const t = await topics(3);
  const left = jsonRecords('i', 3000), right = jsonRecords('p', 1200);
  await produceRaw(brokers(), t.left, left);
  await produceRaw(brokers(), t.right, right);
  // where the producer put each record
  const where = new Map<string, { partition: number; offset: number }>();
  for (const topic of [t.left, t.right]) {
    await readTopic(brokers(), topic, (r) => where.set(`${topic}|${r.value!.toString()}`, { partition: r.partition, offset: Number(r.offset) }));
  }

  const s = await open(t, { exitWhenIdleMs: 400 });
  assert.deepEqual([...s.partitions].sort((a, b) => a.side - b.side || a.partition - b.partition),
    [0, 1, 2].map((p) => ({ side: 0, partition: p })).concat([0, 1, 2].map((p) => ({ side: 1, partition: p }))));
  const batches: KafkaRecordBatch[] = [];
  const got = await drain(s, undefined, batches);
  await s.close();

  assert.equal(got.length, left.length + right.length);
  const seen = new Set<string>();
  for (const g of got) {
    const topic = g.side === 0 ? t.left : t.right;
    const k = `${topic}|${g.value}`;
    assert.ok(!seen.has(k), `delivered twice: ${k}`);
    seen.add(k);
    assert.deepEqual({ partition: g.partition, offset: g.offset }, where.get(k), `partition/offset of ${g.value}`);
  }
  // per partition: batches are contiguous and the last nextOffset is the high watermark
  for (const [side, topic] of [[0, t.left], [1, t.right]] as const) {
    for (const o of await topicOffsets(brokers(), topic)) {
      const bs = batches.filter((b) => b.side === side && b.partition === o.partition);
      let next = Number(o.low);
      for (const b of bs) { assert.equal(b.firstPosition, next); next = Number(b.kafka.nextOffset); }
      assert.equal(String(next), o.high, `${topic}/${o.partition} delivered up to its high watermark`);
    }
  }
});

test('commit, then a restarted source resumes after the committed offsets', T, async () => {
  const t = await topics(3);
  await produceRaw(brokers(), t.left, jsonRecords('a', 900));
  await produceRaw(brokers(), t.right, jsonRecords('b', 300));
  const groupId = uniq('group');
  const s1 = await open(t, { groupId, exitWhenIdleMs: 300 });
  const first = await drain(s1);
  assert.equal(first.length, 1200);
  // commit a position in the middle of each partition: next offset 10 (records 0..9 applied)
  const positions = [t.left, t.right].flatMap((topic) => [0, 1, 2].map((partition) => ({ topic, partition, offset: '10' })));
  const r = await s1.commit(positions);
  assert.equal(r.skipped, 0);
  await s1.close();
  const committed = await groupOffsets(brokers(), groupId, [t.left, t.right]);
  assert.ok(committed.every((c) => c.offset === '10'), JSON.stringify(committed));

  await produceRaw(brokers(), t.left, jsonRecords('c', 90));
  const s2 = await open(t, { groupId, exitWhenIdleMs: 300, from: 'latest' }); // --from only applies without commits
  const batches: KafkaRecordBatch[] = [];
  const second = await drain(s2, undefined, batches);
  const highs = new Map<string, number>();
  for (const topic of [t.left, t.right]) for (const o of await topicOffsets(brokers(), topic)) highs.set(`${topic}/${o.partition}`, Number(o.high));
  let expected = 0;
  for (const h of highs.values()) expected += Math.max(0, h - 10);
  assert.equal(second.length, expected);
  assert.ok(second.every((g) => g.offset >= 10));
  for (const [k] of highs) {
    const firstBatch = batches.find((b) => `${b.kafka.topic}/${b.kafka.partition}` === k);
    if (firstBatch) assert.equal(firstBatch.firstPosition, 10, `${k} resumes at the committed offset`);
  }
  await s2.commit(s2.deliveredPositions());
  await s2.close();
  const after2 = await groupOffsets(brokers(), groupId, [t.left, t.right]);
  for (const c of after2) assert.equal(Number(c.offset), highs.get(`${c.topic}/${c.partition}`));
});

test('pause stops delivery of that partition; resume restarts it', T, async () => {
  const t = await topics(3);
  await produceRaw(brokers(), t.left, jsonRecords('x', 600));
  const perPartition = new Map<number, number>();
  await readTopic(brokers(), t.left, (r) => perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1));
  assert.ok((perPartition.get(1) ?? 0) > 0, 'partition 1 has records');
  const others = (perPartition.get(0) ?? 0) + (perPartition.get(2) ?? 0);

  const s = await open(t);
  s.pause(0, 1);
  assert.equal(s.isPaused(0, 1), true);
  const got = await drain(s, (g) => g.length >= others);
  assert.ok(got.every((g) => g.partition !== 1), 'nothing from the paused partition');
  assert.equal(got.length, others);
  // nothing more arrives while paused
  const pending = s.next();
  const raced = await Promise.race([pending, sleep(1_000).then(() => 'timeout' as const)]);
  assert.equal(raced, 'timeout', 'no batch while partition 1 is paused');
  s.resume(0, 1);
  const b = (await pending)!;
  assert.equal(b.partition, 1);
  const rest = records(b);
  if (rest.length < perPartition.get(1)!) rest.push(...await drain(s, (g) => rest.length + g.length >= perPartition.get(1)!));
  assert.equal(rest.length, perPartition.get(1));
  assert.ok(rest.every((g) => g.partition === 1));
  await s.close();
});

test('malformed values are delivered as records (the router dead-letters them, not the source)', T, async () => {
  const t = await topics(1);
  const bad = [
    { value: '{"eventId":"ok","profileId":1,"titleId":2,"ts":5}' },
    { value: '{not json' },
    { value: Buffer.from([0xff, 0x00, 0x13, 0x37]) },
    { value: '' },
    { value: null },
    { value: '{"eventId":"no-key","ts":5}' },
  ];
  await produceRaw(brokers(), t.left, bad);
  const s = await open(t, { exitWhenIdleMs: 300, format: 'flatbuffers' });
  const batches: KafkaRecordBatch[] = [];
  const got = await drain(s, undefined, batches);
  await s.close();
  assert.equal(got.length, bad.length);
  assert.ok(batches.every((b) => b.format === 'flatbuffers'));
  const bytes = batches.flatMap((b) => Array.from({ length: b.count }, (_, i) => Buffer.from(b.data.subarray(b.offsets[i], b.offsets[i + 1]))));
  assert.deepEqual(bytes, bad.map((r) => (r.value === null ? Buffer.alloc(0) : Buffer.from(r.value as string | Buffer))));
  assert.deepEqual(got.map((g) => g.offset), [0, 1, 2, 3, 4, 5]);
});

test('a missing topic gives a clear E_INPUT error naming it', T, async () => {
  const t = await topics(1);
  const missing = uniq('missing');
  await assert.rejects(open({ left: t.left, right: missing }), (e: unknown) => {
    assert.ok(e instanceof JoineryError);
    assert.equal(e.code, 'E_INPUT');
    assert.match(e.message, new RegExp(`Kafka topic "${missing}" \\(--right kafka:${missing}\\) does not exist`));
    return true;
  });
  assert.equal(await runTopicsCheck(brokers(), t.left, missing, { out: () => {} }), 3);
});

test('an unreachable broker gives a clear error naming the address, within the connect timeout', T, async () => {
  brokers();
  const t0 = Date.now();
  await assert.rejects(KafkaSource.open({ brokers: ['127.0.0.1:1'], groupId: 'g', leftTopic: 'a', rightTopic: 'b', format: 'json', connectTimeoutMs: 1_500 }), (e: unknown) => {
    assert.ok(e instanceof JoineryError);
    assert.equal(e.code, 'E_INPUT');
    assert.match(e.message, /cannot reach Kafka at 127\.0\.0\.1:1: /);
    return true;
  });
  const took = Date.now() - t0;
  assert.ok(took >= 1_400 && took < 5_000, `gave up after ${took} ms (connect timeout 1.5 s)`);
  // the sinks retry for the connect timeout too, then name the address and the topic
  for (const open of [
    () => KafkaRecordSink.open({ brokers: ['127.0.0.1:1'], topic: 'joined-x', connectTimeoutMs: 1_500, createPartitions: 3 }),
    () => KafkaRecordSink.open({ brokers: ['127.0.0.1:1'], topic: 'joined-x', connectTimeoutMs: 1_500, transactionalId: 'tx' }),
    () => KafkaLineSink.open({ topic: 'joined-x', brokers: ['127.0.0.1:1'], connectTimeoutMs: 1_500 }),
  ]) {
    const t1 = Date.now();
    await assert.rejects(open(), (e: unknown) => {
      assert.ok(e instanceof JoineryError);
      assert.equal(e.code, 'E_OUTPUT');
      assert.match(e.message, /^Kafka output topic joined-x: cannot reach Kafka at 127\.0\.0\.1:1 \(connecting: .*ECONNREFUSED.*; retried for .*check --brokers and --connect-timeout\)$/);
      return true;
    });
    const sinkTook = Date.now() - t1;
    assert.ok(sinkTook >= 1_400 && sinkTook < 5_000, `the sink gave up after ${sinkTook} ms (connect timeout 1.5 s)`);
  }
});

test('KafkaRecordSink writes every record (gzip), keyed: one key, one partition', T, async () => {
  const out = uniq('out');
  created.push(out);
  const sink = await KafkaRecordSink.open({ brokers: brokers(), topic: out, compression: 'gzip', createPartitions: 3 });
  const n = 25_000;
  for (let i = 0; i < n; i++) {
    if (!sink.write(`[${i % 101}]`, `{"n":${i},"pad":"${'x'.repeat(i % 50)}"}`)) await sink.ready();
  }
  await sink.flush();
  assert.equal(sink.buffered, 0);
  await sink.close();
  const seen = new Set<number>();
  const keyPartition = new Map<string, number>();
  const count = await readTopic(brokers(), out, (r) => {
    const v = JSON.parse(r.value!.toString());
    assert.ok(!seen.has(v.n), `record ${v.n} twice`);
    seen.add(v.n);
    const k = r.key!.toString();
    assert.equal(k, `[${v.n % 101}]`);
    const p = keyPartition.get(k);
    if (p === undefined) keyPartition.set(k, r.partition); else assert.equal(r.partition, p, `key ${k} on one partition`);
  });
  assert.equal(count, n);
  assert.equal(seen.size, n);
  assert.ok(new Set(keyPartition.values()).size > 1, 'keys spread over partitions');
  const [d] = await describeTopics(brokers(), [out]);
  assert.equal(d.partitions, 3);
  // the sink's explicit partitions equal kafkajs's default (Java-compatible murmur2) partitioner
  const probe = uniq('probe');
  created.push(probe);
  await ensureTopics(brokers(), [{ topic: probe, partitions: 3 }]);
  await produceRaw(brokers(), probe, [...keyPartition.keys()].map((k) => ({ key: k, value: k })));
  await readTopic(brokers(), probe, (r) => assert.equal(r.partition, keyPartition.get(r.value!.toString()), `key ${r.value}`));
});

test('KafkaRecordSink back-pressure: a writer faster than the broker is stopped at highWaterBytes; ready() resolves as sends are acknowledged', T, async () => {
  const out = uniq('bp');
  created.push(out);
  const limitBytes = 128 * 1024;
  const sink = await KafkaRecordSink.open({ brokers: brokers(), topic: out, createPartitions: 3, highWaterBytes: limitBytes });
  const value = 'x'.repeat(500);
  const recordBytes = 8 + value.length + 8;
  const n = 20_000;
  let stops = 0, maxBytes = 0;
  for (let i = 0; i < n; i++) {
    // synchronous writes outrun any broker: only write() returning false bounds the buffer
    if (!sink.write(`k${i % 101}`, `${i}:${value}`)) {
      stops++;
      assert.ok(sink.bufferedBytes >= limitBytes, `write() said stop with ${sink.bufferedBytes} bytes buffered`);
      await sink.ready();
      assert.ok(sink.bufferedBytes < limitBytes, `ready() resolved with ${sink.bufferedBytes} bytes buffered`);
    }
    maxBytes = Math.max(maxBytes, sink.bufferedBytes);
  }
  assert.ok(stops > 0, 'write() never said stop');
  assert.ok(maxBytes < limitBytes + recordBytes, `buffered up to ${maxBytes} bytes (limit ${limitBytes})`);
  await sink.flush();
  assert.equal(sink.bufferedBytes, 0);
  await sink.close();
  assert.equal(await readTopic(brokers(), out, () => {}), n);
});

test('KafkaRecordSink to a missing topic (without createPartitions) fails clearly', T, async () => {
  const missing = uniq('nosuch');
  await assert.rejects(KafkaRecordSink.open({ brokers: brokers(), topic: missing }), (e: unknown) => {
    assert.ok(e instanceof JoineryError);
    assert.equal(e.code, 'E_OUTPUT');
    assert.match(e.message, new RegExp(`output Kafka topic "${missing}" does not exist`));
    return true;
  });
});

test('KafkaLineSink: each line of kafka:TOPIC is one record, lines split across writes included', T, async () => {
  const topic = uniq('lines');
  created.push(topic);
  await ensureTopics(brokers(), [{ topic, partitions: 1 }]);
  const sink = await KafkaLineSink.open({ topic, brokers: brokers() });
  assert.equal(sink.spec, `kafka:${topic}`);
  sink.write(Buffer.from('{"a":1}\n{"b":2}\n{"c"'));
  sink.write(Buffer.from(':3}\r\n\n'));
  for (let i = 0; i < 2000; i++) sink.write(Buffer.from(`{"i":${i}}\n`));
  await sink.flush();
  await sink.close();
  const vals: string[] = [];
  await readTopic(brokers(), topic, (r) => vals.push(r.value!.toString()));
  assert.deepEqual(vals.slice(0, 3), ['{"a":1}', '{"b":2}', '{"c":3}']);
  assert.equal(vals.length, 3 + 2000);
  assert.equal(vals[vals.length - 1], '{"i":1999}');
});

test('exitWhenIdle ends the source: empty topics, and after the last record', T, async () => {
  const t = await topics(3);
  const t0 = Date.now();
  const s = await open(t, { exitWhenIdleMs: 500 });
  assert.equal(await s.next(), null);
  const took = Date.now() - t0;
  assert.ok(took >= 500 && took < 10_000, `ended after ${took} ms`);
  assert.equal(await s.next(), null, 'stays ended');
  await s.close();

  await produceRaw(brokers(), t.left, jsonRecords('e', 50));
  const s2 = await open(t, { exitWhenIdleMs: 300 });
  assert.equal((await drain(s2)).length, 50);
  await s2.close();
});

test('--from latest and --from TIMESTAMP apply when the group has no committed offsets', T, async () => {
  const t = await topics(3);
  await produceRaw(brokers(), t.left, jsonRecords('old', 200));
  const s = await open(t, { from: 'latest' });
  await produceRaw(brokers(), t.left, jsonRecords('new', 60));
  const got = await drain(s, (g) => g.length >= 60);
  await sleep(300);
  const extra = await Promise.race([s.next(), sleep(700).then(() => null)]);
  assert.equal(extra, null, 'nothing beyond the 60 new records');
  assert.ok(got.every((g) => g.value.includes('"new-')), 'only records produced after the start');
  await s.close();

  await sleep(50);
  const since = Date.now();
  await sleep(50);
  await produceRaw(brokers(), t.left, jsonRecords('later', 40));
  const s2 = await open(t, { from: since, exitWhenIdleMs: 300 });
  const got2 = await drain(s2);
  await s2.close();
  assert.equal(got2.length, 40);
  assert.ok(got2.every((g) => g.value.includes('"later-')));
});

test('a second member joining: co-partitioned assignment, revoked batches purged, each record delivered once', T, async () => {
  const t = await topics(3);
  const nl = 3000, nr = 1500;
  await produceRaw(brokers(), t.left, jsonRecords('L', nl));
  await produceRaw(brokers(), t.right, jsonRecords('R', nr));
  const groupId = uniq('group');
  const a = await open(t, { groupId, exitWhenIdleMs: 800 });
  await sleep(500); // a fetches (into its queue) before b arrives
  const b = await open(t, { groupId, exitWhenIdleMs: 800 });
  const deadline = Date.now() + 20_000;
  while (a.stats.rebalances < 1 && Date.now() < deadline) await sleep(50);
  assert.ok(a.stats.rebalances >= 1, 'a saw the rebalance');
  assert.ok(a.stats.purgedBatches > 0, 'a dropped the queued batches of the partitions it lost');
  for (const m of [a, b]) {
    const parts = m.assignedPartitions();
    const l = parts.filter((p) => p.side === 0).map((p) => p.partition).sort();
    const r = parts.filter((p) => p.side === 1).map((p) => p.partition).sort();
    assert.deepEqual(l, r, 'both sides of the same partitions on one member');
  }
  const [ga, gb] = await Promise.all([drain(a), drain(b)]);
  await Promise.all([a.close(), b.close()]);
  const all = [...ga, ...gb].map((g) => `${g.side}|${g.value}`);
  assert.equal(new Set(all).size, all.length, 'no record delivered twice');
  assert.equal(all.length, nl + nr);
});

test('beforeRejoin: a member commits before it re-joins; the group waits for it; delivery is suspended until resetTo()', T, async () => {
  const t = await topics(4);
  await produceRaw(brokers(), t.left, jsonRecords('L', 400));
  await produceRaw(brokers(), t.right, jsonRecords('R', 200));
  const groupId = uniq('group');
  const events: string[] = [];
  let hookCalls = 0;
  const a = await open(t, {
    groupId,
    beforeRejoin: async () => {
      hookCalls++;
      events.push('a: hook start');
      await sleep(1_500); // a checkpoint taking a while: the group must wait for it
      events.push('a: hook end');
    },
  });
  assert.deepEqual(a.assignedKafkaPartitions(), [0, 1, 2, 3]);
  const first = await a.next();
  assert.ok(first, 'a delivers before the rebalance');
  const genA = a.generationSeen;
  const b = await open(t, { groupId, onAssignment: () => events.push('b: assigned') });
  events.push('b: open');
  await a.awaitGeneration(genA);
  assert.equal(hookCalls, 1, 'the hook ran once, before a re-joined');
  assert.ok(events.indexOf('a: hook end') >= 0 && events.indexOf('a: hook end') < events.indexOf('b: assigned'), `b was assigned only after a's hook finished: ${events.join(', ')}`);
  const mine = a.assignedKafkaPartitions(), theirs = b.assignedKafkaPartitions();
  assert.equal(mine.length + theirs.length, 4);
  assert.ok(mine.length > 0 && theirs.length > 0, `both members hold partitions: a ${mine}, b ${theirs}`);
  assert.ok(mine.every((p) => !theirs.includes(p)));
  assert.equal(a.isSuspended, true, 'a delivers nothing until it is reset for the new assignment');
  assert.equal(await a.next(), null);
  // resetTo: a's kept partitions start at given offsets and deliver again, from exactly there
  const p = mine[0];
  a.resetTo([{ topic: t.left, partition: p, offset: 0 }]);
  assert.equal(a.isSuspended, false);
  const got: Got[] = [];
  const until = Date.now() + 15_000;
  while (!got.some((g) => g.side === 0 && g.partition === p && g.offset === 0) && Date.now() < until) {
    const x = await Promise.race([a.next(), sleep(2_000).then(() => null)]);
    if (x) got.push(...records(x));
  }
  assert.ok(got.some((g) => g.side === 0 && g.partition === p && g.offset === 0), 'reset to offset 0 re-reads the partition from its start');
  assert.ok(got.every((g) => mine.includes(g.partition)), 'only partitions a still owns');
  await Promise.all([a.close(), b.close()]);
});

function genConfig(events: number) {
  return parseArgs('gen', ['--left-out', '/dev/null/unused-l', '--right-out', '/dev/null/unused-r', '--events', String(events), '--progress', 'off']);
}

for (const format of ['flatbuffers', 'json'] as const) {
  test(`runGenToKafka (${format}) creates the topics and produces both streams keyed by the join key, co-partitioned`, T, async () => {
    const left = uniq('gl'), right = uniq('gr');
    created.push(left, right);
    const sum = await runGenToKafka(genConfig(6_000), { brokers: brokers(), leftTopic: left, rightTopic: right, partitions: 3, format });
    assert.deepEqual(sum.topics.map((t) => [t.created, t.partitions]), [[true, 3], [true, 3]]);
    assert.equal(sum.events[0] + sum.events[1], 6_000);
    const keyPart = new Map<string, number>();
    const counts = [0, 0];
    for (const [side, topic] of [[0, left], [1, right]] as const) {
      const ex = new FlatExtractor(SIDE_TABLE[side], ['profileId', 'titleId'], 'ts', 'eventId');
      await readTopic(brokers(), topic, (r) => {
        counts[side]++;
        const key = r.key!.toString();
        let k: string;
        if (format === 'json') {
          const v = JSON.parse(r.value!.toString());
          k = `[${v.profileId},${v.titleId}]`;
        } else {
          assert.ok(ex.extract(r.value!, 0, r.value!.length), ex.error);
          k = ex.keyText;
        }
        assert.equal(key, k, 'record key = canonical join key');
        const p = keyPart.get(key);
        if (p === undefined) keyPart.set(key, r.partition); else assert.equal(r.partition, p, `key ${key}: same partition on both topics`);
      });
    }
    assert.deepEqual(counts, sum.events);
    assert.equal(await runTopicsCheck(brokers(), left, right, { out: () => {} }), 0);
  });
}

test('runTopicsCheck explains a partition-count mismatch', T, async () => {
  const a = uniq('ta'), b = uniq('tb');
  created.push(a, b);
  await ensureTopics(brokers(), [{ topic: a, partitions: 3 }, { topic: b, partitions: 2 }]);
  const lines: string[] = [];
  assert.equal(await runTopicsCheck(brokers(), a, b, { out: (l) => lines.push(l) }), 1);
  const text = lines.join('\n');
  assert.match(text, new RegExp(`${a}: 3 partitions`));
  assert.match(text, new RegExp(`${b}: 2 partitions`));
  assert.match(text, /same joinery node/);
});
