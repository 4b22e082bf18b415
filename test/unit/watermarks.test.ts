import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatermarkTracker } from '../../src/router/watermarks.js';

const parts = [{ side: 0 as const, partition: 0 }, { side: 1 as const, partition: 0 }];

test('watermark is the minimum over partitions of max ts − maxDelay, and waits for silent partitions', () => {
  const w = new WatermarkTracker(parts, 100, 10_000, 0);
  const l = w.slot(parts[0]), r = w.slot(parts[1]);
  w.observe(l, 1000);
  assert.equal(w.current(1), -Infinity, 'right has not spoken yet');
  w.observe(r, 700);
  assert.equal(w.current(2), 600);
  w.observe(r, 650); // out of order: max unchanged
  assert.equal(w.current(3), 600);
  w.observe(r, 2000);
  assert.equal(w.current(4), 900);
});

test('an idle partition stops holding the watermark back; all idle keeps it', () => {
  const w = new WatermarkTracker(parts, 0, 1000, 0);
  const l = w.slot(parts[0]), r = w.slot(parts[1]);
  w.observe(l, 500); w.touch(l, 0);
  w.observe(r, 100); w.touch(r, 0);
  assert.equal(w.current(10), 100);
  w.touch(l, 1500); w.observe(l, 800);
  assert.equal(w.current(1500), 800, 'right idle since 0');
  assert.equal(w.current(5000), 800, 'everything idle: stays');
});

test('never decreases; all partitions ended gives +∞', () => {
  const w = new WatermarkTracker(parts, 0, 1000, 0);
  const l = w.slot(parts[0]), r = w.slot(parts[1]);
  w.observe(l, 500); w.observe(r, 500);
  assert.equal(w.current(0), 500);
  w.touch(r, 0);
  w.end(l);
  assert.equal(w.current(0), 500);
  w.end(r);
  assert.equal(w.current(0), Infinity);
  assert.throws(() => w.slot({ side: 0, partition: 9 }));
});
