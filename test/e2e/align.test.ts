/**
 * Event-time alignment of the inputs (--max-drift), through the real CLI on files: an input that
 * runs ahead in event time is paused, so the join buffer holds about the window, not everything
 * the faster input is ahead; the output stays the batch join either way; no input ever blocks
 * the others for good.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';
import { canonical, multisetDiff, referenceJoin, readNdjson, type Rec } from './reference-join.js';
import { HOUR, mostWithin, ndjson, skewedSide, T0 } from './skewed-data.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-align-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const LOWER_MS = -120_000, UPPER_MS = 300_000, MAX_DELAY_MS = 5_000, DRIFT_MS = 60_000;
const JOIN = ['--lower', '-2m', '--upper', '5m', '--max-delay', '5s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: LOWER_MS, upperMs: UPPER_MS, kind: 'inner' as const };
/** Records a file source hands out at once (src/source/file.ts): how far past the drift a batch may reach. */
const FILE_BATCH = 4096;

async function run(name: string, left: Rec[], right: Rec[], extra: string[]): Promise<{ summary: Record<string, unknown>; out: string[] }> {
  const lf = path.join(tmp, `${name}-l.ndjson`), rf = path.join(tmp, `${name}-r.ndjson`), of = path.join(tmp, `${name}-out.ndjson`);
  fs.writeFileSync(lf, ndjson(left));
  fs.writeFileSync(rf, ndjson(right));
  const r = await joinery(['run', '--left', `file:${lf}`, '--right', `file:${rf}`, ...JOIN, '--workers', '2',
    '--state-dir', path.join(tmp, `${name}-st`), '--out', `file:${of}`, '--json', ...extra], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return { summary: lastJson(r.stdout), out: readNdjson(of).map((o) => canonical(o as never)) };
}

describe('event-time alignment of file inputs', () => {
  // Left (impressions) covers only the last hour of the right's four: read at the same pace, the
  // left file is wholly in the buffer long before the right gets there.
  const left = skewedSide({ count: 60_000, fromMs: T0 + 3 * HOUR, toMs: T0 + 4 * HOUR, prefix: 'i' }, 1);
  const right = skewedSide({ count: 60_000, fromMs: T0, toMs: T0 + 4 * HOUR, prefix: 'p' }, 2);
  const expected = referenceJoin(left, right, ref);

  test('an input far ahead is paused: the buffer stays near the window, the output is the batch join', async (t) => {
    assert.ok(expected.length > 1000, 'the data has pairs');
    const off = await run('off', left, right, ['--max-drift', 'off']);
    const on = await run('on', left, right, ['--max-drift', '1m']);
    for (const r of [off, on]) {
      assert.equal(r.summary.late, 0);
      const diff = multisetDiff(expected, r.out);
      assert.equal(diff, '', diff);
    }
    // What the buffer may hold with alignment: the window (plus max-delay, one expiry bucket of
    // the lmdb store, the drift) and one batch of each file read past the drift.
    const bucketMs = Math.min(30_000, Math.max(1_000, (UPPER_MS - LOWER_MS) / 20));
    const bound = mostWithin([...left, ...right], UPPER_MS - LOWER_MS + MAX_DELAY_MS + bucketMs + DRIFT_MS) + 2 * FILE_BATCH;
    const peakOff = off.summary.peakStateEntries as number, peakOn = on.summary.peakStateEntries as number;
    t.diagnostic(`peak buffered events: ${peakOff} without alignment, ${peakOn} with (bound ${bound})`);
    assert.equal(off.summary.alignPauses, 0);
    assert.ok((on.summary.alignPauses as number) > 0, 'the left input was paused');
    assert.ok(peakOff > bound, `without alignment the buffer outgrows the window (peak ${peakOff}, bound ${bound})`);
    assert.ok(peakOn <= bound, `with alignment the buffer stays within the window's bound (peak ${peakOn}, bound ${bound})`);
    assert.ok(peakOn * 3 < peakOff, `alignment cuts the peak (${peakOn} vs ${peakOff})`);
  });

  test('the default drift aligns too', async () => {
    const on = await run('default', left, right, []);
    assert.ok((on.summary.alignPauses as number) > 0);
    assert.equal(multisetDiff(expected, on.out), '');
  });

  test('an input whose next records lie far ahead of one that has finished does not wait for it', async () => {
    // Right starts two hours after the left ends: once the left ends, nothing may hold the right back.
    const l = skewedSide({ count: 5_000, fromMs: T0, toMs: T0 + HOUR, prefix: 'i' }, 3);
    const r = skewedSide({ count: 5_000, fromMs: T0 + 3 * HOUR, toMs: T0 + 4 * HOUR, prefix: 'p' }, 4);
    const res = await run('ended', l, r, ['--max-drift', '1m', '--idle-timeout', '1h']);
    assert.equal(res.summary.late, 0);
    assert.deepEqual(res.summary.eventsIn, [5_000, 5_000]);
    assert.equal(multisetDiff(referenceJoin(l, r, ref), res.out), '');
  });

  test('--max-drift must not be negative', async () => {
    const r = await joinery(['run', '--left', 'file:/nonexistent', '--right', 'file:/nonexistent', '--max-drift', '-1s']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--max-drift/);
  });
});
