/**
 * The bucket store's key index: a probe goes only to the slices that hold its key (open or
 * sealed), de-duplication and joined flags still work across buckets, expiry takes index entries
 * away with the buckets, and hash collisions and hot keys stay exact (checked against MemoryStore).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BucketStore, type BucketStoreOptions } from '../../src/state/bucket-store.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import type { Buffered, Side, StateStore } from '../../src/state/store.js';
import { fnv1a } from './store.contract.js';
import { bucketStores } from './bucket-stores.js';

const withStore = bucketStores('bucket-index');

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

type Row = [string, number, boolean]; // id, ts, joined
function probe(s: StateStore, side: Side, key: string, from: number, to: number, hash = fnv1a(b(key)),
  mark?: (e: Buffered) => boolean): Row[] {
  const out: Row[] = [];
  const k = b(key);
  s.batch(() => s.probe(side, 1, hash, k, from, to, (e) => {
    out.push([dec.decode(e.id), e.ts, e.joined]);
    return mark?.(e);
  }));
  return out;
}

function put(s: StateStore, side: Side, key: string, ts: number, id: string, expireAt = ts + 1_000_000, hash = fnv1a(b(key))): boolean {
  return s.batch(() => s.insert(side, 1, hash, b(key), ts, b(id), b(`payload-${id}`), false, expireAt));
}

describe('BucketStore key index', () => {
  test('a probe visits only the slices holding its key, open and sealed; a key absent from the side visits none', () => withStore({ bucketMs: 100 }, (s) => {
    // 50 slices of other keys on both sides; key "k" on the right in 5 of them only.
    for (let t = 0; t < 50; t++) {
      for (let j = 0; j < 4; j++) {
        put(s, 0, `other-${t}-${j}`, t * 100 + j, `l${t}-${j}`);
        put(s, 1, `other-${t}-${j}`, t * 100 + j + 1, `r${t}-${j}`);
      }
      if (t % 10 === 3) put(s, 1, 'k', t * 100 + 50, `k${t}`);
    }
    put(s, 0, 'k', 2_000, 'left-only');
    s.batch(() => s.expire(3_000)); // slices 0–29 complete
    s.flushSeals();
    const st = s.stats();
    assert.equal(st.sealedSlices, 30);
    assert.equal(st.openSlices, 20);

    let before = s.stats().probedSlices;
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity), [['k3', 350, false], ['k13', 1350, false], ['k23', 2350, false],
      ['k33', 3350, false], ['k43', 4350, false]]);
    assert.equal(s.stats().probedSlices - before, 5, 'one visit per slice holding the key, none elsewhere');

    before = s.stats().probedSlices;
    assert.deepEqual(probe(s, 1, 'k', 1_300, 3_399), [['k13', 1350, false], ['k23', 2350, false], ['k33', 3350, false]]);
    assert.equal(s.stats().probedSlices - before, 3, 'a range visits only its own slices of the chain');

    before = s.stats().probedSlices;
    assert.deepEqual(probe(s, 0, 'k', -Infinity, Infinity), [['left-only', 2_000, false]]);
    assert.deepEqual(probe(s, 1, 'missing', -Infinity, Infinity), []);
    assert.deepEqual(probe(s, 1, 'k', 3_400, 4_299), [], 'a range between two slices of the chain');
    assert.equal(s.stats().probedSlices - before, 1, 'absent keys and empty ranges visit no slice');
  }));

  test('duplicates and joined flags across many buckets of one key, through sealing and unsealing', () => withStore({ bucketMs: 100 }, (s) => {
    for (let t = 0; t < 20; t++) assert.equal(put(s, 0, 'hot', t * 100 + 7, `e${t}`), true);
    s.batch(() => s.expire(1_000));
    s.flushSeals(); // slices 0–9 sealed, 10–19 open
    for (let t = 0; t < 20; t++) assert.equal(put(s, 0, 'hot', t * 100 + 7, `e${t}`), false, `duplicate in slice ${t}`);
    assert.equal(s.count(), 20);
    // Mark every other entry through probes (sealed: joined bits; open: arena flags).
    probe(s, 0, 'hot', -Infinity, Infinity, undefined, (e) => Number(dec.decode(e.id).slice(1)) % 2 === 0);
    const rows = probe(s, 0, 'hot', -Infinity, Infinity);
    assert.equal(rows.length, 20);
    for (const [id, ts, joined] of rows) assert.equal(joined, Number(id.slice(1)) % 2 === 0, `${id} at ${ts}`);
    // A new identity in a sealed slice unseals it; the index still sends probes there.
    assert.equal(put(s, 0, 'hot', 307, 'e3b'), true);
    assert.deepEqual(probe(s, 0, 'hot', 300, 399).map((r) => r[0]), ['e3', 'e3b']);
    assert.equal(s.count(), 21);
  }));

  test('expiry removes index entries: a side that expires first, then everything, open and sealed', () => withStore({ bucketMs: 100 }, (s) => {
    // Left entries live long, right ones expire at ts + 150 (the join's two retentions).
    for (let t = 0; t < 10; t++) {
      for (let j = 0; j < 5; j++) {
        put(s, 0, `key-${j}`, t * 100 + j, `l${t}-${j}`, t * 100 + j + 10_000);
        put(s, 1, `key-${j}`, t * 100 + j + 50, `r${t}-${j}`, t * 100 + j + 200);
      }
    }
    assert.equal(s.stats().indexKeys, 5);
    assert.equal(s.stats().indexOccurrences, 100, '5 keys × 2 sides × 10 slices');
    s.batch(() => s.expire(200));
    s.flushSeals(); // slices 0–1 sealed with both sides
    assert.equal(s.stats().sealedSlices, 2);
    assert.equal(s.stats().indexOccurrences, 100);
    // Right buckets of slices 0–3 expire (max expireAt t·100 + 204): 0–1 as sealed parts, 2–3 while open (then sealed).
    s.batch(() => s.expire(600));
    s.flushSeals();
    let st = s.stats();
    assert.equal(st.sealedSlices, 6);
    assert.deepEqual([st.indexKeys, st.indexOccurrences], [5, 100 - 5 * 4], 'the right-side occurrences of slices 0–3 went');
    // Probing the right side for a key visits only slices that still hold right entries.
    const before = st.probedSlices;
    const rows = probe(s, 1, 'key-2', -Infinity, Infinity);
    assert.deepEqual(rows.map((r) => r[1]), [452, 552, 652, 752, 852, 952]);
    assert.equal(s.stats().probedSlices - before, 6, 'no visit to a slice whose right bucket expired');
    s.batch(() => s.expire(1_000_000));
    st = s.stats();
    assert.deepEqual([s.count(), st.indexKeys, st.indexOccurrences], [0, 0, 0]);
  }));

  test('a right bucket that expires while its slice is open leaves the index at the seal', () => withStore({ bucketMs: 100, sealSpread: 0 }, (s) => {
    put(s, 0, 'a', 10, 'l', 10_000);
    put(s, 1, 'a', 20, 'r', 30); // expires at watermark 31, before slice 0 completes
    put(s, 1, 'b', 21, 'rb', 30);
    assert.equal(s.stats().indexOccurrences, 3);
    s.batch(() => s.expire(50)); // right bucket dead, slice 0 still open
    assert.equal(s.stats().indexOccurrences, 3, 'an open slice keeps its keys until sealed or emptied');
    assert.deepEqual(probe(s, 1, 'a', -Infinity, Infinity), []);
    s.batch(() => s.expire(100)); // slice 0 complete: sealed (sealSpread 0)
    const st = s.stats();
    assert.equal(st.sealedSlices, 1);
    assert.deepEqual([st.indexKeys, st.indexOccurrences], [1, 1], 'only (a, left) is left');
    assert.deepEqual(probe(s, 0, 'a', -Infinity, Infinity), [['l', 10, false]]);
  }));

  test('many keys: the index grows and shrinks back (deletions keep every other key findable)', () => withStore({ bucketMs: 1_000 }, (s) => {
    const n = 20_000;
    for (let i = 0; i < n; i++) put(s, (i & 1) as Side, `k${i}`, (i % 10) * 1_000 + 1, `id${i}`, (i % 10) * 1_000 + 1);
    assert.equal(s.stats().indexKeys, n);
    // Expire slices one at a time; every surviving key stays probe-able.
    for (let t = 0; t < 10; t++) {
      s.batch(() => s.expire(t * 1_000 + 2));
      for (let i = (t + 1) % 10; i < n; i += 997) {
        if (i % 10 <= t) continue;
        assert.deepEqual(probe(s, (i & 1) as Side, `k${i}`, -Infinity, Infinity), [[`id${i}`, (i % 10) * 1_000 + 1, false]], `k${i} after slice ${t}`);
      }
      assert.equal(s.stats().indexKeys, n - (t + 1) * (n / 10));
    }
    assert.ok(s.stats().indexHeapBytes < 64 * 1024, `the index shrank back (${s.stats().indexHeapBytes} bytes)`);
  }));

  test('frozen groups: old sealed slices leave the key index; probes, duplicates and joined flags still find them', () => withStore({ bucketMs: 100, freezeGroupSlices: 5 }, (s) => {
    // 60 slices; 20 distinct keys per slice on the left, key "k" on the right in every 7th slice.
    for (let t = 0; t < 60; t++) {
      for (let j = 0; j < 20; j++) put(s, 0, `other-${t}-${j}`, t * 100 + j, `l${t}-${j}`);
      if (t % 7 === 2) put(s, 1, 'k', t * 100 + 50, `k${t}`);
    }
    s.batch(() => s.expire(4_000)); // slices 0–39 complete
    s.flushSeals();
    // Sealed slices freeze once 2 behind the watermark's (slice 40): slices 0–37, into the tables
    // of groups 0–7 (5 slice numbers each; group 7's holds 35–37 so far).
    for (let i = 0; i < 50; i++) s.batch(() => s.expire(4_000));
    const st = s.stats();
    assert.equal(st.frozenSlices, 38);
    assert.equal(st.frozenGroups, 8);
    assert.ok(st.frozenHeapBytes > 0);
    // Left occurrences: only the 22 unfrozen slices' (20 keys each); right: k in slices 44, 51, 58.
    assert.equal(st.indexOccurrences, 22 * 20 + 3);

    let before = s.stats().probedSlices;
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity).map((r) => r[0]),
      ['k2', 'k9', 'k16', 'k23', 'k30', 'k37', 'k44', 'k51', 'k58']);
    assert.equal(s.stats().probedSlices - before, 9, 'one visit per slice holding the key, frozen or not');
    before = s.stats().probedSlices;
    assert.deepEqual(probe(s, 1, 'k', 1_000, 3_800).map((r) => r[0]), ['k16', 'k23', 'k30', 'k37']);
    assert.deepEqual(probe(s, 0, 'other-12-3', -Infinity, Infinity), [['l12-3', 1_203, false]]);
    assert.deepEqual(probe(s, 0, 'missing', -Infinity, Infinity), []);
    assert.equal(s.stats().probedSlices - before, 5);

    // A duplicate of a frozen entry is refused; a joined flag set there is seen by the next probe.
    assert.equal(put(s, 0, 'other-12-3', 1_203, 'l12-3'), false);
    s.batch(() => s.markJoined(0, 1, fnv1a(b('other-12-3')), b('other-12-3'), 1_203, b('l12-3')));
    assert.deepEqual(probe(s, 0, 'other-12-3', -Infinity, Infinity), [['l12-3', 1_203, true]]);
    // A new entry in a frozen slice reads it back into memory and into the key index.
    assert.equal(put(s, 1, 'k', 1_660, 'late'), true);
    assert.equal(s.stats().frozenSlices, 37);
    assert.deepEqual(probe(s, 1, 'k', 1_600, 1_699).map((r) => r[0]), ['k16', 'late']);
    assert.deepEqual(probe(s, 0, 'other-16-5', -Infinity, Infinity), [['l16-5', 1_605, false]]);

    // Expiry takes frozen groups away with their last slice.
    s.batch(() => s.expire(1_000_000 + 2_000)); // slices 0–19 go (groups 0–3)
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity).map((r) => r[0]), ['k23', 'k30', 'k37', 'k44', 'k51', 'k58']);
    assert.deepEqual([s.stats().frozenSlices, s.stats().frozenGroups], [40, 8], 'slices 20–59: the later ones were sealed and frozen as the watermark moved, 38 and 39 into group 7\'s table');
    s.batch(() => s.expire(Infinity));
    const end = s.stats();
    assert.deepEqual([s.count(), end.indexKeys, end.indexOccurrences, end.frozenGroups, end.frozenSlices], [0, 0, 0, 0, 0]);
  }));

  test('a group\'s table fills as its slices are sealed: a second table when it outgrows the first; a slice frozen again out of order', () => withStore({ bucketMs: 100, freezeGroupSlices: 10 }, (s) => {
    // Key "k" on the right in every slice; other keys on the left: 2 per slice in slices 0–2, then
    // 40, more than group 0's table was sized for when slices 0–2 came.
    for (let t = 0; t < 30; t++) {
      const n = t < 3 ? 2 : 40;
      for (let j = 0; j < n; j++) put(s, 0, `o-${t}-${j}`, t * 100 + j, `l${t}-${j}`);
      put(s, 1, 'k', t * 100 + 50, `k${t}`);
    }
    const ks = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `k${from + i}`);
    // The watermark moves a slice at a time; each slice is frozen once 2 behind it, not when its group is complete.
    for (let w = 1; w <= 25; w++) {
      s.batch(() => s.expire(w * 100));
      s.flushSeals();
      for (let i = 0; i < 10; i++) s.batch(() => s.expire(w * 100));
      if (w === 8) assert.equal(s.stats().frozenSlices, 6, 'slices 0–5 frozen while group 0 (0–9) is still incomplete');
    }
    let st = s.stats();
    assert.equal(st.frozenSlices, 23);
    assert.equal(st.frozenGroups, 4, 'group 0 in two tables, groups 1 and 2 in one each');
    assert.equal(st.indexOccurrences, 7 * 41, 'only slices 23–29 left in the key index');
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity).map((r) => r[0]), ks(0, 29));
    assert.deepEqual(probe(s, 0, 'o-1-1', -Infinity, Infinity), [['l1-1', 101, false]]);
    assert.deepEqual(probe(s, 0, 'o-7-39', -Infinity, Infinity), [['l7-39', 739, false]]);
    assert.equal(put(s, 0, 'o-7-39', 739, 'l7-39'), false, 'a duplicate of an entry in the second table');

    // A late insert reads slice 5 back; sealed and frozen again, its part comes after slices 6–9's
    // in its group's table, and probes still see the slices in order, once each.
    assert.equal(put(s, 1, 'k', 560, 'late'), true);
    assert.equal(s.stats().frozenSlices, 22);
    s.flushSeals();
    for (let i = 0; i < 10; i++) s.batch(() => s.expire(2_500));
    st = s.stats();
    assert.equal(st.frozenSlices, 23);
    assert.deepEqual(probe(s, 1, 'k', 300, 899).map((r) => r[0]), ['k3', 'k4', 'k5', 'late', 'k6', 'k7', 'k8']);
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity).map((r) => r[0]), [...ks(0, 5), 'late', ...ks(6, 29)]);
    s.batch(() => s.expire(Infinity));
    const end = s.stats();
    assert.deepEqual([s.count(), end.indexOccurrences, end.frozenGroups, end.frozenSlices], [0, 0, 0, 0]);
  }));

  test('with a memory budget, only the oldest sealed slices freeze: those left in the key index fit half the budget', () => withStore({ bucketMs: 100, freezeGroupSlices: 5, memoryBytes: 45_000 }, (s) => {
    // Half the budget, 22,500 bytes, is 300 (key, side) entries at 75 bytes each.
    for (let t = 0; t < 60; t++) {
      for (let j = 0; j < 20; j++) put(s, 0, `other-${t}-${j}`, t * 100 + j, `l${t}-${j}`);
      if (t % 7 === 2) put(s, 1, 'k', t * 100 + 50, `k${t}`);
    }
    s.batch(() => s.expire(10_000)); // every slice complete and behind the watermark
    s.flushSeals();
    for (let i = 0; i < 50; i++) s.batch(() => s.expire(10_000));
    const st = s.stats();
    // 1,209 entries sealed; groups of 5 slices (~101 entries) freeze oldest first until at most 300
    // are left: after groups 0–8, 302; after group 9, 202 (slices 50–59, with k in 51 and 58).
    assert.deepEqual([st.frozenSlices, st.frozenGroups, st.indexOccurrences], [50, 10, 10 * 20 + 2]);
    assert.deepEqual(probe(s, 1, 'k', -Infinity, Infinity).map((r) => r[0]), ['k2', 'k9', 'k16', 'k23', 'k30', 'k37', 'k44', 'k51', 'k58']);
    assert.deepEqual(probe(s, 0, 'other-55-3', -Infinity, Infinity), [['l55-3', 5_503, false]]);
    s.batch(() => s.expire(Infinity));
    const end = s.stats();
    assert.deepEqual([s.count(), end.indexOccurrences, end.frozenGroups, end.frozenSlices], [0, 0, 0, 0]);
  }));

  test('hash collisions and a hot key, randomized against MemoryStore', async () => {
    // Four hash values for 40 keys: every chain is shared by about ten keys.
    const hashOf = (key: string) => (fnv1a(b(key)) & 3) * 0x10001 - 0x10001; // 0 and a negative one included
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    // Retentions vary: a slice holds several buckets per side, which expire at different times.
    const minRetention = 200;
    // Late inserts (behind the watermark: the join never makes them, the store must take them)
    // reach complete slices: they give up seal jobs (one in its index removal phase among them)
    // and unseal sealed slices whose dropped buckets' keys may still be leaving the index.
    const runs: Array<[BucketStoreOptions, number]> = [
      [{ bucketMs: 25 }, 0], [{ bucketMs: 10, sealUnitsPerCall: 3, sealAtOnceUnits: 0 }, 0],
      [{ bucketMs: 10, sealUnitsPerCall: 3, sealAtOnceUnits: 0 }, 0.1],
      // Frozen groups (frozen.ts): built in tiny steps; late inserts read frozen slices back.
      [{ bucketMs: 10, sealUnitsPerCall: 3, sealAtOnceUnits: 0, freezeGroupSlices: 2 }, 0.1],
      [{ bucketMs: 5, sealSpread: 0, freezeGroupSlices: 1 }, 0.1],
      [{ bucketMs: 5, sealSpread: 0, freezeGroupSlices: 3 }, 0],
    ];
    for (const [options, lateShare] of runs) {
      let frozenMax = 0;
      await withStore(options, (s) => {
        const m = new MemoryStore();
        let now = 0;
        let wm = -Infinity;
        let ids = 0;
        for (let step = 0; step < 6_000; step++) {
          const r = rnd();
          if (r < 0.6) {
            // Inserts behind `now` by up to 30 ms, never behind the watermark; a hot key gets a third.
            now += rnd() * 3;
            const ts = rnd() < lateShare && wm > -Infinity ? wm - rnd() * 30 : Math.max(wm, now - rnd() * 30);
            const key = rnd() < 0.33 ? 'key-0' : keys[Math.floor(rnd() * keys.length)];
            const side = (rnd() < 0.7 ? 0 : 1) as Side;
            const id = rnd() < 0.05 && ids > 0 ? `id${Math.floor(rnd() * ids)}` : `id${ids++}`;
            const expireAt = ts + minRetention + Math.floor(rnd() * 4) * 60;
            const a = put(s, side, key, ts, id, expireAt, hashOf(key));
            const c = put(m, side, key, ts, id, expireAt, hashOf(key));
            assert.equal(a, c, `insert ${key} ${ts} ${id}`);
          } else if (r < 0.93) {
            // Probe ranges that expiry cannot have touched in either store (entries with ts ≥ from
            // expire at ≥ from + minRetention > wm), so both must hold exactly the same entries.
            const key = rnd() < 0.4 ? 'key-0' : keys[Math.floor(rnd() * keys.length)];
            const side = (rnd() < 0.5 ? 0 : 1) as Side;
            const from = Math.max(wm - minRetention + 1, now - rnd() * 400);
            const to = from + rnd() * 200;
            const mark = (e: Buffered) => (e.ts * 7) % 3 < 1;
            assert.deepEqual(probe(s, side, key, from, to, hashOf(key), mark), probe(m, side, key, from, to, hashOf(key), mark),
              `probe ${side} ${key} [${from}, ${to}] at step ${step}`);
          } else if (r < 0.99) {
            wm = Math.max(wm, now - 40 - rnd() * 20);
            s.batch(() => s.expire(wm));
            m.batch(() => m.expire(wm));
            if (options.freezeGroupSlices !== undefined) frozenMax = Math.max(frozenMax, s.stats().frozenSlices);
          } else {
            s.maintain(50);
          }
        }
        s.batch(() => s.expire(Infinity));
        const st = s.stats();
        assert.deepEqual([s.count(), st.indexKeys, st.indexOccurrences, st.frozenGroups], [0, 0, 0, 0]);
        void m.close();
      });
      if (options.freezeGroupSlices !== undefined) assert.ok(frozenMax >= 4, `slices were frozen (at most ${frozenMax} at once)`);
    }
  });
});
