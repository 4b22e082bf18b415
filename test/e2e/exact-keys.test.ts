// Integer keys and ids beyond 2^53 keep their exact digits through the real CLI: JSON.parse would
// round 9007199254740993 to …992 and join records that differ.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-exact-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('keys 9007199254740993 and 9007199254740992 do not join; equal big keys join; output prints the exact digits', async () => {
  const l = path.join(tmp, 'l.ndjson'), r = path.join(tmp, 'r.ndjson'), out = path.join(tmp, 'out.ndjson');
  fs.writeFileSync(l, [
    '{"eventId":"i1","profileId":9007199254740993,"titleId":1,"ts":1000}',
    '{"eventId":"i2","profileId":9007199254740992,"titleId":1,"ts":1000}',
    '{"eventId":18446744073709551615,"profileId":123456789012345678901,"titleId":1,"ts":1000}',
    '{"eventId":"i4","profileId":1.50,"titleId":2,"ts":1000}',
  ].join('\n') + '\n');
  fs.writeFileSync(r, [
    '{"eventId":"p1","profileId":9007199254740993,"titleId":1,"ts":1500}',
    '{"eventId":"p3","profileId":123456789012345678901,"titleId":1,"ts":1500}',
    '{"eventId":"p4","profileId":15e-1,"titleId":2,"ts":1500}',
  ].join('\n') + '\n');
  const res = await joinery(['run', '--left', `file:${l}`, '--right', `file:${r}`, '--state-dir', path.join(tmp, 'state'),
    '--upper', '1s', '--workers', '2', '--out', `file:${out}`, '--json']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(lastJson(res.stdout).pairs, 3);
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n').sort();
  assert.deepEqual(lines.map((x) => /"leftId":([^,]+),"rightId":([^,]+),"key":(\[[^\]]*\])/.exec(x)!.slice(1)), [
    ['"i1"', '"p1"', '[9007199254740993,1]'],
    ['"i4"', '"p4"', '[1.5,2]'],
    ['18446744073709551615', '"p3"', '[123456789012345678901,1]'],
  ]);
  // the records themselves are copied verbatim (no re-serialisation rounds them either)
  assert.ok(lines[0].includes('"left":{"eventId":"i1","profileId":9007199254740993,"titleId":1,"ts":1000}'), lines[0]);
});
