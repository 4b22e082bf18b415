// `joinery backfill` end to end through the real CLI, on NDJSON and on Parquet twins of the same
// data (gen writes both from one seed):
//  - the seam: a backfill up to T, then a live `run --rebuild-from … --resume-at CUT` from the cut
//    it reports; the two outputs concatenated are judged by `joinery verify` (exit 0) and equal an
//    uninterrupted run row for row (payloads included);
//  - exactly which pairs a backfill emits: with --from F, the batch join of the records before the
//    cuts with event time ≥ F;
//  - Parquet in `run`: the same output as from NDJSON; checkpoints resume a Parquet input by row.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery, lastJson } from './cli.js';
import { readNdjson } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-backfill-'));
const f = (name: string) => path.join(tmp, name);
// 60k events at 300 events/s of event time: ~200 s, window [−5 s, 20 s], so T = t0 + 100 s has
// pairs, unmatched rows that expire before the cut and rows that expire after it.
const GEN = ['--events', '60000', '--seed', '11', '--gen-profiles', '800', '--gen-titles', '100', '--gen-event-time-rate', '300',
  '--gen-play-prob', '0.3', '--gen-play-delay', '8s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const BOUNDS = ['--lower', '-5s', '--upper', '20s', '--max-delay', '3s'];
const JOIN = [...BOUNDS, '--join', 'full'];
let t0 = 0;

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sortedLines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').sort();

interface BackfillJson { cut: { left: number; right: number; unit: string[] }; rebuildFromMs: number; complete: boolean; skipped: number }

async function backfill(L: string, R: string, out: string, extra: string[], join = JOIN): Promise<{ s: Record<string, unknown>; b: BackfillJson }> {
  const r = await joinery(['backfill', '--left', `file:${L}`, '--right', `file:${R}`, ...join, '--out', `file:${out}`, '--state-dir', f(`st-${path.basename(out)}`), '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson(r.stdout);
  return { s, b: s.backfill as BackfillJson };
}

describe('joinery backfill', () => {
  before(async () => {
    for (const ext of ['ndjson', 'parquet']) {
      const g = await joinery(['gen', ...GEN, '--left-out', f(`L.${ext}`), '--right-out', f(`R.${ext}`)]);
      assert.equal(g.code, 0, g.stderr);
    }
    t0 = readNdjson(f('L.ndjson'))[0].ts as number;
    const one = await joinery(['run', '--left', `file:${f('L.ndjson')}`, '--right', `file:${f('R.ndjson')}`, ...JOIN, '--out', `file:${f('one.ndjson')}`, '--state-dir', f('st-one')]);
    assert.equal(one.code, 0, one.stderr);
  });

  test('Parquet input in run: the same output as its NDJSON twin, payloads included', async () => {
    const r = await joinery(['run', '--left', `file:${f('L.parquet')}`, '--right', `file:${f('R.parquet')}`, ...JOIN, '--out', `file:${f('one-pq.ndjson')}`, '--state-dir', f('st-one-pq')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sortedLines(f('one-pq.ndjson')), sortedLines(f('one.ndjson')));
    // the columns are typed: int64, string and timestamp(ms)
    const { parquetMetadata } = await import('hyparquet');
    const b = fs.readFileSync(f('L.parquet'));
    const types = Object.fromEntries(parquetMetadata(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)).schema.slice(1).map((e) => [e.name, `${e.type}/${e.converted_type ?? ''}`]));
    assert.deepEqual([types.eventId, types.profileId, types.ts], ['BYTE_ARRAY/UTF8', 'INT64/', 'INT64/TIMESTAMP_MILLIS']);
  });

  for (const ext of ['ndjson', 'parquet']) {
    test(`seam (${ext}): backfill up to T + live run from its cut with --rebuild-from = one run, judged by verify`, async () => {
      const T = t0 + 100_000;
      const L = f(`L.${ext}`), R = f(`R.${ext}`);
      const { s, b } = await backfill(L, R, f(`bf-${ext}.ndjson`), ['--to', String(T)]);
      assert.ok(b.complete);
      assert.equal(b.cut.unit[0], ext === 'parquet' ? 'row' : 'byte');
      assert.ok(b.cut.left > 0 && b.cut.right > 0);
      // both halves of the unmatched-row rule are exercised: rows emitted before the cut, rows left to the live job
      assert.ok((s.pairs as number) > 100, `pairs ${s.pairs}`);
      assert.ok((s.unmatchedLeft as number) > 100, `unmatched ${s.unmatchedLeft}`);
      const bf = readNdjson(f(`bf-${ext}.ndjson`));
      for (const row of bf) for (const ts of [row.leftTs, row.rightTs]) if (ts !== null) assert.ok((ts as number) < T);
      const live = await joinery(['run', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--out', `file:${f(`live-${ext}.ndjson`)}`,
        '--state-dir', f(`st-live-${ext}`), '--rebuild-from', String(b.rebuildFromMs), '--resume-at', `${b.cut.left},${b.cut.right}`, '--json']);
      assert.equal(live.code, 0, live.stderr);
      assert.ok(((lastJson(live.stdout).rebuild as { suppressedUnmatched: number }).suppressedUnmatched) > 0);
      const seam = f(`seam-${ext}.ndjson`);
      fs.writeFileSync(seam, fs.readFileSync(f(`bf-${ext}.ndjson`), 'utf8') + fs.readFileSync(f(`live-${ext}.ndjson`), 'utf8'));
      // verify reads the backfill's own inputs (Parquet too)
      const v = await joinery(['verify', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--output', `file:${seam}`]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.deepEqual(sortedLines(seam), sortedLines(f('one.ndjson')));
    });
  }

  test('--from F --to T emits the batch join of the records before the cuts with event time ≥ F', async () => {
    const F = t0 + 50_000, T = t0 + 120_000;
    const { b } = await backfill(f('L.ndjson'), f('R.ndjson'), f('range.ndjson'), ['--from', String(F), '--to', String(T)], [...BOUNDS, '--join', 'inner']);
    assert.ok(b.complete && b.skipped > 0);
    // the inputs as the backfill defines them: up to each cut, from F on
    const slice = (file: string, cut: number, out: string) => {
      const lines = fs.readFileSync(file).subarray(0, cut).toString('utf8').split('\n').filter((l) => l !== '' && (JSON.parse(l).ts as number) >= F);
      fs.writeFileSync(out, lines.map((l) => l + '\n').join(''));
    };
    slice(f('L.ndjson'), b.cut.left, f('L-range.ndjson'));
    slice(f('R.ndjson'), b.cut.right, f('R-range.ndjson'));
    const v = await joinery(['verify', '--left', `file:${f('L-range.ndjson')}`, '--right', `file:${f('R-range.ndjson')}`, ...BOUNDS, '--join', 'inner', '--output', `file:${f('range.ndjson')}`]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(readNdjson(f('range.ndjson')).length > 100);
  });

  test('a backfill over Parquet stopped by SIGTERM resumes from its checkpoint (row positions) to the same output', async () => {
    const T = t0 + 150_000;
    const out = f('resumed.ndjson'), ck = f('ck-resume');
    const args = ['backfill', '--left', `file:${f('L.parquet')}`, '--right', `file:${f('R.parquet')}`, ...JOIN, '--to', String(T), '--out', `file:${out}`,
      '--state-dir', f('st-resume'), '--checkpoint-dir', ck, '--checkpoint-interval', '100ms', '--ring-size', '64k', '--workers', '1', '--progress', 'on', '--json'];
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let killed = false;
      // stop once the backfill is under way (its first progress record)
      child.stderr!.on('data', (d: Buffer) => { if (!killed && /"progress":true/.test(String(d))) { killed = true; child.kill('SIGTERM'); } });
      child.on('close', () => resolve());
    });
    const second = await joinery(args);
    assert.equal(second.code, 0, second.stderr);
    const s2 = lastJson(second.stdout);
    assert.ok((s2.backfill as BackfillJson).complete);
    assert.notEqual((s2.checkpoints as { restoredFrom: number | null }).restoredFrom, null, 'the second run resumed from a checkpoint');
    const whole = await backfill(f('L.parquet'), f('R.parquet'), f('whole.ndjson'), ['--to', String(T)]);
    assert.ok(whole.b.complete);
    assert.deepEqual(sortedLines(out), sortedLines(f('whole.ndjson')));
  });

  test('bad Parquet use fails before any work: a missing column (exit 2), NDJSON read as Parquet and Parquet read as NDJSON (exit 3)', async () => {
    const col = await joinery(['run', '--left', `file:${f('L.parquet')}`, '--right', `file:${f('R.parquet')}`, '--key', 'profileId,nope', '--out', 'null', '--state-dir', f('st-bad')]);
    assert.equal(col.code, 2, col.stderr);
    assert.match(col.stderr, /no Parquet column \\?"nope\\?"/);
    const asPq = await joinery(['run', '--left', `file:${f('L.ndjson')}`, '--right', `file:${f('R.ndjson')}`, '--format', 'parquet', '--out', 'null', '--state-dir', f('st-bad')]);
    assert.equal(asPq.code, 3, asPq.stderr);
    assert.match(asPq.stderr, /not a Parquet file/);
    fs.copyFileSync(f('L.parquet'), f('L-renamed.dat'));
    const asJson = await joinery(['run', '--left', `file:${f('L-renamed.dat')}`, '--right', `file:${f('R.ndjson')}`, '--out', 'null', '--state-dir', f('st-bad')]);
    assert.equal(asJson.code, 3, asJson.stderr);
    assert.match(asJson.stderr, /it is a Parquet file/);
  });
});
