// The order a resume routes a stop checkpoint's in-flight frames in (src/router/inflight.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameSpill } from '../../src/ring/ring.js';
import { mergeInflight, type InflightStream } from '../../src/router/inflight.js';

/** A stream of frames: numbers are events (their id; key group = id, partition = id % 2), `w:N` watermarks. */
function stream(items: Array<number | string>, partitions?: number[]): InflightStream {
  const s = new FrameSpill();
  for (const it of items) {
    if (typeof it === 'number') {
      const off = s.reserve(40);
      s.u8[off] = 1;
      s.dv.setUint16(off + 2, it, true);
      s.dv.setUint16(off + 32, (it % 2) + 1, true);
    } else {
      const off = s.reserve(16);
      s.u8[off] = 2;
      s.dv.setFloat64(off + 8, Number(it.slice(2)), true);
    }
    s.commit();
  }
  return { bytes: s.bytes().slice(), partitions: partitions && new Set(partitions) };
}

const order = (steps: Iterable<{ kind: string; keyGroup?: number; valueMs?: number }>) =>
  [...steps].map((s) => (s.kind === 'event' ? s.keyGroup! : `w:${s.valueMs}`));

test('streams merge along the shared watermark sequence: no event after a watermark it had not seen', () => {
  // Worker 0 was further along (already past watermark 10) than worker 1.
  const a = stream([1, 3, 'w:20', 5, 'w:30', 7]);
  const b = stream([2, 'w:10', 4, 'w:20', 6, 8, 'w:30', 'w:40', 10]);
  assert.deepEqual(order(mergeInflight([a, b], true)), [1, 3, 2, 'w:10', 4, 'w:20', 5, 6, 8, 'w:30', 7, 'w:40', 10]);
});

test('without watermarks (several checkpoints), and filtered to the partitions taken over', () => {
  const a = stream([1, 2, 'w:20', 3, 4], [1]);
  const b = stream(['w:5', 5, 6]);
  // Watermark frames still pace the merge, none is yielded; partition 0 (even ids) is left out of a.
  assert.deepEqual(order(mergeInflight([a, b], false)), [1, 5, 6, 3]);
});
