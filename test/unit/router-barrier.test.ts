// Checkpoint barriers in the router (src/router/router.ts): requests at the end of input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonExtractor } from '../../src/codec/json.js';
import { BARRIER_ID, FrameKind, WM_VALUE } from '../../src/ring/frame.js';
import { createRingBuffer, FrameSpill, RingConsumer } from '../../src/ring/ring.js';
import type { InflightStream } from '../../src/router/inflight.js';
import { Router } from '../../src/router/router.js';
import type { PartitionRef, RecordBatch, Source } from '../../src/source/source.js';

class EmptySource implements Source {
  readonly name = 'empty';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  async next(): Promise<RecordBatch | null> { return null; }
  async close(): Promise<void> {}
}

const ex = () => new JsonExtractor(['k'], 'ts', 'id');
const extractors = { 0: { json: ex, flatbuffers: ex }, 1: { json: ex, flatbuffers: ex } };
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms); })]);
  } finally { clearTimeout(t); }
}

/** Frame kinds (and barrier ids) in a ring, in order. */
function frames(sab: SharedArrayBuffer): string[] {
  const c = new RingConsumer(sab);
  const out: string[] = [];
  for (let off = c.next(); off >= 0; off = c.next()) {
    const k = c.u8[off];
    out.push(k === FrameKind.Barrier ? `barrier ${c.dv.getFloat64(off + BARRIER_ID, true)}` : k === FrameKind.End ? 'end' : k === FrameKind.Watermark ? 'wm' : `kind ${k}`);
  }
  c.release();
  return out;
}

test('a barrier requested while beforeEnd waits (a checkpoint queued behind the one in flight) goes into the rings; no hang', async () => {
  const sabs = [createRingBuffer(1 << 16), createRingBuffer(1 << 16)];
  const router = new Router(sabs, [new EmptySource()], extractors, 0, 200, () => {});
  // Like the engine's beforeEnd: wait for the checkpoints in flight (here one that asks for its
  // barrier only now), then ask for the final one.
  const run = router.run(async () => {
    const queued = await router.barrier(1);
    assert.equal(queued.id, 1);
    void router.barrier(2);
  });
  await within(run, 3000, 'router.run');
  for (const sab of sabs) assert.deepEqual(frames(sab).filter((f) => f !== 'wm'), ['barrier 1', 'barrier 2', 'end']);
  await assert.rejects(router.barrier(3), /input has ended/);
});

/** A stop checkpoint's in-flight frames (as src/router/inflight.ts reads them): numbers are events (key group = id), `w:N` watermarks. */
function inflight(items: Array<number | string>): InflightStream {
  const s = new FrameSpill();
  for (const it of items) {
    if (typeof it === 'number') {
      const off = s.reserve(40);
      s.u8[off] = FrameKind.Event;
      s.dv.setUint16(off + 2, it, true);
      s.dv.setUint16(off + 32, 1, true);
    } else {
      const off = s.reserve(16);
      s.u8[off] = FrameKind.Watermark;
      s.dv.setFloat64(off + WM_VALUE, Number(it.slice(2)), true);
    }
    s.commit();
  }
  return { bytes: s.bytes().slice() };
}

/** The watermark values a ring carries, in order (it reads them out). */
function watermarks(sab: SharedArrayBuffer): number[] {
  const c = new RingConsumer(sab);
  const out: number[] = [];
  for (let off = c.next(); off >= 0; off = c.next()) if (c.u8[off] === FrameKind.Watermark) out.push(c.dv.getFloat64(off + WM_VALUE, true));
  c.release();
  return out;
}

test('in-flight watermarks replayed on resume never pass the restored watermark', async () => {
  // A group member resuming its own stop checkpoint (frames for the partitions it owned then)
  // together with partitions taken from another member's checkpoint restores the lower watermark
  // of the two: its frames' watermark 500 would expire the state taken over (old behaviour).
  const low = [createRingBuffer(1 << 16)];
  const r1 = new Router(low, [new EmptySource()], extractors, 0, 200, () => {});
  r1.restore(100, []);
  r1.setInflight([inflight([1, 'w:50', 2, 'w:500', 3])], true);
  await within(r1.run(), 3000, 'router.run');
  const got = watermarks(low[0]).filter(Number.isFinite); // the last one, Infinity, ends the input
  assert.deepEqual(got, [50, 100, 100]);
  // Its own stop checkpoint alone: the restored watermark is at or past the frames', nothing changes.
  const own = [createRingBuffer(1 << 16)];
  const r2 = new Router(own, [new EmptySource()], extractors, 0, 200, () => {});
  r2.restore(1000, []);
  r2.setInflight([inflight([1, 'w:50', 2, 'w:500', 3])], true);
  await within(r2.run(), 3000, 'router.run');
  assert.deepEqual(watermarks(own[0]).slice(0, 3), [50, 500, 1000]);
});

/** An input with nothing to read (an idle Kafka topic): next() waits until interrupted. */
class IdleSource implements Source {
  readonly name = 'idle';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  private wake: (() => void) | null = null;
  next(): Promise<RecordBatch | null> { return new Promise((r) => { this.wake = () => r(null); }); }
  interrupt(): void { this.wake?.(); }
  async close(): Promise<void> {}
}

test('a barrier requested just before the router asks an idle input for its next batch still goes in; no hang', async () => {
  // The router yields to the event loop before it asks a source for its next batch; a barrier
  // requested in that turn found no wait to wake and sat there while the input stayed idle (a
  // group member with nothing left to read took no checkpoint until it was stopped).
  const sabs = [createRingBuffer(1 << 16), createRingBuffer(1 << 16)];
  const router = new Router(sabs, [new IdleSource()], extractors, 0, 200, () => {});
  const run = router.run();
  const req = await new Promise<{ cut: Promise<unknown> }>((r) => setImmediate(() => r({ cut: router.barrier(1) })));
  await within(req.cut, 3000, 'barrier 1');
  router.stop();
  await within(run, 3000, 'router.run');
  for (const sab of sabs) assert.deepEqual(frames(sab).filter((f) => f !== 'wm'), ['barrier 1', 'end']);
});

/** Hands out pushed batches; its checkpoint position counts the records handed out (as the Kafka and file sources do). */
class CountingSource implements Source {
  readonly name = 'counting';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  handedOut = 0;
  private queue: RecordBatch[] = [];
  private wake: (() => void) | null = null;
  private stopped = false;
  push(ids: string[]): void {
    const lines = ids.map((id, i) => JSON.stringify({ k: 1, ts: 1000 + i, id }) + '\n');
    const offsets = new Uint32Array(lines.length + 1);
    let o = 0;
    lines.forEach((l, i) => { offsets[i] = o; o += Buffer.byteLength(l); });
    offsets[lines.length] = o;
    this.queue.push({ side: 0, partition: 0, format: 'json', data: Buffer.from(lines.join('')), offsets, count: lines.length, lineDelimited: true, firstPosition: 1, origin: 'counting' });
    this.wake?.();
  }
  async next(): Promise<RecordBatch | null> {
    for (;;) {
      if (this.stopped) return null;
      const b = this.queue.shift();
      if (b) { this.handedOut += b.count; return b; }
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
  }
  interrupt(): void { this.stopped = true; this.wake?.(); }
  checkpointPosition() { return { kind: 'gen' as const, name: this.name, gen: { delivered: [this.handedOut, 0] as [number, number], baseMs: 0 } }; }
  async close(): Promise<void> {}
}

/** Events before the first barrier in a ring, and whether a barrier was there at all. */
function eventsBeforeBarrier(sab: SharedArrayBuffer): { events: number; barrier: boolean } {
  const c = new RingConsumer(sab);
  let events = 0, barrier = false;
  for (let off = c.next(); off >= 0; off = c.next()) {
    const k = c.u8[off];
    if (k === FrameKind.Barrier) { barrier = true; break; }
    if (k === FrameKind.Event) events++;
  }
  c.release();
  return { events, barrier };
}

test('a barrier requested while a batch it already counts waits behind a hold goes in after that batch (no checkpoint past unrouted records)', async () => {
  // The router took a batch from its source (which counts it in its position), then found routing
  // held (an output hold, or POST /pause) and waits with the batch in hand. Barriers still go in
  // while held, so that the checkpoints a full output may need can commit; one that went in before
  // the held batch named a position past records the workers had not seen: a restore from it
  // skipped them.
  const sabs = [createRingBuffer(1 << 16)];
  const src = new CountingSource();
  const router = new Router(sabs, [src], extractors, 0, 200, () => {});
  const run = router.run();
  await new Promise((r) => setTimeout(r, 20)); // the router now waits in the source
  router.gate.pause();
  src.push(['a', 'b', 'c']);
  await new Promise((r) => setTimeout(r, 20)); // it took the batch and holds it
  const cut = await within(router.barrier(1), 3000, 'barrier 1');
  const delivered = cut.positions[0].gen!.delivered[0];
  const seen = eventsBeforeBarrier(sabs[0]);
  assert.ok(seen.barrier, 'the barrier is in the ring');
  assert.equal(seen.events, delivered, `the cut counts ${delivered} records handed out; the ring has ${seen.events} events before the barrier`);
  router.gate.resume();
  router.stop();
  await within(run, 3000, 'router.run');
});
