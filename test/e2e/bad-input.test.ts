import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery } from './cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-bad-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const imp = (id: string, ts: number, p = 1, t = 2) => JSON.stringify({ eventId: id, profileId: p, titleId: t, ts });
const play = (id: string, ts: number, p = 1, t = 2) => JSON.stringify({ eventId: id, profileId: p, titleId: t, ts, durationMs: 5 });

function files(leftLines: string[], rightLines: string[]) {
  const l = path.join(tmp, `l-${Math.random().toString(36).slice(2)}.ndjson`), r = l.replace('/l-', '/r-');
  fs.writeFileSync(l, leftLines.join('\n') + '\n');
  fs.writeFileSync(r, rightLines.join('\n') + '\n');
  return ['--left', `file:${l}`, '--right', `file:${r}`, '--state-dir', path.join(tmp, 'state')];
}

test('malformed records go to the dead letter with file and line; the run continues', async () => {
  const src = files(
    [imp('i1', 1000), '{not json', JSON.stringify({ eventId: 'i2', titleId: 2, ts: 1000 }), imp('i3', 1100), JSON.stringify({ eventId: 'i4', profileId: 1, titleId: 2, ts: 'soon' }), '', imp('i5', 1200)],
    [play('p1', 1500), '[1,2,3]', play('p2', 1600)],
  );
  const dead = path.join(tmp, 'dead.ndjson'), out = path.join(tmp, 'out.ndjson');
  const r = await joinery(['run', ...src, '--out', `file:${out}`, '--dead-letter', `file:${dead}`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(s.deadLettered, 4);
  assert.equal(s.pairs, 6, '3 good impressions × 2 good plays');
  const d = fs.readFileSync(dead, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(d.map((x) => [x.side, x.position]), [['left', 2], ['left', 3], ['left', 5], ['right', 2]]);
  assert.match(d[0].error, /not JSON/);
  assert.match(d[1].error, /key field "profileId"/);
  assert.match(d[2].error, /non-numeric time field "ts"/);
  assert.equal(d[0].record, '{not json');
  assert.equal(fs.readFileSync(out, 'utf8').trim().split('\n').length, 6);
});

test('without --dead-letter, the first malformed records are reported on stderr with file and line', async () => {
  const src = files([imp('i1', 1000), 'garbage', imp('i2', 1000)], [play('p1', 1000)]);
  const r = await joinery(['run', ...src, '--out', 'null', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /malformed left record at .*l-.*\.ndjson:2 \(line 2\): not JSON/);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).deadLettered, 1);
});

test('late events go to --late-out and are counted, never joined', async () => {
  // Sources are read in batches of 4096 records, alternating sides; the watermark moves between batches.
  const n = 5000;
  const lefts = Array.from({ length: n }, (_, i) => imp(`i${i}`, 10_000 + i * 10, i % 50));
  const rights = Array.from({ length: n }, (_, i) => play(`p${i}`, 10_000 + i * 10 + 5, i % 50));
  const src = files([...lefts, imp('late', 1_000)], rights);
  const late = path.join(tmp, 'late.ndjson'), out = path.join(tmp, 'out2.ndjson');
  const r = await joinery(['run', ...src, '--max-delay', '0', '--upper', '1s', '--out', `file:${out}`, '--late-out', `file:${late}`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(s.late, 1);
  const l = JSON.parse(fs.readFileSync(late, 'utf8').trim());
  assert.equal(l.record.eventId, 'late');
  assert.equal(l.side, 'left');
  assert.ok(!fs.readFileSync(out, 'utf8').includes('"late"'));
});

test('a missing input file fails before any work, naming the file', async () => {
  const r = await joinery(['run', '--left', `file:${tmp}/nope.ndjson`, '--right', `file:${tmp}/nope2.ndjson`, '--out', 'null']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /cannot read left input .*nope\.ndjson/);
});

test('an unwritable output or state directory fails before any work', async () => {
  const src = files([imp('i1', 1000)], [play('p1', 1000)]);
  const r1 = await joinery(['run', ...src, '--out', `file:${tmp}/no/such/dir/out.ndjson`]);
  assert.equal(r1.code, 3);
  assert.match(r1.stderr, /--out .* does not exist or is not writable/);
  fs.writeFileSync(path.join(tmp, 'a-file'), '');
  const r2 = await joinery(['run', ...src.slice(0, 4), '--state-dir', path.join(tmp, 'a-file', 'sub'), '--out', 'null']);
  assert.equal(r2.code, 3);
  assert.match(r2.stderr, /--state-dir .* is not writable/);
});

test('unknown flags and bad values exit 2 naming the flag', async () => {
  const r = await joinery(['run', '--left', 'file:a', '--right', 'file:b', '--windw', '5s']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown flag --windw/);
  const r2 = await joinery(['demo', '--workers', 'lots']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--workers: expects a whole number/);
  const r3 = await joinery(['run', '--help']);
  assert.equal(r3.code, 0);
  assert.match(r3.stdout, /--max-delay DUR/);
});

test('a byte order mark before the first record and a record that is not UTF-8: every output line is readable JSON, the bad record a dead letter', async () => {
  const l = path.join(tmp, 'bom-l.ndjson'), r = path.join(tmp, 'bom-r.ndjson');
  const badUtf8 = Buffer.concat([Buffer.from('{"eventId":"i2","profileId":1,"titleId":2,"ts":1000,"device":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]);
  fs.writeFileSync(l, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(imp('i1', 1000) + '\n'), badUtf8, Buffer.from(imp('i3', 1001) + '\n')]));
  fs.writeFileSync(r, play('p1', 1500) + '\n');
  const dead = path.join(tmp, 'bom-dead.ndjson'), out = path.join(tmp, 'bom-out.ndjson');
  const res = await joinery(['run', '--left', `file:${l}`, '--right', `file:${r}`, '--state-dir', path.join(tmp, 'state'), '--join', 'full',
    '--out', `file:${out}`, '--dead-letter', `file:${dead}`, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const s = JSON.parse(res.stdout.trim().split('\n').pop()!);
  assert.equal(s.pairs, 2);
  assert.equal(s.deadLettered, 1);
  const lines = fs.readFileSync(out).toString('utf8').trim().split('\n');
  const rows = lines.map((x) => JSON.parse(x) as { left?: { eventId: string } });
  assert.deepEqual(rows.map((x) => x.left?.eventId).sort(), ['i1', 'i3']);
  const d = JSON.parse(fs.readFileSync(dead, 'utf8').trim()) as { position: number; error: string };
  assert.equal(d.position, 2);
  assert.match(d.error, /not UTF-8: byte 0xff at offset 62/);
});

test('a misspelt field flag that refuses every record of a side: one plain warning at the end naming the side and the first reason', async () => {
  const src = files([imp('i1', 1000), imp('i2', 1001)], [play('p1', 1500)]);
  const r = await joinery(['run', ...src, '--left-time', 'tss', '--out', 'null', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /every left record \(2\) was malformed, so nothing of the left input was joined; the first: missing time field \\"tss\\"/);
  assert.doesNotMatch(r.stderr, /every right record/);
  const ok = await joinery(['run', ...src, '--out', 'null', '--json']);
  assert.doesNotMatch(ok.stderr, /every (left|right) record/);
});
