// The NDJSON output line (src/sink/ndjson.ts) is a byte concatenation: ids and key as the engine
// carries them, event times as String(number) would print them, the records' bytes verbatim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flatToJson } from '../../src/codec/flat.js';
import { encodeImpression, encodePlay } from '../../src/codec/flat-build.js';
import { NdjsonEmitter } from '../../src/sink/ndjson.js';

const u = (s: string) => new TextEncoder().encode(s);

test('pair and unmatched lines: verbatim record bytes, exact id/key digits, times as String(number)', () => {
  const e = new NdjsonEmitter(['json', 'json']);
  const left = ' {"eventId":"i-1","profileId":9007199254740993, "x":"é\\u0041"} ';
  const right = '{"big":' + 'x'.repeat(0) + '123456789012345678901234567890}';
  // around the writer's split at 10^8 (a low half with leading zeros), the year 2100, and what
  // takes String(): negatives, fractions, unsafe integers
  const times = [0, -0, 1767225600003, 2 ** 53 - 1, 2 ** 53, -5, 1.5, 1e21, 9, 99_999_999, 100_000_000, 100_000_001,
    1_200_000_000_007, 123_456_789_000_000, 4_102_444_800_000, 10 ** 15];
  for (const t of times) e.pair(u('[9007199254740993,"a"]'), u('"i-1"'), t, u(left), u('18446744073709551615'), t, u(right));
  e.unmatched(0, u('[1]'), u('"i"'), 42, u('{"a":1}'));
  e.unmatched(1, u('[1]'), u('"p"'), 43, u('{"b":2}'));
  const text = Buffer.from(e.take()!).toString('utf8');
  const lines = text.split('\n');
  assert.equal(lines.pop(), '');
  times.forEach((t, i) => {
    assert.equal(lines[i], `{"leftId":"i-1","rightId":18446744073709551615,"key":[9007199254740993,"a"],"leftTs":${String(t)},"rightTs":${String(t)},"left":${left},"right":${right}}`);
  });
  assert.equal(lines[times.length], '{"leftId":"i","rightId":null,"key":[1],"leftTs":42,"rightTs":null,"left":{"a":1},"right":null}');
  assert.equal(lines[times.length + 1], '{"leftId":null,"rightId":"p","key":[1],"leftTs":null,"rightTs":43,"left":null,"right":{"b":2}}');
});

test('a chunk larger than the initial buffer grows it without losing bytes', () => {
  const e = new NdjsonEmitter(['json', 'json']);
  const big = u('{"pad":"' + 'z'.repeat(300_000) + '"}');
  for (let i = 0; i < 8; i++) e.pair(u('[1]'), u(`"l${i}"`), i, big, u(`"r${i}"`), i + 1, big);
  const lines = Buffer.from(e.take()!).toString('utf8').trim().split('\n');
  assert.equal(lines.length, 8);
  lines.forEach((l, i) => { const o = JSON.parse(l); assert.equal(o.leftId, `l${i}`); assert.equal(o.rightTs, i + 1); assert.equal(o.left.pad.length, 300_000); });
});

test('FlatBuffers records are rendered into the line byte for byte as flatToJson renders them', () => {
  const e = new NdjsonEmitter(['flatbuffers', 'flatbuffers']);
  const ids = ['i-1', '', 'é€😀', 'q"uote\\back', 'ctl\u0001\n\t', 'x'.repeat(500), '\u007f\u2028'];
  const expected: string[] = [];
  ids.forEach((id, i) => {
    const imp = encodeImpression({ eventId: id, profileId: 4294967295 - i, titleId: i, ts: 1767225600000 + i * 0.5, row: 65535, position: i, device: ids[(i + 1) % ids.length] });
    const play = encodePlay({ eventId: `p${i}`, profileId: i, titleId: 0, ts: -i, durationMs: 123456789, device: id });
    e.pair(u('[1]'), u('"l"'), 1, imp, u('"r"'), 2, play);
    e.unmatched(1, u('[1]'), u('"r"'), 2, play);
    expected.push(`{"leftId":"l","rightId":"r","key":[1],"leftTs":1,"rightTs":2,"left":${flatToJson('Impression', imp)},"right":${flatToJson('Play', play)}}`);
    expected.push(`{"leftId":null,"rightId":"r","key":[1],"leftTs":null,"rightTs":2,"left":null,"right":${flatToJson('Play', play)}}`);
  });
  assert.deepEqual(Buffer.from(e.take()!).toString('utf8').split('\n').slice(0, -1), expected);
});
