/**
 * OffsetFetch v6/v7 (patch offset-fetch-stable, src/kafka/kafkajs/offset-fetch.ts) byte for byte:
 * the request kafkajs's request table now builds, and the decoding of a v7 answer (including
 * UNSTABLE_OFFSET_COMMIT, which the stable read retries). Against the broker:
 * test/kafka/stable-offsets.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import '../../src/kafka/kafkajs/patches.js'; // kafkajs loaded with the patches
import { REQUIRE_STABLE, type OffsetFetchResponse } from '../../src/kafka/kafkajs/offset-fetch.js';

const req = createRequire(import.meta.url);
type Built = { request: { apiVersion: number; encode(): Promise<{ buffer: Buffer }> }; response: { decode(b: Buffer): Promise<OffsetFetchResponse>; parse(d: OffsetFetchResponse): Promise<OffsetFetchResponse> } };
const { requests } = req('kafkajs/src/protocol/requests/index.js') as { requests: { OffsetFetch: { versions: string[]; protocol(a: { version: number }): (args: unknown) => Built } } };
const OffsetFetch = requests.OffsetFetch;
const topics = () => [{ topic: 't', partitions: [{ partition: 0 }, { partition: 3 }] }];
const stableTopics = () => Object.assign(topics(), { [REQUIRE_STABLE]: true });
const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return [...b]; };
const i64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return [...b]; };
const i16 = (v: number) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return [...b]; };
const str = (s: string) => [s.length + 1, ...Buffer.from(s)];

test('kafkajs\'s request table offers OffsetFetch v6 and v7; a broker\'s version 5 gets v4, anything above 7 gets v7', async () => {
  assert.deepEqual(OffsetFetch.versions, ['1', '2', '3', '4', '6', '7']);
  const version = async (v: number) => OffsetFetch.protocol({ version: v })({ groupId: 'g', topics: topics() }).request.apiVersion;
  assert.equal(await version(4), 4);
  assert.equal(await version(5), 4);
  assert.equal(await version(6), 6);
  assert.equal(await version(7), 7);
  assert.equal(await version(10), 7);
});

test('OffsetFetch v7 encodes compact fields, tag buffers and require_stable (true only when asked for)', async () => {
  const body = (stable: number) => [
    0, // request header tag buffer
    ...str('g'),
    2, ...str('t'), 3, ...i32(0), ...i32(3), 0, // one topic, two partitions, its tag buffer
    stable, 0,
  ];
  const enc = async (t: unknown, v = 7) => [...(await OffsetFetch.protocol({ version: v })({ groupId: 'g', topics: t }).request.encode()).buffer];
  assert.deepEqual(await enc(stableTopics()), body(1));
  assert.deepEqual(await enc(topics()), body(0));
  // v6: the same without require_stable; all topics (null) is a null compact array
  assert.deepEqual(await enc(stableTopics(), 6), body(1).slice(0, -2).concat([0]));
  assert.deepEqual(await enc(null), [0, ...str('g'), 0, 0, 0]);
});

test('OffsetFetch v7 decodes offsets and metadata, says whether the read was stable, and parse throws UNSTABLE_OFFSET_COMMIT', async () => {
  const answer = (errorCode: number) => Buffer.from([
    0, ...i32(0), // header tag buffer, throttle time
    2, ...str('t'), 3,
    ...i32(0), ...i64(42), ...i32(-1), ...str('ckpt-42'), ...i16(0), 0,
    ...i32(3), ...i64(-1), ...i32(-1), 0 /* null metadata */, ...i16(errorCode), 0,
    0, // topic tag buffer
    ...i16(0), 0,
  ]);
  const stable = OffsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: stableTopics() }).response;
  const d = await stable.decode(answer(0));
  assert.equal(d.requireStable, true);
  assert.deepEqual(d.responses, [{ topic: 't', partitions: [
    { partition: 0, offset: '42', metadata: 'ckpt-42', errorCode: 0 },
    { partition: 3, offset: '-1', metadata: null, errorCode: 0 },
  ] }]);
  assert.equal(await stable.parse(d), d);
  await assert.rejects(stable.parse(await stable.decode(answer(88))), (e: { type?: string; retriable?: boolean }) => e.type === 'UNSTABLE_OFFSET_COMMIT' && e.retriable === true);
  const plain = OffsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: topics() }).response;
  assert.equal((await plain.decode(answer(0))).requireStable, false);
});
