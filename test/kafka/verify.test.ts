/**
 * `joinery verify --output kafka:TOPIC` against a real broker (JOINERY_TEST_KAFKA, set by
 * test/run-tests.ts): run writes the join of two files to a topic (FlatBuffers JoinedRecords, or
 * JSON with --out-format json), verify reads it back read_committed and finds it equal; a record
 * produced to the topic by hand is reported extra with its partition and offset. Inputs may be
 * topics too (read_committed: an aborted transaction's events do not count), in memory or spilled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { produceRaw } from './topic-io.js';
import { spawn } from 'node:child_process';
import { BIN, joinery, lastJson } from '../e2e/cli.js';
import { readNdjson, referenceJoin } from '../e2e/reference-join.js';
import { encodeImpression } from '../../src/codec/flat-build.js';
import { KafkaRecordSink } from '../../src/kafka/kafkajs/index.js';
import { broker, settled, uniq } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-verify-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
// FlatBuffers output nests the input records, so it needs FlatBuffers inputs
const files = { json: [path.join(tmp, 'l.ndjson'), path.join(tmp, 'r.ndjson')], flatbuffers: [path.join(tmp, 'l.fb'), path.join(tmp, 'r.fb')] };
const JOIN = ['--join', 'full', '--lower', '-2s', '--upper', '1m'];

before(async () => {
  for (const format of ['json', 'flatbuffers'] as const) {
    const g = await joinery(['gen', '--events', '4000', '--gen-profiles', '200', '--gen-titles', '10', '--gen-play-delay', '20s', '--format', format,
      '--left-out', files[format][0], '--right-out', files[format][1]]);
    assert.equal(g.code, 0, g.stderr);
  }
});

for (const format of ['flatbuffers', 'json'] as const) {
  test(`verify reads a Kafka output topic (${format} values): equal, then one produced record more is extra`, async () => {
    const topic = uniq(`verify-${format}`);
    const [L, R] = files[format];
    const run = await joinery(['run', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--brokers', broker(), '--out', `kafka:${topic}`,
      '--format', format, '--out-format', format, '--state', 'memory', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const s = lastJson(run.stdout) as any;
    const args = ['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--format', format, ...JOIN, '--brokers', broker(), '--output', `kafka:${topic}`, '--json'];
    const v = await joinery(args);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const j = lastJson(v.stdout) as any;
    assert.equal(j.got, s.outputRecords);
    assert.ok(j.expectedPairs > 50 && j.expectedUnmatchedLeft > 0, JSON.stringify(j));
    await produceRaw([broker()], topic, [{ value: JSON.stringify({ leftId: 'i-x', rightId: null, key: [1, 1], leftTs: 7, rightTs: null, left: {}, right: null }), partition: 0 }]);
    const d = await joinery(args);
    assert.equal(d.code, 1, d.stdout + d.stderr);
    const k = lastJson(d.stdout) as any;
    assert.deepEqual([k.missing, k.extra, k.duplicated], [0, 1, 0]);
    assert.match(k.examples.extra[0].outputRecord, /^0\/\d+$/);
    assert.equal(k.examples.extra[0].leftId, '"i-x"');
  });
}

test('verify reads Kafka input topics (3 partitions, FlatBuffers) read_committed, in memory and spilled, and names records by partition/offset', async () => {
  const gen = ['--events', '20000', '--gen-profiles', '1000', '--gen-titles', '10', '--gen-skew', '0', '--gen-play-delay', '20s', '--gen-duplicates', '0.02'];
  const lf = path.join(tmp, 'in-l.ndjson'), rf = path.join(tmp, 'in-r.ndjson');
  const LT = uniq('verify-in-l'), RT = uniq('verify-in-r');
  const g1 = await joinery(['gen', ...gen, '--format', 'json', '--left-out', lf, '--right-out', rf]);
  assert.equal(g1.code, 0, g1.stderr);
  const g2 = await joinery(['gen', ...gen, '--brokers', broker(), '--left-topic', LT, '--right-topic', RT, '--partitions', '3']);
  assert.equal(g2.code, 0, g2.stderr);
  // the same streams as files: the reference join of them is the output to verify
  const left = readNdjson(lf), right = readNdjson(rf);
  const rows = referenceJoin(left, right, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -2000, upperMs: 60_000, kind: 'full' });
  const out = path.join(tmp, 'in-ref.ndjson');
  const lines = rows.map((c) => {
    const [leftId, rightId, key, leftTs, rightTs, l, r] = JSON.parse(c);
    return JSON.stringify({ leftId, rightId, key, leftTs, rightTs, left: l, right: r });
  });
  fs.writeFileSync(out, lines.join('\n') + '\n');
  // an aborted transaction on the left topic: an impression that would join the first play
  const play = right[0] as { profileId: number; titleId: number; ts: number };
  const sink = await KafkaRecordSink.open({ brokers: [broker()], topic: LT, transactionalId: uniq('verify-abort'), connectTimeoutMs: 10_000 });
  sink.write(`[${play.profileId},${play.titleId}]`, encodeImpression({ eventId: 'i-aborted', profileId: play.profileId, titleId: play.titleId, ts: play.ts, row: 1, position: 1, device: 'tv' }));
  await sink.flush();
  await sink.abortTransaction();
  await sink.close();
  await settled(LT);
  const args = ['verify', '--left', `kafka:${LT}`, '--right', `kafka:${RT}`, '--brokers', broker(), ...JOIN, '--json'];
  const mem = await joinery([...args, '--output', `file:${out}`]);
  assert.equal(mem.code, 0, mem.stdout + mem.stderr);
  const j = lastJson(mem.stdout) as any;
  assert.equal(j.expected, rows.length);
  assert.equal(j.inputs.left.records, left.length, 'the aborted impression is not read');
  assert.ok(j.expectedPairs > 500 && j.inputs.left.redeliveries > 0, JSON.stringify(j));
  // one pair dropped: missing, with its events named by partition/offset; the same spilled
  const at = lines.findIndex((l) => !l.includes(':null'));
  const bad = path.join(tmp, 'in-bad.ndjson');
  fs.writeFileSync(bad, lines.filter((_, i) => i !== at).join('\n') + '\n');
  const d = await joinery([...args, '--output', `file:${bad}`]);
  const spillDir = fs.mkdtempSync(path.join(tmp, 'spill-'));
  const ds = await joinery([...args, '--output', `file:${bad}`, '--max-memory', '256k', '--spill-dir', spillDir]);
  assert.equal(d.code, 1, d.stderr);
  assert.equal(ds.code, 1, ds.stderr);
  const k = lastJson(d.stdout) as any, ks = lastJson(ds.stdout) as any;
  assert.deepEqual([k.missing, k.extra, k.duplicated], [1, 0, 0]);
  const m = k.examples.missing[0], dropped = JSON.parse(lines[at]);
  assert.deepEqual([m.leftId, m.rightId], [JSON.stringify(dropped.leftId), JSON.stringify(dropped.rightId)]);
  assert.match(m.leftRecord, /^[0-2]\/\d+$/);
  assert.match(m.rightRecord, /^[0-2]\/\d+$/);
  assert.ok(ks.spill.spilledBytes > 0, JSON.stringify(ks.spill));
  assert.deepEqual(fs.readdirSync(spillDir), []);
  for (const r of [k, ks]) { delete r.elapsedMs; delete r.inputEventsPerSec; delete r.cpuUsPerEvent; delete r.phasesMs; delete r.spill; }
  assert.deepEqual(ks, k);
});

test('verify removes its spill files when a Kafka input fails mid-run (the file inputs already spilled)', async () => {
  const [L, R] = files.json;
  const big = path.join(tmp, 'big-r.ndjson');
  fs.writeFileSync(big, Buffer.concat(Array(100).fill(fs.readFileSync(R))));
  const spillDir = fs.mkdtempSync(path.join(tmp, 'spill-err-'));
  const child = spawn(process.execPath, [BIN, 'verify', '--left', `kafka:${uniq('no-such-topic')}`, '--right', `file:${big}`, '--output', `file:${L}`,
    '--brokers', broker(), '--max-memory', '256k', '--spill-dir', spillDir, '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '', sawSpill = false, ended = false;
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => { ended = true; r(code); }));
  while (!ended) {
    for (const d of fs.readdirSync(spillDir)) { try { if (fs.readdirSync(path.join(spillDir, d)).length > 0) sawSpill = true; } catch { /* removed meanwhile */ } }
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(await exit, 3, stderr);
  assert.match(stderr, /cannot read --left kafka:.*E_INPUT/);
  assert.ok(sawSpill, 'the threads had spilled before the error');
  assert.deepEqual(fs.readdirSync(spillDir), []);
});
