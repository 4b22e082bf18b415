import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BucketStore, DEFAULT_BUCKET_MS, type BucketStoreOptions } from '../../src/state/bucket-store.js';
import { openStore } from '../../src/state/index.js';
import type { Buffered, Side } from '../../src/state/store.js';
import { b, snap, type Snap } from './bucket-stores.js';
import { fnv1a, storeContract } from './store.contract.js';

const dec = new TextDecoder();

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-bucket-contract-'));
let dirs = 0;
const freshDir = () => path.join(root, `store-${dirs++}`);
after(() => fs.rmSync(root, { recursive: true, force: true }));

// Small buckets: the contract's times (0…10k ms) cross many slices, so sealing, sealed probes,
// drops of sealed buckets and (in the undisciplined model run) unsealing all happen.
storeContract('bucket, 10 ms buckets', () => BucketStore.open(freshDir(), { bucketMs: 10 }));
// A bucket width that divides nothing in the tests, and fractional slice bounds.
storeContract('bucket, 7.5 ms buckets via openStore', () => openStore('bucket', freshDir(), { bucketMs: 7.5 }));
// The default (10 s): most contract data stays in one open slice.
storeContract('bucket, default buckets', () => BucketStore.open(freshDir()));
// Sealing in tiny steps: slices spend most of their time partially sealed (and queued), so every
// contract test also runs against half-written bucket databases, expiry and inserts mid-seal.
storeContract('bucket, 10 ms buckets sealed in tiny steps', () => BucketStore.open(freshDir(), { bucketMs: 10, sealUnitsPerCall: 2, sealAtOnceUnits: 0 }));
// A memory budget the open slices always exceed: complete slices are sealed newest first, in tiny
// steps, so sealed slices sit between open ones and expired open slices leave the index in steps.
storeContract('bucket, 10 ms buckets over a 1-byte memory budget', () => BucketStore.open(freshDir(), { bucketMs: 10, memoryBytes: 1, sealUnitsPerCall: 2, sealAtOnceUnits: 0 }));
// A budget nothing exceeds: slices stay open for life and expire from memory.
storeContract('bucket, 10 ms buckets sealed and frozen in groups of 2 slices', () => BucketStore.open(freshDir(), { bucketMs: 10, sealSpread: 0, freezeGroupSlices: 2 }));

storeContract('bucket, 10 ms buckets, LZ4 on every sealed bucket, frozen in groups of 2', () => BucketStore.open(freshDir(), { bucketMs: 10, sealSpread: 0, freezeGroupSlices: 2, lz4AboveBytes: 0 }));

storeContract('bucket, 10 ms buckets within a 1 GiB memory budget', () => BucketStore.open(freshDir(), { bucketMs: 10, memoryBytes: 1024 ** 3 }));


function probeAll(s: BucketStore, side: Side, kg: number, key: Uint8Array, from = -Infinity, to = Infinity,
  visit?: (e: Buffered) => boolean | void): Snap[] {
  const out: Snap[] = [];
  s.batch(() => s.probe(side, kg, fnv1a(key), key, from, to, (e) => { out.push(snap(e)); return visit?.(e); }));
  return out;
}

async function withStore(options: BucketStoreOptions, fn: (s: BucketStore) => void | Promise<void>): Promise<void> {
  const s = BucketStore.open(freshDir(), options);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

describe('BucketStore specifics', () => {
  test('expiryGranularityMs is two buckets; the default bucket is 10 s', () => withStore({}, (s) => {
    assert.equal(DEFAULT_BUCKET_MS, 10_000);
    assert.equal(s.bucketMs, 10_000);
    assert.equal(s.expiryGranularityMs, 20_000);
  }));

  test('a slice is sealed into LMDB once the watermark passes its end, not before', () => withStore({ bucketMs: 1000 }, (s) => {
    const key = b('k');
    s.batch(() => {
      for (let i = 0; i < 30; i++) s.insert((i & 1) as Side, 3, fnv1a(key), key, i * 100, b(`id${i}`), b(`p${i}`), false, i * 100 + 60_000);
    });
    assert.deepEqual([s.stats().openSlices, s.stats().sealedSlices], [3, 0]);
    s.batch(() => s.expire(999));
    assert.deepEqual([s.stats().openSlices, s.stats().sealedSlices], [3, 0], 'slice 0 ends at 1000: not complete at 999');
    s.batch(() => s.expire(1000));
    let st = s.stats();
    assert.deepEqual([st.openSlices, st.sealedSlices, st.sealedEntries, st.openEntries], [2, 1, 10, 20]);
    assert.equal(st.lmdbDatabases, 1, 'one bucket database (one retention class)');
    assert.equal(st.lmdbRecords, 1, 'both sides of the key in one run (one LMDB value)');
    s.batch(() => s.expire(2500));
    st = s.stats();
    assert.deepEqual([st.openSlices, st.sealedSlices, st.sealedEntries, st.lmdbDatabases], [1, 2, 20, 2]);
    assert.equal(s.count(), 30);
  }));

  test('entries survive sealing: same payload bytes, order and joined flags; flags set after sealing persist', () => withStore({ bucketMs: 1000 }, (s) => {
    const key = b('user-7|title-3');
    const kh = fnv1a(key);
    const payloadOf = (i: number) => Uint8Array.from({ length: (i * 37) % 300 }, (_, j) => (i * 31 + j) & 255);
    s.batch(() => {
      // Disordered arrival, equal ts with different ids, both sides, another key in the same slices.
      for (const i of [5, 1, 9, 0, 3, 7, 2, 8, 6, 4, 19, 11, 15, 10, 13, 17, 12, 18, 16, 14]) {
        const ts = 500 + Math.floor(i / 2) * 100; // pairs of equal ts
        s.insert(0, 9, kh, key, ts, b(`ev-${i}`), payloadOf(i), i % 6 === 0, ts + 10_000);
        s.insert(1, 9, kh, key, ts, b(`pl-${i}`), payloadOf(i + 100), false, ts);
        s.insert(0, 9, fnv1a(b('other')), b('other'), ts, b(`o-${i}`), b('x'), false, ts + 10_000);
      }
    });
    // Joined while open: by a visit and by markJoined.
    probeAll(s, 0, 9, key, 700, 700, () => true);
    s.batch(() => s.markJoined(0, 9, kh, key, 1200, b('ev-14')));
    const before = probeAll(s, 0, 9, key);
    const beforeRight = probeAll(s, 1, 9, key, 0, 5000);
    assert.equal(before.length, 20);
    assert.deepEqual(before.filter((e) => e.joined).map((e) => e.id).sort(), ['ev-0', 'ev-12', 'ev-14', 'ev-18', 'ev-4', 'ev-5', 'ev-6'].sort());

    s.batch(() => s.expire(2000)); // seals slices 0 and 1 (ts < 2000); drops nothing of side 0
    const st = s.stats();
    assert.deepEqual([st.openSlices, st.sealedSlices, st.openEntries], [0, 2, 0]);
    assert.ok(st.sealedEntries > 0 && st.lmdbRecords > 0, JSON.stringify(st));
    assert.deepEqual(probeAll(s, 0, 9, key), before, 'identical after sealing, payload bytes and joined flags included');
    assert.deepEqual(probeAll(s, 0, 9, key, 600, 1250), before.filter((e) => e.ts >= 600 && e.ts <= 1250), 'sub-range across the seal');
    const right = probeAll(s, 1, 9, key, 0, 5000);
    assert.deepEqual(right, beforeRight.filter((e) => e.ts >= 2000), 'right entries (expireAt = ts) below 2000 are dropped, not sealed');

    // Joined after sealing: a visit and markJoined on sealed entries.
    probeAll(s, 0, 9, key, 500, 500, (e) => dec.decode(e.id) === 'ev-1');
    s.batch(() => s.markJoined(0, 9, kh, key, 1000, b('ev-10')));
    s.batch(() => s.markJoined(0, 9, kh, key, 1000, b('ev-404'))); // absent: nothing
    const after = probeAll(s, 0, 9, key);
    const want = before.map((e) => ({ ...e, joined: e.joined || e.id === 'ev-1' || e.id === 'ev-10' }));
    assert.deepEqual(after, want);

    // Expiry reports the same entries with their flags.
    const out: Snap[] = [];
    const left = s.count();
    assert.equal(left, 40, '20 of the key and 20 of "other" on side 0');
    assert.equal(s.batch(() => s.expire(Infinity, (e) => { if (dec.decode(e.key) !== 'other') out.push(snap(e)); })), left);
    out.sort((x, y) => x.side - y.side || x.ts - y.ts || (x.id < y.id ? -1 : 1));
    assert.deepEqual(out.filter((e) => e.side === 0), want);
    assert.equal(s.count(), 0);
    assert.equal(s.bytes(), 0);
  }));

  test('dropping a sealed bucket removes its LMDB database and records', () => withStore({ bucketMs: 100 }, (s) => {
    s.batch(() => {
      for (let i = 0; i < 2000; i++) {
        const key = b(`k${i % 50}`);
        s.insert(0, i % 4, fnv1a(key), key, i, b(`${i}`), new Uint8Array(100), false, i + 500);
      }
    });
    s.batch(() => s.expire(1900));
    let st = s.stats();
    // Slices 0..13 expire (max expireAt 100·t + 599 < 1900) and are dropped before sealing; 14..18 are sealed.
    assert.deepEqual([st.sealedSlices, st.lmdbDatabases, st.openSlices], [5, 5, 1]);
    assert.ok(st.lmdbRecords > 0);
    const bytesBefore = s.bytes();
    s.batch(() => s.expire(2200));
    st = s.stats();
    assert.equal(st.lmdbDatabases, 3, 'slices 14..16 are gone from the environment, 17..19 sealed');
    assert.ok(s.bytes() < bytesBefore);
    s.batch(() => s.expire(Infinity));
    st = s.stats();
    assert.deepEqual([st.lmdbDatabases, st.lmdbRecords, st.sealedSlices, st.openSlices, s.count(), s.bytes()], [0, 0, 0, 0, 0, 0]);
    // Database names are reused after a drop: sealing again works and creates no new names beyond need.
    s.batch(() => {
      for (let i = 0; i < 500; i++) s.insert(1, 0, fnv1a(b('z')), b('z'), 10_000 + i, b(`${i}`), b('p'), false, 15_000 + i);
    });
    s.batch(() => s.expire(10_500));
    assert.equal(s.stats().lmdbDatabases, 5);
    assert.equal(probeAll(s, 1, 0, b('z')).length, 500);
  }));

  test('a hot key with thousands of entries across many buckets, probed across sealed and open slices', () => withStore({ bucketMs: 250 }, (s) => {
    const key = b('hot');
    const kh = fnv1a(key);
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const want: { ts: number; id: string }[] = [];
    let wm = -Infinity;
    let tsMax = 0;
    for (let batch = 0; batch < 40; batch++) {
      s.batch(() => {
        for (let i = 0; i < 200; i++) {
          const n = batch * 200 + i;
          // Event time advances 1 ms per event with up to 300 ms of disorder, never below the watermark.
          const ts = Math.max(wm, n - Math.floor(rand() * 300));
          tsMax = Math.max(tsMax, ts);
          const id = `e${n}`;
          assert.equal(s.insert(0, 1, kh, key, ts, b(id), b(`payload-${n}`), false, ts + 100_000), true);
          want.push({ ts, id });
        }
        wm = tsMax - 300;
        s.expire(wm);
      });
    }
    assert.equal(s.count(), 8000);
    const st = s.stats();
    assert.ok(st.sealedSlices >= 25 && st.openSlices >= 1, JSON.stringify(st));
    const sorted = want.sort((x, y) => x.ts - y.ts || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const all = probeAll(s, 0, 1, key);
    assert.deepEqual(all.map((e) => `${e.ts}/${e.id}`), sorted.map((e) => `${e.ts}/${e.id}`));
    for (const [from, to] of [[0, 0], [1234.5, 4321], [7000, 7999], [249, 251], [-5, 1e9], [wm - 10, wm + 10]]) {
      assert.deepEqual(probeAll(s, 0, 1, key, from, to).map((e) => `${e.ts}/${e.id}`),
        sorted.filter((e) => e.ts >= from && e.ts <= to).map((e) => `${e.ts}/${e.id}`), `[${from}, ${to}]`);
    }
    // Every entry is still a duplicate, sealed or open.
    s.batch(() => { for (const e of sorted.filter((_, i) => i % 97 === 0)) assert.equal(s.insert(0, 1, kh, key, e.ts, b(e.id), b('x'), false, 0), false); });
    assert.equal(s.count(), 8000);
  }));

  test('duplicates are detected across the seal boundary, whatever their expiry', () => withStore({ bucketMs: 100 }, (s) => {
    const key = b('k');
    const kh = fnv1a(key);
    s.batch(() => {
      for (let i = 0; i < 10; i++) s.insert(0, 0, kh, key, 50 + i, b(`i${i}`), b(`p${i}`), i === 3, 1000 + i);
    });
    s.batch(() => s.expire(100)); // seals slice 0
    assert.equal(s.stats().sealedSlices, 1);
    s.batch(() => {
      // Same identities: duplicates, also with another expiry (another retention class) or payload.
      assert.equal(s.insert(0, 0, kh, key, 50, b('i0'), b('other'), false, 1000), false);
      assert.equal(s.insert(0, 0, kh, key, 55, b('i5'), b('other'), true, 99_999), false);
      assert.equal(s.insert(0, 0, kh, key, 59, b('i9'), b('p9'), false, -5), false);
    });
    assert.equal(s.stats().sealedSlices, 1, 'a duplicate leaves the slice sealed');
    assert.equal(s.count(), 10);
    // Same key and ts, another id or side: not a duplicate. Lands in the sealed slice: it is unsealed.
    s.batch(() => {
      assert.equal(s.insert(0, 0, kh, key, 55, b('i5b'), b('new'), false, 1000), true);
      assert.equal(s.insert(1, 0, kh, key, 55, b('i5'), b('new'), false, 5000), true);
    });
    assert.equal(s.count(), 12);
    assert.deepEqual(probeAll(s, 0, 0, key).map((e) => `${e.ts}/${e.id}/${e.joined}`),
      ['50/i0/false', '51/i1/false', '52/i2/false', '53/i3/true', '54/i4/false', '55/i5/false', '55/i5b/false',
        '56/i6/false', '57/i7/false', '58/i8/false', '59/i9/false']);
    // Sealed again at the next expire, with two retention classes now, still correct.
    s.batch(() => s.expire(100));
    const st = s.stats();
    assert.deepEqual([st.sealedSlices, st.sealedBuckets, st.openEntries], [1, 2, 0]);
    assert.equal(s.batch(() => s.insert(0, 0, kh, key, 55, b('i5b'), b('again'), false, 1000)), false);
    assert.equal(s.batch(() => s.insert(1, 0, kh, key, 55, b('i5'), b('again'), false, 1000)), false);
    assert.deepEqual(probeAll(s, 1, 0, key).map((e) => e.id), ['i5']);
    const out: string[] = [];
    assert.equal(s.batch(() => s.expire(Infinity, (e) => { out.push(`${e.side}/${dec.decode(e.id)}/${dec.decode(e.payload)}`); })), 12);
    assert.ok(out.includes('0/i5b/new') && out.includes('1/i5/new') && out.includes('0/i0/p0'));
  }));

  test('a probe merges buckets of one slice (several retention classes) in (ts, id) order', () => withStore({ bucketMs: 100 }, (s) => {
    const key = b('k');
    const kh = fnv1a(key);
    s.batch(() => {
      for (let i = 0; i < 40; i++) s.insert(1, 0, kh, key, 10 + (i % 20) * 4, b(`r${i}`), b(`${i}`), false, 10 + (i % 20) * 4 + (i % 4) * 1000 + 500);
    });
    s.batch(() => s.expire(100));
    assert.equal(s.stats().sealedBuckets, 4);
    const got = probeAll(s, 1, 0, key, 20, 60, (e) => Number(dec.decode(e.payload)) % 3 === 0);
    const ts = got.map((e) => e.ts);
    assert.deepEqual(ts, [...ts].sort((x, y) => x - y));
    assert.equal(got.length, 20, 'ts 22, 26, …, 58, two entries each');
    for (let i = 1; i < got.length; i++) if (got[i].ts === got[i - 1].ts) assert.ok(got[i - 1].id < got[i].id);
    const again = probeAll(s, 1, 0, key, 20, 60);
    assert.deepEqual(again.map((e) => e.joined), got.map((e) => Number(e.payload.map((c) => String.fromCharCode(c)).join('')) % 3 === 0));
  }));

  test('a bucket that expires while its slice is open: reported, skipped, replaceable, not sealed', () => withStore({ bucketMs: 1000 }, (s) => {
    const key = b('k');
    const kh = fnv1a(key);
    s.batch(() => {
      for (let i = 0; i < 10; i++) {
        s.insert(1, 0, kh, key, 100 + i * 50, b(`short${i}`), b(`s${i}`), i === 2, 100 + i * 50 + 100); // expire ≤ 650
        s.insert(1, 0, kh, key, 100 + i * 50, b(`long${i}`), b(`l${i}`), false, 100 + i * 50 + 5000);
      }
    });
    const out: string[] = [];
    assert.equal(s.batch(() => s.expire(700, (e) => { out.push(`${dec.decode(e.id)}/${e.joined}`); })), 10);
    assert.deepEqual(out.sort(), Array.from({ length: 10 }, (_, i) => `short${i}/${i === 2}`).sort());
    assert.equal(s.stats().openSlices, 1, 'slice 0 ends at 1000: still open');
    assert.deepEqual(probeAll(s, 1, 0, key).map((e) => e.id), Array.from({ length: 10 }, (_, i) => `long${i}`));
    // An expired identity can be inserted again (it takes the place of the dead entry).
    assert.equal(s.batch(() => s.insert(1, 0, kh, key, 200, b('short2'), b('again'), false, 9000)), true);
    assert.equal(s.batch(() => s.insert(1, 0, kh, key, 200, b('short2'), b('again'), false, 9000)), false);
    s.batch(() => s.markJoined(1, 0, kh, key, 150, b('short1'))); // dead: no effect, no error
    const want = ['100/long0', '150/long1', '200/long2', '200/short2', '250/long3', '300/long4', '350/long5', '400/long6', '450/long7',
      '500/long8', '550/long9'];
    assert.deepEqual(probeAll(s, 1, 0, key).map((e) => `${e.ts}/${e.id}`), want);
    s.batch(() => s.expire(1000)); // seals: the dead entries are not written
    const st = s.stats();
    assert.deepEqual([st.sealedSlices, st.sealedEntries, s.count()], [1, 11, 11]);
    assert.deepEqual(probeAll(s, 1, 0, key).map((e) => `${e.ts}/${e.id}`), want);
    assert.deepEqual(probeAll(s, 1, 0, key, 200, 200).map((e) => dec.decode(Uint8Array.from(e.payload))), ['l2', 'again']);
  }));

  test('many keys in one slice (table growth), big and empty events, through sealing', () => withStore({ bucketMs: 1000 }, (s) => {
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 13) & 255);
    s.batch(() => {
      for (let i = 0; i < 5000; i++) {
        const key = b(`key-${i}`);
        s.insert((i % 2) as Side, i % 1024, fnv1a(key), key, i / 10, i % 7 === 0 ? new Uint8Array(0) : b(`id${i}`),
          i % 1000 === 0 ? big : i % 3 === 0 ? new Uint8Array(0) : b(`payload-${i}`), false, 10_000);
      }
      s.insert(0, 0, fnv1a(b('')), b(''), 1, b('empty-key'), b('x'), false, 10_000);
    });
    const check = (when: string) => {
      for (let i = 0; i < 5000; i += 37) {
        const key = b(`key-${i}`);
        const got = probeAll(s, (i % 2) as Side, i % 1024, key);
        assert.equal(got.length, 1, `${when}: key ${i}`);
        assert.equal(got[0].id, i % 7 === 0 ? '' : `id${i}`);
        assert.deepEqual(got[0].payload, [...(i % 1000 === 0 ? big : i % 3 === 0 ? new Uint8Array(0) : b(`payload-${i}`))], `${when}: payload ${i}`);
      }
      assert.deepEqual(probeAll(s, 0, 0, b('')).map((e) => e.id), ['empty-key']);
      assert.deepEqual(probeAll(s, 1, 0, b('')), []);
    };
    check('open');
    s.batch(() => s.expire(1000)); // complete, but a seal this size is paced: nothing is due yet
    assert.deepEqual([s.stats().sealedSlices, s.stats().pendingSeals], [0, 1]);
    s.flushSeals();
    assert.deepEqual([s.stats().sealedSlices, s.stats().pendingSeals], [1, 0]);
    check('sealed');
    assert.equal(s.batch(() => s.insert(0, 1000, fnv1a(b('key-1000')), b('key-1000'), 100, b('id1000'), b('dup'), false, 10_000)), false);
    assert.equal(s.count(), 5001);
  }));

  test('a batch that throws after writing to LMDB makes the store refuse further use; one that did not does not', async () => {
    const s = BucketStore.open(freshDir(), { bucketMs: 10 });
    try {
      const key = b('k');
      assert.throws(() => s.batch(() => { s.insert(0, 0, fnv1a(key), key, 1, b('a'), b('p'), false, 1000); throw new Error('boom'); }), /boom/);
      assert.equal(s.count(), 1, 'memory-only changes are kept, as in MemoryStore');
      assert.throws(() => s.batch(() => { s.expire(50); throw new Error('boom'); }), /boom/);
      assert.throws(() => s.count() + s.batch(() => 1), { code: 'E_STATE' });
    } finally {
      await s.close();
    }
  });

  test('openStore("bucket") needs a directory; the store starts empty on reopen; closed means E_STATE', async () => {
    assert.throws(() => openStore('bucket'), { code: 'E_STATE' });
    assert.throws(() => BucketStore.open(freshDir(), { bucketMs: 0 }), { code: 'E_STATE' });
    const dir = freshDir();
    const s1 = BucketStore.open(dir, { bucketMs: 10 });
    s1.batch(() => { for (let i = 0; i < 100; i++) s1.insert(0, 0, 1, b('k'), i, b(`${i}`), b('p'), false, 1000); });
    s1.batch(() => s1.expire(90));
    assert.ok(s1.stats().lmdbDatabases > 0);
    await s1.close();
    await s1.close();
    assert.throws(() => s1.batch(() => 1), { code: 'E_STATE' });
    const s2 = BucketStore.open(dir, { bucketMs: 10 });
    try {
      assert.equal(s2.count(), 0);
      assert.equal(s2.stats().lmdbDatabases, 0);
      assert.equal(s2.batch(() => s2.insert(0, 0, 1, b('k'), 5, b('5'), b('p'), false, 1000)), true);
    } finally {
      await s2.close();
    }
  });

  test('an over-long key is an E_STATE error, not a crash', () => withStore({}, (s) => {
    assert.throws(() => s.batch(() => s.insert(0, 0, 1, new Uint8Array(3000), 1, b('i'), b('p'), false, 2)), { code: 'E_STATE' });
    assert.equal(s.count(), 0);
  }));
});

describe('BucketStore incremental sealing', () => {
  /** A reference of what a store holds: identity → entry, for probes and expiry reports. */
  class Ref {
    readonly m = new Map<string, Snap>();
    static id(side: Side, key: string, ts: number, id: string): string { return `${side}|${key}|${ts}|${id}`; }
    add(e: Snap): void { this.m.set(Ref.id(e.side, e.key, e.ts, e.id), e); }
    join(side: Side, key: string, ts: number, id: string): void {
      const e = this.m.get(Ref.id(side, key, ts, id));
      if (e !== undefined) e.joined = true;
    }
    range(side: Side, key: string, from = -Infinity, to = Infinity): Snap[] {
      return [...this.m.values()].filter((e) => e.side === side && e.key === key && e.ts >= from && e.ts <= to)
        .sort((x, y) => x.ts - y.ts || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    }
  }
  const sortSnaps = (xs: Snap[]) => xs.sort((x, y) => x.side - y.side || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0) || x.ts - y.ts
    || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));

  /**
   * Fills slice 0 (bucketMs 1000) with `keys` keys × both sides: left entries live long (class 50),
   * right ones expire at ts + rightLife (another class); payloads vary in length.
   */
  function fill(s: BucketStore, ref: Ref, keys: number, rightLife = 20_000, kg = 7): void {
    s.batch(() => {
      for (let i = 0; i < keys; i++) {
        const key = `key-${(i * 7919) % keys}`; // arrival order ≠ key order
        for (const side of [0, 1] as Side[]) {
          for (let j = 0; j < 1 + (i % 3); j++) {
            const ts = (i * 13 + j * 331 + side * 7) % 1000;
            const id = `${side ? 'r' : 'l'}${i}-${j}`;
            const payload = Array.from({ length: (i + j) % 40 }, (_, k) => (i + j + k) & 255);
            const joined = (i + j) % 11 === 0;
            assert.equal(s.insert(side, kg, fnv1a(b(key)), b(key), ts, b(id), Uint8Array.from(payload), joined,
              ts + (side === 0 ? 50_000 : rightLife)), true);
            ref.add({ side, keyGroup: kg, key, ts, id, payload, joined });
          }
        }
      }
    });
  }

  test('a partially sealed slice serves probes, duplicates, joined flags, count and bytes exactly', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 40, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    const keys = 300;
    fill(s, ref, keys);
    // An open slice that is not complete, with the same keys.
    s.batch(() => s.insert(0, 7, fnv1a(b('key-1')), b('key-1'), 1500, b('next'), b('n'), false, 90_000));
    ref.add({ side: 0, keyGroup: 7, key: 'key-1', ts: 1500, id: 'next', payload: [...b('n')], joined: false });
    const count = s.count();
    const bytes = s.bytes();
    assert.equal(count, ref.m.size);

    s.batch(() => s.expire(1800)); // slice 0 complete, its seal due in full: steps of 40 units
    let steps = 0;
    let partial = 0; // steps that found part of slice 0 in LMDB while it was still served from memory
    let rnd = 99;
    const next = (n: number) => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0) % n;
    while (s.stats().pendingSeals > 0) {
      const st = s.stats();
      if (st.lmdbDatabases > 0 && st.openSlices === 2) partial++;
      const key = `key-${next(keys)}`;
      const side = next(2) as Side;
      // Probes see exactly the reference, flags included; a visit flags some entries.
      const [from, to] = next(4) === 0 ? [-Infinity, Infinity] : [next(1000), next(1000) + 300];
      const flag = next(3) === 0;
      const got = probeAll(s, side, 7, b(key), from, to, (e) => flag && e.ts % 2 === 0);
      assert.deepEqual(got, ref.range(side, key, from, to), `step ${steps}: ${side}/${key} [${from}, ${to}]`);
      if (flag) for (const e of got) if (e.ts % 2 === 0) ref.join(side, key, e.ts, e.id);
      // markJoined of some entry (present or not).
      const all = ref.range(side, key);
      if (all.length > 0) {
        const e = all[next(all.length)];
        s.batch(() => s.markJoined(side, 7, fnv1a(b(key)), b(key), e.ts, b(e.id)));
        ref.join(side, key, e.ts, e.id);
        // A duplicate is refused and leaves the seal alone.
        const dbs = s.stats().lmdbDatabases;
        assert.equal(s.batch(() => s.insert(side, 7, fnv1a(b(key)), b(key), e.ts, b(e.id), b('dup'), false, 1e9)), false);
        assert.equal(s.stats().lmdbDatabases, dbs, 'a duplicate does not abandon the seal');
      }
      assert.equal(s.count(), count);
      assert.equal(s.bytes(), bytes);
      s.batch(() => s.maintain(40));
      steps++;
      assert.ok(steps < 10_000, 'the seal completes');
    }
    assert.ok(steps >= 30, `sealed in ${steps} steps`);
    assert.ok(partial >= 15, `${partial} steps saw a partially written bucket database`);
    const st = s.stats();
    assert.deepEqual([st.sealedSlices, st.sealedBuckets, st.openSlices, st.sealedEntries, st.lmdbDatabases], [1, 2, 1, count - 1, 2]);
    // Everything, flags included, as the reference says: sealed now (merged probes over two buckets
    // per key are not needed: one side per bucket here), then reported by expiry.
    for (let i = 0; i < keys; i++) {
      for (const side of [0, 1] as Side[]) assert.deepEqual(probeAll(s, side, 7, b(`key-${i}`)), ref.range(side, `key-${i}`));
    }
    assert.equal(s.count(), count);
    assert.equal(s.bytes(), bytes);
    const out: Snap[] = [];
    assert.equal(s.batch(() => s.expire(Infinity, (e) => { out.push(snap(e)); })), count);
    assert.deepEqual(sortSnaps(out), sortSnaps([...ref.m.values()]));
    assert.deepEqual([s.count(), s.bytes(), s.stats().lmdbDatabases], [0, 0, 0]);
  }));

  test('a bucket that expires while its slice is being sealed is dropped, its partial database too', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 30, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    fill(s, ref, 200, 2500); // right side: class 2, expires at ts + 2500 ≤ 3499 (sealed first: classes go in order)
    s.batch(() => s.expire(1800));
    while (s.stats().lmdbDatabases === 0) s.batch(() => s.maintain(30));
    assert.deepEqual([s.stats().pendingSeals, s.stats().lmdbDatabases], [1, 1], 'the right bucket is half written');
    // Flag a right entry mid-seal: expiry reports the flag.
    const r0 = ref.range(1, 'key-5')[0];
    s.batch(() => s.markJoined(1, 7, fnv1a(b('key-5')), b('key-5'), r0.ts, b(r0.id)));
    ref.join(1, 'key-5', r0.ts, r0.id);
    const right = [...ref.m.values()].filter((e) => e.side === 1);
    const out: Snap[] = [];
    assert.equal(s.batch(() => s.expire(3600, (e) => { out.push(snap(e)); })), right.length);
    assert.deepEqual(sortSnaps(out), sortSnaps(right));
    for (const e of right) ref.m.delete(Ref.id(e.side, e.key, e.ts, e.id));
    // (The same expire() call went on sealing: the left bucket's database may have been begun.)
    assert.ok(s.stats().lmdbDatabases <= 1, 'the partial database went with its bucket');
    assert.equal(s.count(), ref.m.size);
    // The other bucket is sealed on; everything left reads as before.
    let steps = 0;
    while (s.stats().pendingSeals > 0) { s.batch(() => s.maintain(30)); assert.ok(++steps < 10_000); }
    const st = s.stats();
    assert.deepEqual([st.sealedSlices, st.sealedBuckets, st.lmdbDatabases, st.sealedEntries], [1, 1, 1, ref.m.size],
      'one database: the right bucket\'s partial one is gone');
    for (let i = 0; i < 200; i++) {
      assert.deepEqual(probeAll(s, 0, 7, b(`key-${i}`)), ref.range(0, `key-${i}`));
      assert.deepEqual(probeAll(s, 1, 7, b(`key-${i}`)), []);
    }
  }));

  test('a slice that expires entirely mid-seal goes without being sealed', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 30, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    fill(s, ref, 150, 2500);
    s.batch(() => s.expire(1800));
    // Run the seal into its second bucket (the left one, class 50): the right one is complete.
    while (s.stats().lmdbDatabases < 2) s.batch(() => s.maintain(30));
    assert.equal(s.stats().pendingSeals, 1);
    const out: Snap[] = [];
    assert.equal(s.batch(() => s.expire(Infinity, (e) => { out.push(snap(e)); })), ref.m.size);
    assert.deepEqual(sortSnaps(out), sortSnaps([...ref.m.values()]));
    const st = s.stats();
    assert.deepEqual([st.pendingSeals, st.openSlices, st.sealedSlices, st.lmdbDatabases, s.count(), s.bytes()], [0, 0, 0, 0, 0, 0]);
    // The store goes on (the dropped databases' names are reused): slice 0 again, complete at once.
    const again = new Ref();
    fill(s, again, 10);
    s.flushSeals();
    assert.deepEqual([s.stats().sealedSlices, s.stats().lmdbDatabases], [1, 2]);
    assert.deepEqual(probeAll(s, 0, 7, b('key-3')), again.range(0, 'key-3'));
  }));

  test('an insert into a slice being sealed abandons the partial seal, which starts over', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 30, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    fill(s, ref, 200);
    s.batch(() => s.expire(1800));
    while (s.stats().lmdbDatabases === 0) s.batch(() => s.maintain(30));
    // A late event (below the watermark: only a regression or a late insert does this) with a new key.
    assert.equal(s.batch(() => s.insert(0, 7, fnv1a(b('late')), b('late'), 500, b('x'), b('late!'), true, 70_000)), true);
    ref.add({ side: 0, keyGroup: 7, key: 'late', ts: 500, id: 'x', payload: [...b('late!')], joined: true });
    assert.deepEqual([s.stats().lmdbDatabases, s.stats().pendingSeals], [0, 1], 'the partial database is dropped');
    while (s.stats().lmdbDatabases === 0) s.batch(() => s.maintain(30));
    // And a new entry for an existing key.
    assert.equal(s.batch(() => s.insert(1, 7, fnv1a(b('key-3')), b('key-3'), 999, b('y'), b('late too'), false, 70_000)), true);
    ref.add({ side: 1, keyGroup: 7, key: 'key-3', ts: 999, id: 'y', payload: [...b('late too')], joined: false });
    assert.equal(s.stats().lmdbDatabases, 0);
    s.flushSeals();
    const st = s.stats();
    assert.deepEqual([st.pendingSeals, st.sealedSlices, st.sealedEntries, s.count()], [0, 1, ref.m.size, ref.m.size]);
    for (const key of ['late', 'key-3', 'key-0', 'key-199']) {
      for (const side of [0, 1] as Side[]) assert.deepEqual(probeAll(s, side, 7, b(key)), ref.range(side, key));
    }
  }));

  test('a seal given up mid-write (a run gathered, not yet put) leaves no trace in the next seal', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 2, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    const put = (side: Side, kg: number, key: string, ts: number, id: string) => {
      assert.equal(s.insert(side, kg, fnv1a(b(key)), b(key), ts, b(id), b(`p-${id}`), false, ts + 50_000), true);
      ref.add({ side, keyGroup: kg, key, ts, id, payload: [...b(`p-${id}`)], joined: false });
    };
    // Slices 0 and 1, keys spread over many key groups (slice 1's groups differ in part).
    s.batch(() => {
      for (let i = 0; i < 1500; i++) put((i % 2) as Side, (i * 31) % 97, `a${i}`, (i * 7) % 1000, `x${i}`);
      for (let i = 0; i < 1200; i++) put((i % 2) as Side, (i * 13) % 211, `b${i}`, 1000 + ((i * 3) % 1000), `y${i}`);
    });
    s.batch(() => s.expire(1001)); // slice 0 complete: its job starts (written in small steps)
    s.batch(() => s.maintain(2));
    assert.deepEqual([s.stats().lmdbDatabases, s.stats().pendingSeals, s.stats().sealedSlices], [1, 1, 0], 'still writing');
    s.batch(() => put(0, 5, 'late', 10, 'z')); // abandons the job mid-write
    s.batch(() => s.expire(2500));
    s.flushSeals();
    assert.deepEqual([s.stats().sealedSlices, s.stats().pendingSeals, s.count()], [2, 0, ref.m.size]);
    for (const e of ref.m.values()) {
      assert.deepEqual(probeAll(s, e.side, e.keyGroup, b(e.key)), ref.range(e.side, e.key), e.key);
    }
  }));

  test('many complete slices queue up: sealed oldest first in bounded steps, readable throughout', () => withStore({ bucketMs: 100, sealUnitsPerCall: 20, sealAtOnceUnits: 0 }, (s) => {
    const ref = new Ref();
    const keys = 40;
    s.batch(() => {
      for (let i = 0; i < 6000; i++) {
        const key = `k${(i * 17) % keys}`;
        const side = (i % 2) as Side;
        const ts = i / 2; // 30 slices of 100 ms
        s.insert(side, i % 3, fnv1a(b(key)), b(key), ts, b(`e${i}`), b(`p${i}`), false, ts + 100_000);
        ref.add({ side, keyGroup: i % 3, key, ts, id: `e${i}`, payload: [...b(`p${i}`)], joined: false });
      }
    });
    const probeKey = (side: Side, key: string) => {
      const got: Snap[] = [];
      for (let kg = 0; kg < 3; kg++) got.push(...probeAll(s, side, kg, b(key)));
      return sortSnaps(got);
    };
    assert.equal(s.stats().openSlices, 30);
    let calls = 0;
    let sealed = 0;
    for (;;) {
      s.batch(() => s.expire(3080)); // every slice complete, the last one's seal due too
      calls++;
      const st = s.stats();
      assert.ok(st.sealedSlices >= sealed, 'sealed slices stay sealed');
      sealed = st.sealedSlices;
      assert.equal(st.sealedSlices + st.pendingSeals, 30);
      if (calls % 25 === 0) {
        for (const key of ['k0', 'k13', 'k39']) for (const side of [0, 1] as Side[]) assert.deepEqual(probeKey(side, key), sortSnaps(ref.range(side, key)));
      }
      if (st.pendingSeals === 0) break;
      assert.ok(calls < 5000, 'the queue drains');
    }
    // The per-call cap is multiplied while slices queue (up to 8×): far fewer calls than 20 units each would take.
    assert.ok(calls < 1500, `${calls} calls`);
    assert.equal(s.count(), 6000);
    for (let k = 0; k < keys; k++) for (const side of [0, 1] as Side[]) assert.deepEqual(probeKey(side, `k${k}`), sortSnaps(ref.range(side, `k${k}`)));
  }));

  test('the seal sorts keys in LMDB order: one key group, long shared prefixes, all lengths (MDB_APPEND checks)', () => withStore({ bucketMs: 1000, sealUnitsPerCall: 64, sealAtOnceUnits: 0 }, (s) => {
    const keys: string[] = [];
    let seed = 5;
    const rand = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    for (let i = 0; i < 4000; i++) {
      // Ties in the first 5 and the next 6 bytes are common: the comparison reaches the tail bytes.
      const stem = ['', 'a', 'ab', 'abcde', 'abcdefghijk', 'abcdefghijkl', 'abcdefghijklmnop'][rand(7)];
      keys.push(stem + String.fromCharCode(...Array.from({ length: rand(6) }, () => 97 + rand(3))) + (rand(2) ? `#${i}` : ''));
    }
    const distinct = [...new Set(keys)];
    s.batch(() => {
      distinct.forEach((k, i) => {
        const kg = i % 50 === 0 ? 9 : 0; // one huge key group and a few keys elsewhere
        assert.equal(s.insert((i % 2) as Side, kg, fnv1a(b(k)), b(k), i % 1000, b(`i${i}`), b(k), false, 50_000), true);
      });
      // Keys that are prefixes of one another, with a 0 byte: lengths decide before bytes.
      for (const k of [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0, 0), Uint8Array.of(255), Uint8Array.of(0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)]) {
        s.insert(0, 0, fnv1a(k), k, 1, b('z'), k, false, 50_000);
      }
    });
    s.batch(() => s.expire(1800));
    let steps = 0;
    while (s.stats().pendingSeals > 0) { s.batch(() => s.maintain(64)); steps++; }
    assert.ok(steps > 20, `${steps} steps`);
    assert.equal(s.stats().sealedEntries, distinct.length + 5);
    distinct.forEach((k, i) => {
      const got = probeAll(s, (i % 2) as Side, i % 50 === 0 ? 9 : 0, b(k));
      assert.deepEqual(got.map((e) => [e.id, e.payload]), [[`i${i}`, [...b(k)]]], k);
    });
    assert.deepEqual(probeAll(s, 0, 0, Uint8Array.of(0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)).map((e) => e.payload),
      [[0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]);
  }));

  test('seals are paced by the watermark (and inserted event time) past the slice end; sealSpread 0 seals at once', async () => {
    await withStore({ bucketMs: 1000 }, (s) => {
      fill(s, new Ref(), 1500); // ~6k entries: more work than is ever done at once
      s.batch(() => s.expire(1000));
      const st0 = s.stats();
      assert.deepEqual([st0.pendingSeals, st0.lmdbDatabases], [1, 0], 'complete, but nothing due yet');
      s.batch(() => s.maintain(1e9));
      assert.equal(s.stats().lmdbDatabases, 0, 'maintain() does due work only');
      // Event time moves on (inserts in the next slice) without a watermark: over half of the seal becomes due.
      s.batch(() => { for (let i = 0; i < 10; i++) s.insert(0, 1, 5, b('n'), 1000 + i * 50, b(`n${i}`), b('p'), false, 99_000); });
      s.maintain(1e9); // in its own batch
      let st = s.stats();
      assert.deepEqual([st.pendingSeals, st.lmdbDatabases, st.sealedSlices], [1, 2, 0], 'part of the work is done: both buckets written partly or wholly');
      // The watermark passes (t + 1 + sealSpread)·B: the rest is due, at most sealUnitsPerCall per call.
      let calls = 0;
      while (s.stats().pendingSeals > 0) { s.batch(() => s.expire(1800)); assert.ok(++calls <= 5, `${calls} calls`); }
      st = s.stats();
      assert.deepEqual([st.sealedSlices, st.sealedBuckets], [1, 2]);
    });
    await withStore({ bucketMs: 1000, sealSpread: 0 }, (s) => {
      fill(s, new Ref(), 1500);
      s.batch(() => s.expire(1000));
      assert.deepEqual([s.stats().pendingSeals, s.stats().sealedSlices], [0, 1], 'sealed in the expire() that completed it');
    });
    assert.throws(() => BucketStore.open(freshDir(), { sealUnitsPerCall: 0 }), { code: 'E_STATE' });
  });
});

describe('BucketStore memory budget', () => {
  /** Which slices are open ('o') and sealed ('s'), oldest first (the store's own view). */
  const layout = (s: BucketStore) => (s as unknown as { b: { order: { open: unknown }[] } }).b.order.map((sl) => (sl.open === undefined ? 's' : 'o')).join('');
  const perSlice = 400;
  const payload = (t: number, i: number) => b(`payload-${t}-${i}-`.padEnd(200, 'x'));
  /** Slice t: perSlice entries of 50 keys on both sides, kept `retainMs` past their ts. */
  const fillSlice = (s: BucketStore, ref: Map<string, Snap>, t: number, retainMs: number) => s.batch(() => {
    for (let i = 0; i < perSlice; i++) {
      const key = `k${i % 50}`;
      const side = (i % 2) as Side;
      const ts = t * 100 + (i % 100);
      s.insert(side, 1, fnv1a(b(key)), b(key), ts, b(`e${t}-${i}`), payload(t, i), false, ts + retainMs);
      ref.set(`${t}-${i}`, { side, keyGroup: 1, key, ts, id: `e${t}-${i}`, payload: [...payload(t, i)], joined: false });
    }
  });
  const byTs = (xs: Snap[]) => xs.map((x) => `${x.side}:${x.key}:${x.ts}:${x.id}:${x.payload.length}`).sort();

  test('complete slices stay in memory within the budget; beyond it the newest outside the recent share are sealed; all stay readable', async () => {
    let sliceBytes = 0;
    await withStore({ bucketMs: 100, memoryBytes: 1024 ** 3 }, (s) => { fillSlice(s, new Map(), 0, 100_000); sliceBytes = s.stats().openMemoryBytes; });
    assert.ok(sliceBytes > perSlice * 200, `${sliceBytes} bytes per slice`);
    const budget = Math.floor(3.5 * sliceBytes); // three slices and a half
    await withStore({ bucketMs: 100, memoryBytes: budget }, (s) => {
      const ref = new Map<string, Snap>();
      const settle = (wm: number) => {
        s.batch(() => s.expire(wm));
        for (let i = 0; i < 10_000 && s.stats().pendingSeals > 0; i++) s.batch(() => s.expire(wm));
        assert.equal(s.stats().pendingSeals, 0, `wm ${wm}: seals done`);
        assert.ok(s.stats().openMemoryBytes <= budget + sliceBytes, `wm ${wm}: ${s.stats().openMemoryBytes} bytes open, budget ${budget}`);
      };
      const check = (when: string) => {
        for (let k = 0; k < 50; k += 7) for (const side of [0, 1] as Side[]) {
          const want = [...ref.values()].filter((e) => e.key === `k${k}` && e.side === side);
          assert.deepEqual(byTs(probeAll(s, side, 1, b(`k${k}`))), byTs(want), `${when}: k${k} side ${side}`);
        }
      };
      // Slices 0–2 are kept 1 s, the others 100 s.
      for (let t = 0; t < 8; t++) {
        fillSlice(s, ref, t, t < 3 ? 1_000 : 100_000);
        settle(t * 100); // slice t − 1 completes
      }
      // The budget counts the incomplete slice too: 0–2 fit; from then on the newest complete slice
      // is the recent share (half the budget holds one slice), so the one before it is sealed: 1 is
      // (the newest outside the share, not 0), then 2–5 in turn; 6 is the share, 7 incomplete.
      assert.equal(layout(s), 'o' + 'sssss' + 'oo');
      check('mixed');
      // 6–8 are sealed as 8–10 complete; slice 0 expires from memory (its keys leaving the index in
      // steps), 1–2 from LMDB; then 9–11 fit, and 10 and 11 are sealed as 12 and 13 complete.
      for (let t = 8; t < 14; t++) {
        fillSlice(s, ref, t, 100_000);
        settle(t * 100);
      }
      for (const [k, e] of ref) if (e.ts < 300) ref.delete(k);
      assert.equal(layout(s), 'ssssss' + 'o' + 'ss' + 'oo');
      check('after expiry');
    });
  });

  test('a restore seals complete slices as it goes (restoreHorizon): memory stays near the budget, nothing is dropped', async () => {
    let sliceBytes = 0;
    await withStore({ bucketMs: 100, memoryBytes: 1024 ** 3 }, (s) => { fillSlice(s, new Map(), 0, 100_000); sliceBytes = s.stats().openMemoryBytes; });
    const budget = Math.floor(2.5 * sliceBytes);
    await withStore({ bucketMs: 100, memoryBytes: budget }, (s) => {
      const ref = new Map<string, Snap>();
      let peak = 0;
      // Thirty slices restored in order, each batch followed by the horizon two slices behind the
      // newest; slices 0–1 expire early, but a restore drops nothing.
      for (let t = 0; t < 30; t++) {
        fillSlice(s, ref, t, t < 2 ? 50 : 100_000);
        s.batch(() => s.restoreHorizon(t * 100 - 200));
        peak = Math.max(peak, s.stats().openMemoryBytes);
      }
      assert.ok(s.stats().sealedSlices >= 20, `${s.stats().sealedSlices} slices sealed`);
      assert.ok(peak <= budget + 2 * sliceBytes, `${peak} bytes open at most, budget ${budget}`);
      // A late event below the horizon still goes in (its slice is read back).
      s.batch(() => s.insert(0, 1, fnv1a(b('k3')), b('k3'), 503, b('late'), b('p'), false, 100_000));
      ref.set('late', { side: 0, keyGroup: 1, key: 'k3', ts: 503, id: 'late', payload: [...b('p')], joined: false });
      assert.equal(s.count(), ref.size, 'nothing dropped by the restore');
      for (let k = 0; k < 50; k += 7) for (const side of [0, 1] as Side[]) {
        const want = [...ref.values()].filter((e) => e.key === `k${k}` && e.side === side);
        assert.deepEqual(byTs(probeAll(s, side, 1, b(`k${k}`))), byTs(want), `k${k} side ${side}`);
      }
      // The worker's first expire() after the restore reports what expired meanwhile.
      const expired: string[] = [];
      s.batch(() => s.expire(1_000, (e) => { expired.push(dec.decode(e.id)); }));
      assert.equal(expired.length, 2 * perSlice);
    });
  });

  test('without a budget every complete slice is sealed, oldest first; a negative budget is refused', async () => {
    await withStore({ bucketMs: 100, sealSpread: 0 }, (s) => {
      s.batch(() => { for (let t = 0; t < 4; t++) s.insert(0, 1, 3, b('k'), t * 100, b(`e${t}`), b('p'), false, 100_000); });
      s.batch(() => s.expire(350));
      assert.equal(layout(s), 'ssso');
    });
    assert.throws(() => BucketStore.open(freshDir(), { memoryBytes: -1 }), { code: 'E_STATE' });
  });
});

describe('BucketStore LZ4 (lz4AboveBytes)', () => {
  // Payloads alike, as events of one stream are: what LZ4 finds within a run.
  const payload = (i: number) => b(`{"eventId":"i-${i}","profileId":${i % 997},"titleId":${i % 89},"device":"tv","row":${i % 20}}`);
  /** 40 slices of 500 entries (250 keys, both sides), everything sealed; returns each slice's lz4 state after it. */
  const fill = (s: BucketStore): { lz4After: boolean[] } => {
    const lz4After: boolean[] = [];
    for (let t = 0; t < 40; t++) {
      s.batch(() => {
        for (let i = t * 500; i < (t + 1) * 500; i++) {
          const key = b(`k${i % 250}`);
          s.insert((i % 2) as Side, 1, fnv1a(key), key, t * 100 + (i % 100), b(`e${i}`), payload(i), false, 1e9);
        }
      });
      s.batch(() => s.expire(t * 100 + 99));
      lz4After.push(s.stats().lz4);
    }
    return { lz4After };
  };
  const sealedPages = (s: BucketStore) => s.stats().lmdbLeafPages + s.stats().lmdbOverflowPages;
  const check = (s: BucketStore) => {
    for (const k of [0, 1, 77, 249]) for (const side of [0, 1] as Side[]) {
      const got = probeAll(s, side, 1, b(`k${k}`));
      const want = [];
      for (let i = 0; i < 40 * 500; i++) if (i % 250 === k && i % 2 === side) want.push(i);
      assert.deepEqual(got.map((e) => e.id).sort(), want.map((i) => `e${i}`).sort(), `k${k} side ${side}`);
      for (const e of got) assert.deepEqual(e.payload, [...payload(Number(e.id.slice(1)))], `payload of ${e.id}`);
    }
  };

  test('never by default; always with 0: the same entries, in fewer pages', async () => {
    let plain = 0, lz4 = 0;
    await withStore({ bucketMs: 100, sealSpread: 0 }, (s) => {
      const r = fill(s);
      assert.ok(r.lz4After.every((x) => !x));
      check(s);
      plain = sealedPages(s);
    });
    await withStore({ bucketMs: 100, sealSpread: 0, lz4AboveBytes: 0 }, (s) => {
      const r = fill(s);
      assert.ok(r.lz4After.every((x) => x));
      check(s);
      lz4 = sealedPages(s);
    });
    assert.ok(lz4 < plain * 0.8, `${lz4} pages with LZ4 against ${plain} without`);
  });

  test('switched on once the LMDB file reaches the threshold: older buckets stay plain, both read back', async () => {
    await withStore({ bucketMs: 100, sealSpread: 0, lz4AboveBytes: 1 << 20 }, (s) => {
      const r = fill(s);
      const first = r.lz4After.indexOf(true);
      assert.ok(first > 0, `switched on after slice ${first} (${r.lz4After.join(',')})`);
      assert.ok(r.lz4After.slice(first).every((x) => x), 'stays on');
      check(s);
    });
  });

  test('a negative or NaN threshold is refused', () => {
    for (const bad of [-1, NaN]) assert.throws(() => BucketStore.open(freshDir(), { lz4AboveBytes: bad }), { code: 'E_STATE' });
  });
});
