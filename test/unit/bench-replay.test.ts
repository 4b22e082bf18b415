/**
 * `bench`'s pre-generated replay (src/bench.ts, pregenerate) keeps both sides in step in event
 * time, as every real input is read (--max-drift): the plays, a fifth of the events, must not run
 * ahead of the impressions. (Filling fixed-size batches of each side in turn let them run ahead by
 * minutes, and the join buffer then grew with the run.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pregenerate } from '../../src/bench.js';
import { flatToJson } from '../../src/codec/flat.js';
import { parseArgs } from '../../src/config/parse.js';

test('the replay hands out both sides in event-time step, every event once', async () => {
  const cfg = parseArgs('bench', ['--events', '200000', '--progress', 'off']);
  const { batches } = await pregenerate(cfg);
  const newest = [-Infinity, -Infinity];
  const count = [0, 0];
  let worst = 0;
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const rec = JSON.parse(flatToJson(b.side === 0 ? 'Impression' : 'Play', b.data, b.offsets[i], b.offsets[i + 1])) as { ts: number };
      if (rec.ts > newest[b.side]) newest[b.side] = rec.ts;
    }
    count[b.side] += b.count;
    // how far the side just read is ahead of the other one (once both have begun)
    if (Number.isFinite(newest[0]) && Number.isFinite(newest[1])) worst = Math.max(worst, newest[b.side] - newest[1 - b.side]);
  }
  assert.equal(count[0] + count[1], 200_000);
  assert.ok(count[1] > 10_000 && count[0] > count[1], `impressions ${count[0]}, plays ${count[1]}`);
  // a round is ~2 s of event time at the default 2000 events/s; 60 s is the smallest default --max-drift
  assert.ok(worst < 10_000, `a side ran ${worst} ms of event time ahead of the other`);
});
