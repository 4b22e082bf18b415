import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirStorage, MemoryStorage } from '../../src/checkpoint/storage.js';
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
