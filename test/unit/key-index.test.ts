/**
 * KeyIndex against a plain model (a Map of hash → per side the sorted set of slices): random adds
 * and removes over few and many keys, colliding positions, slices far apart and beyond int32, and
 * enough keys for the table to grow, shrink and resize while chains are edited. After every step
 * batch, each model key's chains are walked both ways (newest → oldest through older(), and back
 * through newer()) and must list exactly the model's slices.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NONE } from '../../src/state/bucket-format.js';
import { KeyIndex } from '../../src/state/key-index.js';
import type { Side } from '../../src/state/store.js';

/** Per hash and side: slice → the slot hint last given for it. */
type Model = Map<number, [Map<number, number>, Map<number, number>]>;

function check(ix: KeyIndex, model: Model): void {
  let keys = 0, occ = 0;
  for (const [h, sides] of model) {
    if (sides[0].size + sides[1].size === 0) continue;
    keys++;
    for (const side of [0, 1] as Side[]) {
      const want = [...sides[side].keys()].sort((a, b) => b - a); // newest first
      occ += want.length;
      const got: number[] = [];
      const slots: number[] = [];
      let last = NONE;
      for (let o = ix.head(h, side); o !== NONE; o = ix.older(o)) { got.push(ix.sliceOf(o)); slots.push(ix.slotOf(o)); last = o; }
      assert.deepEqual(got, want, `hash ${h} side ${side}, newest to oldest`);
      assert.deepEqual(slots, want.map((t) => sides[side].get(t)), `hash ${h} side ${side}: slot hints`);
      const back: number[] = [];
      for (let o = last; o !== NONE; o = ix.newer(o)) back.push(ix.sliceOf(o));
      assert.deepEqual(back, [...want].reverse(), `hash ${h} side ${side}, oldest to newest`);
      const pos = ix.find(h);
      assert.equal(pos === NONE ? NONE : ix.newest(pos, side), ix.head(h, side));
    }
  }
  assert.equal(ix.size(), keys, 'keys');
  assert.equal(ix.occurrences(), occ, 'occurrences');
}

function rng(seed: number): () => number {
  let x = seed;
  return () => { x = (Math.imul(x, 1103515245) + 12345) | 0; return (x >>> 8) / (1 << 24); };
}

function run(seed: number, nKeys: number, slices: number[], steps: number, every: number): void {
  const r = rng(seed);
  const ix = new KeyIndex();
  const model: Model = new Map();
  // Hashes that share their home position in small tables (multiples of a power of two) and spread ones.
  const hashes = Array.from({ length: nKeys }, (_, i) => (i % 3 === 0 ? i << 20 : Math.imul(i + seed, 0x27d4eb2d)) | 0);
  for (let step = 1; step <= steps; step++) {
    const h = hashes[Math.floor(r() * nKeys)];
    const side = (r() < 0.5 ? 0 : 1) as Side;
    const t = slices[Math.floor(r() * slices.length)];
    let m = model.get(h);
    if (m === undefined) model.set(h, m = [new Map(), new Map()]);
    if (r() < 0.55) { ix.add(h, side, t, step); m[side].set(t, step); } else { ix.remove(h, side, t); m[side].delete(t); }
    if (step % every === 0) check(ix, model);
  }
  // Empty it: every key and its table go, then the index is reusable.
  for (const [h, sides] of model) for (const side of [0, 1] as Side[]) for (const t of sides[side].keys()) ix.remove(h, side, t);
  model.clear();
  check(ix, model);
  assert.equal(ix.size(), 0);
  ix.add(5, 1, 3);
  assert.equal(ix.sliceOf(ix.head(5, 1)), 3);
}

describe('KeyIndex keeps exact chains', () => {
  test('few keys, long chains, slices in any order', () => run(1, 40, [0, 1, 2, 3, 5, 8, 13, -7, 2 ** 40, -(2 ** 33)], 20_000, 500));
  test('many keys: the table grows, shrinks and resizes while chains change', () => run(2, 30_000, [10, 11, 12, 13], 300_000, 60_000));
  test('adds in slice order, removes oldest first, as the store does', () => {
    const ix = new KeyIndex();
    const model: Model = new Map();
    const r = rng(3);
    for (let t = 0; t < 60; t++) {
      for (let i = 0; i < 3000; i++) {
        const h = Math.floor(r() * 5000) | 0, side = (i & 1) as Side;
        ix.add(h, side, t, i);
        let m = model.get(h);
        if (m === undefined) model.set(h, m = [new Map(), new Map()]);
        m[side].set(t, i); // a later add of the same occurrence replaces its hint
      }
      if (t >= 10) {
        for (const [h, m] of model) for (const side of [0, 1] as Side[]) if (m[side].delete(t - 10)) ix.remove(h, side, t - 10);
      }
      if (t % 10 === 9) check(ix, model);
    }
  });
});
