import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Aligner } from '../../src/router/align.js';
import { WatermarkTracker } from '../../src/router/watermarks.js';
import type { PartitionRef, Source } from '../../src/source/source.js';

const L = { side: 0 as const, partition: 0 }, R = { side: 1 as const, partition: 0 };

/** A file-like source: one partition, no per-partition pause. */
function fileLike(p: PartitionRef): Source {
  return { name: `f${p.side}`, partitions: [p], next: async () => null, close: async () => {} };
}

/** A Kafka-like source: per-partition align() calls recorded, and which partitions still have records. */
function multi(parts: PartitionRef[], unread: () => PartitionRef[]): Source & { aligned: Map<string, boolean> } {
  const aligned = new Map<string, boolean>();
  return { name: 'k', partitions: parts, next: async () => null, close: async () => {}, unreadPartitions: unread, align: (p, paused) => { aligned.set(`${p.side}:${p.partition}`, paused); }, aligned };
}

test('a partition more than the drift ahead of the slowest is paused, and released when that one catches up or ends', () => {
  const l = fileLike(L), r = fileLike(R);
  const t = new WatermarkTracker([L, R], 0, 10_000, 0);
  const a = new Aligner(t, [l, r], 60_000);
  a.update(1);
  assert.ok(a.readable(l) && a.readable(r), 'nothing read yet: both may be read');
  t.observe(t.slot(L), 3 * 3_600_000);
  a.update(1);
  assert.ok(!a.readable(l), 'left is ahead of a right that has delivered nothing');
  assert.ok(a.readable(r), 'the slowest is never paused');
  t.observe(t.slot(R), 3 * 3_600_000 - 60_000);
  a.update(2);
  assert.ok(!a.readable(l), 'at the drift: a paused partition waits until it is within half of it');
  t.observe(t.slot(R), 3 * 3_600_000 - 30_000);
  a.update(2);
  assert.ok(a.readable(l), 'within half the drift again');
  t.observe(t.slot(L), 5 * 3_600_000);
  a.update(3);
  assert.ok(!a.readable(l));
  t.end(t.slot(R));
  a.update(4);
  assert.ok(a.readable(l), 'a finished input never holds the others back');
  assert.equal(a.pauses, 2);
});

test('an idle partition does not hold the others back; a paused one is kept from turning idle', () => {
  const l = fileLike(L), r = fileLike(R);
  const t = new WatermarkTracker([L, R], 0, 1_000, 0);
  const a = new Aligner(t, [l, r], 60_000);
  t.observe(t.slot(L), 1_000_000); t.touch(t.slot(L), 0);
  t.observe(t.slot(R), 0); t.touch(t.slot(R), 0);
  a.update(10);
  assert.ok(!a.readable(l));
  a.touchPaused(900);
  a.update(1_500); // right silent 1.5 s > idle timeout; left was touched while paused
  assert.ok(a.readable(l), 'right went idle: left goes on');
  assert.ok(t.holdsWatermark(t.slot(L), 1_500), 'the paused left did not turn idle');
});

test('Kafka: partitions are paused one by one; a partition at its end does not hold the others back', () => {
  const parts = [L, { side: 0 as const, partition: 1 }, R];
  let unread = parts;
  const k = multi(parts, () => unread);
  const t = new WatermarkTracker(parts, 0, 60_000, 0);
  const a = new Aligner(t, [k], 1_000);
  t.observe(t.slot(parts[0]), 10_000); t.observe(t.slot(parts[1]), 0); t.observe(t.slot(parts[2]), 5_000);
  a.update(1);
  assert.deepEqual([...k.aligned], [['0:0', true], ['1:0', true]]);
  assert.ok(a.readable(k), 'partition 0:1 is read');
  unread = [parts[0], parts[2]]; // 0:1 reached its end: waiting for it would not bring its records sooner
  a.update(2);
  assert.deepEqual([...k.aligned], [['0:0', true], ['1:0', false]]);
  a.releaseAll();
  assert.equal(k.aligned.get('0:0'), false);
});

test('drift 0 turns alignment off', () => {
  const l = fileLike(L), r = fileLike(R);
  const t = new WatermarkTracker([L, R], 0, 1_000, 0);
  const a = new Aligner(t, [l, r], 0);
  t.observe(t.slot(L), 1e12);
  a.update(1);
  assert.ok(a.readable(l) && !a.enabled);
});
