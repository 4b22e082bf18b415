/**
 * Input and output topics that change under a running node: a deleted output topic fails the run
 * (E_OUTPUT naming it; never a success summary), a deleted input topic fails it promptly as
 * E_INPUT naming the topic (not as a lost broker), and input topics whose partition counts differ
 * — at the start, or after partitions are added to one mid-run — are refused (E_INPUT naming both
 * counts): the co-partitioned join reads partition p of both topics together.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { addPartitions, deleteTopics, ensureTopics, topicOffsets } from '../../src/kafka/kafkajs/index.js';
import { produceRaw } from './topic-io.js';
import { BIN, joinery } from '../e2e/cli.js';
import { broker, sleep } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-topics-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
let seq = 0;
const tail = (s: string, n = 20): string => s.trim().split('\n').slice(-n).join('\n');
/** A topic name in quotes, as stderr shows it on a terminal or in a JSON log line (escaped quotes). */
const quoted = (t: string): string => `\\\\?"${t}\\\\?"`;

/** Small JSON input on both topics (same keys on both sides, so pairs come out). */
async function produceInput(L: string, R: string, n: number, t0 = 1_700_000_000_000): Promise<void> {
  const l: Array<{ key: string; value: string }> = [], r: Array<{ key: string; value: string }> = [];
  for (let i = 0; i < n; i++) {
    const key = `[${i % 500},${i % 7}]`;
    l.push({ key, value: JSON.stringify({ eventId: `l${i}`, profileId: i % 500, titleId: i % 7, ts: t0 + i * 10 }) });
    r.push({ key, value: JSON.stringify({ eventId: `r${i}`, profileId: i % 500, titleId: i % 7, ts: t0 + i * 10 + 5 }) });
  }
  await Promise.all([produceRaw([broker()], L, l), produceRaw([broker()], R, r)]);
}

class Run {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  code: number | null = null;
  readonly exited: Promise<void>;
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => { this.stdout += d; });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => { this.code = code ?? (signal ? 137 : null); resolve(); }));
  }
  /** Wait for the exit; SIGKILL after `ms` (the exit then counts as 137). */
  async exit(ms: number): Promise<number> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
    return this.code!;
  }
}

const runs: Run[] = [];
after(async () => {
  for (const r of runs) if (r.code === null) { r.child.kill('SIGKILL'); await r.exited; }
  fs.rmSync(tmp, { recursive: true, force: true });
});

function names(what: string) {
  const u = `${uniq}-${seq++}`;
  return { L: `tc-${what}-l-${u}`, R: `tc-${what}-r-${u}`, OUT: `tc-${what}-out-${u}`, group: `tc-${what}-${u}` };
}

const runArgs = (n: ReturnType<typeof names>, extra: string[]) => ['run', '--brokers', broker(), '--left', `kafka:${n.L}`, '--right', `kafka:${n.R}`,
  '--group', n.group, '--format', 'json', '--key', 'profileId,titleId', '--lower', '-1s', '--upper', '1s', '--max-delay', '1s',
  '--state-dir', path.join(tmp, `st-${n.group}`), '--workers', '1', ...extra];

async function outputRecords(topic: string): Promise<number> {
  try { return (await topicOffsets([broker()], topic, { isolation: 'read_uncommitted' })).reduce((a, o) => a + Number(o.high), 0); } catch { return 0; }
}

describe('topics that change under a running node', () => {
  test('input topics with different partition counts are refused at the start (E_INPUT naming both counts)', { timeout: 60_000 }, async () => {
    const n = names('skew');
    await ensureTopics([broker()], [{ topic: n.L, partitions: 3 }, { topic: n.R, partitions: 4 }]);
    await produceInput(n.L, n.R, 100);
    const r = await joinery(runArgs(n, ['--out', 'null', '--exit-when-idle', '2s']), { timeoutMs: 45_000 });
    assert.equal(r.code, 3, `exit ${r.code}, expected 3:\n${tail(r.stderr)}`);
    assert.match(r.stderr, /E_INPUT/);
    assert.match(r.stderr, new RegExp(`not co-partitioned: ${quoted(n.L)} \\(--left\\) has 3 partition\\(s\\), ${quoted(n.R)} \\(--right\\) has 4`), r.stderr);
  });

  test('partitions added to one input topic mid-run: the run fails promptly with E_INPUT naming both counts', { timeout: 90_000 }, async () => {
    const n = names('grow');
    await ensureTopics([broker()], [{ topic: n.L, partitions: 2 }, { topic: n.R, partitions: 2 }]);
    await produceInput(n.L, n.R, 2_000);
    const r = new Run(runArgs(n, ['--out', `kafka:${n.OUT}`, '--out-format', 'json', '--exit-when-idle', '40s']));
    runs.push(r);
    const deadline = Date.now() + 40_000;
    while (await outputRecords(n.OUT) === 0) { assert.ok(Date.now() < deadline && r.code === null, `no output:\n${tail(r.stderr)}`); await sleep(100); }
    await addPartitions([broker()], n.R, 3);
    const t0 = Date.now();
    const code = await r.exit(30_000);
    assert.equal(code, 3, `exit ${code} (137: still running 30 s after the change), expected 3:\n${tail(r.stderr)}`);
    assert.match(r.stderr, /E_INPUT/);
    assert.match(r.stderr, new RegExp(`${quoted(n.L)} \\(--left\\) has 2 partition\\(s\\), ${quoted(n.R)} \\(--right\\) has 3`), r.stderr);
    assert.ok(Date.now() - t0 < 20_000, `failed only after ${Date.now() - t0} ms`);
  });

  for (const ck of [false, true]) {
  test(`a deleted input topic fails the run promptly with E_INPUT naming it, not as a lost broker${ck ? ' (exactly-once, checkpoints)' : ''}`, { timeout: 90_000 }, async () => {
    const n = names(ck ? 'delinck' : 'delin');
    await ensureTopics([broker()], [{ topic: n.L, partitions: 2 }, { topic: n.R, partitions: 2 }]);
    await produceInput(n.L, n.R, 2_000);
    const r = new Run(runArgs(n, ['--out', `kafka:${n.OUT}`, '--out-format', 'json', '--exit-when-idle', '40s',
      ...(ck ? ['--checkpoint-dir', path.join(tmp, `ck-${n.group}`), '--checkpoint-interval', '1s', '--session-timeout', '6s'] : [])]));
    runs.push(r);
    const deadline = Date.now() + 40_000;
    while (await outputRecords(n.OUT) === 0) { assert.ok(Date.now() < deadline && r.code === null, `no output:\n${tail(r.stderr)}`); await sleep(100); }
    await deleteTopics([broker()], [n.L]);
    const t0 = Date.now();
    const code = await r.exit(30_000);
    assert.equal(code, 3, `exit ${code} (137: still running 30 s after the deletion), expected 3:\n${tail(r.stderr)}`);
    assert.match(r.stderr, new RegExp(`Kafka input topic ${quoted(n.L)} .*no longer exists.*E_INPUT`), r.stderr);
    assert.doesNotMatch(r.stderr, /reconnecting for up to/, 'a deleted topic is no lost broker');
    assert.ok(Date.now() - t0 < 20_000, `failed only after ${Date.now() - t0} ms`);
  });
  }

  for (const mode of ['exactly-once', 'at-least-once'] as const) {
    test(`a deleted output topic fails the run (${mode}, checkpoints): E_OUTPUT naming the topic, no success summary`, { timeout: 90_000 }, async () => {
      const n = names(mode === 'exactly-once' ? 'delout' : 'deloutal');
      await ensureTopics([broker()], [{ topic: n.L, partitions: 2 }, { topic: n.R, partitions: 2 }]);
      await produceInput(n.L, n.R, 2_000);
      const r = new Run(runArgs(n, ['--out', `kafka:${n.OUT}`, '--out-format', 'json', '--exit-when-idle', '10s', '--json',
        '--checkpoint-dir', path.join(tmp, `ck-${n.group}`), '--checkpoint-interval', '1s', '--session-timeout', '6s', '--delivery', mode]));
      runs.push(r);
      const deadline = Date.now() + 40_000;
      while (await outputRecords(n.OUT) === 0) { assert.ok(Date.now() < deadline && r.code === null, `no output:\n${tail(r.stderr)}`); await sleep(100); }
      await sleep(1_500); // every record written: the run only waits for its idle end
      await deleteTopics([broker()], [n.OUT]);
      const code = await r.exit(45_000);
      assert.equal(code, 3, `exit ${code}, expected 3 (E_OUTPUT):\n${tail(r.stderr)}`);
      assert.match(r.stderr, new RegExp(`Kafka output topic ${quoted(n.OUT)} no longer exists.*E_OUTPUT`), r.stderr);
      assert.doesNotMatch(r.stdout, /outputRecords/, 'no success summary');
    });
  }
});
