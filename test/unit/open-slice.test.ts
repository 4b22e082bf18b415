import * as fs from 'node:fs';
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

test('the slot table and arrays grow without a long add, and every key is found during and after their growth', () => {
  // Rehashing every slot in one add (a random write each) made the batch that crossed 1M slots
  // take 70–77 ms of CPU, all in one ring drain: every event queued behind it waited (p99
  // latency); then 35–40 ms, the copy of the slot arrays into fresh ones as they doubled (in the
  // engine 45–165 ms: page faults of the new arrays); now the doubled arrays and the next table are
  // allocated ahead and their pages touched a few per add, ~5–10 ms. Bound: this thread's CPU,
  // which a busy machine stretches far less than wall time (read in ticks of up to 4 ms on some
  // kernels).
  const cpuMs = () => {
    try { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6; } catch { return performance.now(); }
  };
  const os = new OpenSlice(64);
  const n = 1 << 21, batch = 4096;
  const key = new Uint8Array(4), dv = new DataView(key.buffer);
  const hashOf = (i: number) => Math.imul(i, 0x2545f491) ^ (i >>> 7);
  let worst = 0;
  for (let i = 0; i < n; i += batch) {
    const c0 = cpuMs();
    for (let j = i; j < i + batch; j++) { dv.setUint32(0, j); os.add(hashOf(j), j & 0xffff, key); }
    worst = Math.max(worst, cpuMs() - c0);
    // Keys from before the growth began (still in the old table) and just added are both found.
    for (const j of [0, i >>> 1, i + batch - 1]) { dv.setUint32(0, j); assert.equal(os.find(hashOf(j), j & 0xffff, key), j, `key ${j} after ${i + batch} adds`); }
  }
  for (let j = 0; j < n; j++) { dv.setUint32(0, j); if (os.find(hashOf(j), j & 0xffff, key) !== j) assert.fail(`key ${j}`); }
  dv.setUint32(0, n);
  assert.equal(os.find(hashOf(n), n & 0xffff, key), NONE);
  assert.ok(worst < 25, `worst batch of ${batch} adds took ${worst.toFixed(1)} ms of CPU`);
});
