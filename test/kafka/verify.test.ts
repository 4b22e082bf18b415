/**
 * `joinery verify --output kafka:TOPIC` against a real broker (JOINERY_TEST_KAFKA, set by
 * test/run-tests.ts): run writes the join of two files to a topic (FlatBuffers JoinedRecords, or
 * JSON with --out-format json), verify reads it back read_committed and finds it equal; a record
 * produced to the topic by hand is reported extra with its partition and offset.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { produceRaw } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { broker, uniq } from './support.js';

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
