// Checkpoint manifests (src/checkpoint/manifest.ts): encode/decode and what decode refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadManifest, decodeManifest, encodeManifest, MANIFEST_FORMAT, MANIFEST_FORMATS_READ, type Manifest } from '../../src/checkpoint/manifest.js';

function sample(): Manifest {
  return {
    format: MANIFEST_FORMAT, id: 42, createdAtMs: 1_700_000_000_000,
    job: { join: 'full', lowerMs: -10_000, upperMs: 90_000, keys: [['profileId', 'titleId'], ['profileId', 'titleId']] },
    sources: [
      { kind: 'file', name: 'file:/in/l.ndjson', file: { byte: 1234, line: 17 } },
      { kind: 'log', name: 'kafka:a+b', log: [{ topic: 'a', partition: 0, offset: '9007199254740993' }] },
    ],
    router: { watermarkMs: -Infinity, partitions: [{ side: 0, partition: 0, maxTsMs: -Infinity, ended: false }, { side: 1, partition: 0, maxTsMs: 5000, ended: true }] },
    output: { spec: 'file:/out/o.ndjson', lengthBytes: 987654 },
    workers: [{ keyGroups: [0, 512], watermarkMs: Infinity }, { keyGroups: [512, 1024], watermarkMs: 4000.5 }],
    files: [
      { name: 'r1-c3-kg0-512.base', kind: 'base', keyGroups: [0, 512], bytes: 16, checksum: 'crc32:0a1b2c3d' },
      { name: 'r1-w1-000004.delta', kind: 'delta', keyGroups: [512, 1024], bytes: 4096, checksum: 'sha256:' + 'b'.repeat(64), expireAtMaxMs: [null, 1_700_000_090_000] },
    ],
    stats: { stateBytes: 4112, newBytes: 4096, durationMs: 12 },
  };
}

test('round trip, ±Infinity watermarks included', () => {
  const m = sample();
  const text = encodeManifest(m);
  assert.ok(text.endsWith('\n'));
  const back = decodeManifest(text, 'm');
  assert.deepEqual(back, m);
  assert.equal(back.router.watermarkMs, -Infinity);
  assert.equal(back.router.partitions[0].maxTsMs, -Infinity);
  assert.equal(back.workers[0].watermarkMs, Infinity);
  // Without the trailing newline too (a manifest read through some other tool).
  assert.deepEqual(decodeManifest(text.trimEnd(), 'm'), m);
});

test('a file\'s expiry bound that is malformed is dropped on reading (the file is then kept, never dropped early); a well-formed one is kept', () => {
  for (const bad of [[1, 2, 3], ['5', null], [Infinity, null], 'x', [null]]) {
    const m = sample();
    (m.files[0] as { expireAtMaxMs?: unknown }).expireAtMaxMs = bad;
    const back = decodeManifest(encodeManifest(m), 'm');
    assert.equal(back.files[0].expireAtMaxMs, undefined, JSON.stringify(bad));
    assert.deepEqual(back.files[1].expireAtMaxMs, [null, 1_700_000_090_000]);
  }
});

test('a changed byte fails the checksum', () => {
  const text = encodeManifest(sample());
  const changed = text.replace('"lengthBytes":987654', '"lengthBytes":987655');
  assert.notEqual(changed, text);
  assert.throws(() => decodeManifest(changed, 'ckpt 42'), (e: Error) => e instanceof BadManifest && /^ckpt 42: checksum mismatch/.test(e.message));
});

test('torn text is refused, wherever it is cut', () => {
  const text = encodeManifest(sample());
  for (const n of [0, 1, 10, 80, text.length >> 1, text.length - 3, text.length - 2]) {
    assert.throws(() => decodeManifest(text.slice(0, n), 'ckpt 42'), BadManifest, `cut at ${n}`);
  }
  assert.throws(() => decodeManifest('', 'x'), /x: torn or not a manifest/);
  assert.throws(() => decodeManifest('{"sha256":"00', 'x'), /torn or not a manifest/);
  assert.throws(() => decodeManifest('not json at all', 'x'), /torn or not a manifest/);
});

test('another format version is refused, with the versions named', () => {
  const m = { ...sample(), format: MANIFEST_FORMAT + 1 };
  assert.throws(() => decodeManifest(encodeManifest(m), 'ckpt 42'),
    (e: Error) => e instanceof BadManifest && e.message === `ckpt 42: format ${MANIFEST_FORMAT + 1}, this joinery reads 1, 2, 3, 4`);
  assert.deepEqual([...MANIFEST_FORMATS_READ], [1, 2, 3, 4]);
});

test('a stop checkpoint (in-flight files) round-trips', () => {
  const m = { ...sample(), inflight: [{ name: 'r1-w0-000003.inflight', keyGroups: [0, 64] as [number, number], bytes: 4096, checksum: 'crc32:00ff00ff', events: 17 }] };
  assert.deepEqual(decodeManifest(encodeManifest(m), 'ckpt 3').inflight, m.inflight);
});

test('new manifests are format 4 (version-2 change records) and name the checksum algorithm: older joineries refuse them instead of taking every file for corrupt', () => {
  const text = encodeManifest(sample());
  assert.equal(MANIFEST_FORMAT, 4);
  assert.match(text, /"format":4,/);
  assert.match(text, /"checksum":"crc32:0a1b2c3d"/);
  assert.equal(text.indexOf('"sha256"', 2), -1, 'no file carries the old field (only the manifest\'s own checksum, first)');
});

test('manifests written before format 3 (a sha256 per file, in-flight files in format 2) are read: the checksum is SHA-256', () => {
  const old = (format: number) => {
    const m = sample() as unknown as Record<string, unknown>;
    m.format = format;
    m.files = [{ name: 'a.delta', kind: 'delta', keyGroups: [0, 1024], bytes: 7, sha256: 'c'.repeat(64) }];
    if (format === 2) m.inflight = [{ name: 'w0.inflight', keyGroups: [0, 64], bytes: 9, sha256: 'd'.repeat(64), events: 2 }];
    return encodeManifest(m as unknown as Manifest);
  };
  const one = decodeManifest(old(1), 'ckpt 1');
  assert.deepEqual(one.files, [{ name: 'a.delta', kind: 'delta', keyGroups: [0, 1024], bytes: 7, checksum: 'sha256:' + 'c'.repeat(64) }]);
  const two = decodeManifest(old(2), 'ckpt 2');
  assert.deepEqual(two.inflight, [{ name: 'w0.inflight', keyGroups: [0, 64], bytes: 9, checksum: 'sha256:' + 'd'.repeat(64), events: 2 }]);
});

test('a file whose checksum cannot be verified (missing, unknown algorithm, malformed) refuses the manifest rather than skip verification', () => {
  for (const checksum of [undefined, 'md5:' + '0'.repeat(32), 'crc32:123', 'crc32:0A1B2C3D', 'xxh3:0011223344556677']) {
    const m = sample();
    (m.files[0] as { checksum?: string }).checksum = checksum;
    assert.throws(() => decodeManifest(encodeManifest(m), 'ckpt 42'),
      (e: Error) => e instanceof BadManifest && e.message.startsWith('ckpt 42: file r1-c3-kg0-512.base has no checksum this joinery can verify'), String(checksum));
  }
  // A format-1 manifest without its sha256 field is refused too.
  const m = sample() as unknown as { format: number; files: Array<Record<string, unknown>> };
  m.format = 1;
  delete m.files[0].checksum;
  assert.throws(() => decodeManifest(encodeManifest(m as unknown as Manifest), 'ckpt 42'), /has no checksum this joinery can verify/);
});

/** A group member's manifest exactly as release 51919b4 wrote it (encodeManifest there), byte for byte. */
const WRITTEN_BY_51919B4 = '{"sha256":"c19b28a2c4895bb1dcf2ae333767f6fb8bb7e580260c853a132f73c7ae9e8a70","manifest":{"format":4,"id":7,"createdAtMs":1700000000000,'
  + '"job":{"join":"inner","lowerMs":-1000,"upperMs":1000,"keys":[["k"],["k"]]},'
  + '"sources":[{"kind":"kafka","name":"kafka:imp+plays","kafka":[{"topic":"imp","partition":0,"offset":"12"},{"topic":"plays","partition":0,"offset":"9007199254740993"}]}],'
  + '"router":{"watermarkMs":5000,"partitions":[{"side":0,"partition":0,"maxTsMs":6000,"ended":false},{"side":1,"partition":0,"maxTsMs":"-Infinity","ended":false}]},'
  + '"output":{"spec":"kafka:out"},"workers":[{"keyGroups":[0,4096],"watermarkMs":5000}],'
  + '"files":[{"name":"r1-w0-000001.delta","kind":"delta","keyGroups":[0,4096],"bytes":64,"checksum":"crc32:0a1b2c3d"}],"stats":{"stateBytes":64,"newBytes":64,"durationMs":3}}}\n';

test('a partitioned log\'s positions as the earlier release wrote them ("kind":"kafka") decode to kind log, and encode back to the same bytes', () => {
  const m = decodeManifest(WRITTEN_BY_51919B4, 'ckpt 7');
  assert.deepEqual(m.sources, [{ kind: 'log', name: 'kafka:imp+plays', log: [{ topic: 'imp', partition: 0, offset: '12' }, { topic: 'plays', partition: 0, offset: '9007199254740993' }] }]);
  assert.equal(m.router.partitions[1].maxTsMs, -Infinity);
  // what this release writes, the release before reads: the on-disk names did not change
  assert.equal(encodeManifest(m), WRITTEN_BY_51919B4);
  assert.ok(!encodeManifest(sample()).includes('"log"'), 'the in-memory kind never reaches the disk');
});
