/**
 * kill -9 and exactly-once Kafka → Kafka output (one member, --checkpoint-dir, 1 s checkpoints):
 * while the input keeps arriving, the node is killed again and again — deterministically right
 * after a manifest became durable and before its output transaction committed
 * (JOINERY_INJECT_FAULTS=kill-after-manifest, the window where the checkpoint directory is ahead
 * of what the output system committed), and at random moments — then a last run finishes the
 * input. The output topic read with read_committed must equal the batch join of the whole input:
 * nothing missing (a restore from a checkpoint whose transaction was aborted loses that
 * interval's output), nothing duplicated. Each restart after such a kill must resume from the
 * checkpoint the group's committed offsets name, not from the newer manifest on disk.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics, fetchCommittedOffsets } from '../../src/kafka/kafkajs/index.js';
import { produceRaw, readTopic } from './topic-io.js';
import { parseCheckpointRef } from '../../src/checkpoint/handoff.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, readNdjson } from '../e2e/reference-join.js';
import { broker, CliProcess, joinScaffold, keyedMessages as msgs, phases, settled, sleep, tail } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-kill-eo-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '160000', '--seed', '59', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
// A long idle timeout: between runs every partition is silent for a while (the group waits for the
// killed member's session); a silent partition keeps holding the watermark back.
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--join', 'full', '--format', 'json', '--idle-timeout', '10m'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000, kind: 'full' as const };
const SLICES = 60;
const SLICE_EVERY_MS = 1_000;
describe('exactly-once Kafka output under repeated kill -9', () => {
  const runs: CliProcess[] = [];
  const data = joinScaffold('kill-eo.test', tmp, GEN, ref, () => runs);

  test('killed right after manifests land and at random times while input flows: read_committed output equals the batch join', { timeout: 420_000 }, async () => {
    const { left, right, expected } = data;
    const L = `ke-imp-${uniq}`, R = `ke-play-${uniq}`, OUT = `ke-out-${uniq}`, group = `ke-${uniq}`;
    const ckpt = path.join(tmp, 'ckpt');
    await ensureTopics([broker()], [{ topic: L, partitions: 3 }, { topic: R, partitions: 3 }]);
    // The input arrives in slices (by event time, both sides cut at the same times) over about a minute.
    const t0 = left[0].ts as number, t1 = left[left.length - 1].ts as number;
    const cutsAt = Array.from({ length: SLICES - 1 }, (_, i) => t0 + ((i + 1) * (t1 - t0)) / SLICES);
    const ls = phases(left, cutsAt), rs = phases(right, cutsAt);
    let produced = 0;
    const producing = (async () => {
      for (let i = 0; i < SLICES; i++) {
        await Promise.all([produceRaw([broker()], L, msgs(ls[i])), produceRaw([broker()], R, msgs(rs[i]))]);
        produced = i + 1;
        await sleep(SLICE_EVERY_MS);
      }
    })();

    const args = (extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group, ...JOIN,
      '--workers', '2', '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', ckpt, '--member', 'n1', '--checkpoint-interval', '1s',
      '--session-timeout', '6s', '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];
    const committedId = async (): Promise<number> => {
      const ids = (await fetchCommittedOffsets([broker()], group, [L, R])).map((c) => parseCheckpointRef(c.metadata)?.id ?? 0);
      return Math.max(0, ...ids);
    };
    const problems: string[] = [];
    // kill-after-manifest:1@S: SIGKILL itself once its (S+1)-th manifest of the run is durable.
    const schedule: Array<{ fault?: number; randomMs?: number }> = [
      { fault: 1 }, { fault: 2 }, { randomMs: 1_500 + Math.floor(Math.random() * 2_500) }, { fault: 1 }, { fault: 3 },
      { randomMs: 1_000 + Math.floor(Math.random() * 3_000) }, { fault: 2 },
    ];
    let injected = 0;
    let expectBelow = 0; // after an injected kill: the id of the manifest that landed uncommitted
    for (const [i, s] of schedule.entries()) {
      if (produced >= SLICES) break;
      const env: NodeJS.ProcessEnv = s.fault !== undefined ? { JOINERY_INJECT_FAULTS: `kill-after-manifest:1@${s.fault}` } : {};
      const r = new CliProcess(args([]), env);
      runs.push(r);
      if (!(await r.until('`resuming`/`assigned partitions` line', () => r.stderr.includes('assigned partitions'), 90_000))) {
        problems.push(`run ${i + 1} exited early (code ${r.code}, signal ${r.signal}):\n${tail(r.stderr)}`);
        break;
      }
      if (expectBelow > 0) {
        const m = /resuming from checkpoint (\d+)/.exec(r.stderr);
        const committed = await committedId();
        if (committed >= expectBelow) problems.push(`run ${i + 1}: the group's offsets name checkpoint ${committed}, though manifest ${expectBelow}'s transaction never committed`);
        if (m && Number(m[1]) !== committed) problems.push(`run ${i + 1} resumed from checkpoint ${m[1]}, but the committed offsets name checkpoint ${committed}:\n${tail(r.stderr, 8)}`);
      }
      expectBelow = 0;
      if (s.randomMs !== undefined) {
        await sleep(s.randomMs);
        r.child.kill('SIGKILL');
      } else {
        const t = setTimeout(() => r.child.kill('SIGKILL'), 60_000);
        await r.exited;
        clearTimeout(t);
      }
      await r.exited;
      if (r.signal !== 'SIGKILL') { problems.push(`run ${i + 1} ended with code ${r.code}, not by SIGKILL:\n${tail(r.stderr)}`); break; }
      const hit = /injected SIGKILL \(JOINERY_INJECT_FAULTS\) after manifest (\d+)/.exec(r.stderr);
      if (hit) { injected++; expectBelow = Number(hit[1]); }
    }
    await producing;
    const last = new CliProcess(args(['--exit-when-idle', '6s']), {});
    runs.push(last);
    const t = setTimeout(() => last.child.kill('SIGKILL'), 180_000);
    await last.exited;
    clearTimeout(t);
    if (expectBelow > 0) {
      const m = /resuming from checkpoint (\d+)/.exec(last.stderr);
      if (m && Number(m[1]) >= expectBelow) problems.push(`the last run resumed from checkpoint ${m[1]}, whose transaction never committed`);
    }
    if (last.code !== 0) problems.push(`the last run exited ${last.code} (${last.signal}):\n${tail(last.stderr)}`);
    else if ((lastJson(last.stdout) as { late?: number }).late !== 0) problems.push(`late records: ${(lastJson(last.stdout) as { late?: number }).late}`);
    if (injected < 4) problems.push(`only ${injected} kills right after a manifest landed (the test needs at least 4)`);
    // On disk: no manifest newer than the committed checkpoint is left to resume from; the
    // uncommitted ones were set aside (and the ids went on after the committed one).
    const mdir = path.join(ckpt, 'members', 'n1', 'manifests');
    const finalId = await committedId();
    const onDisk = fs.readdirSync(mdir);
    const newer = onDisk.filter((n) => /^ckpt-\d+\.json$/.test(n) && Number(n.slice(5, -5)) > finalId);
    if (newer.length > 0) problems.push(`manifests newer than the committed checkpoint ${finalId} are left to resume from: ${newer.join(', ')}`);
    if (!onDisk.some((n) => n.endsWith('.json.uncommitted'))) problems.push(`no manifest was set aside as *.uncommitted in ${mdir} (${onDisk.join(', ')})`);

    await settled(OUT);
    const got: string[] = [];
    await readTopic([broker()], OUT, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
    const diff = multisetDiff(expected, got);
    if (diff !== '') problems.push(`read_committed output ≠ batch join (${got.length} records, ${expected.length} expected):\n${diff}`);
    fs.writeFileSync(path.join(tmp, 'runs.log'), runs.map((r, i) => `--- run ${i + 1}: code ${r.code} signal ${r.signal}\n${r.stderr}`).join('\n'));
    assert.ok(problems.length === 0, `${problems.map((p) => `- ${p}`).join('\n')}\n(every run's stderr in ${tmp}/runs.log)`);
    data.failed = false;
  });
});

describe('exactly-once Kafka output: kill -9 at random times with the whole input present', () => {
  let failed = true;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-kill-rnd-'));
  let run: CliProcess | null = null;
  after(async () => {
    if (run?.running) { run.child.kill('SIGKILL'); await run.exited; }
    if (failed) process.stderr.write(`[kill-eo.test] kept ${dir} for a look\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });

  test('killed 5 times between 9 and 17 s after start, then run to the end: read_committed output equals the batch join', { timeout: 420_000 }, async () => {
    const u = `${uniq}-r`;
    const L = `kr-imp-${u}`, R = `kr-play-${u}`, OUT = `kr-out-${u}`, group = `kr-${u}`;
    const gen = ['--events', '400000', '--seed', '61', '--gen-profiles', '5000', '--gen-titles', '300', '--gen-event-time-rate', '1000',
      '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
    const lf = path.join(dir, 'l.ndjson'), rf = path.join(dir, 'r.ndjson');
    const g1 = await joinery(['gen', ...gen, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g1.code, 0, g1.stderr);
    const g2 = await joinery(['gen', ...gen, '--brokers', broker(), '--left-topic', L, '--right-topic', R, '--partitions', '3']);
    assert.equal(g2.code, 0, g2.stderr);
    const expected = referenceJoin(readNdjson(lf), readNdjson(rf), { ...ref, kind: 'inner' });
    const args = (extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', group,
      '--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--workers', '2', '--state-dir', path.join(dir, 'st'), '--checkpoint-dir', path.join(dir, 'ckpt'),
      '--checkpoint-interval', '1s', '--session-timeout', '6s', '--out', `kafka:${OUT}`, '--out-format', 'json', '--json', ...extra];
    const logs: string[] = [];
    for (let i = 0; i < 5; i++) {
      run = new CliProcess(args([]), {});
      await sleep(9_000 + Math.floor(Math.random() * 8_000));
      run.child.kill('SIGKILL');
      await run.exited;
      logs.push(`--- run ${i + 1}: code ${run.code} signal ${run.signal}\n${run.stderr}`);
      assert.equal(run.signal, 'SIGKILL', `run ${i + 1} ended before its kill (code ${run.code}): make the input larger\n${tail(run.stderr)}`);
    }
    run = new CliProcess(args(['--exit-when-idle', '6s']), {});
    const t = setTimeout(() => run!.child.kill('SIGKILL'), 240_000);
    await run.exited;
    clearTimeout(t);
    logs.push(`--- last run: code ${run.code} signal ${run.signal}\n${run.stderr}`);
    fs.writeFileSync(path.join(dir, 'runs.log'), logs.join('\n'));
    assert.equal(run.code, 0, `the last run exited ${run.code} (${run.signal}):\n${tail(run.stderr)}`);
    await settled(OUT);
    const got: string[] = [];
    await readTopic([broker()], OUT, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
    const diff = multisetDiff(expected, got);
    assert.equal(diff, '', `read_committed output ≠ batch join (${got.length} records, ${expected.length} expected): ${diff}\n(every run's stderr in ${dir}/runs.log)`);
    failed = false;
  });
});
