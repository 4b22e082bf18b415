/**
 * Rebuild without checkpoints from Kafka (--rebuild-from TIME, resume position = the group's
 * committed offsets), against a real broker: a first run joins the records produced so far and
 * exits (committing its offsets), then its state is gone; after the rest of the records arrived, a
 * rebuild replays from TIME up to the committed offsets and continues. The output topic then holds
 * exactly the batch join of everything: nothing missing, nothing duplicated.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from '../e2e/reference-join.js';
import { broker } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-rebuild-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '100000', '--seed', '31', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const LOWER = -10_000, UPPER = 90_000, MAX_DELAY = 3_000, DISORDER = 2_000;
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--format', 'json', '--join', 'inner'];

describe('rebuild from Kafka at the committed offsets', () => {
  test('first run on the records so far, state lost, rebuild after the rest arrived: output equals the batch join exactly', async () => {
    const lf = path.join(tmp, 'l.ndjson'), rf = path.join(tmp, 'r.ndjson');
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g.code, 0, g.stderr);
    const left = readNdjson(lf), right = readNdjson(rf);
    const t0 = left[0].ts as number;
    const T = t0 + 160_000;
    const L = `rb-imp-${uniq}`, R = `rb-play-${uniq}`, OUT = `rb-out-${uniq}`, group = `rb-${uniq}`;
    await ensureTopics([broker()], [{ topic: L, partitions: 3 }, { topic: R, partitions: 3 }]);
    // Records keyed by the join key (co-partitioned), in arrival order; the first part: up to the first with ts > T.
    const split = (recs: Rec[]) => { const i = recs.findIndex((r) => (r.ts as number) > T); return [recs.slice(0, i), recs.slice(i)]; };
    const msgs = (recs: Rec[]) => recs.map((r) => ({ key: `${r.profileId},${r.titleId}`, value: JSON.stringify(r) }));
    const [l1, l2] = split(left), [r1, r2] = split(right);
    await produceRaw([broker()], L, msgs(l1));
    await produceRaw([broker()], R, msgs(r1));
    const args = ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group, ...JOIN,
      '--out', `kafka:${OUT}`, '--out-format', 'json', '--exit-when-idle', '2s', '--json'];
    const a = await joinery([...args, '--workers', '2', '--state-dir', path.join(tmp, 'st-a')]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(lastJson(a.stdout).late, 0);
    await produceRaw([broker()], L, msgs(l2));
    await produceRaw([broker()], R, msgs(r2));
    // W_resume ≥ T − disorder − max-delay: TIME just below W_resume − (upper − lower).
    const fromMs = T - DISORDER - MAX_DELAY - (UPPER - LOWER) - 1_000;
    const b = await joinery([...args, '--workers', '3', '--state-dir', path.join(tmp, 'st-b'), '--rebuild-from', new Date(fromMs).toISOString()]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /up to the committed offsets of group/);
    const s = lastJson(b.stdout) as { late: number; eventsIn: number[]; rebuild: { replayed: number; skipped: number; suppressedPairs: number; reachedResume: boolean } };
    assert.equal(s.late, 0);
    assert.equal(s.rebuild.reachedResume, true);
    assert.ok(s.rebuild.skipped > 10_000, `records before TIME skipped (${s.rebuild.skipped})`);
    assert.ok(s.rebuild.suppressedPairs > 1_000, `pairs of the first run suppressed (${s.rebuild.suppressedPairs})`);
    const out: string[] = [];
    await readTopic([broker()], OUT, (r) => { out.push(canonical(JSON.parse(r.value!.toString('utf8')))); }, { timeoutMs: 60_000 });
    const diff = multisetDiff(referenceJoin(left, right, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: LOWER, upperMs: UPPER, kind: 'inner' }), out);
    assert.equal(diff, '', diff);
    // A third run of the group reads nothing: the rebuild committed its offsets (never below the resume position).
    const c = await joinery([...args, '--workers', '2', '--state-dir', path.join(tmp, 'st-c')]);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(lastJson(c.stdout).eventsIn, [0, 0]);
  });
});
