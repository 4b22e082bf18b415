/**
 * Event-time alignment (--max-drift) with Kafka input: the left topic holds a four-hour backlog,
 * the right one only the last hour of it. Read at their own speed, the right topic is consumed
 * long before the left gets there and sits whole in the join buffer; aligned, its partition is
 * paused (per partition, in the consumer) until the left catches up, and the buffer stays near
 * the window. The output is the batch join either way, and nothing turns late.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureTopics } from '../../src/kafka/kafkajs/index.js';
import { produceRaw } from './topic-io.js';
import { joinery, lastJson } from '../e2e/cli.js';
import { canonical, multisetDiff, referenceJoin, readNdjson, type Rec } from '../e2e/reference-join.js';
import { HOUR, mostWithin, skewedSide, T0 } from '../e2e/skewed-data.js';
import { broker, uniq } from './support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kafka-align-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const LOWER_MS = -120_000, UPPER_MS = 300_000, MAX_DELAY_MS = 5_000, DRIFT_MS = 60_000;
const JOIN = ['--lower', '-2m', '--upper', '5m', '--max-delay', '5s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: LOWER_MS, upperMs: UPPER_MS, kind: 'inner' as const };
/** Padding per record: a fetch of one partition (at most 1 MiB, src/kafka/kafkajs/source-state.ts) then holds a few thousand records, not a whole backlog. */
const PAD = 'x'.repeat(1000);
const FETCH_BYTES = 1024 * 1024;

/** Produce in sends well under the broker's 1 MB message limit. */
async function produce(topic: string, recs: Rec[]): Promise<void> {
  for (let i = 0; i < recs.length; i += 600) {
    await produceRaw([broker()], topic, recs.slice(i, i + 600).map((r) => ({ key: String(r.profileId), value: JSON.stringify(r) })));
  }
}

describe('event-time alignment of Kafka partitions', () => {
  const left = skewedSide({ count: 40_000, fromMs: T0, toMs: T0 + 4 * HOUR, prefix: 'i' }, 11).map((r) => ({ ...r, pad: PAD }));
  const right = skewedSide({ count: 40_000, fromMs: T0 + 3 * HOUR, toMs: T0 + 4 * HOUR, prefix: 'p' }, 12).map((r) => ({ ...r, pad: PAD }));
  const L = uniq('al-imp'), R = uniq('al-play');

  before(async () => {
    await ensureTopics([broker()], [{ topic: L, partitions: 1 }, { topic: R, partitions: 1 }]);
    await produce(L, left);
    await produce(R, right);
  });

  test('a topic with a large backlog next to a small one: the buffer stays bounded, the output is the batch join', async (t) => {
    const expected = referenceJoin(left, right, ref);
    assert.ok(expected.length > 1000, 'the data has pairs');
    const runs: Record<string, Record<string, unknown>> = {};
    for (const [name, drift] of [['off', 'off'], ['on', '1m']] as const) {
      const out = path.join(tmp, `out-${name}.ndjson`);
      const r = await joinery(['run', '--brokers', broker(), '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', uniq(`al-${name}`),
        '--format', 'json', ...JOIN, '--workers', '2', '--state-dir', path.join(tmp, `st-${name}`), '--max-drift', drift,
        '--out', `file:${out}`, '--exit-when-idle', '2s', '--json'], { timeoutMs: 240_000 });
      assert.equal(r.code, 0, r.stderr);
      runs[name] = lastJson(r.stdout);
      assert.equal(runs[name].late, 0);
      assert.deepEqual(runs[name].eventsIn, [left.length, right.length]);
      const diff = multisetDiff(expected, readNdjson(out).map((o) => canonical(o as never)));
      assert.equal(diff, '', diff);
    }
    const recordBytes = Buffer.byteLength(JSON.stringify(left[0]));
    const bucketMs = Math.min(30_000, Math.max(1_000, (UPPER_MS - LOWER_MS) / 20));
    // the window's worth of events, plus one fetched batch of each partition read past the drift
    const bound = mostWithin([...left, ...right], UPPER_MS - LOWER_MS + MAX_DELAY_MS + bucketMs + DRIFT_MS) + 2 * Math.ceil(FETCH_BYTES / recordBytes);
    const peakOff = runs.off.peakStateEntries as number, peakOn = runs.on.peakStateEntries as number;
    t.diagnostic(`peak buffered events: ${peakOff} without alignment, ${peakOn} with (bound ${bound}); partition pauses ${String(runs.on.alignPauses)}`);
    assert.ok((runs.on.alignPauses as number) > 0, 'the right partition was paused');
    assert.ok(peakOff > bound, `without alignment the buffer outgrows the window (peak ${peakOff}, bound ${bound})`);
    assert.ok(peakOn <= bound, `with alignment it stays within the bound (peak ${peakOn}, bound ${bound})`);
  });
});
