/**
 * `joinery backfill` from Kafka topics against a real broker: the backfill reads each partition from
 * its start up to its cut (first record with event time ≥ T), writes a file and commits the cuts for
 * the group; a live `run --group … --rebuild-from …` then resumes at those committed offsets. The two
 * outputs together must be one run's, judged by `joinery verify` (exit 0) for a full outer join.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics } from '../../src/kafka/kafkajs/index.js';
import { produceRaw } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { type Rec, readNdjson } from '../e2e/reference-join.js';
import { broker } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-backfill-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '40000', '--seed', '13', '--gen-profiles', '800', '--gen-titles', '100', '--gen-event-time-rate', '300',
  '--gen-play-prob', '0.3', '--gen-play-delay', '8s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-5s', '--upper', '20s', '--max-delay', '3s', '--format', 'json', '--join', 'full'];

interface Cut { kafka: Array<{ topic: string; partition: number; offset: number }> }

describe('backfill from Kafka', () => {
  test('backfill up to T commits its cut; a live run --rebuild-from resumes there; together one run, judged by verify', async () => {
    const lf = path.join(tmp, 'l.ndjson'), rf = path.join(tmp, 'r.ndjson');
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g.code, 0, g.stderr);
    const left = readNdjson(lf), right = readNdjson(rf);
    const T = (left[0].ts as number) + 70_000;
    const L = `bf-imp-${uniq}`, R = `bf-play-${uniq}`, group = `bf-${uniq}`;
    await ensureTopics([broker()], [{ topic: L, partitions: 3 }, { topic: R, partitions: 3 }]);
    const msgs = (recs: Rec[]) => recs.map((r) => ({ key: `${r.profileId},${r.titleId}`, value: JSON.stringify(r) }));
    await produceRaw([broker()], L, msgs(left));
    await produceRaw([broker()], R, msgs(right));
    const common = ['--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group, ...JOIN, '--json'];
    const bf = await joinery(['backfill', ...common, '--to', String(T), '--out', `file:${path.join(tmp, 'bf.ndjson')}`, '--state-dir', path.join(tmp, 'st-bf')]);
    assert.equal(bf.code, 0, bf.stderr);
    const s = lastJson(bf.stdout) as { pairs: number; unmatchedLeft: number; backfill: { complete: boolean; cut: Cut; rebuildFromMs: number } };
    assert.ok(s.backfill.complete);
    assert.equal(s.backfill.cut.kafka.length, 6);
    assert.ok(s.pairs > 100 && s.unmatchedLeft > 100, `pairs ${s.pairs}, unmatched ${s.unmatchedLeft}`);
    for (const row of readNdjson(path.join(tmp, 'bf.ndjson'))) for (const ts of [row.leftTs, row.rightTs]) if (ts !== null) assert.ok((ts as number) < T);
    const live = await joinery(['run', ...common, '--rebuild-from', String(s.backfill.rebuildFromMs), '--exit-when-idle', '2s',
      '--out', `file:${path.join(tmp, 'live.ndjson')}`, '--state-dir', path.join(tmp, 'st-live')]);
    assert.equal(live.code, 0, live.stderr);
    assert.match(live.stderr, /up to the committed offsets of group/);
    const seam = path.join(tmp, 'seam.ndjson');
    fs.writeFileSync(seam, fs.readFileSync(path.join(tmp, 'bf.ndjson'), 'utf8') + fs.readFileSync(path.join(tmp, 'live.ndjson'), 'utf8'));
    const v = await joinery(['verify', '--left', `file:${lf}`, '--right', `file:${rf}`, ...JOIN, '--output', `file:${seam}`]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
