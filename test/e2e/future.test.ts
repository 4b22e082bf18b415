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

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-future-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const GEN = ['--events', '40000', '--seed', '5', '--gen-profiles', '2000', '--gen-titles', '200', '--gen-event-time-rate', '400',
  '--gen-play-delay', '30s', '--gen-disorder', '2s', '--gen-duplicates', '0'];
const JOIN = ['--lower', '-10s', '--upper', '60s', '--max-delay', '3s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 60_000, kind: 'inner' as const };
const Y2100 = Date.UTC(2100, 0, 1);

describe('a far-future event time does not poison the watermark', () => {
  let left: Rec[], right: Rec[];
  const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson');
  const LB = path.join(tmp, 'l-bad.ndjson'), RB = path.join(tmp, 'r-bad.ndjson');

  before(async () => {
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
    left = readNdjson(L); right = readNdjson(R);
    const withBad = (recs: Rec[], bad: Rec): string => {
      const mid = Math.floor(recs.length / 2);
      return [...recs.slice(0, mid), bad, ...recs.slice(mid)].map((r) => JSON.stringify(r)).join('\n') + '\n';
    };
    fs.writeFileSync(LB, withBad(left, { ...left[100], eventId: 'i-from-2100', ts: Y2100 }));
    fs.writeFileSync(RB, withBad(right, { ...right[100], eventId: 'p-not-a-time', ts: 1e20 }));
  });

  test('the year-2100 record and a 1e20 time go to --dead-letter with their reasons; the rest joins as without them', async () => {
    const out = path.join(tmp, 'out.ndjson'), dead = path.join(tmp, 'dead.ndjson');
    const r = await joinery(['run', '--left', `file:${LB}`, '--right', `file:${RB}`, ...JOIN, '--workers', '2', '--state-dir', path.join(tmp, 'st'),
      '--out', `file:${out}`, '--dead-letter', `file:${dead}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = lastJson(r.stdout);
    assert.equal(s.late, 0, 'nothing turned late');
    assert.equal(s.deadLettered, 2);
    assert.equal(s.badTime, 2);
    assert.match(r.stderr, /too far ahead/, 'the first one is logged');
    const diff = multisetDiff(referenceJoin(left, right, ref), readNdjson(out).map((o) => canonical(o as never)));
    assert.equal(diff, '', diff);
    const dl = readNdjson(dead);
    assert.equal(dl.length, 2);
    const byId = new Map(dl.map((d) => [JSON.parse(d.record as string).eventId, d]));
    const y = byId.get('i-from-2100')!, n = byId.get('p-not-a-time')!;
    assert.equal(y.side, 'left');
    assert.equal(y.position, Math.floor(left.length / 2) + 1, 'the line number in the input file');
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
});
