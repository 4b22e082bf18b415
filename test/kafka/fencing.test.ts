/**
 * A group member that stalls longer than its session timeout (a GC pause, a stopped VM; here
 * SIGSTOP) is evicted from the consumer group: its partitions go to the other member, which
 * restores them from the last committed checkpoint and processes again what the stalled member had
 * applied after it. When the stalled member resumes it must not commit that work any more — not
 * from its periodic checkpoint, not from the checkpoint before re-joining — or the output holds it
 * twice (and the group's offsets for the other member's partitions move). The read_committed
 * output must equal the batch join of the whole input exactly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { canonical, multisetDiff } from '../e2e/reference-join.js';
import { broker, joinScaffold, MemberProcess, keyedMessages as msgs, phases, settled, sleep, tail } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-fencing-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const PARTITIONS = 4;
const GEN = ['--events', '60000', '--seed', '43', '--gen-profiles', '2000', '--gen-titles', '200', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--join', 'full', '--format', 'json', '--idle-timeout', '10m'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000, kind: 'full' as const };
const SESSION_TIMEOUT_MS = 6_000;

const manifestsOf = (ckpt: string, name: string): string => path.join(ckpt, 'members', name, 'manifests');
const newestId = (dir: string): number => {
  try { return Math.max(0, ...fs.readdirSync(dir).filter((n) => /^ckpt-\d+\.json$/.test(n)).map((n) => Number(n.slice(5, -5)))); } catch { return 0; }
};

class Member extends MemberProcess {
  /** The partition list of its last `assigned partitions` line ([] before the first). */
  lastAssigned(): number[] {
    const ls = this.stderr.split('\n').map((l) => /assigned partitions[^[]*\[([\d,\s]*)\]/.exec(l)).filter((m) => m !== null);
    const m = ls.pop();
    return m ? m[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number) : [];
  }

  assignedCount(): number {
    return this.stderr.split('\n').filter((l) => l.includes('assigned partitions')).length;
  }
}

describe('fencing: a member evicted from the group while stalled must not commit', () => {
  const members: Member[] = [];
  const data = joinScaffold('fencing.test', tmp, GEN, ref, () => members);

  test('b is stopped (SIGSTOP) longer than the session timeout with uncommitted work, a takes its partitions, b resumes: read_committed output equals the batch join exactly', { timeout: 300_000 }, async (t) => {
    const { left, right, expected } = data;
    const L = `fe-imp-${uniq}`, R = `fe-play-${uniq}`, OUT = `fe-out-${uniq}`, group = `fe-${uniq}`;
    const ckpt = path.join(tmp, 'ckpt');
    await ensureTopics([broker()], [{ topic: L, partitions: PARTITIONS }, { topic: R, partitions: PARTITIONS }]);
    const t0 = left[0].ts as number, t1 = left[left.length - 1].ts as number;
    const cuts = [t0 + (t1 - t0) / 3, t0 + 2 * (t1 - t0) / 3];
    const lp = phases(left, cuts), rp = phases(right, cuts);
    const produce = (i: number) => Promise.all([produceRaw([broker()], L, msgs(lp[i])), produceRaw([broker()], R, msgs(rp[i]))]);
    const args = (name: string, extra: string[] = []) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`,
      '--group', group, ...JOIN, '--workers', '1', '--state-dir', path.join(tmp, `st-${name}`),
      '--checkpoint-dir', ckpt, '--member', name, '--checkpoint-interval', '1s', '--session-timeout', `${SESSION_TIMEOUT_MS / 1000}s`,
      '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];

    await produce(0);
    const a = new Member('a', args('a'));
    members.push(a);
    await a.waitFor('its first checkpoint', () => newestId(manifestsOf(ckpt, 'a')) > 0, 90_000);
    // b ends once idle, after a has left (SIGTERM) and b has taken everything back.
    const b = new Member('b', args('b', ['--exit-when-idle', '15s']));
    members.push(b);
    await b.waitFor('partitions of its own', () => b.lastAssigned().length > 0, 90_000);
    await a.waitFor('a share of the partitions', () => a.lastAssigned().length > 0 && a.lastAssigned().length < PARTITIONS, 90_000);

    // Phase 2 trickles in (so b always has applied work its next checkpoint has not committed);
    // b is stopped while it flows, after a checkpoint of some of it, for twice the session timeout.
    const CHUNKS = 16;
    const chunk = (recs: typeof lp[0], i: number) => recs.slice(Math.floor((recs.length * i) / CHUNKS), Math.floor((recs.length * (i + 1)) / CHUNKS));
    const trickle = (async () => {
      for (let i = 0; i < CHUNKS; i++) {
        await Promise.all([produceRaw([broker()], L, msgs(chunk(lp[1], i))), produceRaw([broker()], R, msgs(chunk(rp[1], i)))]);
        await sleep(400);
      }
    })();
    const had = newestId(manifestsOf(ckpt, 'b'));
    await b.waitFor('two checkpoints while phase 2 flows', () => newestId(manifestsOf(ckpt, 'b')) > had + 1, 60_000);
    await sleep(300 + Math.floor(Math.random() * 500));
    const aBefore = a.assignedCount();
    b.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      // b's session expires: a re-joins alone and takes b's partitions from b's last committed checkpoint.
      await a.waitFor('all partitions while b is stopped', () => a.assignedCount() > aBefore && a.lastAssigned().length === PARTITIONS, 60_000);
      await trickle;
      await produce(2);
      await sleep(Math.max(0, 2 * SESSION_TIMEOUT_MS - (Date.now() - stoppedAt)));
    } finally {
      b.child.kill('SIGCONT');
    }
    await trickle;
    const bAt = b.stderr.length;
    const bAssignedBefore = b.assignedCount();
    // b finds out it was evicted, re-joins and gets partitions back from a's checkpoints; then a
    // leaves and b finishes alone.
    await b.waitFor('partitions back after resuming', () => b.assignedCount() > bAssignedBefore && b.lastAssigned().length > 0, 90_000);
    await sleep(3_000);
    a.child.kill('SIGTERM');
    await a.exit(90_000);
    await b.exit(150_000);

    const problems: string[] = [];
    if (a.code !== 0) problems.push(`member a exited ${a.code}${a.signal ? ` (${a.signal})` : ''}, not 0`);
    if (b.code !== 0) problems.push(`member b exited ${b.code}${b.signal ? ` (${b.signal})` : ''}, not 0`);
    // It said so: a warning with the code, naming the checkpoint whose later work it discarded.
    if (!b.stderr.slice(bAt).split('\n').some((l) => l.includes('"code":"E_GROUP_EVICTED"') && /evicted from the consumer group .*discarded/.test(l))) {
      problems.push('member b never warned (E_GROUP_EVICTED) that it was evicted and discarded its uncommitted work');
    }
    let detail = '';
    try {
      await settled(OUT);
      const got: string[] = [];
      await readTopic([broker()], OUT, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
      const diff = multisetDiff(expected, got);
      if (diff !== '') { problems.push(`read_committed output ≠ batch join (${got.length} rows, ${expected.length} expected)`); detail = `\n${diff}`; }
    } catch (e) {
      problems.push(`reading the output topic ${OUT} failed: ${(e as Error).message}`);
    }
    const resumed = b.stderr.slice(bAt).split('\n').filter((l) => /checkpoint|evicted|re-join|rebalanc|assigned|TxnOffsetCommit/i.test(l)).slice(0, 25).join('\n');
    assert.ok(problems.length === 0, `${problems.map((p) => `- ${p}`).join('\n')}${detail}\n--- member b after SIGCONT (checkpoint/rebalance lines):\n${resumed}` +
      `\n--- member a stderr tail:\n${tail(a.stderr, 20)}\n--- member b stderr tail:\n${tail(b.stderr, 20)}`);
    // Which guard caught it (timing decides): the refused offset commit of a checkpoint, or the
    // re-join hook that knew of the eviction before any commit.
    const after = b.stderr.slice(bAt);
    t.diagnostic(`b after SIGCONT: ${/Response TxnOffsetCommit[^"]*(UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|not aware of this member|generation id is not valid)/.test(after) ? 'a checkpoint commit was refused by the group coordinator' : 'the re-join hook discarded the run before any commit'}`);
    data.failed = false;
  });
});
