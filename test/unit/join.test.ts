import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JoinKind } from '../../src/config/schema.js';
import { IntervalJoin, type JoinEmitter } from '../../src/join/join.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import type { Side } from '../../src/state/store.js';

const text = (u: Uint8Array) => Buffer.from(u).toString('utf8');

/** Records what the join emits as comparable strings. */
function recorder(): JoinEmitter & { out: string[] } {
  const out: string[] = [];
  return {
    out,
    pair: (key, lid, lts, _l, rid, rts) => { out.push(`${text(key)} ${text(lid)}@${lts} ${text(rid)}@${rts}`); },
    unmatched: (side, key, id, ts) => { out.push(side === 0 ? `${text(key)} ${text(id)}@${ts} -` : `${text(key)} - ${text(id)}@${ts}`); },
  };
}

interface Ev { side: Side; key: string; ts: number; id: string }

function run(events: Ev[], kind: JoinKind, lower: number, upper: number, watermarks: Map<number, number> = new Map()) {
  const store = new MemoryStore();
  const em = recorder();
  const j = new IntervalJoin(store, kind, lower, upper, em);
  events.forEach((e, i) => {
    const b = (s: string) => Buffer.from(s);
    store.batch(() => j.onEvent(e.side, 1, e.key.length, b(e.key), e.ts, b(e.id), b('{}')));
    const wm = watermarks.get(i);
    if (wm !== undefined) store.batch(() => j.onWatermark(wm));
  });
  store.batch(() => j.onWatermark(Infinity));
  return { out: em.out.sort(), counters: j.counters, left: store.count() };
}

/** Brute force over the de-duplicated events. */
function expected(events: Ev[], kind: JoinKind, lower: number, upper: number): string[] {
  const seen = new Set<string>();
  const uniq = events.filter((e) => { const k = `${e.side}|${e.key}|${e.ts}|${e.id}`; return seen.has(k) ? false : (seen.add(k), true); });
  const L = uniq.filter((e) => e.side === 0), R = uniq.filter((e) => e.side === 1);
  const out: string[] = [];
  const matchedR = new Set<Ev>();
  for (const l of L) {
    let m = false;
    for (const r of R) {
      if (r.key === l.key && r.ts - l.ts >= lower && r.ts - l.ts <= upper) { m = true; matchedR.add(r); out.push(`${l.key} ${l.id}@${l.ts} ${r.id}@${r.ts}`); }
    }
    if (!m && (kind === 'left' || kind === 'full')) out.push(`${l.key} ${l.id}@${l.ts} -`);
  }
  if (kind === 'right' || kind === 'full') for (const r of R) if (!matchedR.has(r)) out.push(`${r.key} - ${r.id}@${r.ts}`);
  return out.sort();
}

test('bounds are inclusive on both ends, and negative lower bounds work', () => {
  const ev: Ev[] = [
    { side: 0, key: 'k', ts: 100, id: 'l' },
    { side: 1, key: 'k', ts: 90, id: 'r-10' },   // d = -10: in [-10, 20]
    { side: 1, key: 'k', ts: 89, id: 'r-11' },   // d = -11: out
    { side: 1, key: 'k', ts: 120, id: 'r+20' },  // d = 20: in
    { side: 1, key: 'k', ts: 121, id: 'r+21' },  // out
    { side: 1, key: 'other', ts: 100, id: 'x' }, // other key
  ];
  const r = run(ev, 'inner', -10, 20);
  assert.deepEqual(r.out, ['k l@100 r+20@120', 'k l@100 r-10@90']);
});

test('each pair is produced once whichever side arrives first', () => {
  const a: Ev[] = [{ side: 0, key: 'k', ts: 5, id: 'l' }, { side: 1, key: 'k', ts: 7, id: 'r' }];
  assert.deepEqual(run(a, 'inner', 0, 10).out, ['k l@5 r@7']);
  assert.deepEqual(run([...a].reverse(), 'inner', 0, 10).out, ['k l@5 r@7']);
});

test('duplicate deliveries are dropped and counted, not joined twice', () => {
  const ev: Ev[] = [
    { side: 0, key: 'k', ts: 5, id: 'l' }, { side: 1, key: 'k', ts: 7, id: 'r' },
    { side: 0, key: 'k', ts: 5, id: 'l' }, { side: 1, key: 'k', ts: 7, id: 'r' },
  ];
  const r = run(ev, 'inner', 0, 10);
  assert.deepEqual(r.out, ['k l@5 r@7']);
  assert.equal(r.counters.duplicates, 2);
});

test('outer kinds emit unmatched events once they expire, and only those', () => {
  const ev: Ev[] = [
    { side: 0, key: 'a', ts: 0, id: 'l1' }, { side: 1, key: 'a', ts: 3, id: 'r1' },
    { side: 0, key: 'b', ts: 0, id: 'l2' }, { side: 1, key: 'c', ts: 1, id: 'r2' },
  ];
  // l2 can no longer join once watermark > 0 + upper(5); r2 once watermark > 1 - lower(0).
  const left = run(ev, 'left', 0, 5, new Map([[3, 6]]));
  assert.deepEqual(left.out, ['a l1@0 r1@3', 'b l2@0 -']);
  assert.equal(left.counters.unmatchedLeft, 1);
  assert.deepEqual(run(ev, 'right', 0, 5).out, ['a l1@0 r1@3', 'c - r2@1']);
  assert.deepEqual(run(ev, 'full', 0, 5).out, ['a l1@0 r1@3', 'b l2@0 -', 'c - r2@1']);
  assert.equal(left.left, 0, 'end of input empties the state');
});

test('random streams with watermarks equal a brute-force join, every kind', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const kind of ['inner', 'left', 'right', 'full'] as JoinKind[]) {
    for (let round = 0; round < 5; round++) {
      const events: Ev[] = [];
      const wms = new Map<number, number>();
      let maxTs = 0;
      const maxDelay = 20;
      for (let i = 0; i < 400; i++) {
        const ts = Math.max(0, Math.floor(i * 2 + rnd() * maxDelay - maxDelay / 2));
        // only events not behind the watermark reach the join (the router diverts late ones)
        const wm = maxTs - maxDelay;
        if (ts < wm) continue;
        events.push({ side: rnd() < 0.6 ? 0 : 1, key: `k${Math.floor(rnd() * 6)}`, ts, id: `e${i}` });
        if (rnd() < 0.05) events.push({ ...events[events.length - 1] }); // duplicate delivery
        maxTs = Math.max(maxTs, ts);
        if (i % 10 === 9) wms.set(events.length - 1, maxTs - maxDelay);
      }
      const lower = Math.floor(rnd() * 30) - 15, upper = lower + Math.floor(rnd() * 40);
      const got = run(events, kind, lower, upper, wms);
      assert.deepEqual(got.out, expected(events, kind, lower, upper), `${kind} round ${round} [${lower}, ${upper}]`);
    }
  }
});

test('probeStore: an inner join probes it (a checkpointing worker\'s store under its logger); outer kinds probe the main store', () => {
  const b = (s: string) => Buffer.from(s);
  for (const kind of ['inner', 'left', 'right', 'full'] as const) {
    const store = new MemoryStore();
    const probes: string[] = [];
    // Both stores share the same entries; each counts the probes it gets.
    const counted = (name: string): MemoryStore => new Proxy(store, {
      get: (t, p) => (p === 'probe' ? (...a: Parameters<MemoryStore['probe']>) => { probes.push(name); return t.probe(...a); } : Reflect.get(t, p, t)),
    });
    const em = recorder();
    const j = new IntervalJoin(counted('main'), kind, -10, 10, em, null, null, counted('under'));
    store.batch(() => j.onEvent(0, 1, 1, b('k'), 100, b('l1'), b('{}')));
    store.batch(() => j.onEvent(1, 1, 1, b('k'), 105, b('r1'), b('{}')));
    assert.deepEqual(em.out, ['k l1@100 r1@105'], kind);
    assert.deepEqual(probes, kind === 'inner' ? ['under', 'under'] : ['main', 'main'], kind);
  }
});
