/**
 * Exactly-once building blocks against a real broker (JOINERY_TEST_KAFKA, set by
 * test/run-tests.ts): the transactional KafkaRecordSink (records + consumer-group offsets with
 * metadata in one transaction; aborted and fenced transactions invisible to read_committed
 * readers), fetchCommittedOffsets, KafkaSource startOffsets and commit metadata, and readTopic's
 * isolation levels. No mocks: every test talks to the broker.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JoineryError } from '../../src/core/errors.js';
import {
  closeKafka, createKafka, deleteTopics, ensureTopics, fetchCommittedOffsets, KafkaRecordSink, KafkaSource, topicOffsets, type KafkaRecordBatch, type KafkaSourceOptions,
} from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { brokers, settled, sleep, uniq } from './support.js';

const T = { timeout: 120_000 };
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'; // the raw kafkajs producer below; joinery's set their partitioner
const created: string[] = [];
const here = path.dirname(fileURLToPath(import.meta.url));

async function topic(partitions = 3): Promise<string> {
  const t = uniq('txn');
  await ensureTopics(brokers(), [{ topic: t, partitions }]);
  created.push(t);
  return t;
}

after(async () => {
  const b = process.env.JOINERY_TEST_KAFKA?.trim();
  if (b && created.length > 0) await deleteTopics([b], created).catch(() => {});
});

function openSink(t: string, transactionalId: string): Promise<KafkaRecordSink> {
  return KafkaRecordSink.open({ brokers: brokers(), topic: t, transactionalId, connectTimeoutMs: 10_000 });
}


/** Values of a topic, in (partition, offset) order (read_committed: once no transaction is open on it). */
async function values(t: string, isolation: 'read_committed' | 'read_uncommitted' = 'read_committed', timeoutMs = 30_000): Promise<string[]> {
  const got: Array<{ p: number; o: number; v: string }> = [];
  if (isolation === 'read_committed') await settled(t);
  await readTopic(brokers(), t, (r) => got.push({ p: r.partition, o: Number(r.offset), v: r.value!.toString('utf8') }), { isolation, timeoutMs });
  return got.sort((a, b) => a.p - b.p || a.o - b.o).map((g) => g.v);
}

const sorted = (xs: string[]): string[] => [...xs].sort();
const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function writeAll(sink: KafkaRecordSink, vals: string[]): Promise<void> {
  for (const v of vals) if (!sink.write(`key-${v}`, v)) await sink.ready();
}

test('transactional sink: committed records are visible once, aborted ones never; offsets + metadata commit with them', T, async () => {
  const out = await topic(3);
  const src = await topic(2); // the input whose offsets are committed (the broker checks that it exists)
  const group = uniq('group');
  const sink = await openSink(out, uniq('tid'));
  assert.equal(sink.transactional, true);

  // 1. a transaction with records and offsets
  await writeAll(sink, range('c1', 5_000));
  await sink.commitTransaction(group, [{ topic: src, partition: 0, offset: '5' }, { topic: src, partition: 1, offset: 7n }], 'ckpt-1');
  assert.deepEqual(sorted(await values(out)), sorted(range('c1', 5_000)));
  assert.deepEqual(await fetchCommittedOffsets(brokers(), group, [src]), [
    { topic: src, partition: 0, offset: '5', metadata: 'ckpt-1' },
    { topic: src, partition: 1, offset: '7', metadata: 'ckpt-1' },
  ]);

  // 2. records sent to the broker (flush), then aborted: never visible to read_committed
  await writeAll(sink, range('a2', 3_000));
  await sink.flush();
  await sink.abortTransaction();
  assert.deepEqual(sorted(await values(out)), sorted(range('c1', 5_000)));
  assert.equal((await values(out, 'read_uncommitted')).length, 8_000, 'the aborted records did reach the broker');

  // 3. no records, no offsets: nothing happens
  const commits = sink.stats.commits;
  await sink.commitTransaction(group, [], 'ckpt-ignored');
  assert.equal(sink.stats.commits, commits);

  // 4. records written after the abort commit normally; then offsets only
  await writeAll(sink, range('c3', 100));
  await sink.commitTransaction(group, [{ topic: src, partition: 0, offset: 50 }], 'ckpt-3');
  await sink.commitTransaction(group, [{ topic: src, partition: 1, offset: '70' }], 'ckpt-4');
  assert.deepEqual(sorted(await values(out)), sorted([...range('c1', 5_000), ...range('c3', 100)]));
  assert.deepEqual(await fetchCommittedOffsets(brokers(), group, [src]), [
    { topic: src, partition: 0, offset: '50', metadata: 'ckpt-3' },
    { topic: src, partition: 1, offset: '70', metadata: 'ckpt-4' },
  ]);

  // 5. close() aborts what is open
  await writeAll(sink, range('a5', 500));
  await sink.flush();
  await sink.close();
  assert.equal((await values(out)).length, 5_100);
  assert.deepEqual((await fetchCommittedOffsets(brokers(), group, [src])).map((o) => o.metadata), ['ckpt-3', 'ckpt-4']);
});

test('records written while a commit runs go to the next transaction', T, async () => {
  const out = await topic(2);
  const group = uniq('group');
  const sink = await openSink(out, uniq('tid'));
  await writeAll(sink, range('first', 2_000));
  const committing = sink.commitTransaction(group, [{ topic: out, partition: 0, offset: 1 }], 'one');
  await writeAll(sink, range('second', 1_000)); // after the call: next transaction
  await committing;
  await sink.abortTransaction(); // had 'second' been committed with 'first', aborting now would not hide it
  assert.deepEqual(sorted(await values(out)), sorted(range('first', 2_000)));
  await sink.close();
});

test('offsets sent in a transaction that is aborted are not committed (kafkajs forwards per-partition metadata)', T, async () => {
  const out = await topic(1);
  const group = uniq('group');
  const sink = await openSink(out, uniq('tid'));
  await writeAll(sink, ['r1']);
  await sink.commitTransaction(group, [{ topic: out, partition: 0, offset: 1 }], 'ok-1');
  await sink.close();
  // the same protocol steps with a raw kafkajs transaction, aborted after sendOffsets
  const h = createKafka(brokers(), 'joinery-test', { connectTimeoutMs: 10_000 });
  const p = h.kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: uniq('raw') });
  try {
    await p.connect();
    const tx = await p.transaction();
    await tx.send({ topic: out, messages: [{ value: 'aborted' }] });
    await tx.sendOffsets({ consumerGroupId: group, topics: [{ topic: out, partitions: [{ partition: 0, offset: '99', metadata: 'never' } as { partition: number; offset: string }] }] });
    await tx.abort();
  } finally {
    await p.disconnect().catch(() => {});
    closeKafka(h);
  }
  assert.deepEqual(await fetchCommittedOffsets(brokers(), group, [out]), [{ topic: out, partition: 0, offset: '1', metadata: 'ok-1' }]);
  assert.deepEqual(await values(out), ['r1']);
  assert.deepEqual(await values(out, 'read_uncommitted'), ['r1', 'aborted']);
});

test('a second sink with the same transactional id fences the first and aborts its open transaction', T, async () => {
  const out = await topic(3);
  const tid = uniq('tid');
  const group = uniq('group');
  const a = await openSink(out, tid);
  await writeAll(a, range('a', 2_000));
  await a.commitTransaction(group, [{ topic: out, partition: 0, offset: 1 }], 'a-1');
  await writeAll(a, range('a-open', 1_500));
  await a.flush(); // sent, in a transaction that is still open

  const b = await openSink(out, tid); // InitProducerId: fences a, aborts its open transaction
  assert.deepEqual(sorted(await values(out)), sorted(range('a', 2_000)));
  assert.equal((await values(out, 'read_uncommitted')).length, 3_500);

  // the fenced sink fails loudly, naming the topic and the transactional id
  await writeAll(a, ['late']);
  await assert.rejects(a.commitTransaction(group, [{ topic: out, partition: 0, offset: 2 }], 'a-2'), (e: unknown) => {
    assert.ok(e instanceof JoineryError, String(e));
    assert.equal(e.code, 'E_OUTPUT');
    assert.ok(e.message.includes(out) && e.message.includes(tid), e.message);
    return true;
  });
  await a.close();

  await writeAll(b, range('b', 700));
  await b.commitTransaction(group, [{ topic: out, partition: 0, offset: 3 }], 'b-1');
  await b.close();
  assert.deepEqual(sorted(await values(out)), sorted([...range('a', 2_000), ...range('b', 700)]));
  assert.deepEqual(await fetchCommittedOffsets(brokers(), group, [out]),
    [{ topic: out, partition: 0, offset: '3', metadata: 'b-1' }, { topic: out, partition: 1, offset: '-1', metadata: null }, { topic: out, partition: 2, offset: '-1', metadata: null }]);
});

test('records of a transaction left open by a SIGKILLed process are never visible to read_committed readers', T, async () => {
  const out = await topic(3);
  const tid = uniq('tid');
  const pre = await openSink(out, uniq('other'));
  await writeAll(pre, range('before', 300));
  await pre.commitTransaction(uniq('group'), [], 'x'); // records only
  await pre.close();

  const child = spawn(process.execPath, [path.join(here, 'txn-child.js'), brokers()[0], out, tid, '4000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { said += d.toString(); if (said.includes('flushed')) resolve(); });
    child.on('exit', (code) => reject(new Error(`child exited with ${code} before flushing: ${said}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;

  // the records are on the broker, but in a transaction that is still open: read_committed
  // readers stop at the last stable offset, before them
  assert.equal((await values(out, 'read_uncommitted')).length, 4_300);
  const whileOpen: string[] = [];
  await readTopic(brokers(), out, (r) => whileOpen.push(r.value!.toString()), { timeoutMs: 30_000 });
  assert.deepEqual(sorted(whileOpen), sorted(range('before', 300)));
  const ends = await topicOffsets(brokers(), out);
  const stable = ends.reduce((n, o) => n + Number(o.high), 0);
  assert.ok(stable >= 300 && stable <= 303, `topicOffsets: high = last stable offset (300 records + commit markers), got ${stable}`);

  // a restart with the same id aborts it; later commits become visible, the killed ones never
  const next = await openSink(out, tid);
  assert.deepEqual(sorted(await values(out)), sorted(range('before', 300)));
  await writeAll(next, range('after', 200));
  await next.commitTransaction(uniq('group'), [], 'y');
  await next.close();
  const all = await values(out);
  assert.deepEqual(sorted(all), sorted([...range('before', 300), ...range('after', 200)]));
  assert.ok(!all.some((v) => v.startsWith('open-')));
});

// ---------------------------------------------------------------------------------------------
// KafkaSource: startOffsets, commit metadata, transactional offsets of its own group

function openSource(left: string, right: string, over: Partial<KafkaSourceOptions> = {}): Promise<KafkaSource> {
  return KafkaSource.open({
    brokers: brokers(), groupId: uniq('group'), leftTopic: left, rightTopic: right, format: 'json',
    connectTimeoutMs: 10_000, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000, exitWhenIdleMs: 400, ...over,
  });
}

async function drainAll(s: KafkaSource): Promise<Array<{ topic: string; partition: number; offset: number; value: string }>> {
  const out: Array<{ topic: string; partition: number; offset: number; value: string }> = [];
  for (let b: KafkaRecordBatch | null = await s.next(); b; b = await s.next()) {
    for (let i = 0; i < b.count; i++) {
      out.push({ topic: b.kafka.topic, partition: b.kafka.partition, offset: b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i, value: Buffer.from(b.data.subarray(b.offsets[i], b.offsets[i + 1])).toString() });
    }
  }
  return out;
}

test('KafkaSource: commit stores metadata; startOffsets override committed offsets and --from', T, async () => {
  const left = await topic(2), right = await topic(2);
  const rec = (side: string, p: number, n: number) => Array.from({ length: n }, (_, i) => ({ value: `${side}${p}-${i}`, partition: p }));
  await produceRaw(brokers(), left, [...rec('L', 0, 40), ...rec('L', 1, 40)]);
  await produceRaw(brokers(), right, [...rec('R', 0, 40), ...rec('R', 1, 40)]);
  const groupId = uniq('group');
  const s1 = await openSource(left, right, { groupId });
  assert.equal((await drainAll(s1)).length, 160);
  await s1.commit([left, right].flatMap((topic) => [0, 1].map((partition) => ({ topic, partition, offset: 20 }))), 'ckpt-7');
  await s1.close();
  const committed = await fetchCommittedOffsets(brokers(), groupId, [left, right]);
  assert.equal(committed.length, 4);
  assert.ok(committed.every((c) => c.offset === '20' && c.metadata === 'ckpt-7'), JSON.stringify(committed));

  // below the committed offset on left/0, above it on right/1, at the very end on left/1; right/0 keeps the committed 20
  const s2 = await openSource(left, right, {
    groupId, from: 'latest',
    startOffsets: [{ topic: left, partition: 0, offset: '3' }, { topic: right, partition: 1, offset: 35n }, { topic: left, partition: 1, offset: 40 }],
  });
  const got = await drainAll(s2);
  await s2.close();
  const firstOf = (t: string, p: number) => got.filter((g) => g.topic === t && g.partition === p).map((g) => g.offset);
  assert.deepEqual(firstOf(left, 0), Array.from({ length: 37 }, (_, i) => 3 + i));
  assert.deepEqual(firstOf(left, 1), []);
  assert.deepEqual(firstOf(right, 0), Array.from({ length: 20 }, (_, i) => 20 + i));
  assert.deepEqual(firstOf(right, 1), [35, 36, 37, 38, 39]);
  assert.ok(got.filter((g) => g.topic === left && g.partition === 0).every((g) => g.value === `L0-${g.offset}`));

  // outside a partition's records: a clear error, not a silent start elsewhere
  await assert.rejects(openSource(left, right, { groupId, startOffsets: [{ topic: right, partition: 0, offset: 41 }] }), (e: unknown) => {
    assert.ok(e instanceof JoineryError);
    assert.match(e.message, new RegExp(`start offset 41 of ${right}/0 is outside its records \\[0, 40\\]`));
    return true;
  });
  await assert.rejects(openSource(left, right, { groupId, startOffsets: [{ topic: 'elsewhere', partition: 0, offset: 1 }] }), /neither/);
});

test('the sink commits offsets of the group a running KafkaSource belongs to; a restart resumes there; the source reads only committed input', T, async () => {
  const left = await topic(2), right = await topic(2), out = await topic(2);
  // transactional input: committed, aborted and committed again
  const writer = await openSink(left, uniq('tid-in'));
  await writeAll(writer, range('in1', 500));
  await writer.commitTransaction(uniq('g'), [], '');
  await writeAll(writer, range('gone', 400));
  await writer.flush();
  await writer.abortTransaction();
  await writeAll(writer, range('in2', 300));
  await writer.commitTransaction(uniq('g'), [], '');
  await writer.close();
  await produceRaw(brokers(), right, range('r', 100).map((value) => ({ value })));
  await settled(left); // the source's idle check reads the last stable offset

  const groupId = uniq('group');
  const s1 = await openSource(left, right, { groupId });
  const got = await drainAll(s1);
  assert.deepEqual(sorted(got.filter((g) => g.topic === left).map((g) => g.value)), sorted([...range('in1', 500), ...range('in2', 300)]));
  assert.equal(got.filter((g) => g.topic === right).length, 100);
  // every delivered position (past the transaction markers) is committed with the output, while s1 is a group member
  const positions = s1.deliveredPositions();
  const highs = new Map<string, string>();
  for (const t of [left, right]) for (const o of await topicOffsets(brokers(), t)) highs.set(`${t}/${o.partition}`, o.high);
  for (const p of positions) assert.equal(p.offset, highs.get(`${p.topic}/${p.partition}`), `${p.topic}/${p.partition} delivered to its end`);
  const sink = await openSink(out, uniq('tid-out'));
  await writeAll(sink, got.map((g) => g.value));
  await sink.commitTransaction(groupId, positions, 'ckpt-42');
  await sink.close();
  await s1.close();
  const committed = await fetchCommittedOffsets(brokers(), groupId, [left, right]);
  assert.deepEqual(committed.map((c) => ({ k: `${c.topic}/${c.partition}`, o: c.offset, m: c.metadata })).sort((a, b) => (a.k < b.k ? -1 : 1)),
    [...highs].map(([k, o]) => ({ k, o, m: 'ckpt-42' })).sort((a, b) => (a.k < b.k ? -1 : 1)));
  assert.equal((await values(out)).length, 900);

  // a restart of the group reads nothing again
  const s2 = await openSource(left, right, { groupId });
  assert.equal((await drainAll(s2)).length, 0);
  await s2.close();
});
