/**
 * `joinery backfill` from Kafka topics against a real broker:
 *  - the seam: the backfill reads each partition from its start up to its cut (first record with
 *    event time ≥ T), writes a file and commits the cuts for the group; a live `run --group …
 *    --rebuild-from …` then resumes at those committed offsets. The two outputs together must be
 *    one run's, judged by `joinery verify` (exit 0) for a full outer join;
 *  - exactly-once Kafka output: a backfill into a topic with --checkpoint-dir, killed with SIGKILL
 *    twice (right after a manifest is durable and before its output transaction commits; and at a
 *    moment of the test's choosing) and restarted with the same command, leaves in the topic
 *    (read_committed) exactly the batch join of its range, judged by `joinery verify`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, fetchCommittedOffsets } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { type Rec, readNdjson } from '../e2e/reference-join.js';
import { broker, CliProcess, sleep, tail } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-backfill-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '40000', '--seed', '13', '--gen-profiles', '800', '--gen-titles', '100', '--gen-event-time-rate', '300',
  '--gen-play-prob', '0.3', '--gen-play-delay', '8s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-5s', '--upper', '20s', '--max-delay', '3s', '--format', 'json', '--join', 'full'];

interface Cut { kafka: Array<{ topic: string; partition: number; offset: number }> }

describe('backfill from Kafka', () => {
  const procs: CliProcess[] = [];
  after(() => { for (const p of procs) if (p.running) p.child.kill('SIGKILL'); });

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

  test('into a Kafka topic with checkpoints: killed with SIGKILL twice and restarted, the committed output is exactly the batch join of its range', { timeout: 300_000 }, async () => {
    const lf = path.join(tmp, 'eo-l.ndjson'), rf = path.join(tmp, 'eo-r.ndjson');
    const g = await joinery(['gen', ...GEN.map((a, i) => (GEN[i - 1] === '--seed' ? '17' : GEN[i - 1] === '--events' ? '60000' : a)), '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g.code, 0, g.stderr);
    const left = readNdjson(lf), right = readNdjson(rf);
    const L = `bfeo-imp-${uniq}`, R = `bfeo-play-${uniq}`, OUT = `bfeo-out-${uniq}`, group = `bfeo-${uniq}`;
    await ensureTopics([broker()], [{ topic: L, partitions: 3 }, { topic: R, partitions: 3 }]);
    const msgs = (recs: Rec[]) => recs.map((r) => ({ key: `${r.profileId},${r.titleId}`, value: JSON.stringify(r) }));
    await produceRaw([broker()], L, msgs(left));
    await produceRaw([broker()], R, msgs(right));
    // the range: everything (--to after the last event), inner join: its batch join is that of the whole topics
    const to = Math.max(...left.map((r) => r.ts as number), ...right.map((r) => r.ts as number)) + 3_600_000;
    const inner = ['--lower', '-5s', '--upper', '20s', '--max-delay', '3s', '--format', 'json', '--join', 'inner'];
    const args = ['backfill', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group, ...inner, '--to', String(to),
      '--out', `kafka:${OUT}`, '--out-format', 'json', '--checkpoint-dir', path.join(tmp, 'eo-ck'), '--checkpoint-interval', '300ms',
      '--state-dir', path.join(tmp, 'eo-st'), '--session-timeout', '6s', '--workers', '2', '--ring-size', '64k', '--progress', 'on', '--json'];
    // 1: SIGKILLs itself once its second manifest is durable, before that checkpoint's transaction commits
    const first = new CliProcess(args, { JOINERY_INJECT_FAULTS: 'kill-after-manifest:1@1,slow-drain:40' });
    procs.push(first);
    await first.exited;
    assert.equal(first.signal, 'SIGKILL', tail(first.stderr));
    assert.match(first.stderr, /injected SIGKILL/);
    // 2: resumes (from the checkpoint whose transaction committed), then is killed by the test under way
    const second = new CliProcess(args, { JOINERY_INJECT_FAULTS: 'slow-drain:40' });
    procs.push(second);
    assert.ok(await second.until('resume and progress', () => /resuming from checkpoint/.test(second.stderr) && /"progress":true/.test(second.stderr.split('resuming from checkpoint')[1] ?? ''), 120_000),
      `the second run ended before it was killed: ${tail(second.stderr)}`);
    await sleep(500);
    assert.ok(second.running, `the second run ended before it was killed: ${tail(second.stderr)}`);
    // it resumed from the checkpoint whose transaction committed, not from the newer manifest on disk
    const killedAfter = Number(/injected SIGKILL \(JOINERY_INJECT_FAULTS\) after manifest (\d+)/.exec(first.stderr)?.[1]);
    const resumedFrom = Number(/resuming from checkpoint (\d+)/.exec(second.stderr)?.[1]);
    assert.ok(resumedFrom > 0 && resumedFrom < killedAfter, `resumed from ${resumedFrom}, killed after manifest ${killedAfter}`);
    second.child.kill('SIGKILL');
    await second.exited;
    assert.equal(second.signal, 'SIGKILL');
    // 3: the same command, to the end
    const third = new CliProcess(args);
    procs.push(third);
    await third.exited;
    assert.equal(third.code, 0, tail(third.stderr));
    assert.match(third.stderr, /resuming from checkpoint/);
    const s = lastJson(third.stdout) as { eventsIn: [number, number]; backfill: { complete: boolean; cut: Cut } };
    assert.ok(s.backfill.complete);
    assert.ok(s.eventsIn[0] + s.eventsIn[1] > 0, 'the kills left work for the last run');
    // the cuts (here the partitions' ends) are the group's committed offsets
    const committed = await fetchCommittedOffsets([broker()], group, [L, R]);
    assert.deepEqual(committed.map((c) => `${c.topic}/${c.partition}@${c.offset}`).sort(), s.backfill.cut.kafka.map((c) => `${c.topic}/${c.partition}@${c.offset}`).sort());
    // W_cut: the minimum over the partitions of their largest event time (all before the cut here), minus --max-delay
    const maxTs = new Map<string, number>();
    for (const t of [L, R]) {
      await readTopic([broker()], t, (m) => {
        const k = `${t}/${m.partition}`, ts = JSON.parse(String(m.value)).ts as number;
        maxTs.set(k, Math.max(maxTs.get(k) ?? -Infinity, ts));
      });
    }
    const wCut = Math.min(...maxTs.values()) - 3_000;
    const s3 = s as unknown as { backfill: { cutWatermarkMs: number } };
    assert.equal(s3.backfill.cutWatermarkMs, wCut);
    // 4: once more, after the end: it resumes at the cuts, writes nothing, and says the same cut and W_cut
    const again = await joinery(args.filter((a) => a !== '--progress' && a !== 'on'));
    assert.equal(again.code, 0, again.stderr);
    const s4 = lastJson(again.stdout) as { outputRecords: number; backfill: { complete: boolean; cut: Cut; cutWatermarkMs: number } };
    assert.ok(s4.backfill.complete);
    assert.equal(s4.outputRecords, 0);
    assert.deepEqual(s4.backfill.cut, s.backfill.cut);
    assert.equal(s4.backfill.cutWatermarkMs, wCut);
    const v = await joinery(['verify', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, ...inner, '--output', `kafka:${OUT}`, '--json']);
    const report = lastJson(v.stdout) as { equal: boolean; expected: number; got: number; missing: number; duplicated: number; extra: number };
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(report.expected > 1000 && report.got === report.expected, JSON.stringify(report));
  });
});
