/**
 * Broker stop and restart mid-run (issue 3): `joinery run` from Kafka to Kafka keeps going while its
 * broker is stopped, kept down for a few seconds and started again in place (tools/kafka/restart:
 * same ports, config and data dir). The run must exit 0 and the output topic read back must equal
 * an independent batch join of the same generated streams — nothing missing, nothing extra.
 *
 * This file starts its OWN broker (its own JOINERY_KAFKA_STATE and data dir), so the shared broker
 * of the other Kafka tests (JOINERY_TEST_KAFKA) is never restarted. A broker that cannot be started
 * fails the test; it is not skipped. On failure the broker's data dir (with kafka.log) is kept and
 * its path printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { groupOffsets, topicOffsets } from '../../src/kafka/kafkajs/index.js';
import { readTopic } from './topic-io.js';
import { BIN, joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from '../e2e/reference-join.js';
import { ownBroker, ROOT, type ToolRun } from './support.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-restart-'));
const uniq = `${process.pid}-${Date.now().toString(36)}`;
/** Environment of tools/kafka/* for this file's own broker. */
const own = ownBroker(tmp);

// 600k events (about 48 MB of FlatBuffers): more than the source's 32 MiB fetch queue, so when the
// first output appears the consumer is still reading and has to fetch the rest from the restarted
// broker; the run lasts several seconds, so the broker goes down in the middle of it.
const EVENTS = 600_000;
const GEN = ['--events', String(EVENTS), '--seed', '23', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
// Default idle timeout on purpose: a partition silent only because the broker is down still has
// unread records (KafkaSource.unreadPartitions), so it keeps holding the watermark back.
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000 };
const DOWN_FOR_S = 5;
/** How long the run may take to finish once the broker is back. */
const FINISH_WITHIN_MS = 75_000;
const leftTopic = `rs-imp-${uniq}`, rightTopic = `rs-play-${uniq}`;

type Done = ToolRun;

/** Run a tools/kafka script against this file's broker. */
const tool = own.tool;

const lastLine = (s: string): string => s.trim().split('\n').pop()?.trim() ?? '';
const tail = (s: string, n = 40): string => s.trim().split('\n').slice(-n).join('\n');

describe('Kafka broker stop and restart mid-run', () => {
  let bootstrap = '';
  let left: Rec[] = [], right: Rec[] = [];
  let run: ChildProcess | null = null;
  let failed = true; // cleared once the test passed: keeps the broker's data dir for a look otherwise

  before(async () => {
    bootstrap = await own.start();
    const lf = path.join(tmp, 'l.ndjson'), rf = path.join(tmp, 'r.ndjson');
    const g1 = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g1.code, 0, g1.stderr);
    left = readNdjson(lf); right = readNdjson(rf);
    const g2 = await joinery(['gen', ...GEN, '--brokers', bootstrap, '--left-topic', leftTopic, '--right-topic', rightTopic, '--partitions', '3']);
    assert.equal(g2.code, 0, g2.stderr);
  }, { timeout: 120_000 });

  after(async () => {
    if (run && run.exitCode === null && run.signalCode === null) run.kill('SIGKILL');
    await own.stop(failed, '[restart.test]');
    if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test(`full join, 2 workers, 3 partitions per topic, broker down ${DOWN_FOR_S}s mid-run: output equals the batch join`, { timeout: 150_000 }, async () => {
    const t0 = Date.now();
    const out = `rs-joined-${uniq}`, group = `g-rs-${uniq}`;
    const args = [BIN, 'run', '--brokers', bootstrap, '--left', `kafka:${leftTopic}`, '--right', `kafka:${rightTopic}`, '--group', group,
      ...JOIN, '--join', 'full', '--workers', '2', '--state-dir', path.join(tmp, 'st'),
      '--out', `kafka:${out}`, '--out-format', 'json', '--exit-when-idle', '5s', '--connect-timeout', '60s', '--json'];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    run = child;
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<Done>((resolve) => {
      child.on('error', (e) => resolve({ code: 127, signal: null, stdout, stderr: `${stderr}\n${e.message}` }));
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    let done: Done | null = null;
    void exited.then((d) => { done = d; });

    // Wait until the run has written some output (it is mid-run then), at most 30 s.
    let outBefore = 0;
    const waitUntil = Date.now() + 30_000;
    while (!done && Date.now() < waitUntil) {
      try {
        outBefore = (await topicOffsets([bootstrap], out)).reduce((a, o) => a + Number(o.high), 0);
      } catch { /* the run has not created its output topic yet */ }
      if (outBefore > 0) break;
      await sleep(200);
    }
    assert.equal(done, null, `the run ended before the broker restart:\n${tail(stderr)}`);
    assert.ok(outBefore > 0, `no output within 30 s:\n${tail(stderr)}`);

    const rs = await tool('restart', ['--down-for', String(DOWN_FOR_S)]);
    assert.equal(rs.code, 0, `tools/kafka/restart failed:\n${tail(rs.stderr)}`);
    assert.equal(lastLine(rs.stdout), bootstrap, 'the broker came back on the same address');

    const timer = setTimeout(() => child.kill('SIGKILL'), FINISH_WITHIN_MS);
    const r = await exited;
    clearTimeout(timer);
    fs.writeFileSync(path.join(tmp, 'run.stderr'), r.stderr);
    assert.equal(r.code, 0, (r.code === null ? `joinery run did not exit within ${FINISH_WITHIN_MS / 1000} s after the broker came back (killed)`
      : `joinery run exited with ${r.code} after the broker restart`) + ` (full stderr in ${tmp}/run.stderr):\n${tail(r.stderr, 60)}`);
    const s = lastJson(r.stdout);
    assert.deepEqual(s.eventsIn, [left.length, right.length], 'every input record was routed exactly once');
    assert.equal(s.late, 0);

    const expected = referenceJoin(left, right, { ...ref, kind: 'full' });
    assert.ok(outBefore < expected.length, `the broker went down mid-run (${outBefore} of ${expected.length} output records written before)`);
    const got: string[] = [];
    await readTopic([bootstrap], out, (rec) => { got.push(canonical(JSON.parse(rec.value!.toString('utf8')))); }, { timeoutMs: 60_000 });
    const diff = multisetDiff(expected, got);
    assert.equal(diff, '', `${diff}\n(${got.length} output records, ${expected.length} expected; joinery stderr:\n${tail(r.stderr, 30)})`);

    // As after an uninterrupted run, every input offset is committed: a second run of the group reads nothing again.
    // (kafkajs's commitOffsets returns without committing while its consumer re-joins; KafkaSource.commit
    // retries until kafkajs reports the commit.)
    const highs = new Map<string, string>();
    for (const t of [leftTopic, rightTopic]) for (const o of await topicOffsets([bootstrap], t)) highs.set(`${t}/${o.partition}`, o.high);
    const committed = await groupOffsets([bootstrap], group, [leftTopic, rightTopic]);
    assert.deepEqual(new Map(committed.map((c) => [`${c.topic}/${c.partition}`, c.offset])), highs, 'the group committed every input offset (committed ≠ end offsets)');
    process.stderr.write(`[restart.test] ${expected.length} records, ${outBefore} written before the restart; ${Date.now() - t0} ms\n`);
    failed = false;
  });
});
