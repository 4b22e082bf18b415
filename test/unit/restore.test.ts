// Choosing the checkpoint to resume from (src/checkpoint/restore.ts), over MemoryStorage.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { checksummer, type ChecksumAlgo } from '../../src/checkpoint/checksum.js';
import { encodeManifest, MANIFEST_FORMAT, type Manifest, type StateFileRef } from '../../src/checkpoint/manifest.js';
import type { SidePool } from '../../src/checkpoint/pool.js';
import { findRestorePoint, setAsideNewer } from '../../src/checkpoint/restore.js';
import { MemoryStorage } from '../../src/checkpoint/storage.js';

const job: Manifest['job'] = { join: 'inner', lowerMs: -1000, upperMs: 1000, keys: [['k'], ['k']] };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sum = (b: Buffer, algo?: ChecksumAlgo) => { const c = checksummer(algo); c.update(b); return c.digest(); };

function setup() {
  const storage = new MemoryStorage();
  after(() => storage.dispose());
  const pool = {
    seal: async (t: { paths: string[]; algos?: ChecksumAlgo[] }) => t.paths.map((p, i) => { const b = fs.readFileSync(p); return { path: p, bytes: b.length, checksum: sum(b, t.algos?.[i]) }; }),
  } as unknown as SidePool;
  /** A checkpoint naming new files with these contents (and the files of `also`). */
  /** `old`: written as before format 3 (a `sha256` per file). */
  const checkpoint = async (id: number, files: Record<string, string>, also: string[] = [], j = job, old = false) => {
    const refs = await Promise.all([...also, ...Object.keys(files)].map(async (name) => {
      if (files[name] !== undefined) storage.putFile(name, Buffer.from(files[name]));
      const b = await storage.readFile(name);
      const ref = { name, kind: 'delta' as const, keyGroups: [0, 1024] as [number, number], bytes: b.length };
      return old ? { ...ref, sha256: sha(b) } as unknown as StateFileRef : { ...ref, checksum: sum(b) };
    }));
    const m: Manifest = {
      format: old ? 1 : MANIFEST_FORMAT, id, createdAtMs: 0, job: j, sources: [], router: { watermarkMs: -Infinity, partitions: [] },
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
  await storage.removeFile('e');                                // 5: a state file is missing
  await storage.writeManifest(6, '{"sha256":"0123'); // 6: torn
  const r = await findRestorePoint(storage, job, pool);
  assert.equal(r?.manifest.id, 3);
  assert.equal(r!.skipped.length, 3);
  assert.match(r!.skipped[0], /^checkpoint 6: torn or not a manifest/);
  assert.match(r!.skipped[1], /^checkpoint 5: state file e is missing/);
  assert.match(r!.skipped[2], /^checkpoint 4: state file d fails its checksum/);
  await setAsideNewer(storage, 3);
  assert.deepEqual(await storage.listManifests(), [3, 2, 1]);
});

test('a checkpoint written before format 3 (SHA-256 per file) restores, verified with SHA-256; a flipped byte in one is still caught', async () => {
  const { storage, pool, checkpoint } = setup();
  await checkpoint(1, { a: 'aaa' }, [], job, true);
  await checkpoint(2, { b: 'bbb' }, ['a'], job, true);
  storage.putFile('b', Buffer.from('bbc'));
  const r = await findRestorePoint(storage, job, pool);
  assert.equal(r?.manifest.id, 1);
  assert.equal(r!.manifest.files[0].checksum, 'sha256:' + sha(Buffer.from('aaa')));
  assert.match(r!.skipped[0], /^checkpoint 2: state file b fails its checksum/);
});

test('a chain mixing SHA-256 files (from before format 3) and CRC-32 files restores; each is verified with its own algorithm', async () => {
  const { storage, pool, checkpoint } = setup();
  await checkpoint(1, { a: 'aaa' }, [], job, true);
  // The next run continues the chain: the old file keeps its SHA-256, its new file gets a CRC-32.
  const m1 = (await findRestorePoint(storage, job, pool))!.manifest;
  storage.putFile('b', Buffer.from('bbb'));
  await storage.writeManifest(2, encodeManifest({ ...m1, format: MANIFEST_FORMAT, id: 2, files: [...m1.files, { name: 'b', kind: 'delta', keyGroups: [0, 1024], bytes: 3, checksum: sum(Buffer.from('bbb')) }] }));
  const r = await findRestorePoint(storage, job, pool);
  assert.equal(r?.manifest.id, 2, r?.skipped.join('; '));
  assert.deepEqual(r!.manifest.files.map((f) => f.checksum.split(':')[0]), ['sha256', 'crc32']);
  storage.putFile('a', Buffer.from('aab'));
  const r2 = await findRestorePoint(storage, job, pool).catch((e: Error) => e);
  assert.match(String((r2 as Error).message), /checkpoint 2: state file a fails its checksum.*checkpoint 1: state file a fails its checksum/);
});

test('a single flipped byte anywhere in a CRC-32-checksummed state file is caught (the previous checkpoint is used)', async () => {
  const { storage, pool, checkpoint } = setup();
  const body = Buffer.alloc(70_000, 0);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  await checkpoint(1, { a: 'aaa' });
  await checkpoint(2, { big: body.toString('latin1') }, ['a']);
  const orig = await storage.readFile('big');
  for (const at of [0, 1, 15, 16, 4097, orig.length >> 1, orig.length - 1]) {
    for (const bit of [0x01, 0x80]) {
      const b = Buffer.from(orig);
      b[at] ^= bit;
      storage.putFile('big', b);
      const r = await findRestorePoint(storage, job, pool);
      assert.equal(r?.manifest.id, 1, `byte ${at} bit ${bit}`);
      assert.match(r!.skipped[0], /^checkpoint 2: state file big fails its checksum/);
    }
  }
  storage.putFile('big', orig);
  assert.equal((await findRestorePoint(storage, job, pool))?.manifest.id, 2);
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
  await storage.removeFile('a');
  await assert.rejects(findRestorePoint(storage, job, pool), /no usable checkpoint in memory:: checkpoint 1: state file a is missing/);
  await checkpoint(2, { b: 'b' }, [], { ...job, upperMs: 2000 });
  await assert.rejects(findRestorePoint(storage, job, pool), /holds checkpoints of a different join \(bounds \[-1000, 2000\] ms vs \[-1000, 1000\] ms\)/);
});
