// `joinery verify` out of core: with a --max-memory far below the data it partitions everything
// into spill files, and its report is the one it gives in memory; the spill files go at the end,
// and on SIGTERM/SIGINT mid-run. The data set is the reference join's output, tampered with.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery, lastJson } from './cli.js';
import { readNdjson, referenceJoin } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-verify-spill-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson');
const WINDOW = ['--lower', '-2s', '--upper', '1m'];
const BUDGET = '256k';
const KINDS = ['inner', 'left', 'right', 'full'] as const;
const outOf = (kind: string) => path.join(tmp, `ref-${kind}.ndjson`);

before(async () => {
  // no skew: a key hotter than a partition's share of the budget cannot be split (README, Verify)
  const g = await joinery(['gen', '--events', '60000', '--gen-profiles', '3000', '--gen-titles', '20', '--gen-skew', '0', '--gen-play-delay', '20s',
    '--gen-duplicates', '0.02', '--gen-disorder', '2s', '--left-out', L, '--right-out', R]);
  assert.equal(g.code, 0, g.stderr);
  const left = readNdjson(L), right = readNdjson(R);
  for (const kind of KINDS) {
    const rows = referenceJoin(left, right, { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -2000, upperMs: 60_000, kind });
    fs.writeFileSync(outOf(kind), rows.map((c) => {
      const [leftId, rightId, key, leftTs, rightTs, l, r] = JSON.parse(c);
      return JSON.stringify({ leftId, rightId, key, leftTs, rightTs, left: l, right: r });
    }).join('\n') + '\n');
  }
});

async function verify(out: string, kind: string, extra: string[] = []) {
  const r = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', `file:${out}`, '--join', kind, ...WINDOW, '--json', ...extra]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, report: lastJson(r.stdout) as any };
}

/** The report without what depends on how it was computed (time, partitions, spill). */
function comparable(r: any) {
  const { elapsedMs, inputEventsPerSec, cpuUsPerEvent, phasesMs, spill, ...rest } = r;
  return rest;
}

async function inMemoryAndSpilled(out: string, kind: string) {
  const mem = await verify(out, kind);
  const spillDir = fs.mkdtempSync(path.join(tmp, 'spill-'));
  const spilled = await verify(out, kind, ['--max-memory', BUDGET, '--spill-dir', spillDir]);
  assert.equal(mem.report.spill.spilledBytes, 0);
  const dataBytes = fs.statSync(L).size + fs.statSync(R).size + fs.statSync(out).size;
  assert.ok(dataBytes > 20 * 256 * 1024, `the data set (${dataBytes} bytes) is not many times the budget`);
  assert.ok(spilled.report.spill.spilledBytes > 10 * 256 * 1024 && spilled.report.spill.partitions >= 32, JSON.stringify(spilled.report.spill));
  assert.ok(spilled.report.spill.largestPartitionBytes < 256 * 1024, JSON.stringify(spilled.report.spill));
  assert.deepEqual(fs.readdirSync(spillDir), [], 'spill files left behind');
  assert.equal(spilled.code, mem.code);
  assert.deepEqual(comparable(spilled.report), comparable(mem.report));
  return mem;
}

test('verify with a --max-memory far below the data spills, agrees with the reference join for every kind, and gives the in-memory report', async () => {
  for (const kind of KINDS) {
    const { code, report } = await inMemoryAndSpilled(outOf(kind), kind);
    assert.equal(code, 0, `${kind}: ${JSON.stringify(report).slice(0, 600)}`);
    assert.equal(report.expected, fs.readFileSync(outOf(kind), 'utf8').split('\n').filter(Boolean).length);
    if (kind === 'full') {
      // three threads split the files into three chunks: lines and lateness still count from the file's start
      const three = await verify(outOf(kind), kind, ['--threads', '3']);
      assert.equal(three.report.spill.threads, 3);
      assert.deepEqual(comparable(three.report), comparable(report));
    }
  }
});

test('spilled and in memory, verify catches a dropped, an extra and a duplicated pair and a wrong outer row with the same examples', async () => {
  const rows = fs.readFileSync(outOf('full'), 'utf8').split('\n').filter(Boolean);
  const pairs = rows.map((l, i) => [l, i] as const).filter(([l]) => !l.includes('"leftId":null') && !l.includes('"rightId":null'));
  const unmatchedRight = rows.findIndex((l) => l.startsWith('{"leftId":null'));
  const [dropped, twice] = [pairs[100][1], pairs[200][1]]; // both before the insertion point
  // a wrong outer row: the left event of a pair as unmatched
  const p = JSON.parse(pairs[500][0]);
  const wrongOuter = JSON.stringify({ leftId: p.leftId, rightId: null, key: p.key, leftTs: p.leftTs, rightTs: null, left: p.left, right: null });
  // an extra pair: two events of the same key outside the bounds
  const q = JSON.parse(pairs[700][0]);
  const extraPair = JSON.stringify({ ...q, rightTs: q.rightTs, leftTs: q.leftTs - 3_600_000 });
  const tampered = rows.filter((_, i) => i !== dropped && i !== unmatchedRight);
  tampered.splice(5000, 0, rows[twice], wrongOuter, extraPair);
  const bad = path.join(tmp, 'tampered.ndjson');
  fs.writeFileSync(bad, tampered.join('\n') + '\n');
  const { code, report: j } = await inMemoryAndSpilled(bad, 'full');
  assert.equal(code, 1);
  assert.deepEqual([j.missing, j.extra, j.duplicated, j.got], [2, 2, 1, rows.length + 1]);
  const d = JSON.parse(rows[dropped]);
  assert.deepEqual(j.examples.missing.map((m: any) => [m.leftId, m.rightId]).sort(),
    [[JSON.stringify(d.leftId), JSON.stringify(d.rightId)], [null, JSON.stringify(JSON.parse(rows[unmatchedRight]).rightId)]].sort());
  assert.deepEqual(j.examples.duplicated.map((x: any) => [x.outputLine, x.got]), [[5001, 2]]);
  assert.deepEqual(j.examples.extra.map((x: any) => x.outputLine), [5002, 5003]);
  assert.match(j.examples.extra[0].cause, /unmatched row for a left event that joins/);
  assert.match(j.examples.extra[1].cause, /^not in the input: no left event/);
});

test('verify removes the spill directory a killed verify left behind (its pid is gone), not those of live ones', async () => {
  const spillDir = fs.mkdtempSync(path.join(tmp, 'spill-stale-'));
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => gone.on('exit', r));
  const stale = path.join(spillDir, `joinery-verify-${gone.pid}-abc123`), live = path.join(spillDir, `joinery-verify-${process.pid}-abc123`);
  for (const d of [stale, live]) { fs.mkdirSync(d); fs.writeFileSync(path.join(d, 's0-w0-1'), 'x'); }
  const r = await verify(outOf('inner'), 'inner', ['--spill-dir', spillDir]);
  assert.equal(r.code, 0);
  assert.deepEqual(fs.readdirSync(spillDir), [path.basename(live)]);
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`verify removes its spill files on ${sig} mid-run and ends with 128 + the signal's number`, async () => {
    // a larger input (the left file five times: re-deliveries) so that the run lasts
    const big = path.join(tmp, 'big-l.ndjson');
    if (!fs.existsSync(big)) fs.writeFileSync(big, Buffer.concat(Array(5).fill(fs.readFileSync(L))));
    const spillDir = fs.mkdtempSync(path.join(tmp, 'spill-sig-'));
    const child = spawn(process.execPath, [BIN, 'verify', '--left', `file:${big}`, '--right', `file:${R}`, '--output', `file:${outOf('full')}`,
      '--join', 'full', ...WINDOW, '--max-memory', BUDGET, '--spill-dir', spillDir, '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const spillFiles = () => fs.readdirSync(spillDir).flatMap((d) => { try { return fs.readdirSync(path.join(spillDir, d)); } catch { return []; } });
    const t0 = Date.now();
    while (spillFiles().length === 0) {
      assert.ok(Date.now() - t0 < 60_000, `no spill files after 60 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill(sig);
    assert.equal(await exit, 128 + os.constants.signals[sig], stderr);
    assert.deepEqual(fs.readdirSync(spillDir), []);
  });
}
