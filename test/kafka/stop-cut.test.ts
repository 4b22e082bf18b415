/**
 * A graceful stop of an exactly-once Kafka → Kafka node (a group member) takes its checkpoint at a
 * cut: the events read but not yet joined go into the checkpoint with the offsets after them, the
 * output transaction commits what was joined, and the next start joins those events first. The
 * read_committed output of the stopped run and the resumed one must equal the batch join exactly.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { canonical, multisetDiff, referenceJoin, type Rec } from '../e2e/reference-join.js';
import { broker, CliProcess, keyedMessages as msgs, settled, tail } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-stopcut-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;

describe('exactly-once Kafka output: a SIGTERM stops at a cut', () => {
  const runs: CliProcess[] = [];
  let failed = true;
  after(async () => {
    for (const r of runs) if (r.running) { r.child.kill('SIGKILL'); await r.exited; }
    if (failed) process.stderr.write(`[stop-cut.test] kept ${tmp} for a look\n`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('stopped with events in the rings, resumed: read_committed output equals the batch join', { timeout: 300_000 }, async () => {
    // Four keys, both sides interleaved, ±500 ms: ~50 pairs per event, so the workers lag behind reading.
    const N = 6000, KEYS = 4, T0 = 1_767_225_600_000;
    const rec = (id: string, i: number, ts: number): Rec => ({ eventId: id, profileId: i % KEYS, titleId: 1, ts });
    const left = Array.from({ length: N }, (_, i) => rec(`i-${i}`, i, T0 + i * 5));
    const right = Array.from({ length: N }, (_, i) => rec(`p-${i}`, i, T0 + 300 + i * 5));
    const expected = referenceJoin(left, right, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -500, upperMs: 500, kind: 'full' });
    const L = `sc-imp-${uniq}`, R = `sc-play-${uniq}`, OUT = `sc-out-${uniq}`, group = `sc-${uniq}`;
    await ensureTopics([broker()], [{ topic: L, partitions: 2 }, { topic: R, partitions: 2 }]);
    await Promise.all([produceRaw([broker()], L, msgs(left)), produceRaw([broker()], R, msgs(right))]);
    const ckpt = path.join(tmp, 'ckpt');
    const args = (extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group,
      '--lower', '-500ms', '--upper', '500ms', '--join', 'full', '--format', 'json', '--idle-timeout', '10m', '--workers', '2',
      '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', ckpt, '--member', 'n1', '--checkpoint-interval', '500ms', '--ring-size', '256k',
      '--session-timeout', '6s', '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];
    const manifests = () => { try { return fs.readdirSync(path.join(ckpt, 'members', 'n1', 'manifests')).filter((n) => /^ckpt-\d+\.json$/.test(n)); } catch { return []; } };

    // Workers pause 200 ms before each drain, so the rings hold unjoined events when the signal comes
    // however fast the machine (the resumed run below goes at full speed).
    const a = new CliProcess(args([]), { JOINERY_INJECT_FAULTS: 'slow-drain:200' });
    runs.push(a);
    assert.ok(await a.until('a first checkpoint', () => manifests().length >= 1, 90_000), `exited early:\n${tail(a.stderr)}`);
    const sent = Date.now();
    a.child.kill('SIGTERM');
    const guard = setTimeout(() => a.child.kill('SIGKILL'), 60_000);
    await a.exited;
    clearTimeout(guard);
    assert.equal(a.code, 0, tail(a.stderr));
    const held = Number(/"inflightEvents":(\d+)/.exec(a.stderr)?.[1] ?? 0);
    assert.ok(held > 0, `the stop checkpoint holds events not yet joined (stopped ${Date.now() - sent} ms after SIGTERM):\n${tail(a.stderr)}`);

    const b = new CliProcess(args(['--exit-when-idle', '6s']));
    runs.push(b);
    const guardB = setTimeout(() => b.child.kill('SIGKILL'), 180_000);
    await b.exited;
    clearTimeout(guardB);
    assert.equal(b.code, 0, tail(b.stderr));
    assert.match(b.stderr, new RegExp(`${held.toLocaleString('en-US')} event\\(s\\) read but not yet joined when checkpoint \\d+ was taken \\(a stop at a cut\\) are joined first`));

    await settled(OUT);
    const got: string[] = [];
    await readTopic([broker()], OUT, (r) => { got.push(canonical(JSON.parse(r.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
    const diff = multisetDiff(expected, got);
    assert.equal(diff, '', diff);
    failed = false;
  });
});
