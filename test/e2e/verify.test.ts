// `joinery verify` through the real CLI: run the join, then verify the output it wrote; then
// tamper with that output and check the exact counts and examples verify reports.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';
import { readNdjson, referenceJoin } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-verify-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson');
const WINDOW = ['--lower', '-2s', '--upper', '1m'];

before(async () => {
  // short play delays so that most plays join within the window; 2% re-deliveries, some disorder
  const g = await joinery(['gen', '--events', '6000', '--gen-profiles', '300', '--gen-titles', '20', '--gen-play-delay', '20s',
    '--gen-duplicates', '0.02', '--gen-disorder', '2s', '--left-out', L, '--right-out', R]);
  assert.equal(g.code, 0, g.stderr);
});

async function runJoin(kind: string, out: string): Promise<void> {
  const r = await joinery(['run', '--left', `file:${L}`, '--right', `file:${R}`, '--out', `file:${out}`, '--join', kind, ...WINDOW,
    '--workers', '2', '--state-dir', path.join(tmp, `state-${kind}`)]);
  assert.equal(r.code, 0, r.stderr);
}

async function verify(out: string, kind: string, extra: string[] = []) {
  const r = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', `file:${out}`, '--join', kind, ...WINDOW, ...extra]);
  return { ...r, report: r.stdout.trim().startsWith('{') ? lastJson(r.stdout) as any : undefined };
}

const lines = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '');

test('verify: the output of run equals the batch join (exit 0, text and --json)', async () => {
  const out = path.join(tmp, 'inner.ndjson');
  await runJoin('inner', out);
  const text = await verify(out, 'inner');
  assert.equal(text.code, 0, text.stdout + text.stderr);
  assert.match(text.stdout, /^joinery verify: EQUAL — inner join \[-2s, 1m\]/);
  assert.match(text.stdout, /missing 0, extra 0, duplicated 0/);
  const j = await verify(out, 'inner', ['--json', '--progress', 'on']);
  assert.equal(j.code, 0);
  // stderr is not a terminal: progress comes as log records, one per phase at least
  const progress = j.stderr.split('\n').filter((l) => l.includes('"verify progress"')).map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(progress.map((p) => p.phase))], ['scan', 'join'], j.stderr);
  const n = lines(out).length;
  assert.ok(n > 200, `only ${n} pairs: the data set does not exercise the join`);
  assert.equal(j.report.equal, true);
  assert.equal(j.report.expected, n);
  assert.equal(j.report.got, n);
  assert.ok(j.report.inputs.left.redeliveries > 0 && j.report.inputs.right.redeliveries > 0, JSON.stringify(j.report.inputs));
  assert.ok(j.report.inputEventsPerSec > 0 && j.report.cpuUsPerEvent > 0);
});

test('verify: a dropped, a duplicated and a fake row are counted exactly, with their keys, times and lines (exit 1)', async () => {
  const out = path.join(tmp, 'inner.ndjson'), bad = path.join(tmp, 'tampered.ndjson');
  const rows = lines(out);
  const dropped = JSON.parse(rows[3]), twice = JSON.parse(rows[7]);
  const fake = { leftId: 'i-nope', rightId: 'p-nope', key: [1, 2], leftTs: 5, rightTs: 6, left: {}, right: {} };
  const tampered = rows.filter((_, i) => i !== 3);
  tampered.splice(10, 0, rows[7]); // second copy of row 7 at output line 11
  tampered.push(JSON.stringify(fake));
  fs.writeFileSync(bad, tampered.join('\n') + '\n');
  const r = await verify(bad, 'inner', ['--json']);
  assert.equal(r.code, 1, r.stderr);
  const j = r.report;
  assert.deepEqual([j.equal, j.expected, j.got, j.missing, j.extra, j.duplicated], [false, rows.length, rows.length + 1, 1, 1, 1]);
  const m = j.examples.missing[0];
  assert.deepEqual([m.key, m.leftId, m.leftTs, m.rightId, m.rightTs], [JSON.stringify(dropped.key), JSON.stringify(dropped.leftId), dropped.leftTs, JSON.stringify(dropped.rightId), dropped.rightTs]);
  assert.ok(m.leftLine > 0 && m.rightLine > 0);
  assert.equal(lines(L)[m.leftLine - 1].includes(`"eventId":${JSON.stringify(dropped.leftId)}`), true, 'leftLine points at the left event');
  const d = j.examples.duplicated[0];
  assert.deepEqual([d.leftId, d.rightId, d.outputLine, d.expected, d.got], [JSON.stringify(twice.leftId), JSON.stringify(twice.rightId), 11, 1, 2]);
  const x = j.examples.extra[0];
  assert.deepEqual([x.key, x.leftId, x.rightId, x.outputLine], ['[1,2]', '"i-nope"', '"p-nope"', rows.length + 1]);
  assert.match(x.cause, /^not in the input/);
  // the text report says the same
  const t = await verify(bad, 'inner');
  assert.equal(t.code, 1);
  assert.match(t.stdout, /^joinery verify: DIFFERENT/);
  assert.match(t.stdout, /missing 1, extra 1, duplicated 1/);
  assert.match(t.stdout, /output line 11: key .* \[expected 1×, got 2×\]/);
});

test('verify: outer kinds include unmatched rows; a lost unmatched row and unmatched rows of the wrong kind are found', async () => {
  const out = path.join(tmp, 'full.ndjson');
  await runJoin('full', out);
  const ok = await verify(out, 'full', ['--json']);
  assert.equal(ok.code, 0, ok.stdout);
  const j = ok.report;
  assert.ok(j.expectedUnmatchedLeft > 0 && j.expectedUnmatchedRight > 0, JSON.stringify(j));
  assert.equal(j.expected, lines(out).length);
  // drop one unmatched right row
  const rows = lines(out);
  const at = rows.findIndex((l) => l.startsWith('{"leftId":null'));
  const lost = JSON.parse(rows[at]);
  const bad = path.join(tmp, 'full-tampered.ndjson');
  fs.writeFileSync(bad, rows.filter((_, i) => i !== at).join('\n') + '\n');
  const r = await verify(bad, 'full', ['--json']);
  assert.equal(r.code, 1);
  assert.deepEqual([r.report.missing, r.report.extra, r.report.duplicated], [1, 0, 0]);
  const m = r.report.examples.missing[0];
  assert.deepEqual([m.leftId, m.leftTs, m.rightId, m.rightTs], [null, null, JSON.stringify(lost.rightId), lost.rightTs]);
  // the full output judged as a left join: its unmatched right rows are extra
  const asLeft = await verify(out, 'left', ['--json']);
  assert.equal(asLeft.code, 1);
  assert.deepEqual([asLeft.report.missing, asLeft.report.extra, asLeft.report.duplicated], [0, j.expectedUnmatchedRight, 0]);
  assert.match(asLeft.report.examples.extra[0].cause, /join kind/);
});

test('verify agrees with the independent reference join (test/e2e/reference-join.ts) for every kind', async () => {
  const left = readNdjson(L), right = readNdjson(R);
  for (const kind of ['inner', 'left', 'right', 'full'] as const) {
    const rows = referenceJoin(left, right, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -2000, upperMs: 60_000, kind });
    const out = path.join(tmp, `ref-${kind}.ndjson`);
    fs.writeFileSync(out, rows.map((c) => {
      const [leftId, rightId, key, leftTs, rightTs, l, r] = JSON.parse(c);
      return JSON.stringify({ leftId, rightId, key, leftTs, rightTs, left: l, right: r });
    }).join('\n') + '\n');
    const v = await verify(out, kind, ['--json']);
    assert.equal(v.code, 0, `${kind}: ${JSON.stringify(v.report ?? v.stderr).slice(0, 800)}`);
    assert.equal(v.report.expected, rows.length);
  }
});

test('verify: rows lost to late events are missing with the cause "late", and the late candidates are counted', async () => {
  const l = path.join(tmp, 'late-l.ndjson'), r = path.join(tmp, 'late-r.ndjson'), out = path.join(tmp, 'late-out.ndjson');
  // A file is read 4,096 records (lines) at a time and a batch is judged against the watermark at
  // its start: blank lines put s into the right's second batch, when the watermark (195 s) has passed it.
  fs.writeFileSync(l, ['{"eventId":"a","profileId":1,"titleId":1,"ts":100000}', '{"eventId":"c","profileId":3,"titleId":1,"ts":100500}',
    '{"eventId":"b","profileId":2,"titleId":1,"ts":200000}'].join('\n') + '\n');
  fs.writeFileSync(r, ['{"eventId":"p","profileId":1,"titleId":1,"ts":100100}', '{"eventId":"q","profileId":2,"titleId":1,"ts":200100}', ...Array(5000).fill(''),
    '{"eventId":"s","profileId":3,"titleId":1,"ts":100600}'].join('\n') + '\n');
  const run = await joinery(['run', '--left', `file:${l}`, '--right', `file:${r}`, '--out', `file:${out}`, '--upper', '5m', '--state', 'memory', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lastJson(run.stdout).late, 1, run.stdout);
  const v = await joinery(['verify', '--left', `file:${l}`, '--right', `file:${r}`, '--output', `file:${out}`, '--upper', '5m', '--json']);
  assert.equal(v.code, 1, v.stdout + v.stderr);
  const j = lastJson(v.stdout) as any;
  assert.deepEqual([j.expected, j.got, j.missing, j.missingCauses.late, j.inputs.left.lateCandidates, j.inputs.right.lateCandidates], [3, 2, 1, 1, 0, 1]);
  const m = j.examples.missing[0];
  assert.deepEqual([m.leftId, m.leftLine, m.rightId, m.rightTs, m.rightLine], ['"c"', 2, '"s"', 100600, 5003]);
  assert.match(m.cause, /^late: the right event came 99\.5 s after a newer one of its input/);
});

test('verify: bad invocations fail with stable codes before any work', async () => {
  const missing = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', `file:${path.join(tmp, 'nope.ndjson')}`]);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /cannot read --output .*nope\.ndjson.*E_INPUT/);
  const kafka = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', 'kafka:joined']);
  assert.equal(kafka.code, 2);
  assert.match(kafka.stderr, /need --brokers.*E_USAGE/);
  const genIn = await joinery(['verify', '--left', 'gen:', '--right', `file:${R}`, '--output', `file:${L}`]);
  assert.equal(genIn.code, 2);
  assert.match(genIn.stderr, /--left: verify reads file:PATH or kafka:TOPIC.*E_USAGE/);
  const tinyBudget = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', `file:${L}`, '--max-memory', '1k']);
  assert.equal(tinyBudget.code, 2);
  assert.match(tinyBudget.stderr, /--max-memory.*E_USAGE/);
  const stdout = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', 'stdout']);
  assert.equal(stdout.code, 2);
  assert.match(stdout.stderr, /--output: use file:PATH or kafka:TOPIC.*E_USAGE/);
  const noOut = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /--output is required/);
  const help = await joinery(['verify', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--output SRC/);
  assert.match(help.stdout, /--examples N/);
  assert.doesNotMatch(help.stdout, /--state-dir/);
});

test('verify reads FlatBuffers inputs with the same canonical keys and ids as run', async () => {
  const l = path.join(tmp, 'l.fb'), r = path.join(tmp, 'r.fb'), out = path.join(tmp, 'fb-out.ndjson');
  const g = await joinery(['gen', '--events', '3000', '--gen-profiles', '200', '--gen-titles', '10', '--gen-play-delay', '20s', '--format', 'flatbuffers',
    '--left-out', l, '--right-out', r]);
  assert.equal(g.code, 0, g.stderr);
  const run = await joinery(['run', '--left', `file:${l}`, '--right', `file:${r}`, '--format', 'flatbuffers', '--join', 'full', '--out', `file:${out}`, '--state', 'memory']);
  assert.equal(run.code, 0, run.stderr);
  const args = ['verify', '--left', `file:${l}`, '--right', `file:${r}`, '--format', 'flatbuffers', '--join', 'full', '--output', `file:${out}`, '--json'];
  const v = await joinery(args);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  const j = lastJson(v.stdout) as any;
  assert.ok(j.expectedPairs > 50 && j.expected === lines(out).length, JSON.stringify(j));
  // and an output of another join does not pass
  const inner = path.join(tmp, 'fb-inner.ndjson');
  fs.writeFileSync(inner, lines(out).filter((x) => !x.includes('null,')).join('\n') + '\n');
  const d = await joinery(args.map((a) => (a === `file:${out}` ? `file:${inner}` : a)));
  assert.equal(d.code, 1);
  assert.equal((lastJson(d.stdout) as any).missing, j.expectedUnmatchedLeft + j.expectedUnmatchedRight);
});

test('verify: one hot key with every row missing and ids repeated at other times; --examples 0 counts without examples', { timeout: 120_000 }, async () => {
  // 1,500 × 1,500 events on one key, all within the window: 2.25M rows, none in the (empty) output.
  const l = path.join(tmp, 'hot-l.ndjson'), r = path.join(tmp, 'hot-r.ndjson'), out = path.join(tmp, 'hot-out.ndjson');
  const n = 1500;
  // every left id twice (two times each): each row of such an event is missing for "duplicate-id"
  fs.writeFileSync(l, Array.from({ length: n }, (_, i) => JSON.stringify({ eventId: `i${i >> 1}`, profileId: 1, titleId: 1, ts: 100_000 + i })).join('\n') + '\n');
  fs.writeFileSync(r, Array.from({ length: n }, (_, i) => JSON.stringify({ eventId: `p${i}`, profileId: 1, titleId: 1, ts: 100_000 + n + i })).join('\n') + '\n');
  fs.writeFileSync(out, '');
  const args = ['verify', '--left', `file:${l}`, '--right', `file:${r}`, '--output', `file:${out}`, '--upper', '5m', '--json'];
  for (const examples of ['0', '3']) {
    const v = await joinery([...args, '--examples', examples]);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    const j = lastJson(v.stdout) as any;
    assert.deepEqual([j.expected, j.got, j.missing, j.missingCauses['duplicate-id'], j.missingCauses.unknown], [n * n, 0, n * n, n * n, 0]);
    assert.equal(j.examples.missing.length, Number(examples));
  }
});

test('verify leaves out a record too large for the run\'s rings, as run does (a dead letter there): EQUAL', async () => {
  const l = path.join(tmp, 'big-l.ndjson'), r = path.join(tmp, 'big-r.ndjson'), out = path.join(tmp, 'big-out.ndjson');
  const big = 'x'.repeat(20_000); // over a quarter of a 64 KiB ring
  fs.writeFileSync(l, [JSON.stringify({ eventId: 'a', profileId: 1, titleId: 1, ts: 1000 }), JSON.stringify({ eventId: 'b', profileId: 1, titleId: 1, ts: 1001, blob: big })].join('\n') + '\n');
  fs.writeFileSync(r, JSON.stringify({ eventId: 'p', profileId: 1, titleId: 1, ts: 1500 }) + '\n');
  const run = await joinery(['run', '--left', `file:${l}`, '--right', `file:${r}`, '--out', `file:${out}`, '--ring-size', '64k', '--state-dir', path.join(tmp, 'state-big'), '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual([lastJson(run.stdout).pairs, lastJson(run.stdout).deadLettered], [1, 1]);
  const same = await joinery(['verify', '--left', `file:${l}`, '--right', `file:${r}`, '--output', `file:${out}`, '--ring-size', '64k', '--json']);
  assert.equal(same.code, 0, same.stdout + same.stderr);
  // verified against the default rings (16 MiB), the large record joins and its row is missing
  const other = await joinery(['verify', '--left', `file:${l}`, '--right', `file:${r}`, '--output', `file:${out}`, '--json']);
  assert.equal(other.code, 1, other.stdout + other.stderr);
  assert.equal((lastJson(other.stdout) as any).missing, 1);
});
