// Checkpoint manifests (src/checkpoint/manifest.ts): encode/decode and what decode refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadManifest, decodeManifest, encodeManifest, MANIFEST_FORMAT, MANIFEST_FORMAT_INFLIGHT, type Manifest } from '../../src/checkpoint/manifest.js';

function sample(): Manifest {
  return {
    format: MANIFEST_FORMAT, id: 42, createdAtMs: 1_700_000_000_000,
    job: { join: 'full', lowerMs: -10_000, upperMs: 90_000, keys: [['profileId', 'titleId'], ['profileId', 'titleId']] },
    sources: [
      { kind: 'file', name: 'file:/in/l.ndjson', file: { byte: 1234, line: 17 } },
      { kind: 'kafka', name: 'kafka:a+b', kafka: [{ topic: 'a', partition: 0, offset: '9007199254740993' }] },
    ],
    router: { watermarkMs: -Infinity, partitions: [{ side: 0, partition: 0, maxTsMs: -Infinity, ended: false }, { side: 1, partition: 0, maxTsMs: 5000, ended: true }] },
    output: { spec: 'file:/out/o.ndjson', lengthBytes: 987654 },
    workers: [{ keyGroups: [0, 512], watermarkMs: Infinity }, { keyGroups: [512, 1024], watermarkMs: 4000.5 }],
    files: [
      { name: 'r1-c3-kg0-512.base', kind: 'base', keyGroups: [0, 512], bytes: 16, sha256: 'a'.repeat(64) },
      { name: 'r1-w1-000004.delta', kind: 'delta', keyGroups: [512, 1024], bytes: 4096, sha256: 'b'.repeat(64) },
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
  const m = { ...sample(), format: MANIFEST_FORMAT_INFLIGHT + 1 };
  assert.throws(() => decodeManifest(encodeManifest(m), 'ckpt 42'),
    (e: Error) => e instanceof BadManifest && e.message === `ckpt 42: format ${MANIFEST_FORMAT_INFLIGHT + 1}, this joinery reads ${MANIFEST_FORMAT} and ${MANIFEST_FORMAT_INFLIGHT}`);
});

test('a stop checkpoint (format 2, in-flight files) round-trips', () => {
  const m = { ...sample(), format: MANIFEST_FORMAT_INFLIGHT, inflight: [{ name: 'r1-w0-000003.inflight', keyGroups: [0, 64] as [number, number], bytes: 4096, sha256: 'ab'.repeat(32), events: 17 }] };
  assert.deepEqual(decodeManifest(encodeManifest(m), 'ckpt 3').inflight, m.inflight);
});
