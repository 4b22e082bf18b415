import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonExtractor } from '../../src/codec/json.js';
import { Logger } from '../../src/core/log.js';
import { createRingBuffer } from '../../src/ring/ring.js';
import { PauseGate } from '../../src/router/pause.js';
import { Router, type Rejected } from '../../src/router/router.js';
import type { PartitionRef, RecordBatch, Source } from '../../src/source/source.js';
import type { Side } from '../../src/state/store.js';

/** Both sides, one partition each; batches are pushed by the test. */
class ScriptedSource implements Source {
  readonly name = 'scripted';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  private queue: RecordBatch[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  push(side: Side, records: Array<{ ts: number; id: string }>): void {
    const lines = records.map((r) => JSON.stringify({ k: 1, ts: r.ts, id: r.id }) + '\n');
    const data = Buffer.from(lines.join(''));
    const offsets = new Uint32Array(lines.length + 1);
    let o = 0;
    lines.forEach((l, i) => { offsets[i] = o; o += Buffer.byteLength(l); });
    offsets[lines.length] = o;
    this.queue.push({ side, partition: 0, format: 'json', data, offsets, count: lines.length, lineDelimited: true, firstPosition: 1, origin: `side${side}` });
    this.wake?.();
  }
  end(): void { this.ended = true; this.wake?.(); }
  async next(): Promise<RecordBatch | null> {
    for (;;) {
      const b = this.queue.shift();
      if (b) return b;
      if (this.ended) return null;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ex = () => new JsonExtractor(['k'], 'ts', 'id');
const extractors = { 0: { json: ex, flatbuffers: ex }, 1: { json: ex, flatbuffers: ex } };

async function waitFor(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) await sleep(10);
  assert.ok(pred());
}

/** A router over one scripted source (idle timeout 200 ms) that has routed one record per side at ts 1000. */
async function routing() {
  const src = new ScriptedSource();
  const late: Rejected[] = [];
  const router = new Router([createRingBuffer(1 << 20)], [src], extractors, 0, 200, (r) => { if (r.kind === 'late') late.push({ ...r }); });
  const run = router.run();
  src.push(0, [{ ts: 1000, id: 'l1' }]);
  src.push(1, [{ ts: 1000, id: 'r1' }]);
  await waitFor(() => router.counters.routed[0] + router.counters.routed[1] === 2);
  return { src, late, router, run };
}

test('a pause longer than --idle-timeout does not make a partition idle: no record turns late across it', async () => {
  const { src, late, router, run } = await routing();
  assert.equal(router.currentWatermark(), 1000);

  router.gate.pause();
  await router.gate.whenParked();
  assert.ok(router.gate.parked || router.gate.inSource, "routing holds");
  // While paused, nothing is pulled: the left side runs far ahead in the source's queue …
  src.push(0, [{ ts: 100_000, id: 'l2' }]);
  src.push(1, [{ ts: 2_000, id: 'r2' }]);
  await sleep(600); // three idle timeouts
  assert.equal(router.counters.read[0] + router.counters.read[1], 2, 'no batch is read while paused');
  assert.equal(router.currentWatermark(), 1000, 'the watermark stands still');

  // … and after the resume the right partition, silent only because of the pause, still holds the watermark.
  router.gate.resume();
  await waitFor(() => router.counters.read[0] + router.counters.read[1] === 4);
  assert.equal(late.length, 0, `late: ${late.map((r) => r.reason).join('; ')}`);
  assert.equal(router.currentWatermark(), 2000);

  // A partition that is silent while routing runs still goes idle as before.
  await sleep(300);
  src.push(0, [{ ts: 100_001, id: 'l3' }]);
  await waitFor(() => router.counters.read[0] === 3);
  assert.equal(router.currentWatermark(), 100_001);
  src.end();
  await run;
});

test('an output hold (full sink) stalls routing like a pause, lets a barrier through, is not lifted by resume(), ends when its promise settles', async () => {
  const { src, late, router, run } = await routing();

  let drained!: () => void;
  router.gate.holdForOutput(new Promise<void>((r) => { drained = r; }));
  router.gate.holdForOutput(new Promise<void>(() => {})); // a second hold while held: ignored
  assert.equal(router.gate.paused, false, 'an output hold is not a pause by request');
  await router.gate.whenParked();
  src.push(0, [{ ts: 100_000, id: 'l2' }]);
  src.push(1, [{ ts: 2_000, id: 'r2' }]);
  await sleep(500); // over two idle timeouts
  assert.equal(router.counters.read[0] + router.counters.read[1], 2, 'no batch is read while the output is held');
  // a checkpoint barrier still goes in: a barrier must never wait for the output to drain
  const cut = await Promise.race([router.barrier(7), sleep(2_000).then(() => null)]);
  assert.ok(cut && cut.id === 7, 'the barrier went through the output hold');
  // The batch the router had already taken from its source (its position counts it) goes in
  // before the barrier; nothing more is read.
  assert.equal(router.counters.read[0] + router.counters.read[1], 3, 'the batch in hand, and only it, went in before the barrier');
  router.gate.pause();
  router.gate.resume(); // POST /pause + /resume meanwhile: the output hold stays
  await sleep(100);
  assert.equal(router.counters.read[0] + router.counters.read[1], 3, 'resume() does not lift an output hold');

  drained();
  await waitFor(() => router.counters.read[0] + router.counters.read[1] === 4);
  assert.equal(late.length, 0, `late: ${late.map((r) => r.reason).join('; ')}`);
  assert.equal(router.currentWatermark(), 2000, 'the held time did not make the right partition idle');
  src.end();
  await run;
});

test('abort() ends an output hold that would never end (a sink that cannot drain)', async () => {
  const src = new ScriptedSource();
  const router = new Router([createRingBuffer(1 << 20)], [src], extractors, 0, 200, () => {});
  const run = router.run();
  router.gate.holdForOutput(new Promise<void>(() => {}));
  await router.gate.whenParked();
  router.abort(new Error('output failed'));
  await assert.rejects(Promise.race([run, sleep(2_000).then(() => 'still running')]), /output failed/);
});

test('logger: JSON lines off a terminal, human lines on one, filtered by level', () => {
  let out = '';
  const sink = { write: (s: string) => { out += s; return true; }, isTTY: false };
  const l = new Logger(sink, 'info');
  l.debug('hidden');
  l.info('started', { workers: 2, wm: -Infinity, big: 10n });
  l.error('failed', { code: 'E_INPUT' });
  const lines = out.trim().split('\n').map((x) => JSON.parse(x));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].level, 'info');
  assert.equal(lines[0].msg, 'started');
  assert.equal(lines[0].workers, 2);
  assert.equal(lines[0].wm, '-Infinity');
  assert.equal(lines[0].big, '10');
  assert.match(lines[0].time, /^\d{4}-\d\d-\d\dT/);
  assert.equal(lines[1].code, 'E_INPUT');
  out = '';
  const tty = new Logger({ write: (s: string) => { out += s; return true; }, isTTY: true }, 'warn');
  tty.info('hidden');
  tty.warn('careful', { path: '/tmp/x y' });
  assert.match(out, /^\r\x1b\[K\d\d:\d\d:\d\d warn  careful  path="\/tmp\/x y"\n$/);
});

test('a pause that arrives while the router is between the gate and its source is released once the router waits in the source', async () => {
  // The router yields to I/O (setImmediate) after passing the open gate and before it waits for
  // the next batch; POST /pause in that moment used to wait for a park that never came.
  const gate = new PauseGate();
  gate.pause();
  let released = false;
  const parked = gate.whenParked().then(() => { released = true; });
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(released, false, 'not parked yet: the router is between the gate and the source');
  gate.enterSource();
  await Promise.race([parked, sleep(1_000)]);
  assert.equal(released, true, 'waiting in the source holds input: the pause is in effect');
  assert.equal(gate.inSource, true);
  gate.leaveSource();
  assert.equal(gate.inSource, false);
  gate.resume();
});
