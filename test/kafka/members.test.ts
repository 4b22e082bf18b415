/**
 * Scale-out: several joinery members in one Kafka consumer group, state moving with the partitions,
 * against the real broker. The input arrives in three phases (by event time); member a starts
 * alone, member b joins after a's first checkpoint (a loses half the partitions to b, b loads their
 * buffered state from a's checkpoint), the second phase arrives, a is stopped with SIGTERM (it
 * drains, checkpoints and leaves; b gains a's partitions with their state), the third phase
 * arrives and b ends once idle. The output topic read with read_committed must equal the batch
 * (full) join of the whole input exactly: nothing missing (pairs spanning a move need the moved
 * state), nothing duplicated (one transactional producer per member).
 *
 * A member killed with kill -9 mid-interval: the survivor takes its partitions from its last
 * committed checkpoint (what it applied after that is redone, its open output transaction is
 * aborted when it comes back under its name); the output stays exact.
 *
 * Also: `--member` with a name that cannot be a directory name is a usage error (exit 2).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, partitionForKey } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec } from '../e2e/reference-join.js';
import { broker, joinScaffold, MemberProcess, keyedMessages as msgs, phases, settled, sleep, tail } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-members-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const PARTITIONS = 4;
const GEN = ['--events', '120000', '--seed', '41', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
// --idle-timeout long: between the phases every partition sits silent for a while (members
// joining, checkpoints); a silent partition must keep holding the watermark back, or the side
// produced first in the next phase would push it past the other side's records (late rows).
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--join', 'full', '--format', 'json', '--idle-timeout', '10m'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000, kind: 'full' as const };

/** Where member NAME keeps its checkpoints under the shared --checkpoint-dir. */
const manifestsOf = (ckpt: string, name: string): string => path.join(ckpt, 'members', name, 'manifests');
const newestManifest = (dir: string): string => {
  try { return fs.readdirSync(dir).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort((x, y) => Number(x.slice(5, -5)) - Number(y.slice(5, -5))).pop() ?? ''; } catch { return ''; }
};
const manifestId = (name: string): number => (name ? Number(name.slice(5, -5)) : 0);

/** One `joinery run` member process; stdout/stderr kept. */
class Member extends MemberProcess {
  /** The `assigned partitions` lines it printed, each with the partition list it names (null if none could be read). */
  assignments(): Array<{ line: string; partitions: number[] | null }> {
    return this.stderr.split('\n').filter((l) => l.includes('assigned partitions')).map((line) => {
      const m = /assigned partitions[^[]*\[([\d,\s]*)\]/.exec(line);
      return { line, partitions: m ? m[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number).sort((x, y) => x - y) : null };
    });
  }

  summary(): string {
    return `member ${this.name}: exit ${this.code}${this.signal ? ` (${this.signal})` : ''} after ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s; ` +
      `assignments:\n  ${this.assignments().map((a) => a.line.trim()).join('\n  ') || '(none)'}\nstderr tail:\n${tail(this.stderr, 25)}\nstdout tail:\n${tail(this.stdout, 3)}`;
  }
}


const isStrictSubset = (x: number[], y: number[]): boolean => x.length < y.length && x.every((p) => y.includes(p));
/** Some list is a non-empty strict subset of an earlier one (`shrank`) or of a later one (grew). */
const shrank = (ls: number[][]): boolean => ls.some((y, j) => y.length > 0 && ls.slice(0, j).some((x) => isStrictSubset(y, x)));
const grew = (ls: number[][]): boolean => ls.some((x, i) => x.length > 0 && ls.slice(i + 1).some((y) => isStrictSubset(x, y)));

/**
 * Where the output differs from the batch join, by row kind (pair, left-only, right-only) and key
 * partition, and for pairs whether their two records arrived in different phases ('spanning').
 */
function breakdown(expected: string[], got: string[], phaseOf: Map<unknown, number>): string {
  const count = new Map<string, number>();
  for (const e of expected) count.set(e, (count.get(e) ?? 0) + 1);
  for (const g of got) count.set(g, (count.get(g) ?? 0) - 1);
  const tally = { missing: new Map<string, number>(), extra: new Map<string, number>() };
  for (const [row, n] of count) {
    if (n === 0) continue;
    const [lid, rid, key] = JSON.parse(row) as [unknown, unknown, unknown];
    const kind = lid !== null && rid !== null ? `pair${phaseOf.get(lid) !== phaseOf.get(rid) ? ' spanning phases' : ''}` : lid !== null ? 'left-only' : 'right-only';
    const b = `${kind}, partition ${partitionForKey(JSON.stringify(key), PARTITIONS)}`;
    const t = n > 0 ? tally.missing : tally.extra;
    t.set(b, (t.get(b) ?? 0) + Math.abs(n));
  }
  const show = (t: Map<string, number>) => [...t].sort((x, y) => y[1] - x[1]).map(([b, n]) => `${n} ${b}`).join('; ') || 'none';
  return `missing rows: ${show(tally.missing)}\nextra rows: ${show(tally.extra)}`;
}

/** Read the output topic (read_committed) and compare with the batch join; a difference goes to `problems`, its detail is returned. */
async function compareOutput(out: string, expected: string[], lp: Rec[][], rp: Rec[][], problems: string[]): Promise<string> {
  try {
    await settled(out);
    const got: string[] = [];
    await readTopic([broker()], out, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
    const diff = multisetDiff(expected, got);
    if (diff === '') return '';
    const phaseOf = new Map<unknown, number>();
    lp.forEach((p, i) => { for (const r of p) if (!phaseOf.has(r.eventId)) phaseOf.set(r.eventId, i); });
    rp.forEach((p, i) => { for (const r of p) if (!phaseOf.has(r.eventId)) phaseOf.set(r.eventId, i); });
    problems.push('read_committed output ≠ batch join of the whole input');
    return `\n${diff}\n${breakdown(expected, got, phaseOf)}\n(records per phase, left+right: ${lp.map((p, i) => `${p.length}+${rp[i].length}`).join(', ')})`;
  } catch (e) {
    problems.push(`reading the output topic ${out} failed: ${(e as Error).message}`);
    return '';
  }
}

describe('scale-out: members joining and leaving one consumer group, state moving with the partitions', () => {
  const members: Member[] = [];
  const data = joinScaffold('members.test', tmp, GEN, ref, () => members);

  test('a starts, b joins, a leaves with SIGTERM while data flows: read_committed output equals the batch join exactly', { timeout: 240_000 }, async () => {
    const { left, right, expected } = data;
    const L = `mb-imp-${uniq}`, R = `mb-play-${uniq}`, OUT = `mb-out-${uniq}`, group = `mb-${uniq}`;
    const ckpt = path.join(tmp, 'ckpt');
    await ensureTopics([broker()], [{ topic: L, partitions: PARTITIONS }, { topic: R, partitions: PARTITIONS }]);

    // Three phases by event time (the same cuts on both sides): every record of a later phase is
    // at most --gen-disorder older than the cut, so with --max-delay above it none is late.
    const t0 = left[0].ts as number, t1 = left[left.length - 1].ts as number;
    const cuts = [t0 + (t1 - t0) / 3, t0 + 2 * (t1 - t0) / 3];
    const lp = phases(left, cuts), rp = phases(right, cuts);
    for (let i = 0; i < 3; i++) assert.ok(lp[i].length > 10_000 && rp[i].length > 1_000, `phase ${i + 1}: ${lp[i].length} left, ${rp[i].length} right records`);
    const produce = (i: number) => Promise.all([produceRaw([broker()], L, msgs(lp[i])), produceRaw([broker()], R, msgs(rp[i]))]);

    const args = (name: string, workers: number, extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`,
      '--group', group, ...JOIN, '--workers', String(workers), '--state-dir', path.join(tmp, `st-${name}`),
      '--checkpoint-dir', ckpt, '--member', name, '--checkpoint-interval', '1s', '--session-timeout', '6s',
      '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];
    const assignedCount = (m: Member) => m.stderr.split('\n').filter((l) => l.includes('assigned partitions')).length;

    // Phase 1, then member a alone (no --exit-when-idle: it is stopped with SIGTERM).
    await produce(0);
    const a = new Member('a', args('a', 2, []));
    members.push(a);
    await a.waitFor(`its first checkpoint in ${manifestsOf(ckpt, 'a')}`, () => newestManifest(manifestsOf(ckpt, 'a')) !== '', 90_000);
    await a.waitFor('an `assigned partitions` line', () => assignedCount(a) >= 1, 30_000);

    // Member b joins (a different worker count: state is laid out by key group, not by worker).
    // Its --exit-when-idle must outlast a's drain and final checkpoint after the SIGTERM below.
    const aAssigned = assignedCount(a);
    const b = new Member('b', args('b', 1, ['--exit-when-idle', '15s']));
    members.push(b);
    await b.waitFor('an `assigned partitions` line after joining', () => assignedCount(b) >= 1, 90_000);
    await a.waitFor('a new `assigned partitions` line after b joined', () => assignedCount(a) > aAssigned, 90_000);

    // Phase 2 while both run; after a's next checkpoint, SIGTERM a and let phase 3 flow meanwhile.
    await produce(1);
    const before2 = manifestId(newestManifest(manifestsOf(ckpt, 'a')));
    await a.waitFor('a checkpoint after phase 2 was produced', () => manifestId(newestManifest(manifestsOf(ckpt, 'a'))) > before2, 60_000);
    a.child.kill('SIGTERM');
    await produce(2);
    await a.exit(90_000);
    await b.exit(150_000);

    // Every check is made, then one failure lists all that went wrong, with both members' stderr.
    const problems: string[] = [];
    if (a.code !== 0) problems.push(`member a (SIGTERM) exited ${a.code}${a.signal ? ` (${a.signal})` : ''}, not 0`);
    if (b.code !== 0) problems.push(`member b exited ${b.code}${b.signal ? ` (${b.signal})` : ''}, not 0`);

    // The handoff really happened: a lost partitions to b when it joined, b gained a's when it left.
    const aa = a.assignments(), ba = b.assignments();
    if (!aa.concat(ba).every((x) => x.partitions)) problems.push('some `assigned partitions` line names no readable partition list [..]');
    const lists = (xs: typeof aa) => xs.filter((x) => x.partitions).map((x) => x.partitions!);
    if (!shrank(lists(aa))) problems.push('member a never lost some (not all) of its partitions');
    if (!grew(lists(ba))) problems.push('member b never gained partitions on top of its own');
    const bLast = lists(ba).pop();
    if (bLast?.length !== PARTITIONS) problems.push(`member b's last assignment is ${JSON.stringify(bLast)}, not all ${PARTITIONS} partitions`);
    if (newestManifest(manifestsOf(ckpt, 'b')) === '') problems.push(`member b kept no checkpoint in ${manifestsOf(ckpt, 'b')}`);
    for (const m of [a, b]) {
      try {
        const late = (lastJson(m.stdout) as { late?: unknown }).late;
        if (late !== 0) problems.push(`member ${m.name}: ${late} late records`);
      } catch { problems.push(`member ${m.name}: no --json summary on stdout`); }
    }

    const detail = await compareOutput(OUT, expected, lp, rp, problems);
    assert.ok(problems.length === 0, `${problems.map((p) => `- ${p}`).join('\n')}${detail}\n--- ${a.summary()}\n--- ${b.summary()}`);
    data.failed = false;
  });

  // Full join: every event is logged as it arrives. Inner join: both sides' events are deferred to
  // the barrier (src/state/pending-log.ts), their Kafka partitions kept in the join buffer's entries,
  // which is what lets the other member take one partition's state out of b's checkpoint.
  for (const kind of ['full', 'inner'] as const) {
    test(`b is killed with kill -9: a takes its partitions from its last committed checkpoint; b restarted under its name takes some back; output exact${kind === 'inner' ? ' (inner join: change records deferred to the barrier)' : ''}`, { timeout: 300_000 }, async () => {
      const { left, right } = data;
      const expected = kind === 'full' ? data.expected : referenceJoin(left, right, { ...ref, kind });
      data.failed = true;
      const sfx = kind === 'full' ? '' : `-${kind}`;
      const L = `mk-imp${sfx}-${uniq}`, R = `mk-play${sfx}-${uniq}`, OUT = `mk-out${sfx}-${uniq}`, group = `mk${sfx}-${uniq}`;
      const ckpt = path.join(tmp, `ckpt-kill${sfx}`);
      await ensureTopics([broker()], [{ topic: L, partitions: PARTITIONS }, { topic: R, partitions: PARTITIONS }]);
      const t0 = left[0].ts as number, t1 = left[left.length - 1].ts as number;
      const cuts = [t0 + (t1 - t0) / 3, t0 + 2 * (t1 - t0) / 3];
      const lp = phases(left, cuts), rp = phases(right, cuts);
      const produce = (i: number) => Promise.all([produceRaw([broker()], L, msgs(lp[i])), produceRaw([broker()], R, msgs(rp[i]))]);
      const args = (name: string, extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`,
        '--group', group, ...JOIN.map((a) => (a === 'full' ? kind : a)), '--workers', '1', '--state-dir', path.join(tmp, `stk${sfx}-${name}`),
        '--checkpoint-dir', ckpt, '--member', name, '--checkpoint-interval', '1s', '--session-timeout', '6s',
        '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];
      const lastAssigned = (m: Member) => m.assignments().filter((x) => x.partitions).map((x) => x.partitions!).pop() ?? [];

      await produce(0);
      const a = new Member('a', args('a', []));
      members.push(a);
      await a.waitFor('its first checkpoint', () => newestManifest(manifestsOf(ckpt, 'a')) !== '', 90_000);
      const b1 = new Member('b', args('b', []));
      members.push(b1);
      await b1.waitFor('partitions of its own', () => lastAssigned(b1).length > 0, 90_000);
      await produce(1);
      const had = manifestId(newestManifest(manifestsOf(ckpt, 'b')));
      await b1.waitFor('a checkpoint after phase 2 was produced', () => manifestId(newestManifest(manifestsOf(ckpt, 'b'))) > had, 60_000);
      await sleep(300 + Math.floor(Math.random() * 700)); // mid-interval: some of b's work is applied but not committed
      b1.child.kill('SIGKILL');
      await b1.exited;
      // b's session expires (6 s): a re-joins alone and takes b's partitions from b's checkpoint.
      await a.waitFor('all partitions after b died', () => lastAssigned(a).length === PARTITIONS, 90_000);
      // Phase 3 while a holds everything; b comes back under its name (fencing its predecessor's open
      // transaction), takes partitions from a's checkpoint, then a leaves and b finishes alone.
      await produce(2);
      const b2 = new Member('b', args('b', ['--exit-when-idle', '15s']));
      members.push(b2);
      await b2.waitFor('partitions back after its restart', () => lastAssigned(b2).length > 0, 90_000);
      a.child.kill('SIGTERM');
      await a.exit(90_000);
      await b2.exit(150_000);

      const problems: string[] = [];
      if (a.code !== 0) problems.push(`member a exited ${a.code}, not 0`);
      if (b2.code !== 0) problems.push(`restarted member b exited ${b2.code}, not 0`);
      if (!/[ ;]b\/\d+ → partitions/.test(a.stderr)) problems.push("member a never took state from b's checkpoints");
      if (!/[ ;]a\/\d+ → partitions/.test(b2.stderr)) problems.push("restarted member b never took state from a's checkpoints");
      if (lastAssigned(b2).length !== PARTITIONS) problems.push(`restarted member b ended with partitions ${JSON.stringify(lastAssigned(b2))}, not all`);
      const detail = await compareOutput(OUT, expected, lp, rp, problems);
      assert.ok(problems.length === 0, `${problems.map((p) => `- ${p}`).join('\n')}${detail}\n--- ${a.summary()}\n--- ${b1.summary()}\n--- ${b2.summary()}`);
      data.failed = false;
    });
  }

  test('--member with a name that is no directory name (a slash, empty) is a usage error (exit 2) naming --member', { timeout: 60_000 }, async () => {
    // Nothing listens on 127.0.0.1:1: the name is checked before any connection.
    const base = ['run', '--brokers', '127.0.0.1:1', '--connect-timeout', '1s', '--left', 'kafka:mb-l', '--right', 'kafka:mb-r', '--group', `mb-usage-${uniq}`,
      '--state-dir', path.join(tmp, 'st-usage'), '--checkpoint-dir', path.join(tmp, 'ckpt-usage'), '--out', 'kafka:mb-out'];
    for (const name of ['a/b', '']) {
      const r = await joinery([...base, '--member', name], { timeoutMs: 30_000 });
      assert.equal(r.code, 2, `--member ${JSON.stringify(name)}: exit ${r.code}, expected 2 (usage error)\n${r.stderr}`);
      assert.match(r.stderr, /--member/, `--member ${JSON.stringify(name)}: the message names --member\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /unknown flag/, `--member is a known flag\n${r.stderr}`);
    }
    // A good name passes the check: the run gets as far as the unreachable broker (E_INPUT, exit 3).
    const ok = await joinery([...base, '--member', 'node-1'], { timeoutMs: 30_000 });
    assert.notEqual(ok.code, 2, `--member node-1 is a valid name\n${ok.stderr}`);
  });
});
