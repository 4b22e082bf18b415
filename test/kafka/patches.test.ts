/**
 * The kafkajs patches are checked at start, never assumed. A group member with checkpoints depends
 * on the re-join hook (it checkpoints before handing partitions over); without it the member must
 * refuse to start (E_KAFKA_PATCH, exit 3) rather than run and lose exactly-once at the next
 * rebalance; likewise without the fenced transactional offset commit (txn-offset-fence). The hook is left out the way an incompatible kafkajs would leave it out: the real CLI
 * runs with JOINERY_KAFKAJS_SKIP_PATCH=rejoin against the real broker. The same command with
 * every patch installed runs as a member and commits its checkpoint (so the refusal is the
 * hook's, not the command's), and lists the active patches at debug level. Without the stable
 * offset read (offset-fetch-stable) a member is not refused: it warns once and reads until two reads agree.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, fetchCommittedOffsets } from '../../src/kafka/kafkajs/index.js';
import { joinery } from '../e2e/cli.js';
import { broker, uniq } from './support.js';
import { produceRaw } from './topic-io.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-patches-'));

describe('kafkajs patches checked at start', () => {
  const L = uniq('patch-l'), R = uniq('patch-r'), group = uniq('patch-g');
  const ckpt = path.join(tmp, 'ckpt');
  const args = ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group,
    '--format', 'json', '--checkpoint-dir', ckpt, '--member', 'm1', '--state-dir', path.join(tmp, 'state'),
    '--out', 'null', '--exit-when-idle', '2s', '--session-timeout', '6s', '--log-level', 'debug', '--json'];
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const e = { ...process.env, ...extra };
    for (const k of Object.keys(extra)) if (extra[k] === undefined) delete e[k];
    return e;
  };

  test('a group member with --checkpoint-dir refuses to start without the re-join hook (E_KAFKA_PATCH, exit 3)', async () => {
    await ensureTopics([broker()], [{ topic: L, partitions: 2 }, { topic: R, partitions: 2 }]);
    const ev = (id: string, ts: number) => ({ key: '1', value: JSON.stringify({ eventId: id, profileId: 1, titleId: 2, ts }) });
    await produceRaw([broker()], L, [ev('l1', 1_000), ev('l2', 2_000)]);
    await produceRaw([broker()], R, [ev('r1', 1_500)]);

    const refused = await joinery(args, { timeoutMs: 90_000, env: env({ JOINERY_KAFKAJS_SKIP_PATCH: 'rejoin' }) });
    assert.equal(refused.code, 3, `expected the refusal (exit 3), got exit ${refused.code}; stderr:\n${refused.stderr}`);
    const errors = refused.stderr.trim().split('\n').filter((l) => l.includes('"level":"error"'));
    assert.equal(errors.length, 1, refused.stderr);
    const e = JSON.parse(errors[0]) as { msg: string; code: string; exitCode: number };
    assert.equal(e.code, 'E_KAFKA_PATCH');
    assert.equal(e.exitCode, 3);
    assert.match(e.msg, /re-join hook \(patch rejoin/);
    assert.match(e.msg, /JOINERY_KAFKAJS_SKIP_PATCH/); // why it is missing
    assert.match(e.msg, /kafkajs 2\.2\.4 exactly \(npm ci\)/); // what to do
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(refused.stdout.trim(), '', 'no summary: nothing ran');
    // Refused before joining or locking: no member directory, nothing committed for the group.
    assert.equal(fs.existsSync(path.join(ckpt, 'members', 'm1')), false);
    assert.deepEqual((await fetchCommittedOffsets([broker()], group, [L, R])).filter((c) => Number(c.offset) >= 0), []);

    // The same without the fenced offset commit (an evicted member could commit work another member redoes).
    const unfenced = await joinery(args, { timeoutMs: 90_000, env: env({ JOINERY_KAFKAJS_SKIP_PATCH: 'txn-offset-fence' }) });
    assert.equal(unfenced.code, 3, `expected the refusal (exit 3), got exit ${unfenced.code}; stderr:\n${unfenced.stderr}`);
    const ue = JSON.parse(unfenced.stderr.trim().split('\n').filter((l) => l.includes('"level":"error"'))[0] ?? '{}') as { msg?: string; code?: string };
    assert.equal(ue.code, 'E_KAFKA_PATCH', unfenced.stderr);
    assert.match(ue.msg ?? '', /fenced transactional offset commit \(patch txn-offset-fence/);
    assert.equal(fs.existsSync(path.join(ckpt, 'members', 'm1')), false);

    // The same command with every patch installed runs as member m1 and commits a checkpoint.
    const ran = await joinery(args, { timeoutMs: 120_000, env: env({ JOINERY_KAFKAJS_SKIP_PATCH: undefined }) });
    assert.equal(ran.code, 0, ran.stderr);
    const listed = ran.stderr.split('\n').filter((l) => l.includes('"msg":"kafkajs patches"'));
    assert.equal(listed.length, 1, ran.stderr);
    const active = (JSON.parse(listed[0]) as { active: string[] }).active;
    assert.ok(active.includes('rejoin') && active.includes('txn-retry') && active.includes('group-messages') && active.includes('txn-offset-fence') && active.includes('offset-fetch-stable'), listed[0]);
    assert.doesNotMatch(ran.stderr, /not read stably/, 'the broker answers OffsetFetch v7: the planning read is stable');
    const committed = await fetchCommittedOffsets([broker()], group, [L, R]);
    assert.ok(committed.some((c) => c.topic === L && Number(c.offset) > 0 && /m1/.test(c.metadata ?? '')), JSON.stringify(committed));

    // Without the stable offset read the member still runs, planning from reads that agree, and says so once.
    const unstable = await joinery(args, { timeoutMs: 120_000, env: env({ JOINERY_KAFKAJS_SKIP_PATCH: 'offset-fetch-stable' }) });
    assert.equal(unstable.code, 0, unstable.stderr);
    const notStable = unstable.stderr.split('\n').filter((l) => l.includes('"level":"warn"') && l.includes('not read stably'));
    assert.equal(notStable.length, 1, unstable.stderr);
    assert.match(notStable[0], new RegExp(`consumer group ${group}`));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
