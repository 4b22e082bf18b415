// The Parquet source on its own: files written with hyparquet-writer, read back through
// ParquetSource; each row's JSON text, and the key, id and time its column extractor hands the
// router, must equal what the NDJSON extractor reads from that JSON text.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer/src/node.js';
import { JsonExtractor, extractedTexts } from '../../src/codec/json.js';
import { ParquetSource } from '../../src/source/parquet.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-parquet-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Row { text: string; ok: boolean; ts?: number; key?: string; id?: string; error?: string }

async function readAll(file: string, fields = { key: ['profileId', 'titleId'], time: 'ts', id: 'eventId' }, start?: number): Promise<{ rows: Row[]; positions: number[] }> {
  const src = new ParquetSource(file, 0, fields, start === undefined ? undefined : { byte: start, line: start + 1 });
  const rows: Row[] = [], positions: number[] = [];
  const out = new Uint8Array(4096);
  for (let b = await src.next(); b; b = await src.next()) {
    for (let i = 0; i < b.count; i++) {
      const ex = b.extractor!;
      const text = Buffer.from(b.data.subarray(b.offsets[i], b.offsets[i + 1])).toString('utf8');
      positions.push(b.firstPosition + i);
      if (ex.extract(b.data, b.offsets[i], b.offsets[i + 1], out)) rows.push({ text, ok: true, ts: ex.ts, ...keyId(ex, out) });
      else rows.push({ text, ok: false, error: ex.error });
    }
  }
  await src.close();
  return { rows, positions };
}
const keyId = (ex: { keyLen: number; idLen: number }, out: Uint8Array) => { const t = extractedTexts(ex as never, out); return { key: t.keyText, id: t.idText }; };

test('int64 beyond 2^53 keeps its digits; strings are escaped as JSON; timestamps are epoch ms; key/id/time equal the NDJSON extractor on the row text', async () => {
  const file = path.join(tmp, 'a.parquet');
  const ids = ['i-1', 'quote " and \\ backslash', 'ünïcödé ☃', 'tab\there', 'i-5', 'i-6'];
  parquetWriteFile({
    filename: file, rowGroupSize: 4, columnData: [
      { name: 'eventId', data: ids, type: 'STRING' },
      { name: 'profileId', data: [1n, 9007199254740993n, -9223372036854775808n, 0n, -42n, 9223372036854775807n], type: 'INT64' },
      { name: 'titleId', data: [7n, 7n, 8n, 8n, 9n, 9n], type: 'INT64' },
      { name: 'ts', data: [1767225600123n, 1767225600124n, 5n, -1000n, 0n, 1767225600999n], type: 'TIMESTAMP' },
    ],
  });
  const { rows } = await readAll(file);
  assert.equal(rows.length, 6);
  assert.equal(rows[1].text, '{"eventId":"quote \\" and \\\\ backslash","profileId":9007199254740993,"titleId":7,"ts":1767225600124}');
  assert.equal(rows[2].text, '{"eventId":"ünïcödé ☃","profileId":-9223372036854775808,"titleId":8,"ts":5}');
  assert.equal(rows[5].text, '{"eventId":"i-6","profileId":9223372036854775807,"titleId":9,"ts":1767225600999}');
  const json = new JsonExtractor(['profileId', 'titleId'], 'ts', 'eventId');
  const out = new Uint8Array(4096);
  for (const r of rows) {
    assert.deepEqual(JSON.parse(r.text).eventId, ids[rows.indexOf(r)]);
    const b = Buffer.from(r.text);
    assert.ok(json.extract(b, 0, b.length, out), r.text);
    assert.deepEqual({ ts: r.ts, key: r.key, id: r.id }, { ts: json.ts, ...keyId(json, out) }, r.text);
  }
});

test('a null key, id or time is refused with the NDJSON extractor\'s reason; other nulls are JSON null', async () => {
  const file = path.join(tmp, 'nulls.parquet');
  parquetWriteFile({
    filename: file, columnData: [
      { name: 'eventId', data: ['a', null, 'c', 'd'], type: 'STRING', nullable: true },
      { name: 'profileId', data: [1n, 2n, null, 4n], type: 'INT64', nullable: true },
      { name: 'titleId', data: [1n, 2n, 3n, 4n], type: 'INT64' },
      { name: 'ts', data: [10n, 11n, 12n, null], type: 'TIMESTAMP', nullable: true },
      { name: 'note', data: [null, 'x', null, null], type: 'STRING', nullable: true },
    ],
  });
  const { rows } = await readAll(file);
  assert.equal(rows[0].text, '{"eventId":"a","profileId":1,"titleId":1,"ts":10,"note":null}');
  assert.ok(rows[0].ok);
  assert.deepEqual(rows.slice(1).map((r) => [r.ok, r.error]), [
    [false, 'missing or non-scalar id field "eventId"'],
    [false, 'missing or non-scalar key field "profileId"'],
    [false, 'missing time field "ts"'],
  ]);
});

test('several row groups, plain and dictionary columns, micro-second timestamps; a start row resumes mid-group', async () => {
  const file = path.join(tmp, 'many.parquet');
  const n = 10_000;
  const us = Array.from({ length: n }, (_, i) => BigInt(1767225600000 + i) * 1000n + 999n);
  parquetWriteFile({
    filename: file, rowGroupSize: 3_000, columnData: [
      { name: 'eventId', data: Array.from({ length: n }, (_, i) => `e-${i}`) },
      { name: 'profileId', data: Array.from({ length: n }, (_, i) => BigInt(i % 7)) },
      { name: 'titleId', data: Array.from({ length: n }, (_, i) => BigInt(i)) },
      { name: 'ts', data: us },
    ],
    schema: [
      { name: 'root', num_children: 4 },
      { name: 'eventId', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'profileId', type: 'INT64', repetition_type: 'REQUIRED' },
      { name: 'titleId', type: 'INT64', repetition_type: 'REQUIRED' },
      { name: 'ts', type: 'INT64', converted_type: 'TIMESTAMP_MICROS', repetition_type: 'REQUIRED' },
    ],
  });
  const all = await readAll(file);
  assert.equal(all.rows.length, n);
  assert.deepEqual(all.positions, Array.from({ length: n }, (_, i) => i));
  assert.equal(all.rows[4321].text, `{"eventId":"e-4321","profileId":${4321 % 7},"titleId":4321,"ts":${1767225600000 + 4321}}`);
  assert.equal(all.rows[4321].key, `[${4321 % 7},4321]`);
  assert.equal(all.rows[4321].id, '"e-4321"');
  const resumed = await readAll(file, undefined, 4500);
  assert.deepEqual(resumed.positions[0], 4500);
  assert.deepEqual(resumed.rows.map((r) => r.text), all.rows.slice(4500).map((r) => r.text));
});
