import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NONE } from '../../src/state/bucket-format.js';
import { OpenSlice } from '../../src/state/open-slice.js';

const k = (s: string) => new TextEncoder().encode(s);

test('find: the last slot found is reused only for the same key group and key bytes', () => {
  const os = new OpenSlice(64);
  const h = 0x1234567; // every key below collides on the hash
  const a = os.add(h, 7, k('[1,2]'));
  const b = os.add(h, 7, k('[1,3]')); // same length, other bytes
  const c = os.add(h, 8, k('[1,2]')); // same bytes, other key group
  assert.deepEqual([a, b, c].map((s) => new Set([a, b, c]).has(s)), [true, true, true]);
  assert.equal(new Set([a, b, c]).size, 3);
  for (const [g, key, want] of [[7, '[1,2]', a], [7, '[1,3]', b], [8, '[1,2]', c], [7, '[1,2]', a], [8, '[1,2]', c], [8, '[1,2]', c]] as const) {
    assert.equal(os.find(h, g, k(key)), want, `${g} ${key}`);
  }
  assert.equal(os.find(h, 7, k('[1,4]')), NONE, 'a colliding key that is absent');
  assert.equal(os.find(h, 7, k('[1,2,')), NONE, 'a prefix of the memo key\'s length + 1');
  assert.equal(os.find(h + 1, 7, k('[1,2]')), NONE, 'another hash');
  // After growth (slot arrays and table rebuilt), the memo still names the right slot.
  for (let i = 0; i < 500; i++) os.add(i * 7919, 1, k(`[${i}]`));
  assert.equal(os.find(h, 7, k('[1,3]')), b);
  assert.equal(os.find(499 * 7919, 1, k('[499]')), os.n - 1);
  assert.equal(os.find(h, 8, k('[1,2]')), c);
});
