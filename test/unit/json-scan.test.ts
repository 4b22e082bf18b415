// The byte-level NDJSON extractor (src/codec/json.ts, json-scan.ts) against JSON.parse-based
// extraction (ParsingJsonExtractor) on generated, mutated and hand-written adversarial records,
// and the exact canonical number texts (src/codec/canonical.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalNumberText } from '../../src/codec/canonical.js';
import { extractedTexts, JsonExtractor, ParsingJsonExtractor, type Extractor } from '../../src/codec/json.js';
import { rng } from '../contract/store.contract.js';


const enc = new TextEncoder();
const out = new Uint8Array(1 << 16);

interface Outcome { ok: boolean; error: string; ts: number; key: string; id: string }

function run(x: Extractor, bytes: Uint8Array): Outcome {
  const ok = x.extract(bytes, 0, bytes.length, out);
  if (!ok) return { ok, error: x.error, ts: 0, key: '', id: '' };
  const t = extractedTexts(x, out);
  return { ok, error: '', ts: x.ts, key: t.keyText, id: t.idText };
}

/** Numbers differ only in digits a double cannot hold: the texts must agree once parsed as JSON.parse would. */
function sameAsDoubles(scanned: string, parsed: string): boolean {
  return JSON.stringify(JSON.parse(scanned)) === parsed;
}

const pairs = new Map<string, [JsonExtractor, ParsingJsonExtractor]>();
function extractors(fields: [string[], string, string]): [JsonExtractor, ParsingJsonExtractor] {
  const k = JSON.stringify(fields);
  let p = pairs.get(k);
  if (!p) { p = [new JsonExtractor(...fields), new ParsingJsonExtractor(...fields)]; pairs.set(k, p); }
  return p;
}

/** A number literal in the text that is out of the doubles' range (JSON.parse makes it ±Infinity; the scanner keeps it). */
function overflows(bytes: Uint8Array): boolean {
  return (Buffer.from(bytes).toString('latin1').match(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g) ?? []).some((t) => !Number.isFinite(Number(t)));
}

/** Compares the outcomes; returns whether the scanner accepted the record. */
function compare(fields: [string[], string, string], bytes: Uint8Array, strictNumbers: boolean): boolean {
  const [x, y] = extractors(fields);
  const a = run(x, bytes);
  const b = run(y, bytes);
  const what = `record ${JSON.stringify(Buffer.from(bytes).toString('latin1'))} fields ${JSON.stringify(fields)}`;
  if (!strictNumbers && a.ok !== b.ok && b.error.includes('non-scalar') && overflows(bytes)) return a.ok;
  assert.equal(a.ok, b.ok, `${what}: scanner ${a.ok ? 'accepted' : `refused (${a.error})`}, JSON.parse ${b.ok ? 'accepted' : `refused (${b.error})`}`);
  if (!a.ok) { assert.equal(a.error, b.error, what); return false; }
  assert.ok(Object.is(a.ts, b.ts), `${what}: ts ${a.ts} vs ${b.ts}`);
  if (strictNumbers) {
    assert.equal(a.key, b.key, what);
    assert.equal(a.id, b.id, what);
  } else {
    assert.ok(sameAsDoubles(a.key, b.key), `${what}: key ${a.key} vs ${b.key}`);
    assert.ok(sameAsDoubles(a.id, b.id), `${what}: id ${a.id} vs ${b.id}`);
  }
  return true;
}

// ----- generated records

const NAMES = ['k', 'ts', 'id', 'a', 'b', 'x', 'k2', '0', '1', 'é', 'a b', '"q"', 'back\\slash', ''];
const STR_CHARS = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\u0001', '\u001f', '\u007f', 'é', '€', '😀', '\u2028', '\ud800', '\udfff', '\ufeff'];

function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) s += STR_CHARS[Math.floor(r() * STR_CHARS.length)];
  return s;
}

/** A JSON string literal for s, with some characters written as \u escapes (as producers may). */
function stringLiteral(r: () => number, s: string): string {
  const j = JSON.stringify(s);
  if (r() < 0.7) return j;
  let o = '"';
  for (const ch of j.slice(1, -1)) o += r() < 0.3 && ch !== '\\' ? '\\u' + (r() < 0.5 ? (x: string) => x : (x: string) => x.toUpperCase())(ch.charCodeAt(0).toString(16).padStart(4, '0')) : ch;
  return o + '"';
}

/** A number literal whose exact decimal value is the shortest text of some double (so old and new agree). */
function numberLiteral(r: () => number): string {
  const pick = r();
  let d: number;
  if (pick < 0.3) d = Math.floor(r() * 1e6) * (r() < 0.2 ? -1 : 1);
  else if (pick < 0.5) d = Math.floor(r() * 2 ** 53);
  else if (pick < 0.7) d = (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
  else if (pick < 0.8) d = r() < 0.5 ? 0 : -0;
  else d = Math.floor(r() * 1e4) / 100;
  if (!Number.isFinite(d)) d = 1;
  const [mant, e] = d.toExponential().split('e');
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let exp = Number(e) - (digits.length - 1); // value = digits × 10^exp
  let ds = digits;
  if (r() < 0.3) { const z = Math.floor(r() * 3); ds += '0'.repeat(z); exp -= z; } // trailing zeros
  const form = r();
  let text: string;
  if (form < 0.4) text = Object.is(d, -0) ? '-0' : String(d);
  else if (form < 0.7) text = `${ds}${r() < 0.5 ? 'e' : 'E'}${exp >= 0 && r() < 0.5 ? '+' : ''}${exp}`;
  else {
    // point placed somewhere inside, exponent adjusted
    const at = 1 + Math.floor(r() * ds.length);
    const frac = ds.slice(at);
    text = ds.slice(0, at) + (frac ? '.' + frac : '') + 'e' + (exp + frac.length);
    if (ds.length > 1 && ds[0] === '0') text = String(d);
  }
  return (neg && !text.startsWith('-') ? '-' : '') + text;
}

function ws(r: () => number): string {
  const p = r();
  if (p < 0.7) return '';
  return [' ', '\t', '\n', '\r', '  '][Math.floor(r() * 5)];
}

function value(r: () => number, depth: number): string {
  const p = r();
  if (p < 0.3) return stringLiteral(r, randomString(r));
  if (p < 0.6) return numberLiteral(r);
  if (p < 0.65) return 'true';
  if (p < 0.7) return 'false';
  if (p < 0.75) return 'null';
  if (depth > 3) return '1';
  if (p < 0.88) return object(r, depth + 1);
  const n = Math.floor(r() * 4);
  return '[' + ws(r) + Array.from({ length: n }, () => value(r, depth + 1)).join(ws(r) + ',' + ws(r)) + ws(r) + ']';
}

function object(r: () => number, depth: number): string {
  const n = Math.floor(r() * 6);
  const members: string[] = [];
  for (let i = 0; i < n; i++) members.push(ws(r) + stringLiteral(r, NAMES[Math.floor(r() * NAMES.length)]) + ws(r) + ':' + ws(r) + value(r, depth));
  return '{' + members.join(',') + ws(r) + '}';
}

const FIELD_SETS: Array<[string[], string, string]> = [
  [['k'], 'ts', 'id'],
  [['k', 'k2'], 'ts', 'id'],
  [['a.b', 'k'], 'x', 'a'],
  [['a.0', '0'], 'ts', 'b.x'],
  [['é', 'a b'], 'ts', '"q"'],
  [['back\\slash', ''], 'a.b.x', 'k'],
  [['k', 'k'], 'ts', 'k'],
];

/** A record most likely to hold the wanted fields: the generic object plus likely members. */
function record(r: () => number): string {
  const base = object(r, 0);
  const extra: string[] = [];
  for (const name of ['k', 'k2', 'ts', 'id', 'a', 'x', '0']) {
    if (r() < 0.9) {
      const v = name === 'ts' ? (r() < 0.95 ? numberLiteral(r) : value(r, 2)) : name === 'a' ? object(r, 2) : value(r, 3);
      extra.push(JSON.stringify(name) + ':' + v);
    }
  }
  const inner = base.slice(1, -1).trim();
  const all = r() < 0.5 ? [inner, ...extra] : [...extra, inner];
  return ws(r) + '{' + all.filter((s) => s !== '').join(',') + '}' + (r() < 0.2 ? ' ' : '');
}

test('scanner agrees with JSON.parse extraction on 10,000 generated records (nesting, escapes, unicode, whitespace, duplicates, number forms)', () => {
  const r = rng(7);
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    const bytes = enc.encode(record(r));
    for (const f of FIELD_SETS) {
      if (compare(f, bytes, true)) accepted++;
    }
  }
  assert.ok(accepted > 5_000, `too few records had all fields (${accepted}): the test would prove little`);
});

const MUTATION_BYTES = [...'{}[]",:\\ 0123456789.eE+-tfnul/'].map((c) => c.charCodeAt(0)).concat([0, 1, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xef, 0xf0, 0xff]);

/** Member names of layouts: shared prefixes, lengths around 4 and 8 (the scanner compares names as 32-bit words), a `}` and an escape. */
const LAYOUT_NAMES = ['k', 'k2', 'kk', 'ts', 'tsx', 'id', 'idx', 'ts_', 'a', 'x', '0', 'key', 'keys', 'keyz', 'profileId', 'profileIdx', 'profileI',
  'titleId', 'titleIe', 'eventId', 'eventIdentifier', 'abcd', 'abce', 'abcdefgh', 'abcdefgi', 'bcdefgh', 'n}', 'a b', 'é', 'q\\', ''];
const LAYOUT_FIELDS: Array<[string[], string, string]> = [
  [['k'], 'ts', 'id'],
  [['profileId', 'titleId'], 'ts', 'eventId'],
  [['abcd', 'abcdefgh'], 'keys', 'k2'],
  [['key', 'a.b'], 'tsx', 'x.0'],
  [['k', 'k'], 'ts', 'k'],
];

function layoutValue(r: () => number, name: string): string {
  if (r() < 0.05) return value(r, 2);
  if (name === 'ts' || name === 'tsx' || name === 'keys') return numberLiteral(r);
  if (name === 'a') return `{${ws(r)}"b"${ws(r)}:${ws(r)}${value(r, 4)}${r() < 0.5 ? ',"c":' + value(r, 2) : ''}}`;
  if (name === 'x') return `[${value(r, 4)}${r() < 0.5 ? ',' + value(r, 2) : ''}]`;
  return value(r, 4);
}

function layoutRecord(r: () => number, names: string[]): string {
  const members = names.map((name) => {
    const n = r() < 0.03 ? LAYOUT_NAMES[Math.floor(r() * LAYOUT_NAMES.length)] : name; // one name differs from the layout
    return ws(r) + stringLiteral(r, n) + ws(r) + ':' + ws(r) + layoutValue(r, n);
  });
  return (r() < 0.1 ? ws(r) : '') + '{' + members.join(',') + ws(r) + '}' + (r() < 0.1 ? ws(r) : '');
}

test('records sharing a layout, as the records of one file do: same outcome as JSON.parse, valid or mutated', () => {
  const r = rng(19);
  let accepted = 0, refused = 0;
  for (let l = 0; l < 400; l++) {
    const f = LAYOUT_FIELDS[l % LAYOUT_FIELDS.length];
    const wanted = [...f[0], f[1], f[2]].map((x) => x.split('.')[0]);
    // the wanted names and others, in a random order
    const names = [...wanted, ...Array.from({ length: Math.floor(r() * 8) }, () => LAYOUT_NAMES[Math.floor(r() * LAYOUT_NAMES.length)])]
      .map((n) => [r(), n] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
    for (let i = 0; i < 60; i++) {
      let b = enc.encode(layoutRecord(r, names));
      if (r() < 0.15) { // one byte changed, inserted or removed
        const at = Math.floor(r() * b.length), x = MUTATION_BYTES[Math.floor(r() * MUTATION_BYTES.length)], m = r();
        b = m < 0.4 ? Uint8Array.from([...b.subarray(0, at), x, ...b.subarray(at)]) : m < 0.7 ? Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1)])
          : Uint8Array.from(b, (c, j) => (j === at ? x : c));
        if (compare(f, b, false)) accepted++; else refused++;
      } else if (compare(f, b, true)) accepted++; else refused++;
    }
  }
  assert.ok(accepted > 5_000 && refused > 2_000, `accepted ${accepted}, refused ${refused}: the test would prove little`);
});

test('scanner refuses exactly what JSON.parse refuses, with the same error, on 30,000 mutated and truncated records', () => {
  const r = rng(11);
  let refused = 0;
  for (let i = 0; i < 30_000; i++) {
    const good = enc.encode(record(r));
    let b: Uint8Array;
    const m = r();
    const at = Math.floor(r() * (good.length + 1));
    if (m < 0.25) b = good.subarray(0, at); // truncated line
    else if (m < 0.5) b = Uint8Array.from([...good.subarray(0, at), ...good.subarray(at + 1)]);
    else if (m < 0.75) b = Uint8Array.from([...good.subarray(0, at), MUTATION_BYTES[Math.floor(r() * MUTATION_BYTES.length)], ...good.subarray(at)]);
    else { b = good.slice(); if (at < b.length) b[at] = MUTATION_BYTES[Math.floor(r() * MUTATION_BYTES.length)]; }
    const f = FIELD_SETS[i % FIELD_SETS.length];
    if (!compare(f, b, false) && extractors(f)[0].error.startsWith('not JSON')) refused++;
  }
  assert.ok(refused > 5_000, `too few mutations were invalid JSON (${refused})`);
});

test('hand-written adversarial records: same outcome and error text as JSON.parse', () => {
  const f: [string[], string, string] = [['k'], 'ts', 'id'];
  const cases = [
    '', ' ', '{', '}', '{}', '[]', '[1,2]', '"str"', '42', 'null', 'true', '{"k":1,"ts":2,"id":3}x', '{"k":1,"ts":2,"id":3},',
    '{"k":1,"ts":2,"id":3', '{"k":1 "ts":2,"id":3}', '{"k":1,,"ts":2,"id":3}', '{"k":1,"ts":2,"id":3,}', '{k:1}', "{'k':1}",
    '{"k":01,"ts":2,"id":3}', '{"k":1.,"ts":2,"id":3}', '{"k":.5,"ts":2,"id":3}', '{"k":+1,"ts":2,"id":3}', '{"k":1e,"ts":2,"id":3}',
    '{"k":-,"ts":2,"id":3}', '{"k":--1,"ts":2,"id":3}', '{"k":1e+,"ts":2,"id":3}', '{"k":NaN,"ts":2,"id":3}', '{"k":Infinity,"ts":2,"id":3}',
    '{"k":tru,"ts":2,"id":3}', '{"k":nul,"ts":2,"id":3}', '{"k":"a\\x","ts":2,"id":3}', '{"k":"\\u12","ts":2,"id":3}', '{"k":"\\u12g4","ts":2,"id":3}',
    '{"k":"a\tb","ts":2,"id":3}', '{"k":"\\"","ts":2,"id":3}', '{"k":"\\\\","ts":2,"id":3}', '{"k":"\\/","ts":2,"id":3}', '{"k":"\\u0041","ts":2,"id":"\\ud83d\\ude00"}',
    '{"k":"\\ud800","ts":2,"id":"\\udfff"}', '{"\\u006b":5,"ts":2,"id":3}', '{"k":1,"ts":"17","id":3}', '{"k":1,"ts":" 17 ","id":3}', '{"k":1,"ts":"","id":3}',
    '{"k":1,"ts":"abc","id":3}', '{"k":1,"ts":null,"id":3}', '{"k":1,"ts":true,"id":3}', '{"k":1,"ts":{"a":[1,{}]},"id":3}', '{"k":1,"ts":[2],"id":3}',
    '{"k":1,"ts":1e400,"id":3}', '{"k":1,"ts":-1e400,"id":3}', '{"k":1,"ts":1.5,"id":3}', '{"k":1,"ts":-0,"id":3}', '{"k":1,"ts":"0x10","id":3}',
    '{"k":null,"ts":2,"id":3}', '{"k":{},"ts":2,"id":3}', '{"k":[],"ts":2,"id":3}', '{"ts":2,"id":3}', '{"k":1,"ts":2}', '{"k":1,"id":3}',
    '{"k":1,"ts":2,"id":3,"k":"last"}', '{"k":1,"k":{"x":1},"ts":2,"id":3}', '{"k":true,"ts":2,"id":false}',
    '\ufeff{"k":1,"ts":2,"id":3}', '{"k":1,"ts":2,"id":3}\u0000', '\u0000{"k":1,"ts":2,"id":3}', '{"k":1,"ts":2,"id":3}\u00a0',
    '{"k":1,"ts":2,"id":3,"deep":' + '['.repeat(5000) + ']'.repeat(5000) + '}', '{"k":1,"ts":2,"id":3,"deep":' + '['.repeat(5000) + ']'.repeat(4999) + '}',
    '{"k":1,"ts":2,"id":3,"o":{"a":{"b":{"c":[{"d":"}"}]}}}}', '{"k":"}{","ts":2,"id":"]["}', ' \t\r\n{ "k" : 1 , "ts" : 2 , "id" : 3 } ',
    '{"k":"é€😀","ts":2,"id":"\u2028\u2029"}', '{"k":"a\\u0000b","ts":2,"id":"\\b\\f\\n\\r\\t"}',
  ];
  for (const c of cases) compare(f, enc.encode(c), true);
  // dotted paths: a repeated parent replaces what was found under the earlier one; arrays are indexed
  const g: [string[], string, string] = [['a.b', 'a.c'], 't.v', 'l.1'];
  for (const c of [
    '{"a":{"b":1,"c":2},"t":{"v":3},"l":[0,"x"]}', '{"a":{"b":1,"c":2},"a":{"b":5,"c":6},"t":{"v":3},"l":[0,"x"]}',
    '{"a":{"b":1,"c":2},"a":{"b":5},"t":{"v":3},"l":[0,"x"]}', '{"a":{"b":1,"c":2},"a":7,"t":{"v":3},"l":[0,"x"]}',
    '{"a":{"b":1,"c":2},"t":{"v":3},"l":[0]}', '{"a":{"b":1,"c":2},"t":{"v":3},"l":{"1":"obj"}}', '{"a":{"b":1,"c":2},"t":"3","l":[0,1]}',
    '{"a":[1,2],"t":{"v":3},"l":[0,[1]]}', '{"a":{"b":{"c":1},"c":2},"t":{"v":3},"l":[0,1]}', '{"a":null,"t":{"v":3},"l":[0,1]}',
  ]) compare(g, enc.encode(c), true);
});

test('invalid UTF-8 inside strings is refused, naming the byte; outside strings the record is not JSON', () => {
  const f: [string[], string, string] = [['k'], 'ts', 'id'];
  const parts = (k: number[], name = 'k') => Uint8Array.from([...enc.encode(`{"${name}":"`), ...k, ...enc.encode('","ts":1,"id":"\u00e9"}')]);
  const x = new JsonExtractor(...f);
  for (const bad of [[0xff], [0xc3], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0x80, 0x61]]) {
    assert.equal(compare(f, parts(bad), true), false);
    assert.equal(x.extract(parts(bad), 0, parts(bad).length, out), false);
    assert.equal(x.error, `not UTF-8: byte 0x${bad[0].toString(16)} at offset 6 of the record does not begin a well-formed UTF-8 sequence`);
    // in a field nobody asked for, or in a member name, all the same: the record's bytes go into the output
    assert.equal(x.extract(parts(bad, 'other'), 0, parts(bad, 'other').length, out), false);
    assert.match(x.error, /^not UTF-8/);
  }
  for (const good of [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbb, 0xbf]]) assert.equal(compare(f, parts(good), true), true);
  assert.equal(compare(f, Uint8Array.from([...enc.encode('{"k":1,"ts":1,"id":2}'), 0xff]), true), false);
  x.extract(Uint8Array.from([...enc.encode('{"k":1,"ts":1,"id":2}'), 0xff]), 0, 22, out);
  assert.match(x.error, /^not JSON/);
});

test('a record starting with a byte order mark: read, and its payload starts after the mark (lead)', () => {
  const x = new JsonExtractor(['k'], 'ts', 'id');
  const rec = Uint8Array.from([0xef, 0xbb, 0xbf, ...enc.encode('{"k":1,"ts":5,"id":2}')]);
  assert.equal(x.extract(rec, 0, rec.length, out), true, x.error);
  assert.equal(x.lead, 3);
  assert.equal(x.ts, 5);
  const plain = enc.encode('{"k":1,"ts":5,"id":2}');
  assert.equal(x.extract(plain, 0, plain.length, out), true);
  assert.equal(x.lead, 0);
});

test('key and id numbers keep their exact digits; equal values share one text', () => {
  const x = new JsonExtractor(['k', 'k2'], 'ts', 'id');
  const texts = (rec: string) => { assert.ok(x.extract(enc.encode(rec), 0, enc.encode(rec).length, out), x.error); return extractedTexts(x, out); };
  assert.deepEqual(texts('{"k":9007199254740993,"k2":-0,"ts":1,"id":18446744073709551615}'), { keyText: '[9007199254740993,0]', idText: '18446744073709551615' });
  assert.notEqual(texts('{"k":9007199254740993,"k2":1,"ts":1,"id":1}').keyText, texts('{"k":9007199254740992,"k2":1,"ts":1,"id":1}').keyText);
  assert.equal(texts('{"k":1.50,"k2":1E3,"ts":1,"id":15e-1}').keyText, '[1.5,1000]');
  assert.equal(texts('{"k":1.50,"k2":1E3,"ts":1,"id":15e-1}').idText, '1.5');
  assert.equal(texts('{"k":0.1000000000000000055511151231257827,"k2":1e400,"ts":1,"id":1e-400}').keyText, '[0.1000000000000000055511151231257827,1e+400]');
  assert.equal(texts('{"k":0.1000000000000000055511151231257827,"k2":1e400,"ts":1,"id":1e-400}').idText, '1e-400');
  assert.equal(texts('{"k":123456789012345678901234,"k2":1.0000000000000001,"ts":1,"id":0}').keyText, '[1.23456789012345678901234e+23,1.0000000000000001]');
  assert.equal(x.extract(enc.encode('{"k":1e9999999999,"k2":1,"ts":1,"id":1}'), 0, 38, out), false);
});

/** Exact value of a decimal literal: [mantissa, exponent of ten], mantissa without trailing zeros. */
function exact(text: string): [bigint, number] {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a number literal: ${text}`);
  let digits = m[2] + (m[3] ?? '');
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  digits = digits.replace(/^0+/, '');
  if (digits === '') return [0n, 0];
  while (digits.endsWith('0')) { digits = digits.slice(0, -1); exp++; }
  return [BigInt((m[1] === '-' ? '-' : '') + digits), exp + 0];
}

test('canonical number text: exact value, laid out as String(number); String(number) itself whenever the literal is a double\'s shortest text', () => {
  const r = rng(3);
  for (let i = 0; i < 50_000; i++) {
    const intDigits = String(Math.floor(r() * 10 ** Math.floor(r() * 12))) + (r() < 0.3 ? '0'.repeat(Math.floor(r() * 25)) : '');
    const frac = r() < 0.5 ? '' : '.' + String(Math.floor(r() * 1e9)).padStart(Math.floor(r() * 12), '0') + (r() < 0.2 ? '000' : '');
    const e = r() < 0.5 ? '' : (r() < 0.5 ? 'e' : 'E') + (['', '+', '-'][Math.floor(r() * 3)]) + String(Math.floor(r() * 400));
    const lit = (r() < 0.3 ? '-' : '') + intDigits + frac + e;
    const canon = canonicalNumberText(enc.encode(lit), 0, lit.length)!;
    assert.deepEqual(exact(canon), exact(lit), `${lit} → ${canon}: value changed`);
    const d = Number(lit);
    const shortest = String(d);
    if (Number.isFinite(d) && (d !== 0 || exact(lit)[0] === 0n) && exact(shortest).toString() === exact(lit).toString()) assert.equal(canon, shortest, lit);
    assert.doesNotThrow(() => JSON.parse(canon));
    if (frac === '' && e === '' && intDigits.length <= 21) assert.equal(canon, (lit.startsWith('-') && /[1-9]/.test(lit) ? '-' : '') + String(BigInt(intDigits)));
  }
});

test('key and id lengths are exact when they do not fit the caller\'s buffer (nothing is written past it)', () => {
  const x = new JsonExtractor(['profileId', 'titleId'], 'ts', 'eventId');
  const small = new Uint8Array(8);
  const rec = enc.encode('{"eventId":"a-very-long-event-id","profileId":1,"titleId":2,"ts":5}');
  assert.ok(x.extract(rec, 0, rec.length, small));
  assert.equal(x.keyLen, 5);
  assert.equal(x.idLen, 22, 'lengths are exact even when the buffer is too small (the router refuses such keys)');
});

test('integer event times of 1 to 16 digits, either sign, read exactly', () => {
  const x = new JsonExtractor(['k'], 'ts', 'id');
  const r = rng(5);
  for (let i = 0; i < 20_000; i++) {
    const digits = 1 + (i % 16);
    let t = String(1 + Math.floor(r() * 9)) + Array.from({ length: digits - 1 }, () => Math.floor(r() * 10)).join('');
    if (i % 97 === 0) t = '0';
    if (r() < 0.3) t = '-' + t;
    const rec = enc.encode(`{"k":1,"ts":${t},"id":2}`);
    assert.ok(x.extract(rec, 0, rec.length, out), t);
    assert.ok(Object.is(x.ts, Number(t)), `${t}: ${x.ts}`);
  }
});
