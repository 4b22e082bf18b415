// The sealed layout of the bucket store: consecutive (key, side) records share LMDB values (runs).
// Reads see every key through its run; runs stay small enough for LMDB to keep them inside leaf
// pages (a larger value takes overflow pages of its own, mostly empty: the state grew on disk).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EV_HEADER, REC_KEY, RUN_BYTES, VALUE_HEADER } from '../../src/state/bucket-format.js';
import type { Side } from '../../src/state/store.js';
import { b, bucketStores, snap, type Snap } from './bucket-stores.js';
import { fnv1a } from './store.contract.js';

const withStore = bucketStores('bucket-runs');

describe('BucketStore runs (several keys per LMDB value)', () => {
  test('keys share LMDB values (runs); probes, dedup, joined flags, unsealing and expiry see every key, colliding hashes across runs too', () => withStore({ bucketMs: 1000 }, (s) => {
    // 300 keys, half of them with one shared hash (and key group): their keys spread over many runs.
    const keys = Array.from({ length: 300 }, (_, i) => b(`key-${i}`));
    const hashOf = (i: number) => (i % 2 === 0 ? 12345 : fnv1a(keys[i]));
    const kgOf = (i: number) => (i % 2 === 0 ? 5 : i % 7);
    let records = 0;
    s.batch(() => {
      for (let i = 0; i < keys.length; i++) {
        const pay = Uint8Array.from({ length: i % 40 }, (_, j) => (i + j) & 255);
        s.insert(0, kgOf(i), hashOf(i), keys[i], 100 + i, b(`a${i}`), pay, i % 4 === 0, 60_000);
        if (i % 5 === 0) s.insert(0, kgOf(i), hashOf(i), keys[i], 100 + i, b(`b${i}`), pay, false, 60_000);
        records++;
        if (i % 3 === 0) { s.insert(1, kgOf(i), hashOf(i), keys[i], 300 + i, b(`r${i}`), pay, false, 60_000); records++; }
      }
    });
    const probeKey = (side: Side, i: number): Snap[] => {
      const out: Snap[] = [];
      s.batch(() => s.probe(side, kgOf(i), hashOf(i), keys[i], -Infinity, Infinity, (e) => { out.push(snap(e)); }));
      return out;
    };
    const all = () => keys.flatMap((_, i) => [...probeKey(0, i), ...probeKey(1, i)]);
    const before = all();
    assert.equal(before.length, 300 + 60 + 100);
    s.batch(() => s.expire(1000));
    const st = s.stats();
    assert.deepEqual([st.sealedSlices, st.openSlices, st.sealedEntries], [1, 0, 460]);
    assert.ok(st.lmdbRecords <= Math.ceil(records / 8), `${st.lmdbRecords} LMDB values for ${records} (key, side) records`);
    assert.deepEqual(all(), before, 'identical once sealed');
    // Duplicates are found in their runs (and do not unseal the slice); flags set on sealed entries stick.
    s.batch(() => {
      for (let i = 0; i < keys.length; i++) {
        assert.equal(s.insert(0, kgOf(i), hashOf(i), keys[i], 100 + i, b(`a${i}`), b('x'), false, 60_000), false, `dup a${i}`);
        if (i % 3 === 0) assert.equal(s.insert(1, kgOf(i), hashOf(i), keys[i], 300 + i, b(`r${i}`), b('x'), false, 60_000), false);
        if (i % 7 === 1) s.markJoined(0, kgOf(i), hashOf(i), keys[i], 100 + i, b(`a${i}`));
      }
    });
    assert.equal(s.stats().sealedSlices, 1);
    const want = before.map((e) => ({ ...e, joined: e.joined || (e.side === 0 && Number(e.key.slice(4)) % 7 === 1 && e.id.startsWith('a')) }));
    assert.deepEqual(all(), want);
    // A new entry in the sealed slice unseals it: everything comes back, flags included.
    s.batch(() => assert.equal(s.insert(1, kgOf(2), hashOf(2), keys[2], 999, b('late'), b('l'), false, 60_000), true));
    assert.equal(s.stats().sealedSlices, 0);
    const late = { side: 1 as Side, keyGroup: kgOf(2), key: 'key-2', ts: 999, id: 'late', payload: [...b('l')], joined: false };
    const want2 = keys.flatMap((_, i) => [...want.filter((e) => e.key === `key-${i}`), ...(i === 2 ? [late] : [])]);
    assert.deepEqual(all(), want2);
    // Sealed again, then expiry reports every entry once.
    s.batch(() => s.expire(1000));
    assert.equal(s.stats().sealedSlices, 1);
    const out: Snap[] = [];
    s.batch(() => s.expire(Infinity, (e) => { out.push(snap(e)); }));
    const order = (x: Snap, y: Snap) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.side - y.side || x.ts - y.ts || (x.id < y.id ? -1 : 1));
    assert.deepEqual(out.sort(order), want2.slice().sort(order));
  }));

  // Keys of 6–9 bytes with payloads of 40–400 bytes: runs close on RUN_BYTES, not on their key count.
  for (const [label, options] of [
    ['sealed at once', { bucketMs: 1000, sealSpread: 0 }],
    ['sealed in small steps (runs span steps)', { bucketMs: 1000, sealUnitsPerCall: 30, sealAtOnceUnits: 0 }],
  ] as const) {
    test(`runs stay inline in leaf pages, filled to ≥ 85 %; only a record larger than a run takes overflow pages (${label})`, () => withStore(options, (s) => {
      const n = 3000;
      const key = (i: number) => b(`k-${i}`);
      const payLen = (i: number) => 40 + ((i * 7919) % 361);
      let recordBytes = 0;
      s.batch(() => {
        for (let i = 0; i < n; i++) {
          const pay = new Uint8Array(i === 1234 ? 6000 : payLen(i)).fill(i & 255);
          const id = b(`id-${i}`);
          s.insert(0, i % 16, fnv1a(key(i)), key(i), 10 + (i % 900), id, pay, false, 60_000);
          recordBytes += REC_KEY + 4 + key(i).length + VALUE_HEADER + EV_HEADER + id.length + pay.length;
        }
      });
      s.batch(() => s.expire(5000)); // complete and past its pacing spread: all of the seal is due
      let steps = 0;
      while (s.stats().pendingSeals > 0) { s.batch(() => s.maintain(30)); assert.ok(++steps < 100_000); }
      const st = s.stats();
      assert.deepEqual([st.sealedSlices, st.openSlices, st.sealedEntries], [1, 0, n]);
      // The 6 KiB record alone: ceil((6 KiB + page header) / 4 KiB) = 2 overflow pages; nothing else overflows.
      assert.equal(st.lmdbOverflowPages, 2, JSON.stringify(st));
      const inline = recordBytes - 6000;
      // Two runs per leaf page; a run ends short of RUN_BYTES by less than one record (here ~270 bytes on average).
      assert.ok(st.lmdbLeafPages * 4096 * 0.85 <= inline, `${st.lmdbLeafPages} leaf pages for ${inline} bytes of records: < 85 % full`);
      assert.ok(st.lmdbRecords <= Math.ceil(inline / (RUN_BYTES * 0.9)) + 1, `${st.lmdbRecords} runs for ${inline} bytes`);
      for (let i = 0; i < n; i += 7) {
        const out: Snap[] = [];
        s.batch(() => s.probe(0, i % 16, fnv1a(key(i)), key(i), -Infinity, Infinity, (e) => { out.push(snap(e)); }));
        assert.equal(out.length, 1, `key ${i}`);
        assert.equal(out[0].payload.length, i === 1234 ? 6000 : payLen(i));
        assert.equal(out[0].ts, 10 + (i % 900));
      }
    }));
  }
});
