import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEY_GROUPS } from '../../src/config/schema.js';
import { keyGroupOf, keyGroupRanges, murmur3, ownerTable } from '../../src/router/partitioner.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

test('murmur3 matches the reference x86_32 vectors', () => {
  // Reference values of MurmurHash3_x86_32 (Appleby's SMHasher) for the given seeds.
  assert.equal(murmur3(bytes(''), 0, 0, 0), 0);
  assert.equal(murmur3(bytes(''), 0, 0, 1), 0x514e28b7);
  assert.equal(murmur3(bytes('a'), 0, 1, 0), 0x3c2569b2);
  assert.equal(murmur3(bytes('abcd'), 0, 4, 0), 0x43ed676a);
  assert.equal(murmur3(bytes('Hello, world!'), 0, 13, 0), 0xc0363e43);
  assert.equal(murmur3(bytes('The quick brown fox jumps over the lazy dog'), 0, 43, 0), 0x2e4ff723);
});

test('hash depends only on the bytes in range, not on their position', () => {
  const b = bytes('xx[1,2]yy');
  assert.equal(murmur3(b, 2, 7), murmur3(bytes('[1,2]'), 0, 5));
});

test('key-group ranges are contiguous, cover all groups, and are balanced', () => {
  for (const w of [1, 2, 3, 4, 7, 64]) {
    const r = keyGroupRanges(w);
    assert.equal(r.length, w);
    assert.equal(r[0][0], 0);
    assert.equal(r[w - 1][1], KEY_GROUPS);
    for (let i = 1; i < w; i++) assert.equal(r[i][0], r[i - 1][1]);
    const sizes = r.map(([s, e]) => e - s);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    const t = ownerTable(w);
    r.forEach(([s, e], i) => { assert.equal(t[s], i); assert.equal(t[e - 1], i); });
  }
});

test('keys spread evenly over key groups', () => {
  const counts = new Uint32Array(16);
  for (let i = 0; i < 64_000; i++) {
    const b = bytes(`[${i},${i % 97}]`);
    counts[keyGroupOf(murmur3(b, 0, b.length)) % 16]++;
  }
  for (const c of counts) assert.ok(c > 3_400 && c < 4_600, `bucket count ${c}`);
});
