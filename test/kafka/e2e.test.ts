/**
 * joinery run from Kafka to Kafka against a real broker (JOINERY_TEST_KAFKA, set by
 * test/run-tests.ts): the output topic read back must equal an independent batch join of the same
 * generated streams — nothing missing, nothing extra.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { produceRaw, readTopic } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from '../e2e/reference-join.js';
import { broker } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-e2e-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '120000', '--seed', '11', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000 };

async function readOutput(topic: string): Promise<string[]> {
  const out: string[] = [];
  await readTopic([broker()], topic, (r) => { out.push(canonical(JSON.parse(r.value!.toString('utf8')))); }, { timeoutMs: 60_000 });
  return out;
}

describe('Kafka → joinery → Kafka', () => {
  let left: Rec[], right: Rec[];
  const L = `imp-${uniq}`, R = `play-${uniq}`;

  before(async () => {
    // The same seed gives the same streams: files for the reference join, topics for the engine.
    const lf = path.join(tmp, 'l.ndjson'), rf = path.join(tmp, 'r.ndjson');
    const g1 = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g1.code, 0, g1.stderr);
    left = readNdjson(lf); right = readNdjson(rf);
    const g2 = await joinery(['gen', ...GEN, '--brokers', broker(), '--left-topic', L, '--right-topic', R, '--partitions', '3']);
    assert.equal(g2.code, 0, g2.stderr);
  });

  for (const [kind, workers] of [['inner', 2], ['full', 3]] as const) {
    test(`${kind} join, ${workers} workers, 3 partitions per topic: output equals the batch join`, async () => {
      const out = `joined-${kind}-${uniq}`;
      const r = await joinery(['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', `g-${kind}-${uniq}`,
        ...JOIN, '--join', kind, '--workers', String(workers), '--state-dir', path.join(tmp, `st-${kind}`),
        '--out', `kafka:${out}`, '--out-format', 'json', '--exit-when-idle', '2s', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const s = lastJson(r.stdout);
      assert.equal(s.late, 0);
      assert.ok((s.duplicates as number) > 500);
      const diff = multisetDiff(referenceJoin(left, right, { ...ref, kind }), await readOutput(out));
      assert.equal(diff, '', diff);
    });
  }

  test('committed offsets: a second run of the same group reads nothing again', async () => {
    const group = `g-twice-${uniq}`, out1 = `twice1-${uniq}`, out2 = `twice2-${uniq}`;
    const args = ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group, ...JOIN,
      '--state-dir', path.join(tmp, 'st-twice'), '--out-format', 'json', '--exit-when-idle', '2s', '--json'];
    const r1 = await joinery([...args, '--out', `kafka:${out1}`]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal((lastJson(r1.stdout).eventsIn as number[]).reduce((a, b) => a + b), 120_000);
    const r2 = await joinery([...args, '--out', `kafka:${out2}`]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(lastJson(r2.stdout).eventsIn, [0, 0], 'every offset was committed after the first run applied it');
  });

  test('back-pressure: tiny rings stall routing, nothing is lost', async () => {
    const out = `joined-bp-${uniq}`;
    const r = await joinery(['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', `g-bp-${uniq}`,
      ...JOIN, '--join', 'inner', '--workers', '2', '--ring-size', '64k', '--state-dir', path.join(tmp, 'st-bp'),
      '--out', `kafka:${out}`, '--out-format', 'json', '--exit-when-idle', '2s', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = lastJson(r.stdout);
    assert.ok((s.backpressureWaits as number) > 0, 'the rings filled up');
    const diff = multisetDiff(referenceJoin(left, right, { ...ref, kind: 'inner' }), await readOutput(out));
    assert.equal(diff, '', diff);
  });

  test('malformed values go to the dead letter with topic/partition/offset; the job goes on', async () => {
    const l2 = `bad-l-${uniq}`, r2 = `bad-r-${uniq}`, dead = path.join(tmp, 'dead.ndjson'), out = path.join(tmp, 'bad-out.ndjson');
    const { ensureTopics } = await import('../../src/kafka/kafkajs/index.js');
    await ensureTopics([broker()], [{ topic: l2, partitions: 1 }, { topic: r2, partitions: 1 }]);
    const imp = (id: string, ts: number) => JSON.stringify({ eventId: id, profileId: 1, titleId: 2, ts });
    await produceRaw([broker()], l2, [imp('i1', 1000), '{truncated', imp('i2', 1100)].map((v) => ({ value: v })));
    await produceRaw([broker()], r2, [JSON.stringify({ eventId: 'p1', profileId: 1, titleId: 2, ts: 1500 }), JSON.stringify({ eventId: 'p2', titleId: 2, ts: 1 })].map((v) => ({ value: v })));
    const r = await joinery(['run', '--brokers', broker(), '--left', `kafka:${l2}`, '--right', `kafka:${r2}`, '--format', 'json', '--group', `g-bad-${uniq}`,
      '--state-dir', path.join(tmp, 'st-bad'), '--out', `file:${out}`, '--dead-letter', `file:${dead}`, '--exit-when-idle', '2s', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lastJson(r.stdout).pairs, 2);
    const d = fs.readFileSync(dead, 'utf8').trim().split('\n').map((x) => JSON.parse(x));
    assert.deepEqual(d.map((x) => [x.side, x.origin, x.position]).sort(), [['left', `${l2}/0`, 1], ['right', `${r2}/0`, 1]]);
  });

  test('a missing topic and an unreachable broker fail clearly, naming them', async () => {
    const r = await joinery(['run', '--brokers', broker(), '--left', `kafka:nope-${uniq}`, '--right', `kafka:${R}`, '--state-dir', path.join(tmp, 'st-x'), '--out', 'null']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`nope-${uniq}`));
    const t0 = Date.now();
    const r2 = await joinery(['run', '--brokers', '127.0.0.1:1', '--left', 'kafka:a', '--right', 'kafka:b', '--connect-timeout', '2s', '--state-dir', path.join(tmp, 'st-y'), '--out', 'null']);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /127\.0\.0\.1:1/);
    assert.ok(Date.now() - t0 < 30_000, 'gives up after the connect timeout');
  });
});
