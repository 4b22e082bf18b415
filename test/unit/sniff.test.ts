// The format sniffing of file inputs refuses only a confident mismatch: whatever is merely
// malformed is left to the dead letters.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sniffFormat } from '../../src/source/sniff.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-sniff-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function sniff(bytes: Buffer, format: 'json' | 'flatbuffers'): string | null {
  const f = path.join(tmp, `f-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(f, bytes);
  const fd = fs.openSync(f, 'r');
  try { sniffFormat(fd, f, 0, format); return null; } catch (e) { return (e as Error).message; } finally { fs.closeSync(fd); }
}

const flat = (...lens: number[]) => Buffer.concat(lens.map((n) => { const b = Buffer.alloc(4 + n, 1); b.writeUInt32LE(n, 0); b[5] = 0; return b; }));

test('NDJSON passes as json and is refused as flatbuffers', () => {
  const nd = Buffer.from('\n  {"eventId":"a","ts":1}\n{"eventId":"b","ts":2}\n');
  assert.equal(sniff(nd, 'json'), null);
  assert.match(sniff(nd, 'flatbuffers')!, /looks like NDJSON; use --format json/);
});

test('size-prefixed FlatBuffers pass as flatbuffers and are refused as json', () => {
  assert.equal(sniff(flat(40, 60), 'flatbuffers'), null);
  assert.equal(sniff(flat(40), 'flatbuffers'), null, 'a single record');
  assert.match(sniff(flat(40, 60), 'json')!, /looks like size-prefixed FlatBuffers; use --format flatbuffers/);
});

test('malformed but not clearly another format: left to the dead letters', () => {
  assert.equal(sniff(Buffer.from(''), 'json'), null, 'empty');
  assert.equal(sniff(Buffer.from('garbage first line\n{"a":1}\n'), 'json'), null, 'text that is not JSON');
  assert.equal(sniff(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\n')]), 'json'), null, 'a UTF-8 byte order mark');
  assert.equal(sniff(Buffer.from([0xff, 0xfe, 0x41, 0x0a]), 'json'), null, 'not UTF-8, but no NUL byte');
  assert.equal(sniff(flat(40).subarray(0, 20), 'flatbuffers'), null, 'a truncated record');
  assert.match(sniff(Buffer.from([0x41, 0, 0x42, 0x0a]), 'json')!, /binary data \(NUL bytes\)/);
});
