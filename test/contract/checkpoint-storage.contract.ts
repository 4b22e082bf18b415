/**
 * The CheckpointStorage contract (src/checkpoint/storage.ts), run against every implementation
 * (checkpoint-storage.test.ts: LocalDirStorage and MemoryStorage). Each test gets a fresh storage.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckpointStorage } from '../../src/checkpoint/storage.js';

export interface StorageHarness {
  storage: CheckpointStorage;
  /** A worker writing a state file into the storage's data directory. */
  putFile(name: string, bytes: Uint8Array): void;
  /** A manifest write for `id` that is cut short by a crash or a full disk: it must never be visible. */
  tornWrite(id: number, text: string): Promise<void>;
  dispose(): void;
}

export function checkpointStorageContract(name: string, make: () => StorageHarness): void {
  describe(`CheckpointStorage contract: ${name}`, () => {
    const withStorage = (fn: (h: StorageHarness) => Promise<void> | void) => async () => {
      const h = make();
      try { await fn(h); } finally { h.dispose(); }
    };

    test('empty at first', withStorage(({ storage }) => {
      assert.deepEqual(storage.listManifests(), []);
      assert.deepEqual(storage.listFiles(), []);
      assert.equal(typeof storage.location, 'string');
      assert.equal(typeof storage.dataDir, 'string');
    }));

    test('manifests: write, list newest first, read back, remove', withStorage(async ({ storage }) => {
      await storage.writeManifest(2, 'two\n');
      await storage.writeManifest(10, 'ten\n');
      await storage.writeManifest(1, 'one\n');
      assert.deepEqual(storage.listManifests(), [10, 2, 1]);
      assert.equal(storage.readManifest(2), 'two\n');
      assert.equal(storage.readManifest(10), 'ten\n');
      storage.removeManifest(2);
      assert.deepEqual(storage.listManifests(), [10, 1]);
      assert.throws(() => storage.readManifest(2));
      storage.removeManifest(2); // removing what is gone is fine
      assert.deepEqual(storage.listManifests(), [10, 1]);
    }));

    test('a manifest written again under its id replaces it whole', withStorage(async ({ storage }) => {
      await storage.writeManifest(3, 'first version, rather long\n');
      await storage.writeManifest(3, 'second\n');
      assert.deepEqual(storage.listManifests(), [3]);
      assert.equal(storage.readManifest(3), 'second\n');
    }));

    test('manifest text round-trips byte for byte (unicode, no newline)', withStorage(async ({ storage }) => {
      const text = '{"x":"é∞ \\u0000"}';
      await storage.writeManifest(7, text);
      assert.equal(storage.readManifest(7), text);
    }));

    test('a torn manifest write is never visible; earlier manifests stay intact', withStorage(async (h) => {
      const { storage } = h;
      await storage.writeManifest(4, 'four\n');
      await h.tornWrite(5, '{"sha256":"abc","manifest":{"format":1,');
      assert.deepEqual(storage.listManifests(), [4]);
      assert.equal(storage.readManifest(4), 'four\n');
      assert.throws(() => storage.readManifest(5));
      // A later complete write of the same id works.
      await storage.writeManifest(5, 'five\n');
      assert.deepEqual(storage.listManifests(), [5, 4]);
      assert.equal(storage.readManifest(5), 'five\n');
    }));

    test('state files: list, read, remove', withStorage((h) => {
      const { storage } = h;
      h.putFile('r1-w0-000001.delta', Buffer.from('abc'));
      h.putFile('r1-w1-000001.delta', Buffer.from([0, 1, 2, 255]));
      assert.deepEqual(storage.listFiles().sort(), ['r1-w0-000001.delta', 'r1-w1-000001.delta']);
      assert.deepEqual([...storage.readFile('r1-w1-000001.delta')], [0, 1, 2, 255]);
      storage.removeFile('r1-w0-000001.delta');
      assert.deepEqual(storage.listFiles(), ['r1-w1-000001.delta']);
      assert.throws(() => storage.readFile('r1-w0-000001.delta'));
      storage.removeFile('r1-w0-000001.delta'); // already gone: fine
      assert.deepEqual(storage.listFiles(), ['r1-w1-000001.delta']);
    }));

    test('files and manifests are separate name spaces', withStorage(async (h) => {
      const { storage } = h;
      h.putFile('ckpt-000000001.json', Buffer.from('not a manifest'));
      assert.deepEqual(storage.listManifests(), []);
      await storage.writeManifest(1, 'm\n');
      assert.deepEqual(storage.listFiles(), ['ckpt-000000001.json']);
      storage.removeManifest(1);
      assert.deepEqual(storage.listFiles(), ['ckpt-000000001.json']);
    }));

    test('the bytes read are a copy: changing them changes nothing stored', withStorage((h) => {
      h.putFile('f', Buffer.from('xyz'));
      const b = h.storage.readFile('f');
      b[0] = 0x41;
      assert.equal(h.storage.readFile('f').toString(), 'xyz');
    }));
  });
}
