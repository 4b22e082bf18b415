// Hot keys: the --max-key-entries guard and the detection (warning log, /status topKeys, /metrics).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSummary } from '../../src/engine.js';
import { joinery, lastJson } from './cli.js';
import { request, startNode, until } from './node.js';
import { multisetDiff, readNdjson, referenceJoin, canonical, type Rec } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-hot-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const BASE = 1_700_000_000_000;
const HOT = ['hot', 7];

/** Normal traffic over 60 keys plus one hot key, each side in event-time order. */
function writeInputs(name: string, hotLeft: number, hotRight: number): { left: string; right: string; lines: Map<string, string> } {
  const L: Rec[] = [], R: Rec[] = [];
  for (let i = 0; i < 600; i++) {
    L.push({ profileId: i % 60, titleId: 3, ts: BASE + i * 50, eventId: `l${i}` });
    R.push({ profileId: (i * 7) % 60, titleId: 3, ts: BASE + i * 50 + 20, eventId: `r${i}` });
  }
  for (let i = 0; i < hotLeft; i++) L.push({ profileId: HOT[0], titleId: HOT[1], ts: BASE + Math.floor(i * 30000 / hotLeft), eventId: `hl${i}` });
  for (let i = 0; i < hotRight; i++) R.push({ profileId: HOT[0], titleId: HOT[1], ts: BASE + 100 + Math.floor(i * 30000 / hotRight), eventId: `hr${i}` });
  const order = (a: Rec, b: Rec) => (a.ts as number) - (b.ts as number);
  L.sort(order); R.sort(order);
  const lines = new Map<string, string>();
  const write = (f: string, recs: Rec[]) => fs.writeFileSync(f, recs.map((r) => { const s = JSON.stringify(r); lines.set(r.eventId as string, s); return s; }).join('\n') + '\n');
  const left = path.join(tmp, `${name}-left.ndjson`), right = path.join(tmp, `${name}-right.ndjson`);
  write(left, L); write(right, R);
  return { left, right, lines };
}

const outputOf = (f: string) => readNdjson(f).map((o) => canonical(o as never));

test('--max-key-entries: exactly the overflow of the hot key goes to --late-out with its reason; the output is the batch join of the kept events', async () => {
  const { left, right, lines } = writeInputs('guard', 40, 25);
  const out = path.join(tmp, 'guard-out.ndjson'), late = path.join(tmp, 'guard-late.ndjson');
  // A window wider than the input: nothing expires, so which events are kept depends only on each side's order.
  const r = await joinery(['run', '--left', `file:${left}`, '--right', `file:${right}`, '--lower', '-1h', '--upper', '1h', '--max-key-entries', '12',
    '--late-out', `file:${late}`, '--out', `file:${out}`, '--state-dir', path.join(tmp, 'guard-state'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout);
  assert.deepEqual(s.keyOverflow, [28, 13]);

  const diverted = fs.readFileSync(late, 'utf8').split('\n').filter(Boolean);
  const ids = diverted.map((l) => (JSON.parse(l).record as Rec).eventId).sort();
  const expectIds = [...Array.from({ length: 28 }, (_, i) => `hl${i + 12}`), ...Array.from({ length: 13 }, (_, i) => `hr${i + 12}`)].sort();
  assert.deepEqual(ids, expectIds);
  for (const l of diverted) {
    const o = JSON.parse(l);
    const side = (o.record.eventId as string).startsWith('hl') ? 'left' : 'right';
    assert.equal(o.side, side);
    assert.deepEqual(o.key, HOT);
    assert.equal(o.reason, `key ["hot",7] holds 12 entries on the ${side} side (--max-key-entries)`);
    assert.ok(l.includes(`"record":${lines.get(o.record.eventId)}}`), `the record keeps its original bytes: ${l}`);
  }

  const keptLeft = readNdjson(left).filter((x) => !ids.includes(x.eventId as string));
  const keptRight = readNdjson(right).filter((x) => !ids.includes(x.eventId as string));
  const expected = referenceJoin(keptLeft, keptRight, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -3_600_000, upperMs: 3_600_000, kind: 'inner' });
  assert.equal(multisetDiff(expected, outputOf(out)), '');
  assert.ok(expected.some((e) => e.includes('"hl11"')) && expected.some((e) => e.includes('"hot"')), 'the kept hot events still join');

  assert.match(r.stderr, /"level":"warn","msg":"worker \d: hot key \[\\"hot\\",7\]: left events beyond 12 buffered entries are diverted/);
  // Off a terminal the summary is the logger's `finished` record; its text form has a line of its own.
  const finished = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((o) => o.msg === 'finished');
  assert.deepEqual(finished?.keyOverflow, [28, 13], r.stderr);
  assert.match(formatSummary(finished), /key overflow {5}left 28, right 13 \(--max-key-entries\)/);
});

test('hot key detection without a guard: a warning names the key by its buffered entries, nothing is dropped', async () => {
  const { left, right } = writeInputs('detect', 10_500, 3);
  const out = path.join(tmp, 'detect-out.ndjson');
  const r = await joinery(['run', '--left', `file:${left}`, '--right', `file:${right}`, '--lower', '-1h', '--upper', '1h', '--max-key-entries', '0',
    '--out', `file:${out}`, '--state-dir', path.join(tmp, 'detect-state'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout);
  assert.deepEqual(s.keyOverflow, [0, 0]);
  const warns = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((o) => o.level === 'warn');
  assert.ok(warns.some((w) => w.key === '["hot",7]' && w.side === 'left' && w.entries === 10_000), JSON.stringify(warns));
  assert.ok(warns.every((w) => w.key === '["hot",7]'), 'no other key is named');
  // Every pair is there: detection alone drops nothing.
  assert.equal(s.pairs, readNdjson(out).length);
  assert.equal(s.pairs, 600 * 10 + 10_500 * 3);
});

test('/status topKeys and /metrics name the hot key while it runs', async (t) => {
  // One member and one title: every event has the same key.
  const node = startNode(['run', '--left', 'gen:', '--right', 'gen:', '--rate', '4000', '--events', '12000', '--seed', '5',
    '--gen-profiles', '1', '--gen-titles', '1', '--gen-play-delay', '200ms', '--upper', '2s', '--max-key-entries', '300',
    '--state-dir', path.join(tmp, 'http-state'), '--out', 'null', '--http', '127.0.0.1:0', '--json']);
  t.after(() => { node.child.kill(); });
  const url = await node.url;
  const st = await until('a key over the guard in /status', () => request(`${url}/status`),
    (r) => r.status === 200 && r.json.phase === 'running' && r.json.counters.keyOverflow.left > 0 && r.json.topKeys.byEntries.length > 0);
  const top = st.json.topKeys;
  assert.equal(top.maxKeyEntries, 300);
  const hot = top.byEntries[0];
  assert.match(hot.key, /^\[\d+,\d+\]$/);
  assert.equal(hot.side, 'left');
  assert.ok(hot.entries > 0 && hot.entries <= 300, JSON.stringify(hot));
  assert.ok(hot.diverted > 0);
  assert.equal(typeof hot.worker, 'number');

  const m = await request(`${url}/metrics`);
  assert.equal(m.status, 200);
  const label = hot.key.replace(/"/g, '\\"');
  assert.match(m.body, new RegExp(`^joinery_hot_key_entries\\{key="${label.replace(/[[\]]/g, '\\$&')}",side="left"\\} \\d+$`, 'm'));
  assert.match(m.body, /^joinery_key_overflow_total\{side="left"\} [1-9]\d*$/m);
  assert.match(m.body, /^# TYPE joinery_hot_key_pairs_per_event gauge$/m);

  const done = await node.done;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stderr, new RegExp(`"msg":"worker \\d: hot key \\[\\d+,\\d+\\]: 300 entries buffered on the left side"`));
});
