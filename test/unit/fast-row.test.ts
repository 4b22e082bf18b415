// verify's fast reading of output rows (src/verify/fast-row.ts) against the general JSON scanner:
// a row it accepts must be valid JSON with the same key, ids and times the general path reads;
// anything else — invalid JSON above all — must be left to the general path (read() false).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonFieldScanner, VT } from '../../src/codec/json-scan.js';
import { writeCanonicalScalar } from '../../src/codec/json.js';
import { FastRow } from '../../src/verify/fast-row.js';

type Fields = { key: string; leftId: string | null; rightId: string | null; leftTs: number | null; rightTs: number | null };

/** What the general path reads (null: not valid JSON). */
function general(line: string): Fields | null {
  const b = Buffer.from(line, 'utf8');
  const sc = new JsonFieldScanner(['leftId', 'rightId', 'key', 'leftTs', 'rightTs']);
  if (!sc.scan(b, 0, b.length)) return null;
  const id = (t: number) => {
    if (sc.type[t] === VT.Null) return null;
    const out = Buffer.alloc(1024);
    const e = writeCanonicalScalar(sc, t, b, out, 0);
    return e < 0 ? 'unusable' : out.subarray(0, e).toString('utf8');
  };
  const ts = (t: number) => (sc.type[t] === VT.Null ? null : Number(b.subarray(sc.start[t], sc.end[t]).toString('latin1')));
  return { key: b.subarray(sc.start[2], sc.end[2]).toString('utf8'), leftId: id(0), rightId: id(1), leftTs: ts(3), rightTs: ts(4) };
}

function fast(line: string): Fields | 'fallback' {
  const b = Buffer.from(line, 'utf8');
  const f = new FastRow();
  if (!f.read(b, 0, b.length)) return 'fallback';
  const text = (s: number, e: number) => (s < 0 ? null : b.subarray(s, e).toString('utf8'));
  return { key: text(f.keyStart, f.keyEnd)!, leftId: text(f.leftStart, f.leftEnd), rightId: text(f.rightStart, f.rightEnd), leftTs: f.leftTs, rightTs: f.rightTs };
}

const L = '{"eventId":"i-5","profileId":18986,"titleId":469,"ts":1767225600028,"row":2,"position":0,"device":"tv","ok":true,"x":null,"f":-1.5e3}';
const R = '{"eventId":"p-2","profileId":18986,"titleId":469,"ts":1767225600744,"durationMs":942230,"device":"tv"}';
const row = (over: Partial<Record<'leftId' | 'rightId' | 'key' | 'leftTs' | 'rightTs' | 'left' | 'right', string>> = {}) => {
  const v = { leftId: '"i-5"', rightId: '"p-2"', key: '[18986,469]', leftTs: '1767225600028', rightTs: '1767225600744', left: L, right: R, ...over };
  return `{"leftId":${v.leftId},"rightId":${v.rightId},"key":${v.key},"leftTs":${v.leftTs},"rightTs":${v.rightTs},"left":${v.left},"right":${v.right}}`;
};

test('rows as run writes them are read by the fast path, with the general path\'s fields', () => {
  const rows = [
    row(),
    row({ rightId: 'null', rightTs: 'null', right: 'null' }),
    row({ leftId: 'null', leftTs: 'null', left: 'null' }),
    row({ leftId: '17', rightId: '-4', key: '["a b",-3,0]' }),
    row({ key: '[]', left: '{}', right: '{"a":""}' }),
    row({ leftTs: '0', rightTs: '999999999999999' }),
  ];
  for (const r of rows) {
    const g = general(r);
    assert.ok(g, r);
    assert.deepEqual(fast(r), g, r);
  }
});

test('anything else is left to the general path: other shapes, and every invalid row', () => {
  const other = [
    ` ${row()}`, `${row()} `, row().replace('"leftId":', '"leftId": '), '\ufeff' + row(), // blanks, byte order mark
    row({ leftId: '"i\\u0035"' }), row({ leftId: '"ï"' }), row({ left: L.replace('"tv"', '"t\\"v"') }), row({ left: L.replace('"tv"', '"téléviseur"') }),
    row({ leftId: '1.5' }), row({ leftId: '1e3' }), row({ leftId: '-0' }), row({ leftId: 'true' }), row({ leftId: '1234567890123456789012' }),
    row({ key: '[1.5]' }), row({ key: '[[1]]' }), row({ leftTs: '-5' }), row({ leftTs: '1767225600028.5' }), row({ leftTs: '1234567890123456' }),
    row({ left: '{"a":{"b":1}}' }), row({ left: '{"a":[1]}' }), row({ left: '[1]' }),
    row().replace('"rightId":"p-2",', '') + '', row().replace('{"leftId":"i-5","rightId":"p-2",', '{"rightId":"p-2","leftId":"i-5",'),
    row().slice(0, -1) + ',"extra":1}',
  ];
  for (const r of other) assert.equal(fast(r), 'fallback', r);
  const invalid = [
    row().slice(0, -1), row() + '}', row().slice(0, 100), row({ left: L.replace('"tv"', 'tv') }), row({ left: L.replace('"row":2', '"row":02') }),
    row({ left: L.replace('"ok":true', '"ok":tru') }), row({ left: L.slice(0, -1) + ',}' }), row({ right: '{"a":1 "b":2}' }), row({ left: '{"a"1}' }),
    row({ leftId: '"i-5' }), row({ key: '[1,]' }), row({ key: '[1' }), row({ leftTs: '' }), row({ left: L.replace('-1.5e3', '-1.5e') }),
    row({ left: L.replace('-1.5e3', '-.5') }), row({ left: L.replace('"tv"', '"t\u0001v"') }),
  ];
  for (const r of invalid) {
    assert.equal(general(r), null, `not invalid for the general path: ${r}`);
    assert.equal(fast(r), 'fallback', r);
  }
});
