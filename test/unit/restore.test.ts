// Choosing the checkpoint to resume from (src/checkpoint/restore.ts), over MemoryStorage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { encodeManifest, MANIFEST_FORMAT, type Manifest } from '../../src/checkpoint/manifest.js';
import type { SidePool } from '../../src/checkpoint/pool.js';
import { findRestorePoint, setAsideNewer } from '../../src/checkpoint/restore.js';
import { MemoryStorage } from '../../src/checkpoint/storage.js';

const job: Manifest['job'] = { join: 'inner', lowerMs: -1000, upperMs: 1000, keys: [['k'], ['k']] };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function setup() {
  const storage = new MemoryStorage();
  const pool = {
    seal: async (t: { paths: string[] }) => t.paths.map((p) => { const b = storage.readFile(path.basename(p)); return { path: p, bytes: b.length, sha256: sha(b) }; }),
  } as unknown as SidePool;
  /** A checkpoint naming new files with these contents (and the files of `also`). */
  const checkpoint = async (id: number, files: Record<string, string>, also: string[] = [], j = job) => {
    const refs = [...also, ...Object.keys(files)].map((name) => {
      if (files[name] !== undefined) storage.putFile(name, Buffer.from(files[name]));
      const b = storage.readFile(name);
      return { name, kind: 'delta' as const, keyGroups: [0, 1024] as [number, number], bytes: b.length, sha256: sha(b) };
    });
    const m: Manifest = {
      format: MANIFEST_FORMAT, id, createdAtMs: 0, job: j, sources: [], router: { watermarkMs: -Infinity, partitions: [] },
      output: { spec: 'null' }, workers: [{ keyGroups: [0, 1024], watermarkMs: -Infinity }], files: refs, stats: { stateBytes: 0, newBytes: 0, durationMs: 0 },
    };
    await storage.writeManifest(id, encodeManifest(m));
  };
  return { storage, pool, checkpoint };
}

test('no manifests: nothing to restore', async () => {
  const { storage, pool } = setup();
  assert.equal(await findRestorePoint(storage, job, pool), null);
});

test('the newest usable checkpoint wins; torn, incomplete and corrupt newer ones are skipped with reasons', async () => {
  const { storage, pool, checkpoint } = setup();
  await checkpoint(1, { a: 'aaa' });
  await checkpoint(2, { b: 'bbb' }, ['a']);
  await checkpoint(3, { c: 'ccc' }, ['a', 'b']);
  await checkpoint(4, { d: 'ddd' }, ['a', 'b', 'c']);
  await checkpoint(5, { e: 'eee' }, ['a', 'b', 'c', 'd']);
  storage.putFile('d', Buffer.from('dDd'));                     // 4 and 5: a state file fails its checksum
  storage.removeFile('e');                                      // 5: a state file is missing
  await storage.writeManifest(6, '{"sha256":"0123'); // 6: torn
  const r = await findRestorePoint(storage, job, pool);
  assert.equal(r?.manifest.id, 3);
  assert.equal(r!.skipped.length, 3);
  assert.match(r!.skipped[0], /^checkpoint 6: .*torn or not a manifest/);
  assert.match(r!.skipped[1], /^checkpoint 5: state file e is missing/);
  assert.match(r!.skipped[2], /^checkpoint 4: state file d fails its checksum/);
  setAsideNewer(storage, 3);
  assert.deepEqual(storage.listManifests(), [3, 2, 1]);
});

test('acceptId: only the committed checkpoint is acceptable', async () => {
  const { storage, pool, checkpoint } = setup();
  await checkpoint(1, { a: 'a' });
  await checkpoint(2, { b: 'b' }, ['a']);
  await checkpoint(3, { c: 'c' }, ['a', 'b']);
  const r = await findRestorePoint(storage, job, pool, (id) => id === 2);
  assert.equal(r?.manifest.id, 2);
  assert.match(r!.skipped[0], /checkpoint 3: newer than what the output has committed/);
});

test('none usable: refuses, naming every reason; another join: refuses', async () => {
  const { storage, pool, checkpoint } = setup();
  await checkpoint(1, { a: 'a' });
  storage.removeFile('a');
  await assert.rejects(findRestorePoint(storage, job, pool), /no usable checkpoint in memory:: checkpoint 1: state file a is missing/);
  await checkpoint(2, { b: 'b' }, [], { ...job, upperMs: 2000 });
  await assert.rejects(findRestorePoint(storage, job, pool), /holds checkpoints of a different join \(bounds \[-1000, 2000\] ms vs \[-1000, 1000\] ms\)/);
});
