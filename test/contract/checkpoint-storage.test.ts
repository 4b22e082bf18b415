import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirStorage, MemoryStorage, openStorage } from '../../src/checkpoint/storage.js';
import { checkpointStorageContract } from './checkpoint-storage.contract.js';

const storageModule = new URL('../../src/checkpoint/storage.js', import.meta.url).href;

checkpointStorageContract('LocalDirStorage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckpt-storage-'));
  const storage = new LocalDirStorage(dir);
  return {
    storage,
    // A real crash: another process writing the manifest is SIGKILLed with half of it in the temporary file.
    tornWrite: async (id, text) => {
      const script = `const { LocalDirStorage } = await import(${JSON.stringify(storageModule)});
        await new LocalDirStorage(${JSON.stringify(dir)}).writeManifest(${id}, ${JSON.stringify(text)});`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, JOINERY_INJECT_FAULTS: 'kill-in-manifest-write:1' }, encoding: 'utf8',
      });
      assert.equal(r.signal, 'SIGKILL', `the writer was killed mid-write: ${r.stderr}`);
      const left = fs.readdirSync(path.join(dir, 'manifests')).filter((n) => n.includes('.tmp-'));
      assert.equal(left.length, 1, 'the crash left a temporary file behind');
      assert.equal(fs.readFileSync(path.join(dir, 'manifests', left[0]), 'utf8'), text.slice(0, text.length >> 1), 'holding half the manifest');
    },
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

checkpointStorageContract('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return {
    storage,
    tornWrite: async (id, text) => {
      storage.failWrites = 1;
      await storage.writeManifest(id, text).then(() => { throw new Error('the failing write succeeded'); }, () => {});
    },
    dispose: () => storage.dispose(),
  };
});

describe('opening a storage from its descriptor (how worker threads get it)', () => {
  test('a directory reopened from its descriptor sees and stages the same files; a memory storage has none', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckpt-desc-'));
    try {
      const main = new LocalDirStorage(dir);
      await main.writeManifest(1, 'one\n');
      const desc = JSON.parse(JSON.stringify(main.descriptor)); // plain data: it crosses threads
      const other = openStorage(desc);
      assert.deepEqual(await other.listManifests(), [1]);
      const f = other.stage('r1-w0-000001.delta');
      fs.writeFileSync(f.localPath, 'changes');
      assert.deepEqual(await main.publish([f], async () => [{ bytes: 7, checksum: 'crc32:00000000' }]), [{ name: f.name, bytes: 7, checksum: 'crc32:00000000' }]);
      assert.equal((await main.readFile(f.name)).toString(), 'changes');
      assert.equal(new MemoryStorage().descriptor, null);
      assert.throws(() => openStorage({ kind: 'nope' } as never), /unknown/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
