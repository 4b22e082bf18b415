/**
 * An open slice grows its slot table while events keep arriving (the old table's positions move
 * over a few per add, see open-slice.ts): keys added before, during and after a growth, and entries
 * linked to them meanwhile, are all found afterwards, in order, on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketStores } from './bucket-stores.js';
import { fnv1a } from './store.contract.js';
import type { Side } from '../../src/state/store.js';

const withStore = bucketStores('bucket-growth');
const enc = new TextEncoder();

test('entries inserted while an open slice grows are all found, in order', () => withStore({ bucketMs: 3_600_000 }, (s) => {
  const keys = 150_000; // the table grows several times
  let ids = 0;
  const put = (side: Side, k: number, ts: number) => {
    const key = enc.encode(`k${k}`);
    assert.ok(s.insert(side, k & 0xffff, fnv1a(key), key, ts, enc.encode(`${ids++}`), enc.encode('p'), false, 1e15));
  };
  s.batch(() => {
    for (let k = 0; k < keys; k++) {
      put((k & 1) as Side, k, 1000 + k); // a new slot
      // Existing slots get entries at the head, in the middle and at the tail of their lists, on
      // both sides (a key still in the old table has to be found there).
      const old = k >>> 1;
      put(0, old, 1000 + k + 1);
      put(1, old, 500);
      if (k % 3 === 0) put(0, old, 1000 + old + 0.5);
    }
    // After the growths: every list gets a new head and a new tail in the same slice (stale list ends would misplace them).
    for (let k = 0; k < keys; k++) for (const side of [0, 1] as Side[]) { put(side, k, 3_000_000); put(side, k, 1); }
  });
  const expect = new Map<string, number[]>();
  const add = (side: Side, k: number, ts: number) => { const id = `${side}:${k}`; (expect.get(id) ?? expect.set(id, []).get(id)!).push(ts); };
  for (let k = 0; k < keys; k++) {
    add((k & 1) as Side, k, 1000 + k);
    const old = k >>> 1;
    add(0, old, 1000 + k + 1);
    add(1, old, 500);
    if (k % 3 === 0) add(0, old, 1000 + old + 0.5);
  }
  for (let k = 0; k < keys; k++) for (const side of [0, 1] as Side[]) { add(side, k, 3_000_000); add(side, k, 1); }
  s.batch(() => {
    for (let k = 0; k < keys; k++) {
      const key = enc.encode(`k${k}`);
      for (const side of [0, 1] as Side[]) {
        const got: number[] = [];
        s.probe(side, k & 0xffff, fnv1a(key), key, -Infinity, Infinity, (e) => { got.push(e.ts); });
        const want = (expect.get(`${side}:${k}`) ?? []).sort((a, b) => a - b);
        if (got.join() !== want.join()) assert.fail(`key ${k} side ${side}: got ${got.join()} want ${want.join()}`);
      }
    }
  });
}));
