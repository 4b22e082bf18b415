import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery } from './cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from './reference-join.js';

const outputLines = (f: string): string[] => readNdjson(f).map((o) => canonical(o as never));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-e2e-'));
const L = path.join(tmp, 'impressions.ndjson'), R = path.join(tmp, 'plays.ndjson');
const GEN = ['--events', '120000', '--seed', '7', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02', '--gen-orphan-plays', '0.05'];
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s'];
const ref = { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -10_000, upperMs: 90_000 };
let left: Rec[], right: Rec[];

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('engine output equals an independent batch join', () => {
  before(async () => {
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
    left = readNdjson(L); right = readNdjson(R);
    assert.equal(left.length + right.length, 120_000);
  });

  test('the generated data has skew, disorder and duplicates', () => {
    const ids = new Set(left.map((r) => r.eventId));
    assert.ok(left.length - ids.size > 500, 'duplicate deliveries present');
    let maxTs = -Infinity, disordered = 0;
    for (const r of left) { const ts = r.ts as number; if (ts < maxTs) disordered++; maxTs = Math.max(maxTs, ts); }
    assert.ok(disordered > 1000, 'out-of-order arrivals present');
    const perProfile = new Map<unknown, number>();
    for (const r of left) perProfile.set(r.profileId, (perProfile.get(r.profileId) ?? 0) + 1);
    const top = [...perProfile.values()].sort((a, b) => b - a).slice(0, 30).reduce((a, b) => a + b, 0);
    assert.ok(top / left.length > 0.05, 'top 1% of members carry > 5% of impressions');
  });

  for (const kind of ['inner', 'left', 'right', 'full'] as const) {
    for (const workers of [1, 2, 4]) {
      const state = workers === 2 && (kind === 'left' || kind === 'right') ? 'memory' : 'lmdb';
      // The lmdb store's memory budget: the default (1 worker: everything stays in memory), none
      // (2: every bucket sealed into LMDB once complete) and a small one (4: some of each).
      const memory = workers === 1 ? [] : ['--state-memory', workers === 2 ? '0' : '1m'];
      test(`${kind} join, ${workers} worker(s), ${state} state${state === 'lmdb' ? ` (${memory[1] ?? 'default'} state memory)` : ''}`, async () => {
        const out = path.join(tmp, `out-${kind}-${workers}.ndjson`);
        const r = await joinery(['run', '--left', `file:${L}`, '--right', `file:${R}`, '--format', 'json', ...JOIN, '--join', kind,
          '--workers', String(workers), '--state', state, ...memory, '--state-dir', path.join(tmp, `state-${kind}-${workers}`), '--out', `file:${out}`, '--json']);
        assert.equal(r.code, 0, r.stderr);
        const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
        assert.equal(summary.late, 0, 'max-delay covers the disorder: nothing is late');
        assert.ok(summary.duplicates > 500, 'duplicates were dropped');
        assert.equal(summary.stateLeft, 0, 'everything expired at end of input');
        const expected = referenceJoin(left, right, { ...ref, kind });
        assert.ok(expected.length > 10_000);
        const diff = multisetDiff(expected, outputLines(out));
        assert.equal(diff, '', diff);
      });
    }
  }

  test('FlatBuffers files give the same output as JSON files', async () => {
    const lf = path.join(tmp, 'l.fb'), rf = path.join(tmp, 'r.fb'), out = path.join(tmp, 'out-fb.ndjson');
    const g = await joinery(['gen', ...GEN, '--format', 'flatbuffers', '--left-out', lf, '--right-out', rf]);
    assert.equal(g.code, 0, g.stderr);
    const r = await joinery(['run', '--left', `file:${lf}`, '--right', `file:${rf}`, '--format', 'flatbuffers', ...JOIN, '--join', 'full',
      '--workers', '2', '--state-dir', path.join(tmp, 'state-fb'), '--out', `file:${out}`]);
    assert.equal(r.code, 0, r.stderr);
    const diff = multisetDiff(referenceJoin(left, right, { ...ref, kind: 'full' }), outputLines(out));
    assert.equal(diff, '', diff);
  });

  test('the gen: source joins to the same result as the files it writes', async () => {
    const out = path.join(tmp, 'out-gen.ndjson');
    const r = await joinery(['run', '--left', 'gen:', '--right', 'gen:', ...GEN, ...JOIN, '--join', 'inner', '--workers', '2',
      '--state-dir', path.join(tmp, 'state-gen'), '--out', `file:${out}`]);
    assert.equal(r.code, 0, r.stderr);
    const diff = multisetDiff(referenceJoin(left, right, { ...ref, kind: 'inner' }), outputLines(out));
    assert.equal(diff, '', diff);
  });
});
