// `joinery verify` on Parquet inputs through the real CLI: the same report as on the NDJSON twin
// `gen` writes from the same seed — equal, and a dropped and a duplicated row found at the same
// records — also when a file has many row groups (split between the threads), and int64 keys
// beyond 2^53 keep their exact digits as in `run`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';
import { readNdjson } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-verify-parquet-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => path.join(tmp, name);
const GEN = ['--events', '20000', '--seed', '23', '--gen-profiles', '500', '--gen-titles', '40', '--gen-event-time-rate', '300',
  '--gen-play-delay', '8s', '--gen-disorder', '2s', '--gen-duplicates', '0.02'];
const JOIN = ['--lower', '-5s', '--upper', '20s', '--max-delay', '3s', '--join', 'full'];

/**
 * A Parquet copy of NDJSON records with small row groups, typed as gen types them: integers INT64,
 * `ts` TIMESTAMP (ms), the rest STRING.
 */
async function writeParquet(records: Array<Record<string, unknown>>, file: string, rowGroupSize: number): Promise<void> {
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  const names = Object.keys(records[0]);
  const columnData = names.map((name) => {
    const data = records.map((r) => (typeof r[name] === 'number' || typeof r[name] === 'bigint' ? BigInt(r[name] as number) : r[name]));
    return { name, data, type: name === 'ts' ? 'TIMESTAMP' as const : typeof data[0] === 'bigint' ? 'INT64' as const : 'STRING' as const, nullable: false };
  });
  fs.writeFileSync(file, Buffer.from(parquetWriteBuffer({ columnData, rowGroupSize } as never)));
}

/** The report without what differs between runs and file names. */
function comparable(r: Record<string, unknown>): Record<string, unknown> {
  const { elapsedMs: _e, inputEventsPerSec: _i, cpuUsPerEvent: _c, phasesMs: _p, spill: _s, inputs, ...rest } = r as Record<string, any>;
  return { ...rest, left: { ...inputs.left, file: undefined }, right: { ...inputs.right, file: undefined } };
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

before(async () => {
  for (const ext of ['ndjson', 'parquet']) {
    const g = await joinery(['gen', ...GEN, '--left-out', f(`L.${ext}`), '--right-out', f(`R.${ext}`)]);
    assert.equal(g.code, 0, g.stderr);
  }
  // many row groups, of uneven counts per thread
  await writeParquet(readNdjson(f('L.ndjson')) as Array<Record<string, unknown>>, f('L-groups.parquet'), 1700);
  await writeParquet(readNdjson(f('R.ndjson')) as Array<Record<string, unknown>>, f('R-groups.parquet'), 900);
  const r = await joinery(['run', '--left', `file:${f('L.ndjson')}`, '--right', `file:${f('R.ndjson')}`, ...JOIN, '--out', `file:${f('out.ndjson')}`, '--state', 'memory']);
  assert.equal(r.code, 0, r.stderr);
});

const PAIRS: Array<[string, string]> = [['L.ndjson', 'R.ndjson'], ['L.parquet', 'R.parquet'], ['L-groups.parquet', 'R-groups.parquet']];

async function verifyAll(output: string, extra: string[] = []): Promise<Array<{ code: number; report: Record<string, any> }>> {
  const out: Array<{ code: number; report: Record<string, any> }> = [];
  for (const [l, r] of PAIRS) {
    const v = await joinery(['verify', '--left', `file:${f(l)}`, '--right', `file:${f(r)}`, ...JOIN, '--output', `file:${output}`, '--json', '--examples', '3', ...extra]);
    assert.ok(v.code === 0 || v.code === 1, `${l}: exit ${v.code}: ${v.stderr}`);
    out.push({ code: v.code, report: lastJson(v.stdout) as Record<string, any> });
  }
  return out;
}

test('verify on Parquet inputs: equal, with the same report as on the NDJSON twin (one and many row groups)', async () => {
  const all = await verifyAll(f('out.ndjson'));
  for (const [i, v] of all.entries()) assert.equal(v.code, 0, `${PAIRS[i][0]}: ${JSON.stringify(v.report)}`);
  const [nd, ...pq] = all;
  assert.ok(nd.report.expectedPairs > 1000 && nd.report.inputs.left.redeliveries > 0, JSON.stringify(nd.report));
  for (const v of pq) assert.deepEqual(comparable(v.report), comparable(nd.report));
  assert.equal(pq[1].report.inputs.left.file, f('L-groups.parquet'));
});

test('verify on Parquet inputs finds a dropped and a duplicated row at the same records as on NDJSON (exit 1)', async () => {
  const rows = lines(f('out.ndjson'));
  const pair = rows.findIndex((l) => !l.includes('null'));
  const bad = f('bad.ndjson');
  fs.writeFileSync(bad, [...rows.slice(0, pair), ...rows.slice(pair + 1), rows[rows.length - 1]].join('\n') + '\n');
  const all = await verifyAll(bad, ['--threads', '3']);
  const [nd, ...pq] = all;
  for (const v of all) {
    assert.equal(v.code, 1);
    assert.equal(v.report.missing, 1);
    assert.equal(v.report.duplicated, 1);
  }
  const dropped = JSON.parse(rows[pair]);
  assert.equal(nd.report.examples.missing[0].leftId, JSON.stringify(dropped.leftId));
  assert.ok(nd.report.examples.missing[0].leftLine > 0);
  for (const v of pq) assert.deepEqual(comparable(v.report), comparable(nd.report));
});

test('verify on Parquet: int64 keys beyond 2^53 keep their exact digits, as in run', async () => {
  // 2^53 + 1 and 2^53 + 2 are one double: read as numbers they would make one key, and pairs that run does not emit
  const big = ['9007199254740993', '9007199254740994'];
  const left = big.map((k, i) => `{"eventId":"l${i}","profileId":${k},"titleId":7,"ts":${1_000_000 + i}}`);
  const right = [`{"eventId":"r0","profileId":${big[0]},"titleId":7,"ts":1001000}`, `{"eventId":"r1","profileId":${big[1]},"titleId":7,"ts":1001500}`,
    `{"eventId":"r2","profileId":${big[1]},"titleId":7,"ts":1002000}`];
  fs.writeFileSync(f('bl.ndjson'), left.join('\n') + '\n');
  fs.writeFileSync(f('br.ndjson'), right.join('\n') + '\n');
  const parse = (l: string) => JSON.parse(l.replace(/"profileId":(\d+)/, '"profileId":"$1"'), (k, v) => (k === 'profileId' ? BigInt(v) : v));
  await writeParquet(left.map(parse), f('bl.parquet'), 1);
  await writeParquet(right.map(parse), f('br.parquet'), 2);
  const W = ['--lower', '0s', '--upper', '10s', '--max-delay', '0s'];
  const run = await joinery(['run', '--left', `file:${f('bl.ndjson')}`, '--right', `file:${f('br.ndjson')}`, ...W, '--out', `file:${f('big.ndjson')}`, '--state', 'memory']);
  assert.equal(run.code, 0, run.stderr);
  const out = readNdjson(f('big.ndjson'));
  assert.equal(out.length, 3);
  assert.ok(lines(f('big.ndjson')).every((l) => l.includes(big[0]) || l.includes(big[1])), lines(f('big.ndjson')).join('\n'));
  const v = await joinery(['verify', '--left', `file:${f('bl.parquet')}`, '--right', `file:${f('br.parquet')}`, ...W, '--output', `file:${f('big.ndjson')}`, '--json']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.equal((lastJson(v.stdout) as any).expectedPairs, 3);
});
