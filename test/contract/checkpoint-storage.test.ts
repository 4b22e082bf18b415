import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirStorage, MemoryStorage } from '../../src/checkpoint/storage.js';
import { checkpointStorageContract } from './checkpoint-storage.contract.js';

checkpointStorageContract('LocalDirStorage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckpt-storage-'));
  const storage = new LocalDirStorage(dir);
  return {
    storage,
    putFile: (name, bytes) => fs.writeFileSync(path.join(storage.dataDir, name), bytes),
    // A crash between writing the temporary file and renaming it leaves only the .tmp file behind.
    tornWrite: async (id, text) => { fs.writeFileSync(`${storage.manifestPathOf(id)}.tmp-99999`, text); },
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

checkpointStorageContract('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return {
    storage,
    putFile: (name, bytes) => storage.putFile(name, bytes),
    tornWrite: async (id, text) => {
      storage.failWrites = 1;
      await storage.writeManifest(id, text).then(() => { throw new Error('the failing write succeeded'); }, () => {});
    },
    dispose: () => {},
  };
});
