/**
 * The CheckpointStorage contract (src/checkpoint/storage.ts), run against every implementation
 * (checkpoint-storage.test.ts: LocalDirStorage and MemoryStorage). Each test gets a fresh storage.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { checksummer } from '../../src/checkpoint/checksum.js';
import { forEachChange } from '../../src/checkpoint/delta.js';
import { ChangeWriter } from '../../src/checkpoint/change-writer.js';
import type { CheckpointStorage, Sealer } from '../../src/checkpoint/storage.js';

export interface StorageHarness {
  storage: CheckpointStorage;
  /** A manifest write for `id` that is cut short by a crash or a full disk: it must never be visible. */
  tornWrite(id: number, text: string): Promise<void>;
  dispose(): void;
}

/** What the side pool's seal computes, in-process. */
const seal: Sealer = async (paths) => paths.map((p) => {
  const b = fs.readFileSync(p);
  const c = checksummer();
  c.update(b);
  return { bytes: b.length, checksum: c.digest() };
});

/** A state file published the way a worker's change file is: staged, written locally, published. */
async function put(storage: CheckpointStorage, name: string, bytes: Uint8Array): Promise<void> {
  const f = storage.stage(name);
  fs.writeFileSync(f.localPath, bytes);
  await storage.publish([f], seal);
}

/** The promise rejects with an error whose message names `what`. */
async function rejectsNaming(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e.message.includes(what), `the error names ${what}: ${e.message}`);
    return true;
  });
}

export function checkpointStorageContract(name: string, make: () => StorageHarness): void {
  describe(`CheckpointStorage contract: ${name}`, () => {
    const withStorage = (fn: (h: StorageHarness) => Promise<void> | void) => async () => {
      const h = make();
      try { await fn(h); } finally { h.dispose(); }
    };

    test('empty at first', withStorage(async ({ storage }) => {
      assert.deepEqual(await storage.listManifests(), []);
      assert.deepEqual(await storage.listFiles(), []);
      assert.equal(typeof storage.location, 'string');
    }));

    test('manifests: write, list newest first, read back, remove', withStorage(async ({ storage }) => {
      await storage.writeManifest(2, 'two\n');
      await storage.writeManifest(10, 'ten\n');
      await storage.writeManifest(1, 'one\n');
      assert.deepEqual(await storage.listManifests(), [10, 2, 1]);
      assert.equal(await storage.readManifest(2), 'two\n');
      assert.equal(await storage.readManifest(10), 'ten\n');
      await storage.removeManifest(2);
      assert.deepEqual(await storage.listManifests(), [10, 1]);
      await assert.rejects(storage.readManifest(2));
      await storage.removeManifest(2); // removing what is gone is fine
      assert.deepEqual(await storage.listManifests(), [10, 1]);
    }));

    test('a manifest written again under its id replaces it whole', withStorage(async ({ storage }) => {
      await storage.writeManifest(3, 'first version, rather long\n');
      await storage.writeManifest(3, 'second\n');
      assert.deepEqual(await storage.listManifests(), [3]);
      assert.equal(await storage.readManifest(3), 'second\n');
    }));

    test('manifest text round-trips byte for byte (unicode, no newline)', withStorage(async ({ storage }) => {
      const text = '{"x":"é∞ \\u0000"}';
      await storage.writeManifest(7, text);
      assert.equal(await storage.readManifest(7), text);
    }));

    test('a torn manifest write is never visible; earlier manifests stay intact', withStorage(async (h) => {
      const { storage } = h;
      await storage.writeManifest(4, 'four\n');
      await h.tornWrite(5, '{"sha256":"abc","manifest":{"format":1,"and":"more text, so that half of it is something"}}\n');
      assert.deepEqual(await storage.listManifests(), [4]);
      assert.equal(await storage.readManifest(4), 'four\n');
      await assert.rejects(storage.readManifest(5));
      // A later complete write of the same id works.
      await storage.writeManifest(5, 'five\n');
      assert.deepEqual(await storage.listManifests(), [5, 4]);
      assert.equal(await storage.readManifest(5), 'five\n');
    }));

    test('reading what is not there fails naming it', withStorage(async ({ storage }) => {
      await rejectsNaming(storage.readManifest(12), 'ckpt-000000012.json');
      await rejectsNaming(storage.readFile('r9-w0-000001.delta'), 'r9-w0-000001.delta');
      await rejectsNaming(storage.fetch(['r9-w0-000002.delta']), 'r9-w0-000002.delta');
      await rejectsNaming(storage.setAsideManifest(13, '.corrupt'), 'ckpt-000000013.json');
      await assert.rejects(storage.readFile('r9-w0-000001.delta'), { code: 'ENOENT' });
    }));

    test('set aside: out of the list, kept under the suffix, the id free again', withStorage(async ({ storage }) => {
      await storage.writeManifest(4, 'four\n');
      await storage.writeManifest(5, 'five, first\n');
      await storage.setAsideManifest(5, '.corrupt');
      assert.deepEqual(await storage.listManifests(), [4]);
      await assert.rejects(storage.readManifest(5));
      assert.equal(await storage.readManifest(5, '.corrupt'), 'five, first\n');
      await storage.writeManifest(5, 'five, second\n');
      assert.deepEqual(await storage.listManifests(), [5, 4]);
      assert.equal(await storage.readManifest(5), 'five, second\n');
      await storage.setAsideManifest(5, '.corrupt'); // replaces the copy kept before
      assert.equal(await storage.readManifest(5, '.corrupt'), 'five, second\n');
      await storage.setAsideManifest(4, '.uncommitted');
      assert.deepEqual(await storage.listManifests(), []);
      assert.equal(await storage.readManifest(4, '.uncommitted'), 'four\n');
      assert.deepEqual(await storage.listFiles(), [], 'set-aside manifests are no state files');
    }));

    test('staged files: written locally, published with their checksums, then listed, read and fetched', withStorage(async ({ storage }) => {
      const a = storage.stage('r1-w0-000001.delta');
      const b = await storage.writeStaged('r1-w1-000001.inflight', Buffer.from([0, 1, 2, 255]));
      assert.equal(a.name, 'r1-w0-000001.delta');
      fs.writeFileSync(a.localPath, 'abc'); // a worker's synchronous appends: local disk
      fs.appendFileSync(a.localPath, 'de');
      const published = await storage.publish([a, b], seal);
      const sum = (s: string | Buffer) => { const c = checksummer(); c.update(Buffer.from(s)); return c.digest(); };
      assert.deepEqual(published, [
        { name: 'r1-w0-000001.delta', bytes: 5, checksum: sum('abcde') },
        { name: 'r1-w1-000001.inflight', bytes: 4, checksum: sum(Buffer.from([0, 1, 2, 255])) },
      ]);
      assert.deepEqual((await storage.listFiles()).sort(), ['r1-w0-000001.delta', 'r1-w1-000001.inflight']);
      assert.equal((await storage.readFile('r1-w0-000001.delta')).toString(), 'abcde');
      const [pa, pb] = await storage.fetch(['r1-w0-000001.delta', 'r1-w1-000001.inflight']);
      assert.equal(fs.readFileSync(pa, 'utf8'), 'abcde');
      assert.deepEqual([...fs.readFileSync(pb)], [0, 1, 2, 255]);
      assert.deepEqual(await storage.publish([], seal), []);
    }));

    test('publishing takes the figures the sealer gives (a compaction computed them as it wrote)', withStorage(async ({ storage }) => {
      const f = await storage.writeStaged('r1-c3-kg0-64.base', Buffer.from('base'));
      const out = await storage.publish([f], async () => [{ bytes: 4, checksum: 'crc32:0badcafe' }]);
      assert.deepEqual(out, [{ name: 'r1-c3-kg0-64.base', bytes: 4, checksum: 'crc32:0badcafe' }]);
      assert.equal((await storage.readFile('r1-c3-kg0-64.base')).toString(), 'base');
    }));

    test('state files: remove', withStorage(async ({ storage }) => {
      await put(storage, 'r1-w0-000001.delta', Buffer.from('abc'));
      await put(storage, 'r1-w1-000001.delta', Buffer.from([0, 1, 2, 255]));
      assert.deepEqual([...await storage.readFile('r1-w1-000001.delta')], [0, 1, 2, 255]);
      await storage.removeFile('r1-w0-000001.delta');
      assert.deepEqual(await storage.listFiles(), ['r1-w1-000001.delta']);
      await assert.rejects(storage.readFile('r1-w0-000001.delta'));
      await storage.removeFile('r1-w0-000001.delta'); // already gone: fine
      assert.deepEqual(await storage.listFiles(), ['r1-w1-000001.delta']);
    }));

    test('state files: recycle removes like remove; a file staged after it holds only what is written to it', withStorage(async ({ storage }) => {
      await put(storage, 'r1-w0-000001.delta', Buffer.from('old bytes, longer than the new ones '.repeat(8)));
      await put(storage, 'r1-w1-000001.delta', Buffer.from('kept'));
      await storage.recycleFile('r1-w0-000001.delta', 2);
      assert.deepEqual(await storage.listFiles(), ['r1-w1-000001.delta']);
      await assert.rejects(storage.readFile('r1-w0-000001.delta'));
      await storage.recycleFile('r1-w0-000001.delta', 2); // already gone: fine
      const f = storage.stage('r1-w0-000002.delta');
      const w = new ChangeWriter(f.localPath);
      w.event(0, 1, 2, Buffer.from('k'), 10, Buffer.from('i'), Buffer.from('new'), false, 20);
      assert.equal(w.close(), true, String(w.lastError));
      await storage.publish([f], seal);
      const back = await storage.readFile('r1-w0-000002.delta');
      assert.equal(back.length, w.bytes, 'nothing of a recycled file after the new bytes');
      const payloads: string[] = [];
      forEachChange(back, f.name, 0, 65536, (r) => payloads.push(Buffer.from(r.payload).toString()));
      assert.deepEqual(payloads, ['new']);
      assert.equal((await storage.readFile('r1-w1-000001.delta')).toString(), 'kept');
    }));

    test('files and manifests are separate name spaces', withStorage(async ({ storage }) => {
      await put(storage, 'ckpt-000000001.json', Buffer.from('not a manifest'));
      assert.deepEqual(await storage.listManifests(), []);
      await storage.writeManifest(1, 'm\n');
      assert.deepEqual(await storage.listFiles(), ['ckpt-000000001.json']);
      await storage.removeManifest(1);
      assert.deepEqual(await storage.listFiles(), ['ckpt-000000001.json']);
    }));

    test('names are plain file names', withStorage(({ storage }) => {
      assert.throws(() => storage.stage('../escape'), /not a plain file name/);
      assert.throws(() => storage.sub('a/b'), /not a plain file name/);
    }));

    test('sub-storages: separate name spaces under one root, the same data seen from either handle', withStorage(async ({ storage }) => {
      const a = storage.sub('members', 'a');
      const b = storage.sub('members', 'b');
      assert.deepEqual(await a.listManifests(), [], 'an untouched sub-storage is empty');
      await a.writeManifest(1, 'a1\n');
      await put(a, 'f', Buffer.from('of a'));
      await b.writeManifest(2, 'b2\n');
      assert.deepEqual(await a.listManifests(), [1]);
      assert.deepEqual(await b.listManifests(), [2]);
      assert.deepEqual(await storage.listManifests(), [], 'the root does not see its members');
      assert.deepEqual(await storage.listFiles(), []);
      assert.equal((await storage.sub('members', 'a').readFile('f')).toString(), 'of a', 'a second handle sees the same data');
      assert.notEqual(a.location, b.location);
    }));

    test('the bytes read are a copy: changing them changes nothing stored', withStorage(async ({ storage }) => {
      await put(storage, 'f', Buffer.from('xyz'));
      const b = await storage.readFile('f');
      b[0] = 0x41;
      assert.equal((await storage.readFile('f')).toString(), 'xyz');
    }));
  });
}
