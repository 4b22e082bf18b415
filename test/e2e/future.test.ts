/**
 * --max-future through the real CLI: one record dated in the year 2100 in the middle of an input
 * used to move the watermark there and turn everything after it late. It must go to the dead
 * letters with its reason instead, and the rest join as if it had never been there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';
import { canonical, multisetDiff, referenceJoin, readNdjson, type Rec } from './reference-join.js';
import { HOUR, ndjson, skewedSide, T0 } from './skewed-data.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-future-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const GEN = ['--events', '40000', '--seed', '5', '--gen-profiles', '2000', '--gen-titles', '200', '--gen-event-time-rate', '400',
  '--gen-play-delay', '30s', '--gen-disorder', '2s', '--gen-duplicates', '0'];
const JOIN = ['--lower', '-10s', '--upper', '60s', '--max-delay', '3s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 60_000, kind: 'inner' as const };
const Y2100 = Date.UTC(2100, 0, 1);
const byIdOf = (dl: Rec[]): Map<unknown, Rec> => new Map(dl.map((d) => [JSON.parse(d.record as string).eventId, d]));

describe('a far-future event time does not poison the watermark', () => {
  let left: Rec[], right: Rec[];
  const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson');
  const LB = path.join(tmp, 'l-bad.ndjson'), RB = path.join(tmp, 'r-bad.ndjson');

  before(async () => {
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
    left = readNdjson(L); right = readNdjson(R);
    const withBad = (recs: Rec[], bad: Rec, early?: Rec): string => {
      const mid = Math.floor(recs.length / 2);
      const head = early ? [...recs.slice(0, 10), early, ...recs.slice(10, mid)] : recs.slice(0, mid);
      return [...head, bad, ...recs.slice(mid)].map((r) => JSON.stringify(r)).join('\n') + '\n';
    };
    // one in the middle, one among the first records the input hands out (its first batch)
    fs.writeFileSync(LB, withBad(left, { ...left[100], eventId: 'i-from-2100', ts: Y2100 }, { ...left[200], eventId: 'i-early-2100', ts: Y2100 + 1 }));
    fs.writeFileSync(RB, withBad(right, { ...right[100], eventId: 'p-not-a-time', ts: 1e20 }));
  });

  test('the year-2100 record and a 1e20 time go to --dead-letter with their reasons; the rest joins as without them', async () => {
    const out = path.join(tmp, 'out.ndjson'), dead = path.join(tmp, 'dead.ndjson');
    const r = await joinery(['run', '--left', `file:${LB}`, '--right', `file:${RB}`, ...JOIN, '--workers', '2', '--state-dir', path.join(tmp, 'st'),
      '--out', `file:${out}`, '--dead-letter', `file:${dead}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = lastJson(r.stdout);
    assert.equal(s.late, 0, 'nothing turned late');
    assert.equal(s.deadLettered, 3);
    assert.equal(s.badTime, 3);
    assert.match(r.stderr, /too far ahead/, 'the first one is logged');
    const diff = multisetDiff(referenceJoin(left, right, ref), readNdjson(out).map((o) => canonical(o as never)));
    assert.equal(diff, '', diff);
    const dl = readNdjson(dead);
    assert.equal(dl.length, 3);
    assert.ok(byIdOf(dl).has('i-early-2100'), 'the one in the first batch too');
    const byId = byIdOf(dl);
    const y = byId.get('i-from-2100')!, n = byId.get('p-not-a-time')!;
    assert.equal(y.side, 'left');
    assert.equal(y.position, Math.floor(left.length / 2) + 2, 'the line number in the input file');
    assert.match(y.error as string, /event time 4102444800000 is \d+\.\d years ahead of its partition's \d+ \(--max-future 1d\)/);
    assert.equal(n.side, 'right');
    assert.match(n.error as string, /event time 100000000000000000000 is not a time/);
  });

  test('--max-future off lets the far-future record through (the old behaviour: it turns later records late)', async () => {
    const out = path.join(tmp, 'out-off.ndjson');
    const r = await joinery(['run', '--left', `file:${LB}`, '--right', `file:${R}`, ...JOIN, '--state-dir', path.join(tmp, 'st-off'),
      '--out', `file:${out}`, '--max-future', 'off', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = lastJson(r.stdout);
    assert.equal(s.badTime, 0);
    assert.ok((s.late as number) > 1000, `records after it turned late (${String(s.late)})`);
  });

  test('a real jump of the data further than --max-future: the first 1000 records after it are set aside, then the guard follows', async () => {
    const DAY = 24 * HOUR;
    const side = (prefix: string, seed: number): Rec[] => [
      ...skewedSide({ count: 3_000, fromMs: T0, toMs: T0 + HOUR, prefix: `${prefix}a` }, seed),
      ...skewedSide({ count: 3_000, fromMs: T0 + 3 * DAY, toMs: T0 + 3 * DAY + HOUR, prefix: `${prefix}b` }, seed + 1),
    ];
    const l = side('i', 21), r = side('p', 23);
    const lf = path.join(tmp, 'jump-l.ndjson'), rf = path.join(tmp, 'jump-r.ndjson'), out = path.join(tmp, 'jump-out.ndjson');
    fs.writeFileSync(lf, ndjson(l));
    fs.writeFileSync(rf, ndjson(r));
    const res = await joinery(['run', '--left', `file:${lf}`, '--right', `file:${rf}`, '--lower', '-2m', '--upper', '5m', '--max-delay', '5s',
      '--state-dir', path.join(tmp, 'st-jump'), '--out', `file:${out}`, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const s = lastJson(res.stdout);
    assert.equal(s.badTime, 2_000);
    assert.equal(s.late, 0);
    assert.match(res.stderr, /taking it as a jump in the data/);
    // each side loses the first 1000 records after the gap, nothing else
    const kept = (recs: Rec[]): Rec[] => [...recs.slice(0, 3_000), ...recs.slice(4_000)];
    const join = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -120_000, upperMs: 300_000, kind: 'inner' as const };
    const diff = multisetDiff(referenceJoin(kept(l), kept(r), join), readNdjson(out).map((o) => canonical(o as never)));
    assert.equal(diff, '', diff);
  });
});
