/**
 * The Kafka layer while its broker is down or restarting: sinks opened during a restart, a source
 * closed while kafkajs is stuck retrying, a sink's back-pressure while the broker acknowledges
 * nothing. Like restart.test.ts this file starts its OWN broker (its own JOINERY_KAFKA_STATE and
 * data dir) and restarts it with tools/kafka/restart, so the shared broker of the other Kafka tests
 * stays up. A broker that cannot be started fails the tests; they are never skipped.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, KafkaLineSink, KafkaRecordSink, KafkaSource } from '../../src/kafka/kafkajs/index.js';
import { readTopic } from './topic-io.js';
import { useOwnBroker, sleep, uniq } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-outage-'));
const tail = (s: string, n = 30): string => s.trim().split('\n').slice(-n).join('\n');

/** True once nothing accepts TCP connections at host:port (the broker process is gone). */
function refuses(addr: string): Promise<boolean> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(1_000, () => { s.destroy(); resolve(false); });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });
}

async function untilDown(addr: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await refuses(addr))) {
    assert.ok(Date.now() < deadline, `the broker at ${addr} still accepts connections after ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('Kafka broker down or restarting', () => {
  const broker = useOwnBroker(tmp, '[outage.test]');

  let passed = 0;
  const TESTS = 3;
  const done = (): void => { if (++passed === TESTS) broker.failed = false; };

  test('sinks opened while the broker restarts open once it is back, and write', { timeout: 150_000 }, async () => {
    const existing = uniq('out');
    await ensureTopics([broker.bootstrap], [{ topic: existing, partitions: 2 }]);
    const restart = broker.tool('restart', ['--down-for', '2']);
    // Opens from the moment the broker starts shutting down: the first ones get through the
    // first probe and then lose the broker in a later step (topic lookup or creation, producer
    // connect, transactional init), which used to fail at once with a raw kafkajs error.
    const t0 = Date.now();
    const opens: Array<Promise<{ kind: string; atMs: number; write: () => Promise<void> }>> = [];
    const kinds = ['create', 'existing', 'transactional', 'line'] as const;
    for (let i = 0; i < 12; i++) {
      const kind = kinds[i % kinds.length];
      const atMs = Date.now() - t0;
      const common = { brokers: [broker.bootstrap], connectTimeoutMs: 60_000 };
      const topic = kind === 'create' ? uniq('created') : existing;
      opens.push((async () => {
        if (kind === 'line') {
          const s = await KafkaLineSink.open({ ...common, topic });
          return { kind, atMs, write: async () => { s.write(Buffer.from(`line-${i}\n`)); await s.flush(); await s.close(); } };
        }
        const s = await KafkaRecordSink.open({ ...common, topic, createPartitions: kind === 'create' ? 2 : undefined, transactionalId: kind === 'transactional' ? uniq('txn') : undefined });
        return {
          kind, atMs, write: async () => {
            s.write(`k${i}`, `rec-${i}`);
            if (s.transactional) await s.commitTransaction(uniq('g'), [], 'm'); else await s.flush();
            await s.close();
          },
        };
      })());
      await sleep(150);
    }
    const results = await Promise.allSettled(opens);
    const rs = await restart;
    assert.equal(rs.code, 0, `tools/kafka/restart failed:\n${tail(rs.stderr)}`);
    const failures = results.flatMap((r, i) => r.status === 'rejected' ? [`open ${i} (${kinds[i % kinds.length]}): ${(r.reason as Error)?.stack ?? String(r.reason)}`] : []);
    assert.deepEqual(failures, [], 'every sink opened once the broker was back');
    for (const r of results) if (r.status === 'fulfilled') await r.value.write();
    const values: string[] = [];
    await readTopic([broker.bootstrap], existing, (r) => values.push(r.value!.toString()));
    assert.equal(values.length, 9, `records of the sinks writing to ${existing}: ${values.join(', ')}`);
    done();
  });

  test('KafkaSource.close() returns within seconds while kafkajs retries a broker that is gone', { timeout: 150_000 }, async () => {
    const left = uniq('left'), right = uniq('right');
    await ensureTopics([broker.bootstrap], [{ topic: left, partitions: 2 }, { topic: right, partitions: 2 }]);
    const s = await KafkaSource.open({
      brokers: [broker.bootstrap], groupId: uniq('group'), leftTopic: left, rightTopic: right, format: 'json',
      connectTimeoutMs: 10_000, heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000,
    });
    const next = s.next().catch(() => null);
    const restart = broker.tool('restart', ['--down-for', '8']);
    await untilDown(broker.bootstrap);
    await sleep(500); // kafkajs has noticed and is retrying (5 to 25 s before its consumer gives up)
    const t0 = Date.now();
    await s.close();
    const tookMs = Date.now() - t0;
    // close() waits at most ~2 s for kafkajs; it used to wait 5-25 s for kafkajs's retries to end
    assert.ok(tookMs < 4_000, `close() took ${tookMs} ms with the broker gone`);
    assert.equal(await next, null, 'next() ends once closed');
    const rs = await restart;
    assert.equal(rs.code, 0, `tools/kafka/restart failed:\n${tail(rs.stderr)}`);
    done();
  });

  test('back-pressure: while the broker acknowledges nothing, write() says stop at highWaterBytes and ready() waits until it is back', { timeout: 150_000 }, async () => {
    const topic = uniq('bp');
    const limitBytes = 256 * 1024;
    const sink = await KafkaRecordSink.open({ brokers: [broker.bootstrap], topic, createPartitions: 2, highWaterBytes: limitBytes, reconnectTimeoutMs: 120_000, lingerMs: 5 });
    const value = 'v'.repeat(1000);
    let n = 0;
    const write = (): boolean => sink.write(`k${n % 50}`, `${n++}:${value}`);
    const restart = broker.tool('restart', ['--down-for', '4']);
    await untilDown(broker.bootstrap);
    let accepted = true;
    while (accepted) {
      accepted = write();
      assert.ok(n < 10_000, 'write() never said stop');
    }
    const recordBytes = 4 + value.length + 8;
    assert.ok(sink.bufferedBytes >= limitBytes && sink.bufferedBytes < limitBytes + recordBytes,
      `write() returned false with ${sink.bufferedBytes} bytes buffered (limit ${limitBytes})`);
    let readyAt = 0;
    const ready = sink.ready().then(() => { readyAt = Date.now(); });
    await sleep(1_000);
    assert.equal(readyAt, 0, 'ready() resolved while the broker was down');
    const rs = await restart;
    assert.equal(rs.code, 0, `tools/kafka/restart failed:\n${tail(rs.stderr)}`);
    await Promise.race([ready, sleep(60_000).then(() => { throw new Error('ready() did not resolve within 60 s of the broker coming back'); })]);
    assert.ok(sink.bufferedBytes < limitBytes);
    // the writer respects write()/ready(): the buffer never exceeds the mark by more than one record
    let maxBytes = 0;
    for (let i = 0; i < 3_000; i++) {
      if (!write()) await sink.ready();
      maxBytes = Math.max(maxBytes, sink.bufferedBytes);
    }
    assert.ok(maxBytes < limitBytes + recordBytes, `buffered up to ${maxBytes} bytes (limit ${limitBytes})`);
    await sink.flush();
    await sink.close();
    const seen = new Set<number>();
    await readTopic([broker.bootstrap], topic, (r) => { seen.add(Number(r.value!.toString().split(':')[0])); });
    assert.equal(seen.size, n, 'every record written once the broker was back');
    done();
  });
});

// An address where nothing listens is covered in client.test.ts (it needs no broker of its own).
