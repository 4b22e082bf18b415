// Checkpoint barriers in the router (src/router/router.ts): requests at the end of input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonExtractor } from '../../src/codec/json.js';
import { BARRIER_ID, FrameKind } from '../../src/ring/frame.js';
import { createRingBuffer, RingConsumer } from '../../src/ring/ring.js';
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
