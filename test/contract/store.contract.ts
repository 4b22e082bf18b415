/**
 * The StateStore contract (src/state/store.ts), run against every implementation
 * (memory-store.test.ts, lmdb-store.test.ts, bucket-store.test.ts). Every store is made fresh per
 * test and closed after.
 *
 * Expiry: a store with expiryGranularityMs G = 0 (memory, lmdb) is held to exact expiry (an entry
 * goes exactly when watermark > expireAt). A store with G > 0 (bucket) is held to the relaxed rule:
 * never removed while expireAt ≥ watermark, removed at the latest once watermark > expireAt + G.
 * Tests whose assertions assume exact expiry branch on G; the model test then also keeps the
 * discipline the join keeps (non-decreasing watermark, no insert with ts below it), and a second,
 * shorter model run breaks it on purpose, which must stay correct (only slower) for every store.
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
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const identOf = (side: number, kg: number, key: ArrayLike<number>, ts: number, id: ArrayLike<number>): string =>
  `${side}|${kg}|${Array.from(key).join(',')}|${ts + 0}|${Array.from(id).join(',')}`;

/**
 * What a test has buffered, to check expire() against the store's expiry rule (exact when
 * expiryGranularityMs is 0, relaxed otherwise) and the entries it reports.
 */
class Tracked {
  private readonly live = new Map<string, { e: Snap; expireAt: number }>();
  constructor(private readonly s: StateStore) {}

  /** s.insert (in the caller's batch, or its own) and record the entry when it was stored. */
  insert(side: Side, kg: number, key: Uint8Array, ts: number, id: Uint8Array, payload: Uint8Array, joined: boolean,
    expireAt: number): boolean {
    const stored = this.s.insert(side, kg, fnv1a(key), key, ts, id, payload, joined, expireAt);
    if (stored) {
      this.live.set(identOf(side, kg, key, ts, id), {
        e: { side, keyGroup: kg, key: [...key], ts: ts + 0, id: [...id], payload: [...payload], joined }, expireAt,
      });
    }
    return stored;
  }

  has(side: Side, kg: number, key: Uint8Array, ts: number, id: Uint8Array): boolean {
    return this.live.has(identOf(side, kg, key, ts, id));
  }

  markJoined(side: Side, kg: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.s.batch(() => this.s.markJoined(side, kg, fnv1a(key), key, ts, id));
    const m = this.live.get(identOf(side, kg, key, ts, id));
    if (m) m.e.joined = true;
  }

  /** Entries of one side/key still expected, in (ts, id) order. */
  expected(side: Side, kg: number, key: Uint8Array): Snap[] {
    return [...this.live.values()].map((m) => m.e)
      .filter((e) => e.side === side && e.keyGroup === kg && cmpBytes(e.key, key) === 0).sort(cmpSnap);
  }

  /**
   * expire(wm) in its own batch, with a callback: every reported entry was buffered, with its
   * contents, and expires before wm (never early); everything with wm > expireAt + G is gone.
   */
  expire(wm: number): Snap[] {
    const g = this.s.expiryGranularityMs;
    const out: Snap[] = [];
    const n = this.s.batch(() => this.s.expire(wm, (e) => { out.push(snap(e)); }));
    assert.equal(n, out.length, 'expire returns the number of entries it reported');
    for (const e of out) {
      const k = identOf(e.side, e.keyGroup, e.key, e.ts, e.id);
      const m = this.live.get(k);
      assert.ok(m !== undefined, `expire(${wm}) reported ${k}, which is not buffered`);
      assert.ok(m.expireAt < wm, `expire(${wm}) removed ${k} early (expireAt ${m.expireAt})`);
      assert.deepEqual(e, m.e, `expire(${wm}) reports ${k} with its contents`);
      this.live.delete(k);
    }
    for (const [k, m] of this.live) {
      assert.ok(!(wm > m.expireAt + g), `${k} (expireAt ${m.expireAt}) still buffered at watermark ${wm}, granularity ${g}`);
    }
    assert.equal(this.s.count(), this.live.size, `count after expire(${wm})`);
    return out;
  }
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
      // The duplicate did not register its expiry either: the original expires at 2000 (a store with
      // expiry granularity G may keep it until the watermark passes 2000 + G).
      assert.equal(expireAll(s, 2000).n, 0);
      assert.equal(expireAll(s, 2001 + s.expiryGranularityMs).n, 1);
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
      if (s.expiryGranularityMs > 0) return relaxedExpiry(s);
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
      if (s.expiryGranularityMs > 0) return relaxedFullEntries(s);
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
      if (s.expiryGranularityMs > 0) return relaxedMany(s);
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
      const gone = new Set<number>();
      for (const wm of wms) {
        const { n: got, out } = expireAll(s, wm);
        total += got;
        for (const e of out) {
          const i = Number(String.fromCharCode(...e.payload).slice(1));
          assert.ok(tsOf(i) * 10 + 5 < wm, `entry ${i} expired early at ${wm}`);
          assert.equal(e.joined, marked.has(i), `joined flag of ${i}`);
          gone.add(i);
        }
        for (let i = 0; i < n; i++) {
          if (wm > tsOf(i) * 10 + 5 + s.expiryGranularityMs) assert.ok(gone.has(i), `entry ${i} still buffered at ${wm}`);
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
      const g = s.expiryGranularityMs;
      const n = s.batch(() => s.expire(15));
      if (g === 0) {
        assert.equal(s.count(), 2);
        assert.ok(before - s.bytes() >= 100, 'expiring the 100-byte entry releases at least its payload');
      } else {
        // Only the entry expiring at 10 may go (the others expire at ≥ 20 > 15).
        assert.ok(n === 0 || n === 1, `expire(15) removed ${n}`);
        assert.equal(s.count(), 3 - n);
        if (n === 1) assert.ok(before - s.bytes() >= 100, 'expiring the 100-byte entry releases at least its payload');
        else assert.equal(s.bytes(), before);
      }
      assert.ok(s.bytes() >= 10_000);
      s.batch(() => s.expire(100 + g));
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
      // A store with coarse expiry gets the join's discipline: non-decreasing watermark, no insert below it.
      modelTest(s, 0x5eed1234, 20_000, s.expiryGranularityMs > 0);
    }));

    test('model-based: inserts below the watermark and watermark regressions stay correct', () => withStore((s) => {
      modelTest(s, 0xbadc0de, 5_000, false);
    }));
  });
}

// ---- relaxed expiry (expiryGranularityMs > 0) ----

const enc2 = new TextEncoder();
const bb = (x: string): Uint8Array => enc2.encode(x);

/** 'expire removes exactly…' for a coarse store: the same entries and watermarks, checked by Tracked. */
function relaxedExpiry(s: StateStore): void {
  const t = new Tracked(s);
  const k = bb('k');
  s.batch(() => {
    t.insert(0, 0, k, 1, bb('a'), bb('A'), false, 100);
    t.insert(1, 0, k, 2, bb('b'), bb('B'), false, 200);
    t.insert(0, 0, k, 3, bb('c'), bb('C'), false, 200);
    t.insert(0, 1, bb('other'), 4, bb('d'), bb('D'), false, 300);
    t.insert(1, 0, k, -5, bb('e'), bb('E'), false, -50);
  });
  const g = s.expiryGranularityMs;
  for (const wm of [-50, -49.5, 100, 100.5, 200, 201, 250, 301, 301 + g / 2, 301 + g, 301.5 + g, Infinity]) {
    t.expire(wm);
    for (const [side, kg, key] of [[0, 0, k], [1, 0, k], [0, 1, bb('other')]] as const) {
      const got: Snap[] = [];
      s.batch(() => s.probe(side, kg, fnv1a(key), key, -Infinity, Infinity, (e) => { got.push(snap(e)); }));
      assert.deepEqual(got, t.expected(side, kg, key), `side ${side} key group ${kg} after expire(${wm})`);
    }
  }
  assert.equal(s.count(), 0);
  assert.equal(s.bytes(), 0);
  // Without a callback too.
  s.batch(() => t.insert(0, 0, k, 1, bb('a'), bb('A'), false, 100));
  assert.equal(s.batch(() => s.expire(100)), 0);
  assert.equal(s.batch(() => s.expire(100.5 + g)), 1);
  assert.equal(s.count(), 0);
}

/** 'expire passes full entries…' for a coarse store. */
function relaxedFullEntries(s: StateStore): void {
  const t = new Tracked(s);
  s.batch(() => {
    for (let i = 0; i < 50; i++) {
      const key = bb(`key${i % 7}`);
      const payload = Uint8Array.from({ length: i * 13 }, (_, j) => (i + j) & 255);
      t.insert((i % 2) as Side, i % 3, key, i * 10 - 200, bb(`id${i}`), payload, i % 5 === 0, 1000 + (i % 4));
    }
  });
  t.markJoined(1, 0, bb('key3'), 30 - 200, bb('id3'));
  t.expire(1002);
  // An entry that went can be inserted again; one still buffered is a duplicate.
  const wasGone = !t.has(0, 0, bb('key0'), -200, bb('id0'));
  assert.equal(s.batch(() => t.insert(0, 0, bb('key0'), -200, bb('id0'), bb('again'), false, 5000)), wasGone);
  t.expire(1004 + s.expiryGranularityMs);
  assert.equal(s.count(), wasGone ? 1 : 0);
  t.expire(Infinity);
  assert.equal(s.count(), 0);
}

/** 'expiring many entries at once…' for a coarse store. */
function relaxedMany(s: StateStore): void {
  const t = new Tracked(s);
  s.batch(() => {
    for (let i = 0; i < 5000; i++) {
      t.insert((i & 1) as Side, i % 4, bb(`k${i % 100}`), i, bb(`${i}`), bb('x'), false, i % 10 === 0 ? 10_000 : i);
    }
  });
  assert.equal(s.count(), 5000);
  for (const wm of [5000, 5000 + s.expiryGranularityMs / 2, 5000 + s.expiryGranularityMs]) {
    t.expire(wm);
    const got: Snap[] = [];
    s.batch(() => s.probe(0, 0, fnv1a(bb('k0')), bb('k0'), -Infinity, Infinity, (e) => { got.push(snap(e)); }));
    assert.deepEqual(got, t.expected(0, 0, bb('k0')));
  }
  t.expire(Infinity);
  assert.equal(s.count(), 0);
}

// ---- reference model ----

interface ModelEntry extends Snap {
  expireAt: number;
}

/**
 * Random operations against a model. With `discipline` (what the join guarantees) the watermark
 * never decreases and no insert has ts below it. Expiry is checked exactly for an exact store and by
 * the relaxed rule otherwise (the model then follows what the store actually removed).
 */
function modelTest(s: StateStore, seed: number, ops: number, discipline: boolean): void {
  const g = s.expiryGranularityMs;
  let lastWm = -Infinity;
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const keys = [u(1), u(1, 0), u(1, 0, 0), u(2), u(255), b('ab'), b('abc'), u(), b('k1'), b('k12'), b('k2'), u(0)];
  const groups = [0, 7, 4095];
  const model = new Map<string, ModelEntry>();
  const ident = (side: number, kg: number, key: ArrayLike<number>, ts: number, id: ArrayLike<number>) =>
    `${side}|${kg}|${Array.from(key).join(',')}|${ts + 0}|${Array.from(id).join(',')}`;
  // Entries per (side, key group, key), so a probe's expectation does not scan the whole model.
  const byKey = new Map<string, Set<ModelEntry>>();
  const keyOf = (side: number, kg: number, key: ArrayLike<number>) => `${side}|${kg}|${Array.from(key).join(',')}`;
  const add = (k: string, e: ModelEntry) => {
    model.set(k, e);
    const pk = keyOf(e.side, e.keyGroup, e.key);
    let set = byKey.get(pk);
    if (set === undefined) byKey.set(pk, set = new Set());
    set.add(e);
  };
  const remove = (e: ModelEntry) => {
    model.delete(ident(e.side, e.keyGroup, e.key, e.ts, e.id));
    byKey.get(keyOf(e.side, e.keyGroup, e.key))!.delete(e);
  };
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
          let ts = now - 40 + int(60) + (rand() < 0.05 ? -0.5 : 0);
          if (discipline && ts < lastWm) ts += Math.ceil(lastWm - ts);
          const id = b(`e${int(12)}`);
          const payload = Uint8Array.from({ length: int(40) }, () => int(256));
          const joined = rand() < 0.1;
          const expireAt = ts + int(80);
          const k = ident(side, kg, key, ts, id);
          const want = !model.has(k);
          const got = s.insert(side, kg, fnv1a(key), key, ts, id, payload, joined, expireAt);
          assert.equal(got, want, `insert result, ${where()}`);
          if (want) {
            add(k, { side, keyGroup: kg, key: [...key], ts, id: [...id], payload: [...payload], joined, expireAt });
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
          const want = [...(byKey.get(keyOf(side, kg, key)) ?? [])]
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
          let wm = rand() < 0.1 ? now - 100 : now - int(20);
          if (discipline && wm < lastWm) wm = lastWm;
          if (wm > lastWm) lastWm = wm;
          if (g > 0) {
            // Relaxed: what goes is up to the store, within [expireAt < wm] ⊇ removed ⊇ [expireAt + g < wm].
            const callback = rand() >= 0.3;
            const got: Snap[] = [];
            const n = callback ? s.expire(wm, (e) => { got.push(snap(e)); }) : s.expire(wm);
            let removed: ModelEntry[];
            if (callback) {
              removed = got.map((e) => {
                const m = model.get(ident(e.side, e.keyGroup, e.key, e.ts, e.id));
                assert.ok(m !== undefined, `expire(${wm}) reported an entry that is not buffered, ${where()}`);
                const { expireAt: _x, ...rest } = m;
                assert.deepEqual(e, rest, `expire(${wm}) entry contents, ${where()}`);
                return m;
              });
            } else {
              // Which ones went: probe each (side, key group, key) with entries that were allowed to go.
              removed = [];
              for (const set of byKey.values()) {
                const candidates = [...set].filter((e) => e.expireAt < wm);
                if (candidates.length === 0) continue;
                const { side: cs, keyGroup: ckg } = candidates[0];
                const key = Uint8Array.from(candidates[0].key);
                const seen = new Set<string>();
                s.probe(cs, ckg, fnv1a(key), key, -Infinity, Infinity, (x) => { seen.add(`${x.ts}|${x.id.join(',')}`); });
                for (const e of candidates) if (!seen.has(`${e.ts}|${e.id.join(',')}`)) removed.push(e);
              }
            }
            assert.equal(n, removed.length, `expire(${wm}) count, ${where()}`);
            for (const e of removed) if (!(e.expireAt < wm)) assert.fail(`expire(${wm}) removed an entry expiring at ${e.expireAt}, ${where()}`);
            const gone = new Set(removed);
            for (const e of model.values()) {
              if (!gone.has(e) && wm > e.expireAt + g) assert.fail(`entry expiring at ${e.expireAt} kept at ${wm}, ${where()}`);
            }
            for (const e of removed) remove(e);
          } else if (rand() < 0.3) {
            const want = [...model.values()].filter((e) => e.expireAt < wm);
            const n = s.expire(wm);
            assert.equal(n, want.length, `expire(${wm}) count without callback, ${where()}`);
            for (const e of want) remove(e);
          } else {
            const want = [...model.values()].filter((e) => e.expireAt < wm);
            const got: Snap[] = [];
            const n = s.expire(wm, (e) => { got.push(snap(e)); });
            assert.equal(n, want.length, `expire(${wm}) count, ${where()}`);
            assert.deepEqual(got.sort(cmpSnap), want.map(({ expireAt: _x, ...rest }) => rest).sort(cmpSnap),
              `expire(${wm}) entries, ${where()}`);
            for (const e of want) remove(e);
          }
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
