/**
 * Exactly-once Kafka → joinery → Kafka across crashes, against the real broker: kill -9 at random
 * moments, five times, restarting the same command; the output topic read with read_committed
 * must equal the batch join exactly (nothing missing, nothing duplicated).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTopic } from './topic-io.js';
import { topicOffsets } from '../../src/kafka/kafkajs/index.js';
import { BIN, joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from '../e2e/reference-join.js';
import { broker, sleep, settled } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-ckpt-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
const GEN = ['--events', '150000', '--seed', '5', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--join', 'full'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000, kind: 'full' as const };

/** Wait until no transaction is open on the topic (its commit markers are written just after EndTxn). */
const newestManifest = (dir: string) => { try { return fs.readdirSync(path.join(dir, 'manifests')).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort().pop() ?? ''; } catch { return ''; } };

/** Run the CLI; kill -9 it `killAfterMs` after the start, or, with `afterCheckpointIn`, after a new checkpoint appears there. */
function start(args: string[], killAfterMs?: number, afterCheckpointIn?: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    let t: NodeJS.Timeout | null = null;
    if (killAfterMs !== undefined && afterCheckpointIn) {
      const had = newestManifest(afterCheckpointIn);
      t = setInterval(() => { if (newestManifest(afterCheckpointIn) > had) { clearInterval(t!); t = setTimeout(() => child.kill('SIGKILL'), killAfterMs); } }, 20);
    } else if (killAfterMs !== undefined) {
      t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    }
    child.on('close', (code, signal) => { if (t) { clearTimeout(t); clearInterval(t); } resolve({ code, signal, stdout, stderr }); });
  });
}

describe('exactly-once Kafka → Kafka with checkpoints', () => {
  let expected: string[];
  const L = `ck-imp-${uniq}`, R = `ck-play-${uniq}`;

  before(async () => {
    const lf = path.join(tmp, 'l.ndjson'), rf = path.join(tmp, 'r.ndjson');
    const g1 = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g1.code, 0, g1.stderr);
    expected = referenceJoin(readNdjson(lf), readNdjson(rf), ref);
    const g2 = await joinery(['gen', ...GEN, '--brokers', broker(), '--left-topic', L, '--right-topic', R, '--partitions', '3']);
    assert.equal(g2.code, 0, g2.stderr);
  });

  test('kill -9 five times at random moments, then to the end: read_committed output equals the batch join', async () => {
    const out = `ck-joined-${uniq}`;
    const args = ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', `g-ck-${uniq}`, ...JOIN,
      '--workers', '2', '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', path.join(tmp, 'ckpt'), '--member', 'k9', '--checkpoint-interval', '300ms',
      '--out', `kafka:${out}`, '--out-format', 'json', '--exit-when-idle', '2s', '--session-timeout', '6s', '--json'];
    let resumed = 0;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      // Even runs: killed at a random time after the start (joining the group waits for the killed
      // member's session to expire, ~6 s, from the second run on). Odd runs: at a random time
      // after their first checkpoint, so that some run resumes however slow a loaded machine is.
      const delay = i % 2 === 1 ? Math.floor(Math.random() * 1500) : (i === 0 ? 2500 : 8000) + Math.floor(Math.random() * 2500);
      delays.push(delay);
      const r = await start(args, delay, i % 2 === 1 ? path.join(tmp, 'ckpt', 'members', 'k9') : undefined);
      if (/resuming from checkpoint/.test(r.stderr)) resumed++;
      if (r.code === 0) break;
      assert.equal(r.signal, 'SIGKILL', `run ${i} failed rather than being killed: ${r.stderr.slice(-3000)}`);
    }
    const r = await start(args);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    if (/resuming from checkpoint/.test(r.stderr)) resumed++;
    assert.ok(resumed >= 1, `at least one run resumed from a checkpoint (kill delays ${delays.join(', ')} ms)`);
    const s = lastJson(r.stdout) as { late: number };
    assert.equal(s.late, 0);
    await settled(out);
    const got: string[] = [];
    await readTopic([broker()], out, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000, isolation: 'read_committed' });
    const diff = multisetDiff(expected, got);
    assert.equal(diff, '', `kill delays ${delays.join(', ')} ms\n${diff}`);
  });

  // Both commit paths: offsets in the output transaction, and plain group commits (--out null;
  // a barrier requested as the router turned to its idle input once held this one for good).
  for (const [name, out] of [['transactional Kafka output', `kafka:ck-idle-out-${uniq}`], ['--out null', 'null']]) test(`checkpoints of an idle job add no files to the chain (${name})`, { timeout: 120_000 }, async () => {
    const tag = out === 'null' ? 'null' : 'txn';
    const dir = path.join(tmp, `ckpt-idle-${tag}`);
    const mdir = path.join(dir, 'members', 'idle', 'manifests');
    const args = ['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', `g-idle-${tag}-${uniq}`, ...JOIN,
      '--workers', '2', '--state-dir', path.join(tmp, `st-idle-${tag}`), '--checkpoint-dir', dir, '--member', 'idle', '--checkpoint-interval', '200ms',
      '--checkpoint-retain', '1000', '--out', out, '--session-timeout', '6s', '--json'];
    // Every record of both topics read: the manifests' offsets reach the topics' ends.
    let end = 0;
    for (const t of [L, R]) for (const o of await topicOffsets([broker()], t)) end += Number(o.high);
    type M = { manifest: { id: number; sources: Array<{ kafka?: Array<{ offset: string }> }>; files: Array<{ name: string }> } };
    const manifests = (): M[] => {
      let names: string[] = [];
      try { names = fs.readdirSync(mdir).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort(); } catch { /* not yet */ }
      return names.map((n) => JSON.parse(fs.readFileSync(path.join(mdir, n), 'utf8')) as M);
    };
    const readAll = (m: M) => m.manifest.sources.flatMap((x) => x.kafka ?? []).reduce((n, o) => n + Number(o.offset), 0) >= end;
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // Then four more checkpoints with nothing to read, and a graceful stop.
    const deadline = Date.now() + 90_000;
    let idle: M[] = [];
    while (Date.now() < deadline && child.exitCode === null) {
      const ms = manifests();
      const first = ms.findIndex(readAll);
      idle = first >= 0 ? ms.slice(first) : [];
      if (idle.length >= 5) break;
      await sleep(100);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-3000));
    assert.ok(idle.length >= 5, `5 checkpoints after everything was read, got ${idle.length}\n${stderr.slice(-3000)}`);
    // The first one after the last record may still hold its changes; those after it had none: an
    // empty change file per worker and checkpoint would grow the chain at each.
    const chains = idle.slice(1).map((m) => m.manifest.files.map((f) => f.name).join(','));
    assert.equal(new Set(chains).size, 1, `the chain changed while idle:\n${chains.join('\n')}`);
  });
});
