// joinery backfill in pieces: its flags' validation, the batch bound (cut, records before --from,
// a Kafka batch's next offset at the cut) and the unmatched-row rule at the cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/config/parse.js';
import { JoineryError } from '../../src/core/errors.js';
import { JsonExtractor } from '../../src/codec/json.js';
import { boundBatch } from '../../src/backfill/bounded.js';
import { CutEmitter } from '../../src/sink/cut-emitter.js';
import type { RecordBatch } from '../../src/source/source.js';

const files = ['--left', 'file:a.ndjson', '--right', 'file:b.ndjson'];
function usageErr(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof JoineryError && e.code === 'E_USAGE' && re.test(e.message), String(re));
}

test('backfill flags: --to is required and after --from; inputs of one kind; Kafka sinks with Kafka inputs only', () => {
  const c = parseArgs('backfill', [...files, '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z', '--format', 'parquet']);
  assert.equal(c.to, '2026-01-02T00:00:00Z');
  assert.equal(c.format as string, 'parquet');
  usageErr(() => parseArgs('backfill', files), /--to TIME is required/);
  usageErr(() => parseArgs('backfill', [...files, '--from', '2000', '--to', '1000']), /--from \(2000\) must be before --to/);
  usageErr(() => parseArgs('backfill', [...files, '--to', 'tomorrow']), /--to: expected an ISO-8601 time/);
  usageErr(() => parseArgs('backfill', ['--left', 'file:a', '--right', 'kafka:b', '--brokers', 'h:1', '--to', '5']), /same kind/);
  usageErr(() => parseArgs('backfill', ['--left', 'gen:', '--right', 'gen:', '--to', '5']), /backfill reads files .* or Kafka topics/);
  const kafka = ['--left', 'kafka:a', '--right', 'kafka:b', '--brokers', 'h:1', '--to', '5'];
  assert.equal(parseArgs('backfill', kafka).group, 'joinery');
  const eo = parseArgs('backfill', [...kafka, '--checkpoint-dir', 'ck', '--out', 'kafka:o', '--out-format', 'json']);
  assert.deepEqual([eo.checkpointDir, eo.out, eo.outFormat, eo.delivery], ['ck', 'kafka:o', 'json', 'exactly-once']);
  usageErr(() => parseArgs('backfill', [...files, '--to', '5', '--brokers', 'h:1', '--out', 'kafka:o']), /a backfill from files writes files, stdout or null/);
  usageErr(() => parseArgs('backfill', [...kafka, '--format', 'parquet']), /--format parquet is for file inputs/);
  usageErr(() => parseArgs('verify', ['--left', 'kafka:a', '--right', 'kafka:b', '--brokers', 'h:1', '--output', 'file:o', '--format', 'parquet']), /--format parquet is for file inputs/);
  assert.equal(parseArgs('verify', [...files, '--output', 'file:o', '--format', 'parquet']).format as string, 'parquet');
  usageErr(() => parseArgs('backfill', [...files, '--to', '5', '--rebuild-from', '1']), /unknown flag|--rebuild-from/);
  usageErr(() => parseArgs('run', ['--left', 'kafka:a', '--right', 'kafka:b', '--brokers', 'h:1', '--format', 'parquet']), /--format parquet is for file inputs/);
});

function ndjsonBatch(lines: string[], extra: Partial<RecordBatch> = {}): RecordBatch {
  const text = lines.map((l) => l + '\n').join('');
  const data = Buffer.from(text);
  const offsets = new Uint32Array(lines.length + 1);
  let p = 0;
  lines.forEach((l, i) => { offsets[i] = p; p += Buffer.byteLength(l) + 1; });
  offsets[lines.length] = p;
  return { side: 0, partition: 0, format: 'json', data, offsets, count: lines.length, firstPosition: 1, firstByte: 0, origin: 't', lineDelimited: true, ...extra };
}
const rec = (id: number, ts: number) => `{"eventId":"e${id}","profileId":1,"titleId":2,"ts":${ts}}`;
const ex = () => new JsonExtractor(['profileId', 'titleId'], 'ts', 'eventId');
const track = () => ({ maxTsMs: -Infinity, firstTsMs: NaN, routed: 0, skipped: 0 });

test('the cut is the first record at or after --to, in arrival order; earlier ones after it are not routed', () => {
  const b = ndjsonBatch([rec(1, 100), rec(2, 105), rec(3, 112), rec(4, 108), rec(5, 120)]);
  const t = track();
  const r = boundBatch(b, ex(), -Infinity, 110, t);
  assert.equal(r.cut, 2);
  assert.equal(r.batch!.count, 2);
  assert.equal(r.batch!.data, b.data); // a prefix: no copy
  assert.equal(t.maxTsMs, 105);
  assert.equal(t.routed, 2);
  const none = boundBatch(b, ex(), -Infinity, 1000, track());
  assert.equal(none.cut, -1);
  assert.equal(none.batch, b);
});

test('records before --from are taken out (copied around), their positions kept for error reports; a malformed record passes for the router', () => {
  const b = ndjsonBatch([rec(1, 90), rec(2, 101), 'not json', rec(4, 95), rec(5, 102)]);
  const t = track();
  const r = boundBatch(b, ex(), 100, 200, t);
  assert.equal(r.cut, -1);
  assert.equal(t.skipped, 2);
  const out = r.batch!;
  assert.equal(out.count, 3);
  assert.deepEqual([...out.recordOffsets!], [2, 3, 5]);
  const text = (i: number) => Buffer.from(out.data.subarray(out.offsets[i], out.offsets[i + 1])).toString().trim();
  assert.deepEqual([0, 1, 2].map(text), [rec(2, 101), 'not json', rec(5, 102)]);
  assert.equal(out.firstByte, undefined);
  assert.equal(t.maxTsMs, 102);
});

test('a Kafka batch cut in the middle says the cut as its next offset', () => {
  const b = ndjsonBatch([rec(1, 100), rec(2, 130), rec(3, 101)], { firstPosition: 40, firstByte: undefined, lineDelimited: false });
  b.logPosition = { topic: 't', partition: 0, offset: '43' };
  const r = boundBatch(b, ex(), -Infinity, 120, track());
  assert.equal(r.cut, 1);
  assert.equal(r.batch!.logPosition!.offset, '41');
  assert.equal(b.logPosition.offset, '43', 'the input batch is left as it was');
});

test('at the cut, unmatched rows expiring at or after W_cut are left to the continuing job; pairs always pass', () => {
  const seen: string[] = [];
  const inner = {
    pair: () => { seen.push('pair'); },
    unmatched: (side: number, _k: Uint8Array, _i: Uint8Array, ts: number) => { seen.push(`${side}@${ts}`); },
  };
  const e = new CutEmitter(inner, -5, 20); // left expires at ts + 20, right at ts + 5
  const none = new Uint8Array(0);
  e.unmatched(0, none, none, 1000, none); // before REPLAY_END: everything passes
  e.end(100);
  e.unmatched(0, none, none, 79, none);   // expires 99 < 100: the backfill's
  e.unmatched(0, none, none, 80, none);   // expires 100: the live job's
  e.unmatched(1, none, none, 94, none);   // expires 99
  e.unmatched(1, none, none, 95, none);   // expires 100
  e.pair(none, none, 1, none, none, 2, none);
  assert.deepEqual(seen, ['0@1000', '0@79', '1@94', 'pair']);
  assert.deepEqual(e.suppressed.unmatched, [1, 1]);
});
