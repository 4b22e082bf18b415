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

const RECYCLED_FILES_MAX = 3;

describe('LocalDirStorage: recycled state files', () => {
  test('a recycled file is the next staged one, in place (same inode); the pool is bounded; other handles share it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckpt-recycle-'));
    try {
      const main = new LocalDirStorage(dir);
      const put = async (name: string) => {
        const f = main.stage(name);
        fs.writeFileSync(f.localPath, `bytes of ${name}`);
        await main.publish([f], async () => [{ bytes: 1, checksum: 'crc32:00000000' }]);
        return fs.statSync(f.localPath).ino;
      };
      const inodes = new Set<number>();
      for (let i = 0; i < RECYCLED_FILES_MAX + 2; i++) inodes.add(await put(`r1-w0-00000${i}.delta`));
      for (let i = 0; i < RECYCLED_FILES_MAX + 2; i++) await main.recycleFile(`r1-w0-00000${i}.delta`, RECYCLED_FILES_MAX);
      assert.deepEqual(await main.listFiles(), []);
      assert.equal(fs.readdirSync(main.recycleDir).length, RECYCLED_FILES_MAX, 'the rest were removed');
      const worker = openStorage(JSON.parse(JSON.stringify(main.descriptor)));
      const reused = new Set<number>();
      for (let i = 0; i < RECYCLED_FILES_MAX; i++) {
        const f = worker.stage(`r2-w0-00000${i}.delta`);
        reused.add(fs.statSync(f.localPath).ino);
      }
      assert.equal(reused.size, RECYCLED_FILES_MAX);
      for (const ino of reused) assert.ok(inodes.has(ino), 'an earlier file, overwritten in place');
      assert.deepEqual(fs.readdirSync(main.recycleDir), [], 'the pool is empty');
      assert.equal(fs.existsSync(worker.stage('r2-w0-000009.delta').localPath), false, 'with none left: a fresh file');
      // Something else in the pool (a link to a file elsewhere) is never taken and written through.
      const outside = path.join(dir, 'precious.txt');
      fs.writeFileSync(outside, 'keep me');
      fs.symlinkSync(outside, path.join(main.recycleDir, 'r1-w0-000099.delta'));
      fs.mkdirSync(path.join(main.recycleDir, 'a-directory'));
      const f = worker.stage('r2-w0-000010.delta');
      assert.equal(fs.existsSync(f.localPath), false, 'a fresh file, not the link or the directory');
      assert.equal(fs.readFileSync(outside, 'utf8'), 'keep me');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
