import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createRingBuffer, RingConsumer, RingProducer, FrameSpill, forEachFrame, maxFrameBytesFor, unreadFrames } from '../../src/ring/ring.js';

function put(p: RingProducer, payload: Uint8Array): boolean {
  const off = p.reserve(payload.length);
  if (off < 0) return false;
  p.u8.set(payload, off);
  p.commit();
  return true;
}

test('frames come out in order with their exact bytes, across many wraps', () => {
  const sab = createRingBuffer(1024);
  const p = new RingProducer(sab), c = new RingConsumer(sab);
  let written = 0, read = 0;
  for (let round = 0; round < 2000; round++) {
    for (let k = 0; k < 3; k++) {
      const len = (written * 7) % 61;
      const rec = new Uint8Array(len).fill(written & 0xff);
      if (!put(p, rec)) break;
      written++;
    }
    p.publish();
    let off: number;
    while ((off = c.next()) >= 0) {
      assert.equal(c.frameBytes, (read * 7) % 61);
      for (let i = 0; i < c.frameBytes; i++) assert.equal(c.u8[off + i], read & 0xff);
      assert.equal(off % 8, 0, 'frame bodies are 8-aligned');
      read++;
    }
    c.release();
  }
  assert.equal(read, written);
  assert.ok(written > 5000);
});

test('unpublished frames are invisible; a full ring refuses until released', () => {
  const sab = createRingBuffer(1024);
  const p = new RingProducer(sab), c = new RingConsumer(sab);
  assert.ok(put(p, new Uint8Array(100)));
  assert.equal(c.next(), -1, 'not yet published');
  p.publish();
  assert.ok(c.next() >= 0);
  let n = 1;
  while (put(p, new Uint8Array(100))) n++;
  assert.ok(n >= 8 && n <= 10, `fits ${n} frames of 112 bytes in 1 KiB`);
  p.publish();
  assert.ok(!put(p, new Uint8Array(100)), 'still full: consumer read but did not release');
  c.release();
  assert.ok(put(p, new Uint8Array(100)), 'space after release');
  assert.throws(() => p.reserve(1024), /exceeds/);
});

test('stress across real threads: every record arrives once, in order', async () => {
  const sab = createRingBuffer(64 * 1024);
  const total = 2_000_000;
  const w = new Worker(new URL('./ring-stress-consumer.js', import.meta.url), { workerData: { sab, total } });
  const result = new Promise<{ count: number; errors: number; sum: number }>((resolve, reject) => {
    w.on('message', resolve);
    w.on('error', reject);
  });
  const p = new RingProducer(sab);
  let expectedSum = 0;
  for (let i = 0; i < total; i++) {
    const len = 4 + (i % 29);
    let off = p.reserve(len);
    while (off < 0) {
      p.publish();
      await p.waitForSpace(20);
      off = p.reserve(len);
    }
    p.dv.setUint32(off, i, true);
    for (let k = 4; k < len; k++) p.u8[off + k] = (i + k) & 0xff;
    p.commit();
    expectedSum = (expectedSum + i) % 1_000_000_007;
    if ((i & 63) === 63) p.publish();
  }
  p.publish();
  const r = await result;
  await w.terminate();
  assert.equal(r.errors, 0);
  assert.equal(r.count, total);
  assert.equal(r.sum, expectedSum);
});

test('after a cut the unread frames are read out in order across the wrap, spilled ones after them', () => {
  const sab = createRingBuffer(1024);
  const p = new RingProducer(sab), c = new RingConsumer(sab);
  const put = (target: { reserve(n: number): number; commit(): void; u8: Uint8Array }, kind: number, seq: number, bytes: number) => {
    const off = target.reserve(bytes);
    assert.ok(off >= 0);
    target.u8[off] = kind;
    target.u8[off + 1] = seq;
    target.commit();
  };
  let seq = 0;
  for (let i = 0; i < 10; i++) put(p, 1, seq++, 60); // 10 × 72 bytes: the next ones wrap
  p.publish();
  for (let i = 0; i < 8; i++) assert.ok(c.next() >= 0);
  c.release();
  for (let i = 0; i < 6; i++) put(p, i === 2 ? 4 : 1, seq++, 60); // one barrier (kind 4) among them
  p.requestCut(7);
  assert.equal(c.cutId(), 7);
  const spill = new FrameSpill();
  put(spill, 1, seq++, 100);
  put(spill, 2, seq++, 8);
  const frames = unreadFrames(sab, (k) => k !== 4);
  const seen: number[] = [];
  for (const f of frames) forEachFrame(f, (off) => seen.push(f[off + 1]));
  forEachFrame(spill.bytes(), (off) => seen.push(spill.bytes()[off + 1]));
  assert.deepEqual(seen, [8, 9, 10, 11, 13, 14, 15, 16, 17]);
});

test('the frame limit of a --ring-size (what verify leaves out) is the limit of the ring made for it (what the router dead-letters)', () => {
  for (const size of [65_536, 1 << 20, 16 << 20, 1 << 30]) {
    assert.equal(maxFrameBytesFor(size), new RingProducer(createRingBuffer(size)).maxFrameBytes, `ring of ${size} bytes`);
  }
});
