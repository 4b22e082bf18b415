// The two hash tables of `joinery verify` across many growths: every key and row keeps its index
// and its counts (the e2e data sets are too small to make them grow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rowCode, rowEvents } from '../../src/verify/batch.js';
import { KeyTable } from '../../src/verify/keys.js';
import { RowCounts } from '../../src/verify/rows.js';

test('RowCounts: counts survive growth, whether the growth comes from an expected or a got row', () => {
  const rows = new RowCounts();
  const n = 300_000;
  const code = (i: number) => rowCode(i * 7, i % 3 === 0 ? -1 : i * 5);
  for (let i = 0; i < n; i++) {
    rows.addExpected(code(i));
    if (i % 10 === 0) rows.addExpected(code(i)); // twice
    if (i % 4 === 0) rows.addGot(code(i));
    if (i % 13 === 0) rows.addGot(rowCode(-1, 10_000_000 + i)); // output-only rows, interleaved with growth
  }
  let seen = 0;
  rows.forEach((c, expected, got) => {
    const [l, r] = rowEvents(c);
    if (l === -1 && r >= 10_000_000) { assert.deepEqual([expected, got], [0, 1]); return; }
    const i = l / 7;
    assert.equal(i, seen, 'insertion order');
    assert.equal(c, code(i));
    assert.deepEqual([expected, got], [i % 10 === 0 ? 2 : 1, i % 4 === 0 ? 1 : 0], `row ${i}`);
    seen++;
  });
  assert.equal(seen, n);
});

test('rowCode and rowEvents are inverse, absent sides included', () => {
  for (const [l, r] of [[0, 0], [-1, 0], [0, -1], [2 ** 26 - 2, 2 ** 26 - 2], [123_456_789 % (2 ** 26), 5]]) {
    assert.deepEqual(rowEvents(rowCode(l, r)), [l, r]);
  }
});

test('KeyTable: 500k distinct keys interned and found by their bytes across growth; unknown keys are -1', () => {
  const keys = new KeyTable();
  const enc = (i: number) => Buffer.from(`[${i},${i % 977}]`);
  for (let i = 0; i < 500_000; i++) { const b = enc(i); assert.equal(keys.intern(b, 0, b.length), i); }
  for (let i = 0; i < 500_000; i++) {
    const b = Buffer.concat([Buffer.from('xx'), enc(i)]);
    assert.equal(keys.find(b, 2, b.length), i);
    assert.equal(keys.intern(b, 2, b.length), i);
    assert.equal(keys.text(i), `[${i},${i % 977}]`);
  }
  const u = Buffer.from('[500000,1]');
  assert.equal(keys.find(u, 0, u.length), -1);
  assert.equal(keys.size, 500_000);
});
