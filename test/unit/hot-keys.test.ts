import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HotKeys, HOT_PAIRS_PER_EVENT } from '../../src/join/hot-keys.js';
import { IntervalJoin, type JoinEmitter } from '../../src/join/join.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import { murmur3 } from '../../src/router/partitioner.js';
import type { Side } from '../../src/state/store.js';

function setup(maxEntries: number, lower = -3_600_000, upper = 3_600_000) {
  const store = new MemoryStore();
  const warns: Array<Record<string, unknown>> = [];
  const expireAt = (side: Side, ts: number) => (side === 0 ? Math.max(ts, ts + upper) : Math.max(ts, ts - lower));
  const hot = new HotKeys(store, maxEntries, Math.max(upper, -lower) + 5000, expireAt, (msg, f) => warns.push({ msg, ...f }));
  let pairs = 0;
  const em: JoinEmitter = { pair: () => { pairs++; }, unmatched: () => {} };
  const diverted: string[] = [];
  const join = new IntervalJoin(store, 'inner', lower, upper, em, hot, (side, key, _ts, _p, reason) => diverted.push(`${side} ${Buffer.from(key)} ${reason}`));
  const ev = (side: Side, key: string, ts: number, id: string) => {
    const k = Buffer.from(key);
    return store.batch(() => join.onEvent(side, 1, murmur3(k, 0, k.length), k, ts, Buffer.from(id), Buffer.from('{}')));
  };
  return { store, hot, join, ev, warns, diverted, pairs: () => pairs };
}

test('an event with many pairs names its key (warning and report), others do not', () => {
  const t = setup(0);
  for (let i = 0; i < HOT_PAIRS_PER_EVENT; i++) t.ev(0, '["hot",1]', 1000 + i, `l${i}`);
  for (let i = 0; i < 50; i++) t.ev(0, `[${i},2]`, 1000 + i, `n${i}`);
  t.ev(1, '[3,2]', 2000, 'r-normal');
  t.ev(1, '["hot",1]', 2000, 'r-hot');
  assert.equal(t.pairs(), HOT_PAIRS_PER_EVENT + 1);
  const rep = t.hot.report();
  assert.deepEqual(rep.byPairsPerEvent, [{ key: '["hot",1]', maxPairsPerEvent: HOT_PAIRS_PER_EVENT, hotEvents: 1, pairs: HOT_PAIRS_PER_EVENT }]);
  assert.ok(t.warns.some((w) => w.key === '["hot",1]' && w.pairsPerEvent === HOT_PAIRS_PER_EVENT), JSON.stringify(t.warns));
  assert.ok(t.warns.some((w) => w.key === '["hot",1]' && w.side === 'left' && w.entries === 10_000), JSON.stringify(t.warns));
  assert.equal(rep.byEntries[0].key, '["hot",1]');
  assert.equal(rep.byEntries[0].entries, HOT_PAIRS_PER_EVENT);
});

test('the guard stays exact under heavy traffic of other keys (sketch collisions) and counts expiry', () => {
  const N = 1000;
  const t = setup(N, 0, 10_000);
  let ts = 0, id = 0, wm = -Infinity;
  const hotTs: number[] = [];
  // 300,000 events over 100,000 other keys (every sketch cell is hit many times), one hot key at 2%.
  for (let i = 0; i < 300_000; i++) {
    ts += 1;
    if (i % 50 === 0) { t.ev(0, '["hot",9]', ts, `h${id++}`); hotTs.push(ts); }
    else t.ev((i & 1) as Side, `[${(i * 7919) % 100_000},1]`, ts, `e${id++}`);
    if (i % 1000 === 999) { wm = ts - 100; t.store.batch(() => t.join.onWatermark(wm)); }
  }
  // The hot key's left entries live 10 s of event time (10,000 events here, 200 of them hot): never at the cap.
  assert.deepEqual(t.diverted, []);
  const before = t.hot.diverted[0];
  for (let i = 0; i < 1500; i++) t.ev(0, '["hot",9]', ++ts, `x${i}`);
  const held = t.hot.report().byEntries.find((e) => e.key === '["hot",9]' && e.side === 'left')!;
  assert.equal(held.entries, N);
  const live = hotTs.filter((x) => x + 10_000 >= wm).length; // what can still join at the last watermark
  assert.ok(live > 150 && live < 250);
  assert.equal(t.hot.diverted[0] - before, 1500 - (N - live));
  assert.match(t.diverted[0], /^0 \["hot",9\] key \["hot",9\] holds 1000 entries on the left side \(--max-key-entries\)$/);
  // Expiry frees room: once the watermark passes, the key takes events again.
  t.store.batch(() => t.join.onWatermark(ts + 20_000));
  assert.equal(t.ev(0, '["hot",9]', ts + 20_001, 'after'), true);
  assert.equal(t.hot.report().byEntries.find((e) => e.key === '["hot",9]' && e.side === 'left')!.entries, 1);
});
