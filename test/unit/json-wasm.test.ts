// The JSON extractor's WebAssembly fast path (src/codec/json-wasm.ts, tools/wasm/json-extract)
// against the JavaScript extractor: every record the module takes, JavaScript takes too, with the
// same key and id bytes, time and lead; the common record is taken; batches as NDJSON lines and
// as Kafka values, with a record prefix, across a memory growth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonExtractor } from '../../src/codec/json.js';
import { rng } from '../contract/store.contract.js';

const enc = new TextEncoder();
type Fields = [string[], string, string];

interface Batch { data: Uint8Array; offs: Uint32Array; count: number; skip: number; lines: boolean }

function batchOf(records: Uint8Array[], lines: boolean, skip: number, crlf = false): Batch {
  const parts: number[] = [];
  const offs = [0];
  for (const rec of records) {
    for (let i = 0; i < skip; i++) parts.push(0xaa); // a prefix the fast path must not read
    parts.push(...rec);
    if (lines) { if (crlf) parts.push(13); parts.push(10); }
    offs.push(parts.length);
  }
  return { data: Uint8Array.from(parts), offs: Uint32Array.from(offs), count: records.length, skip, lines };
}

/** The record bounds the router gives extract() (lines: trailing blanks trimmed). */
function bounds(b: Batch, i: number): [number, number] {
  const start = b.offs[i] + b.skip;
  let end = b.offs[i + 1];
  if (b.lines) while (end > start && [10, 13, 32, 9].includes(b.data[end - 1])) end--;
  return [start, end];
}

/** Runs the batch through both; returns how many records the fast path took. */
function compare(fields: Fields, b: Batch): number {
  const fast = new JsonExtractor(...fields), js = new JsonExtractor(...fields);
  const prepared = fast.prepare(b.data, b.offs, b.count, b.skip, b.lines);
  const a = new Uint8Array(8192), c = new Uint8Array(8192);
  let taken = 0;
  for (let i = 0; i < b.count; i++) {
    if (prepared === null || !prepared.take(i, a, fast)) continue;
    taken++;
    const [start, end] = bounds(b, i);
    const what = `record ${JSON.stringify(Buffer.from(b.data.subarray(start, end)).toString('latin1'))} fields ${JSON.stringify(fields)}`;
    assert.ok(js.extract(b.data, start, end, c), `${what}: taken by the fast path, refused by JavaScript (${js.error})`);
    assert.ok(Object.is(fast.ts, js.ts), `${what}: ts ${fast.ts} vs ${js.ts}`);
    assert.equal(fast.keyLen, js.keyLen, what);
    assert.equal(fast.idLen, js.idLen, what);
    assert.equal(fast.lead, js.lead, what);
    assert.equal(Buffer.from(a.subarray(0, fast.keyLen + fast.idLen)).toString('latin1'), Buffer.from(c.subarray(0, js.keyLen + js.idLen)).toString('latin1'), what);
  }
  return taken;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** An impression as `joinery gen` writes it. */
function genRecord(r: () => number, i: number): Uint8Array {
  return enc.encode(`{"eventId":"i-${i}","profileId":${Math.floor(r() * 1e6)},"titleId":${Math.floor(r() * 2e4)},"ts":${1_767_225_600_000 + i * 7},` +
    `"row":${Math.floor(r() * 20)},"position":${Math.floor(r() * 40)},"device":"${pick(r, ['tv', 'mobile', 'web'])}"}`);
}

test('the common record is taken, as JavaScript reads it: lines (LF and CRLF), Kafka values, a record prefix', () => {
  const r = rng(3);
  const recs = Array.from({ length: 3000 }, (_, i) => genRecord(r, i));
  const f: Fields = [['profileId', 'titleId'], 'ts', 'eventId'];
  for (const b of [batchOf(recs, true, 0), batchOf(recs, true, 0, true), batchOf(recs, false, 0), batchOf(recs, false, 4), batchOf(recs, true, 2)]) {
    assert.equal(compare(f, b), recs.length, `lines ${b.lines} skip ${b.skip}`);
  }
});

const NAMES = ['k', 'k2', 'ts', 'id', 'a', 'x', 'kk', 'tsx', 'ids', 'profileId', 'profileI', 'titleId', 'eventId', 'é', 'q\\"', ''];
const STRINGS = ['', 'a', 'abc', 'i-17', ' sp ', 'é', '"', '\\', '\u0001', '\u007f', '€', 'x\ty'];
const NUMBERS = ['0', '7', '42', '-3', '-0', '1.5', '2e3', '1E-2', '00', '01', '1.', '.5', '-', '123456789012345', '1234567890123456',
  '9007199254740993', '123456789012345678901', '1234567890123456789012', '1767225600000', '-1767225600000', '1e400'];

function value(r: () => number): string {
  const p = r();
  if (p < 0.35) return JSON.stringify(pick(r, STRINGS));
  if (p < 0.45) return `"\\u00${pick(r, ['41', 'e9', '0a'])}"`; // an escape
  if (p < 0.8) return pick(r, NUMBERS);
  if (p < 0.85) return pick(r, ['true', 'false', 'null']);
  if (p < 0.92) return `{"b":${pick(r, NUMBERS)}}`;
  return `[${pick(r, NUMBERS)}]`;
}

/** Mostly what the fast path takes (plain ASCII strings, integers), sometimes anything. */
function likelyValue(r: () => number): string {
  if (r() < 0.15) return value(r);
  return r() < 0.5 ? JSON.stringify(pick(r, ['', 'a', 'abc', 'i-17', ' sp ', 'x y'])) : pick(r, ['0', '7', '42', '1767225600000', '123456789012345678901']);
}

const ws = (r: () => number): string => (r() < 0.8 ? '' : pick(r, [' ', '\t', '\n', '\r', '  ']));

function record(r: () => number, wanted: string[]): string {
  const names = [...wanted, ...Array.from({ length: Math.floor(r() * 5) }, () => pick(r, NAMES))];
  if (r() < 0.1) names.push(pick(r, wanted)); // a duplicate: the last one counts
  if (r() < 0.05) names.splice(Math.floor(r() * names.length), 1); // a field missing
  names.sort(() => r() - 0.5);
  const members = names.map((n) => {
    const v = (n === 'ts' || n === 'tsx') && r() < 0.8 ? pick(r, NUMBERS.slice(0, 4).concat(['1767225600000', '-1767225600000', '123456789012345'])) : likelyValue(r);
    return ws(r) + JSON.stringify(n) + ws(r) + ':' + ws(r) + v;
  });
  return (r() < 0.05 ? '\ufeff' : '') + (r() < 0.1 ? ws(r) : '') + '{' + members.join(',') + ws(r) + '}' + (r() < 0.1 ? ws(r) : '');
}

const MUTATION = [...'{}[]",:\\ 0123456789.eE+-tfnul'].map((c) => c.charCodeAt(0)).concat([0, 1, 0x1f, 0x7f, 0x80, 0xc3, 0xff]);

test('generated and mangled records: whatever the fast path takes, JavaScript takes with the same key, id and time', () => {
  const r = rng(29);
  const sets: Fields[] = [[['k'], 'ts', 'id'], [['k', 'k2'], 'tsx', 'id'], [['k', 'k'], 'ts', 'k'], [['profileId', 'titleId'], 'ts', 'eventId'], [['é', ''], 'ts', 'q\\"']];
  let taken = 0, total = 0;
  for (let round = 0; round < 200; round++) {
    const f = sets[round % sets.length];
    const wanted = [...f[0], f[1], f[2]];
    const recs = Array.from({ length: 100 }, () => {
      let b = enc.encode(record(r, wanted));
      if (r() < 0.15) { // a byte changed, inserted or removed
        const at = Math.floor(r() * b.length), x = pick(r, MUTATION), m = r();
        b = m < 0.4 ? Uint8Array.from([...b.subarray(0, at), x, ...b.subarray(at)]) : m < 0.7 ? Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1)])
          : Uint8Array.from(b, (c, j) => (j === at ? x : c));
      }
      return b;
    });
    taken += compare(f, batchOf(recs, round % 2 === 0, round % 3 === 0 ? 3 : 0));
    total += recs.length;
  }
  // both ways exercised: records taken, and records left to JavaScript
  assert.ok(taken > total / 10 && taken < total * 0.9, `taken ${taken} of ${total}: the test would prove little`);
});

test('no fast path for nested field paths; a batch larger than the module\'s memory grows it, and the next batch is read right', () => {
  const r = rng(5);
  const nested = new JsonExtractor(['a.b'], 'ts', 'id');
  const one = batchOf([enc.encode('{"a":{"b":1},"ts":1,"id":2}')], true, 0);
  assert.equal(nested.prepare(one.data, one.offs, one.count, 0, true), null);
  const f: Fields = [['profileId', 'titleId'], 'ts', 'eventId'];
  const x = new JsonExtractor(...f);
  const big = batchOf(Array.from({ length: 40_000 }, (_, i) => genRecord(r, i)), true, 0); // ~4 MB
  const small = batchOf(Array.from({ length: 50 }, (_, i) => genRecord(r, i)), false, 0);
  const p1 = x.prepare(big.data, big.offs, big.count, 0, true);
  assert.ok(p1 !== null);
  const g1 = p1.generation;
  const p2 = x.prepare(small.data, small.offs, small.count, 0, false);
  assert.ok(p2 !== null && p2.generation !== g1, 'a new batch is a new generation (the router checks it before take)');
  assert.equal(compare(f, big), big.count);
  assert.equal(compare(f, small), small.count);
});
