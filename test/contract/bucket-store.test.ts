import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BucketStore, DEFAULT_BUCKET_MS } from '../../src/state/bucket-store.js';
import { openStore } from '../../src/state/index.js';
import type { Buffered, Side } from '../../src/state/store.js';
import { fnv1a, storeContract } from './store.contract.js';

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

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

interface Snap { side: Side; keyGroup: number; key: string; ts: number; id: string; payload: number[]; joined: boolean }
const dec = new TextDecoder();
const snap = (e: Buffered): Snap => ({
  side: e.side, keyGroup: e.keyGroup, key: dec.decode(e.key), ts: e.ts, id: dec.decode(e.id), payload: [...e.payload], joined: e.joined,
});

function probeAll(s: BucketStore, side: Side, kg: number, key: Uint8Array, from = -Infinity, to = Infinity,
  visit?: (e: Buffered) => boolean | void): Snap[] {
  const out: Snap[] = [];
  s.batch(() => s.probe(side, kg, fnv1a(key), key, from, to, (e) => { out.push(snap(e)); return visit?.(e); }));
  return out;
}

async function withStore(options: { bucketMs?: number }, fn: (s: BucketStore) => void | Promise<void>): Promise<void> {
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
    assert.equal(st.lmdbRecords, 2, 'one record per key and side');
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
    s.batch(() => s.expire(1000));
    assert.equal(s.stats().sealedSlices, 1);
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
