// The hint a malformed-record warning adds when the record is in the other format (src/engine/dead-letters.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Builder } from 'flatbuffers';
import { formatHint } from '../../src/engine/dead-letters.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

test('JSON read as FlatBuffers: the hint names --format json', () => {
  assert.match(formatHint({ format: 'flatbuffers', record: bytes('{"profileId":1,"ts":5}') }), /looks like JSON: .*--format json/);
  assert.match(formatHint({ format: 'flatbuffers', record: bytes('\n  {"a":1}') }), /--format json/);
  assert.match(formatHint({ format: 'flatbuffers', record: bytes('{ broken JSON is still JSON to the eye') }), /--format json/);
});

test('binary read as JSON: the hint names --format flatbuffers', () => {
  const b = new Builder(64);
  const s = b.createString('x');
  b.startObject(1); b.addFieldOffset(0, s, 0); b.finish(b.endObject());
  const fb = b.asUint8Array();
  assert.match(formatHint({ format: 'json', record: new Uint8Array([0xff, 0xfe, 0x00, 0x9f]) }), /--format flatbuffers/);
  // a FlatBuffer with non-UTF-8 bytes in its offsets
  const odd = new Uint8Array([...fb, 0xc3, 0x28]);
  assert.match(formatHint({ format: 'json', record: odd }), /not UTF-8/);
});

test('a record of the right format but broken gets no hint', () => {
  assert.equal(formatHint({ format: 'json', record: bytes('{"profileId":') }), '');
  assert.equal(formatHint({ format: 'json', record: bytes('not json at all') }), '');
  assert.equal(formatHint({ format: 'flatbuffers', record: new Uint8Array([1, 2, 3]) }), '');
  // a JSON object with a stray byte in a string (a dead letter as not UTF-8) is not FlatBuffers
  assert.equal(formatHint({ format: 'json', record: new Uint8Array([...bytes('{"device":"'), 0xff, ...bytes('"}')]) }), '');
});
