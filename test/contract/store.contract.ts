/**
 * The StateStore contract (src/state/store.ts), run against every implementation
 * (memory-store.test.ts, lmdb-store.test.ts). Every store is made fresh per test and closed after.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Buffered, Side, StateStore } from '../../src/state/store.js';

export type MakeStore = () => Promise<StateStore> | StateStore;

const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);
const u = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

/** FNV-1a 32-bit: a stable key hash, as the router would compute it. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A copy of a Buffered (the store's views are only valid during the callback). */
interface Snap {
  side: Side;
  keyGroup: number;
  key: number[];
  ts: number;
  id: number[];
  payload: number[];
  joined: boolean;
}
function snap(e: Buffered): Snap {
  return {
    side: e.side, keyGroup: e.keyGroup, key: [...e.key], ts: e.ts, id: [...e.id], payload: [...e.payload], joined: e.joined,
  };
}

function cmpBytes(a: ArrayLike<number>, c: ArrayLike<number>): number {
  const n = Math.min(a.length, c.length);
  for (let i = 0; i < n; i++) if (a[i] !== c[i]) return a[i] - c[i];
  return a.length - c.length;
}
function cmpSnap(a: Snap, c: Snap): number {
  return a.side - c.side || a.keyGroup - c.keyGroup || cmpBytes(a.key, c.key) || a.ts - c.ts || cmpBytes(a.id, c.id);
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function storeContract(name: string, makeStore: MakeStore): void {
  async function withStore(fn: (s: StateStore) => void | Promise<void>): Promise<void> {
    const s = await makeStore();
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  }

  // Helpers that run one call in its own batch, as the worker does per ring drain.
  const ins = (s: StateStore, side: Side, kg: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array = b(`p:${ts}`), joined = false, expireAt = ts + 1000): boolean =>
    s.batch(() => s.insert(side, kg, fnv1a(key), key, ts, id, payload, joined, expireAt));
  const probeAll = (s: StateStore, side: Side, kg: number, key: Uint8Array, from: number, to: number,
    visit?: (e: Buffered) => boolean | void): Snap[] => {
    const out: Snap[] = [];
    s.batch(() => s.probe(side, kg, fnv1a(key), key, from, to, (e) => {
      out.push(snap(e));
      return visit?.(e);
    }));
    return out;
  };
  const expireAll = (s: StateStore, wm: number): { n: number; out: Snap[] } => {
    const out: Snap[] = [];
    const n = s.batch(() => s.expire(wm, (e) => { out.push(snap(e)); }));
    return { n, out };
  };

  describe(`StateStore contract: ${name}`, () => {
    test('insert stores an entry and a second insert of the same identity is a duplicate', () => withStore((s) => {
      const k = b('user1|title9');
      assert.equal(s.count(), 0);
      assert.equal(ins(s, 0, 5, k, 1000, b('e1'), b('first')), true);
      assert.equal(s.count(), 1);
      // Same identity, different payload / joined / expiry: still a duplicate, and nothing is overwritten.
      assert.equal(ins(s, 0, 5, k, 1000, b('e1'), b('second'), true, 99_999), false);
      assert.equal(s.count(), 1);
      const got = probeAll(s, 0, 5, k, 0, 2000);
      assert.equal(got.length, 1);
      assert.deepEqual(got[0].payload, [...b('first')]);
      assert.equal(got[0].joined, false);
      // The duplicate did not register its expiry either: the original expires at 2000.
      assert.equal(expireAll(s, 2000).n, 0);
      assert.equal(expireAll(s, 2001).n, 1);
      assert.equal(s.count(), 0);
    }));

    test('identity is (side, key, ts, id): varying any one part is not a duplicate', () => withStore((s) => {
      const k = b('k');
      assert.equal(ins(s, 0, 1, k, 10, b('id')), true);
      assert.equal(ins(s, 0, 1, k, 11, b('id')), true, 'same id, different ts');
      assert.equal(ins(s, 0, 1, k, 10, b('id2')), true, 'same ts, different id');
      assert.equal(ins(s, 0, 1, k, 10, b('i')), true, 'id that is a prefix of another id');
      assert.equal(ins(s, 1, 1, k, 10, b('id')), true, 'other side');
      assert.equal(ins(s, 0, 1, b('k2'), 10, b('id')), true, 'other key');
      assert.equal(ins(s, 0, 2, k, 10, b('id')), true, 'other key group');
      assert.equal(s.count(), 7);
      for (const [side, kg, key, ts, id] of [[0, 1, k, 10, b('id')], [0, 1, k, 11, b('id')], [0, 1, k, 10, b('id2')],
        [0, 1, k, 10, b('i')], [1, 1, k, 10, b('id')], [0, 1, b('k2'), 10, b('id')], [0, 2, k, 10, b('id')]] as const) {
        assert.equal(ins(s, side, kg, key, ts, id), false, `re-insert of ${side}/${kg}/${ts} is a duplicate`);
      }
      assert.equal(s.count(), 7);
    }));

    test('the store copies what it keeps: argument buffers may be reused by the caller', () => withStore((s) => {
      // Node Buffers on purpose: Buffer#slice is a view, so a store that "copies" with slice() fails here.
      const key = Buffer.from('key-A');
      const id = Buffer.from('id-0001');
      const payload = Buffer.from('payload-one');
      s.batch(() => {
        assert.equal(s.insert(0, 1, fnv1a(key), key, 5, id, payload, false, 100), true);
        key.write('key-B'); id.write('id-0002'); payload.write('PAYLOAD-TWO');
        assert.equal(s.insert(0, 1, fnv1a(key), key, 5, id, payload, false, 100), true, 'new identity after the rewrite');
      });
      key.fill(0); id.fill(0); payload.fill(0);
      const a = probeAll(s, 0, 1, b('key-A'), 0, 10);
      const c = probeAll(s, 0, 1, b('key-B'), 0, 10);
      assert.deepEqual(a.map((e) => [String.fromCharCode(...e.key), String.fromCharCode(...e.id), String.fromCharCode(...e.payload)]),
        [['key-A', 'id-0001', 'payload-one']]);
      assert.deepEqual(c.map((e) => [String.fromCharCode(...e.key), String.fromCharCode(...e.id), String.fromCharCode(...e.payload)]),
        [['key-B', 'id-0002', 'PAYLOAD-TWO']]);
      assert.equal(ins(s, 0, 1, b('key-A'), 5, b('id-0001')), false, 'the kept identity is still a duplicate');
      const { out } = expireAll(s, Infinity);
      assert.deepEqual(out.map((e) => String.fromCharCode(...e.id)).sort(), ['id-0001', 'id-0002']);
    }));

    test('probe bounds are inclusive on both ends', () => withStore((s) => {
      const k = b('key');
      for (const ts of [10, 20, 30]) ins(s, 1, 3, k, ts, b(`id${ts}`));
      const tsOf = (from: number, to: number) => probeAll(s, 1, 3, k, from, to).map((e) => e.ts);
      assert.deepEqual(tsOf(10, 30), [10, 20, 30]);
      assert.deepEqual(tsOf(11, 29), [20]);
      assert.deepEqual(tsOf(20, 20), [20]);
      assert.deepEqual(tsOf(10, 10), [10]);
      assert.deepEqual(tsOf(30, 30), [30]);
      assert.deepEqual(tsOf(-Infinity, Infinity), [10, 20, 30]);
      assert.deepEqual(tsOf(31, 40), []);
      assert.deepEqual(tsOf(0, 9), []);
      assert.deepEqual(tsOf(21, 29), []);
      assert.deepEqual(tsOf(30, 10), [], 'from > to is an empty range');
      // Near the bounds with fractional and neighbouring values.
      assert.deepEqual(tsOf(9.999, 10.001), [10]);
      assert.deepEqual(tsOf(10.000000001, 29.99999999), [20]);
    }));

    test('probe hands over complete entries', () => withStore((s) => {
      const k = u(0, 1, 2, 255);
      const payload = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255);
      ins(s, 1, 4095, k, 1_700_000_000_123, b('evt-42'), payload, true);
      const got = probeAll(s, 1, 4095, k, 1_700_000_000_000, 1_700_000_001_000);
      assert.deepEqual(got, [{
        side: 1, keyGroup: 4095, key: [0, 1, 2, 255], ts: 1_700_000_000_123, id: [...b('evt-42')], payload: [...payload], joined: true,
      }]);
    }));

    test('probe visits in ts order, including negative and fractional times', () => withStore((s) => {
      const k = b('k');
      const times = [5, -1, 0, 3, -1e12, 1.7e12, -0.5, 2.25, -3, 1e15, -1e15, 4, 3];
      times.forEach((ts, i) => assert.equal(ins(s, 0, 0, k, ts, b(`id${i}`)), true));
      const got = probeAll(s, 0, 0, k, -Infinity, Infinity).map((e) => e.ts);
      assert.deepEqual(got, [...times].sort((x, y) => x - y));
      assert.deepEqual(probeAll(s, 0, 0, k, -3, 0).map((e) => e.ts), [-3, -1, -0.5, 0]);
      assert.deepEqual(probeAll(s, 0, 0, k, -1e12, -1e12).map((e) => e.ts), [-1e12]);
      assert.deepEqual(probeAll(s, 0, 0, k, -2, -0.75).map((e) => e.ts), [-1]);
    }));

    test('-0 and 0 are the same event time', () => withStore((s) => {
      const k = b('k');
      assert.equal(ins(s, 0, 0, k, -0, b('a')), true);
      assert.equal(ins(s, 0, 0, k, 0, b('a')), false, '0 duplicates -0');
      assert.deepEqual(probeAll(s, 0, 0, k, 0, 0).map((e) => e.ts === 0), [true]);
      assert.equal(probeAll(s, 0, 0, k, -0, -0).length, 1);
      assert.equal(probeAll(s, 0, 0, k, -1, -0.0001).length, 0);
    }));

    test('sides are isolated', () => withStore((s) => {
      const k = b('k');
      ins(s, 0, 1, k, 100, b('L'));
      assert.deepEqual(probeAll(s, 1, 1, k, 0, 1000), []);
      ins(s, 1, 1, k, 100, b('R'));
      assert.deepEqual(probeAll(s, 0, 1, k, 0, 1000).map((e) => [e.side, String.fromCharCode(...e.id)]), [[0, 'L']]);
      assert.deepEqual(probeAll(s, 1, 1, k, 0, 1000).map((e) => [e.side, String.fromCharCode(...e.id)]), [[1, 'R']]);
    }));

    test('keys are isolated, including keys that are prefixes of other keys', () => withStore((s) => {
      const keys = [u(1), u(1, 0), u(1, 0, 0), u(1, 1), u(1, 255), u(0, 1), u(2), u(), b('ab'), b('abc'), b('a')];
      keys.forEach((k, i) => {
        ins(s, 0, 9, k, 50, b(`id${i}`));
        ins(s, 1, 9, k, 50, b(`id${i}`));
      });
      keys.forEach((k, i) => {
        for (const side of [0, 1] as const) {
          const got = probeAll(s, side, 9, k, -Infinity, Infinity);
          assert.deepEqual(got.map((e) => [e.key, String.fromCharCode(...e.id)]), [[[...k], `id${i}`]], `key ${[...k]} side ${side}`);
        }
      });
      // Keys whose hashes collide in any filter are still kept apart: same keyHash passed for two keys.
      s.batch(() => {
        s.insert(0, 9, 12345, b('x1'), 1, b('i'), b('p'), false, 10);
        s.insert(0, 9, 12345, b('x2'), 1, b('i'), b('p'), false, 10);
      });
      const seen: string[] = [];
      s.batch(() => s.probe(0, 9, 12345, b('x1'), 0, 10, (e) => { seen.push(String.fromCharCode(...e.key)); }));
      assert.deepEqual(seen, ['x1']);
    }));

    test('key groups are isolated', () => withStore((s) => {
      const k = b('same-key');
      for (const kg of [0, 1, 255, 256, 4095, 65535]) ins(s, 0, kg, k, 7, b(`g${kg}`));
      for (const kg of [0, 1, 255, 256, 4095, 65535]) {
        const got = probeAll(s, 0, kg, k, 0, 10);
        assert.deepEqual(got.map((e) => [e.keyGroup, String.fromCharCode(...e.id)]), [[kg, `g${kg}`]]);
      }
      assert.deepEqual(probeAll(s, 0, 2, k, 0, 10), []);
    }));

    test('a probe for a key with nothing on that side visits nothing, and a probe never inserts', () => withStore((s) => {
      assert.deepEqual(probeAll(s, 0, 0, b('nothing'), -Infinity, Infinity), []);
      ins(s, 1, 0, b('other'), 1, b('x'));
      assert.deepEqual(probeAll(s, 0, 0, b('other'), -Infinity, Infinity), []);
      assert.deepEqual(probeAll(s, 1, 0, b('nothing'), -Infinity, Infinity), []);
      assert.equal(s.count(), 1);
    }));

    test('markJoined sets the joined flag of exactly one entry', () => withStore((s) => {
      const k = b('k');
      ins(s, 0, 2, k, 10, b('a'));
      ins(s, 0, 2, k, 10, b('b'));
      ins(s, 0, 2, k, 11, b('a'));
      ins(s, 1, 2, k, 10, b('a'));
      ins(s, 0, 2, k, 12, b('c'), b('pre-joined'), true);
      s.batch(() => s.markJoined(0, 2, fnv1a(k), k, 10, b('a')));
      const joined = (side: Side) => probeAll(s, side, 2, k, 0, 100).map((e) => `${e.ts}/${String.fromCharCode(...e.id)}=${e.joined}`);
      assert.deepEqual(joined(0), ['10/a=true', '10/b=false', '11/a=false', '12/c=true']);
      assert.deepEqual(joined(1), ['10/a=false']);
      // Marking twice, or marking something that is not there, changes nothing else.
      s.batch(() => {
        s.markJoined(0, 2, fnv1a(k), k, 10, b('a'));
        s.markJoined(0, 2, fnv1a(k), k, 13, b('a'));
        s.markJoined(1, 2, fnv1a(k), k, 10, b('zz'));
        s.markJoined(0, 3, fnv1a(k), k, 10, b('b'));
      });
      assert.deepEqual(joined(0), ['10/a=true', '10/b=false', '11/a=false', '12/c=true']);
      assert.deepEqual(joined(1), ['10/a=false']);
      assert.equal(s.count(), 5);
      // The payload survives the flag update.
      assert.deepEqual(probeAll(s, 0, 2, k, 10, 10)[0].payload, [...b('p:10')]);
    }));

    test('a visit returning true persists the joined flag; false or nothing does not', () => withStore((s) => {
      const k = b('k');
      for (const ts of [1, 2, 3, 4]) ins(s, 1, 0, k, ts, b(`i${ts}`));
      const first = probeAll(s, 1, 0, k, 0, 10, (e) => (e.ts === 2 ? true : e.ts === 3 ? false : undefined));
      assert.deepEqual(first.map((e) => e.joined), [false, false, false, false], 'the flag is read before the visit');
      assert.deepEqual(probeAll(s, 1, 0, k, 0, 10).map((e) => e.joined), [false, true, false, false]);
      // Also seen by expiry, with the payload intact.
      const { out } = expireAll(s, Infinity);
      out.sort(cmpSnap);
      assert.deepEqual(out.map((e) => [e.ts, e.joined, String.fromCharCode(...e.payload)]),
        [[1, false, 'p:1'], [2, true, 'p:2'], [3, false, 'p:3'], [4, false, 'p:4']]);
    }));

    test('expire removes exactly the entries with expireAtMs strictly below the watermark', () => withStore((s) => {
      const k = b('k');
      ins(s, 0, 0, k, 1, b('a'), b('A'), false, 100);
      ins(s, 1, 0, k, 2, b('b'), b('B'), false, 200);
      ins(s, 0, 0, k, 3, b('c'), b('C'), false, 200);
      ins(s, 0, 1, b('other'), 4, b('d'), b('D'), false, 300);
      ins(s, 1, 0, k, -5, b('e'), b('E'), false, -50);
      assert.equal(expireAll(s, -50).n, 0);
      assert.equal(expireAll(s, -49.5).n, 1);
      assert.equal(expireAll(s, 100).n, 0);
      assert.equal(s.count(), 4);
      assert.equal(expireAll(s, 100.5).n, 1);
      assert.equal(s.count(), 3);
      assert.deepEqual(probeAll(s, 0, 0, k, -Infinity, Infinity).map((e) => e.ts), [3]);
      assert.equal(expireAll(s, 200).n, 0);
      const r = expireAll(s, 201);
      assert.equal(r.n, 2);
      assert.equal(r.out.length, 2);
      assert.deepEqual(r.out.map((e) => String.fromCharCode(...e.payload)).sort(), ['B', 'C']);
      assert.equal(s.count(), 1);
      assert.deepEqual(probeAll(s, 0, 0, k, -Infinity, Infinity), []);
      assert.deepEqual(probeAll(s, 1, 0, k, -Infinity, Infinity), []);
      assert.equal(expireAll(s, 250).n, 0, 'nothing more below 250');
      assert.equal(s.batch(() => s.expire(301)), 1, 'expire without a callback removes too');
      assert.equal(s.count(), 0);
      assert.equal(expireAll(s, Infinity).n, 0);
    }));

    test('expire passes full entries (payload, joined) to onExpired before removing them', () => withStore((s) => {
      const want: Snap[] = [];
      for (let i = 0; i < 50; i++) {
        const key = b(`key${i % 7}`);
        const payload = Uint8Array.from({ length: i * 13 }, (_, j) => (i + j) & 255);
        const side = (i % 2) as Side;
        const kg = i % 3;
        const ts = i * 10 - 200;
        ins(s, side, kg, key, ts, b(`id${i}`), payload, i % 5 === 0, 1000 + (i % 4));
        want.push({ side, keyGroup: kg, key: [...key], ts, id: [...b(`id${i}`)], payload: [...payload], joined: i % 5 === 0 });
      }
      s.batch(() => s.markJoined(1, 0, fnv1a(b('key3')), b('key3'), 30 - 200, b('id3')));
      want[3].joined = true;
      const out: Snap[] = [];
      const n = s.batch(() => s.expire(1002, (e) => { out.push(snap(e)); }));
      const expected = want.filter((_, i) => 1000 + (i % 4) < 1002).sort(cmpSnap);
      assert.equal(n, expected.length);
      assert.deepEqual(out.sort(cmpSnap), expected);
      assert.equal(s.count(), 50 - expected.length);
      // Expired entries can be inserted again (they are no longer buffered).
      assert.equal(ins(s, 0, 0, b('key0'), -200, b('id0')), true);
    }));

    test('expiring many entries at once (more than any internal chunk)', () => withStore((s) => {
      s.batch(() => {
        for (let i = 0; i < 5000; i++) {
          const key = b(`k${i % 100}`);
          s.insert((i & 1) as Side, i % 4, fnv1a(key), key, i, b(`${i}`), b('x'), false, i % 10 === 0 ? 10_000 : i);
        }
      });
      assert.equal(s.count(), 5000);
      let calls = 0;
      const n = s.batch(() => s.expire(5000, () => { calls++; }));
      assert.equal(n, 4500);
      assert.equal(calls, 4500);
      assert.equal(s.count(), 500);
      assert.equal(probeAll(s, 0, 0, b('k0'), -Infinity, Infinity).length, 50);
      assert.equal(s.batch(() => s.expire(Infinity)), 500);
      assert.equal(s.count(), 0);
    }));

    test('a hot key with thousands of entries in random arrival order', () => withStore((s) => {
      const rand = rng(7);
      const key = b('hot');
      const n = 3000;
      // Distinct (ts, id) pairs: ts repeats (i % 1000) so ids decide the order within a ts.
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
      const tsOf = (i: number) => i % 1000;
      const idOf = (i: number) => b(`id${Math.floor(i / 1000)}-${i}`);
      for (let start = 0; start < n; start += 500) {
        s.batch(() => {
          for (const i of order.slice(start, start + 500)) {
            assert.equal(s.insert(1, 3, fnv1a(key), key, tsOf(i), idOf(i), b(`p${i}`), false, tsOf(i) * 10 + 5), true);
          }
        });
      }
      assert.equal(s.count(), n);
      for (const i of order.slice(0, 200)) assert.equal(ins(s, 1, 3, key, tsOf(i), idOf(i)), false);
      const all = probeAll(s, 1, 3, key, -Infinity, Infinity);
      assert.equal(all.length, n);
      for (let i = 1; i < n; i++) {
        const a = all[i - 1], c = all[i];
        assert.ok(a.ts < c.ts || (a.ts === c.ts && cmpBytes(a.id, c.id) < 0), `strict (ts, id) order at ${i}`);
      }
      assert.deepEqual(probeAll(s, 1, 3, key, 250, 252).map((e) => e.ts), [250, 250, 250, 251, 251, 251, 252, 252, 252]);
      // Mark a scattered set joined, then expire in steps and check every expired entry.
      const marked = new Set(order.slice(0, 700));
      s.batch(() => { for (const i of marked) s.markJoined(1, 3, fnv1a(key), key, tsOf(i), idOf(i)); });
      let total = 0;
      const wms = [...Array.from({ length: 13 }, (_, i) => i * 777), Infinity];
      for (const wm of wms) {
        const { n: got, out } = expireAll(s, wm);
        total += got;
        for (const e of out) {
          const i = Number(String.fromCharCode(...e.payload).slice(1));
          assert.ok(tsOf(i) * 10 + 5 < wm, `entry ${i} expired early at ${wm}`);
          assert.equal(e.joined, marked.has(i), `joined flag of ${i}`);
        }
        assert.equal(s.count(), n - total);
        assert.equal(probeAll(s, 1, 3, key, -Infinity, Infinity).length, n - total);
      }
      assert.equal(total, n);
    }));

    test('count and bytes follow inserts, duplicates and expiry', () => withStore((s) => {
      assert.equal(s.count(), 0);
      assert.equal(s.bytes(), 0);
      const k = b('k');
      ins(s, 0, 0, k, 1, b('a'), new Uint8Array(100), false, 10);
      const one = s.bytes();
      assert.ok(one >= 100, `bytes ${one} counts the payload`);
      ins(s, 0, 0, k, 1, b('a'), new Uint8Array(5000), false, 10);
      assert.equal(s.bytes(), one, 'a duplicate adds nothing');
      ins(s, 0, 0, k, 2, b('a'), new Uint8Array(10_000), false, 20);
      assert.equal(s.count(), 2);
      assert.ok(s.bytes() >= one + 10_000, 'a bigger payload counts more');
      ins(s, 1, 0, k, 3, b('a'), new Uint8Array(0), false, 30);
      assert.equal(s.count(), 3);
      assert.ok(s.bytes() > one + 10_000, 'an empty payload still counts its key');
      const before = s.bytes();
      s.batch(() => s.expire(15));
      assert.equal(s.count(), 2);
      assert.ok(before - s.bytes() >= 100, 'expiring the 100-byte entry releases at least its payload');
      assert.ok(s.bytes() >= 10_000);
      s.batch(() => s.expire(100));
      assert.equal(s.count(), 0);
      assert.equal(s.bytes(), 0);
    }));

    test('batch returns its result, nests, and many entries fit in one batch', () => withStore((s) => {
      assert.equal(s.batch(() => 42), 42);
      const r = s.batch(() => {
        const inner = s.batch(() => s.insert(0, 0, 1, b('k'), 1, b('i'), b('p'), false, 5));
        return [inner, s.insert(0, 0, 1, b('k'), 1, b('i'), b('p'), false, 5)];
      });
      assert.deepEqual(r, [true, false]);
      // Reads inside a batch see that batch's writes.
      const seen = s.batch(() => {
        s.insert(1, 0, 1, b('k'), 2, b('j'), b('q'), false, 5);
        const got: number[] = [];
        s.probe(1, 0, 1, b('k'), 0, 5, (e) => { got.push(e.ts); });
        return got;
      });
      assert.deepEqual(seen, [2]);
    }));

    test('model-based: 20k random operations agree with a reference implementation', () => withStore((s) => {
      modelTest(s, 0x5eed1234, 20_000);
    }));
  });
}

// ---- reference model ----

interface ModelEntry extends Snap {
  expireAt: number;
}

function modelTest(s: StateStore, seed: number, ops: number): void {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const keys = [u(1), u(1, 0), u(1, 0, 0), u(2), u(255), b('ab'), b('abc'), u(), b('k1'), b('k12'), b('k2'), u(0)];
  const groups = [0, 7, 4095];
  const model = new Map<string, ModelEntry>();
  const ident = (side: number, kg: number, key: ArrayLike<number>, ts: number, id: ArrayLike<number>) =>
    `${side}|${kg}|${Array.from(key).join(',')}|${ts + 0}|${Array.from(id).join(',')}`;
  let now = 0; // drives ts and watermark forward
  let op = 0;
  const where = () => `seed ${seed.toString(16)}, op ${op}`;
  let bytesSeenNonZero = false;

  while (op < ops) {
    const batchSize = 1 + int(40);
    s.batch(() => {
      for (let j = 0; j < batchSize && op < ops; j++, op++) {
        const r = rand();
        const side = int(2) as Side;
        const kg = pick(groups);
        const key = pick(keys);
        if (r < 0.5) {
          // insert: small id space and coarse ts so duplicates happen often
          const ts = now - 40 + int(60) + (rand() < 0.05 ? -0.5 : 0);
          const id = b(`e${int(12)}`);
          const payload = Uint8Array.from({ length: int(40) }, () => int(256));
          const joined = rand() < 0.1;
          const expireAt = ts + int(80);
          const k = ident(side, kg, key, ts, id);
          const want = !model.has(k);
          const got = s.insert(side, kg, fnv1a(key), key, ts, id, payload, joined, expireAt);
          assert.equal(got, want, `insert result, ${where()}`);
          if (want) {
            model.set(k, { side, keyGroup: kg, key: [...key], ts, id: [...id], payload: [...payload], joined, expireAt });
          }
        } else if (r < 0.8) {
          // probe, marking some visited entries joined
          const from = now - 60 + int(70);
          const to = from + int(40) - 5;
          const markMod = 1 + int(3);
          const got: Snap[] = [];
          s.probe(side, kg, fnv1a(key), key, from, to, (e) => {
            got.push(snap(e));
            return got.length % markMod === 0;
          });
          for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].ts <= got[i].ts, `probe ts order, ${where()}`);
          const marked = got.filter((_, i) => (i + 1) % markMod === 0);
          const want = [...model.values()]
            .filter((e) => e.side === side && e.keyGroup === kg && cmpBytes(e.key, key) === 0 && e.ts >= from && e.ts <= to)
            .map(({ expireAt: _x, ...rest }) => rest)
            .sort(cmpSnap);
          assert.deepEqual([...got].sort(cmpSnap), want, `probe [${from}, ${to}] result, ${where()}`);
          for (const e of marked) model.get(ident(e.side, e.keyGroup, e.key, e.ts, e.id))!.joined = true;
        } else if (r < 0.88) {
          // markJoined: an existing entry when there is one, otherwise a random identity
          const existing = [...model.values()];
          if (existing.length > 0 && rand() < 0.8) {
            const e = pick(existing);
            s.markJoined(e.side, e.keyGroup, fnv1a(Uint8Array.from(e.key)), Uint8Array.from(e.key), e.ts, Uint8Array.from(e.id));
            e.joined = true;
          } else {
            const ts = now - 40 + int(60);
            const id = b(`e${int(12)}`);
            s.markJoined(side, kg, fnv1a(key), key, ts, id);
            const m = model.get(ident(side, kg, key, ts, id));
            if (m) m.joined = true;
          }
        } else if (r < 0.97) {
          // advance time; expire (sometimes without a callback, sometimes a non-monotonic watermark)
          now += int(8);
          const wm = rand() < 0.1 ? now - 100 : now - int(20);
          const want = [...model.values()].filter((e) => e.expireAt < wm);
          if (rand() < 0.3) {
            const n = s.expire(wm);
            assert.equal(n, want.length, `expire(${wm}) count without callback, ${where()}`);
          } else {
            const got: Snap[] = [];
            const n = s.expire(wm, (e) => { got.push(snap(e)); });
            assert.equal(n, want.length, `expire(${wm}) count, ${where()}`);
            assert.deepEqual(got.sort(cmpSnap), want.map(({ expireAt: _x, ...rest }) => rest).sort(cmpSnap),
              `expire(${wm}) entries, ${where()}`);
          }
          for (const e of want) model.delete(ident(e.side, e.keyGroup, e.key, e.ts, e.id));
        } else {
          assert.equal(s.count(), model.size, `count, ${where()}`);
          const minBytes = [...model.values()].reduce((a, e) => a + e.payload.length, 0);
          assert.ok(s.bytes() >= minBytes, `bytes ${s.bytes()} ≥ payload bytes ${minBytes}, ${where()}`);
          assert.equal(s.bytes() === 0, model.size === 0, `bytes zero iff empty, ${where()}`);
          if (s.bytes() > 0) bytesSeenNonZero = true;
        }
      }
    });
    assert.equal(s.count(), model.size, `count after batch, ${where()}`);
  }
  // Drain: everything left expires with its full contents.
  const got: Snap[] = [];
  const n = s.batch(() => s.expire(Infinity, (e) => { got.push(snap(e)); }));
  assert.equal(n, model.size);
  assert.deepEqual(got.sort(cmpSnap), [...model.values()].map(({ expireAt: _x, ...rest }) => rest).sort(cmpSnap));
  assert.equal(s.count(), 0);
  assert.equal(s.bytes(), 0);
  assert.ok(bytesSeenNonZero, 'the model test exercised a non-empty store');
}
