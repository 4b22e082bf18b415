import { JoineryError } from '../core/errors.js';
import { LmdbStore } from './lmdb-store.js';
import { MemoryStore } from './memory-store.js';
import type { StateStore } from './store.js';

export type { Buffered, Side, StateStore, StoreOptions } from './store.js';
export { LmdbStore, type LmdbStoreOptions } from './lmdb-store.js';
export { MemoryStore } from './memory-store.js';

/** Opens a join buffer: 'memory' (heap, nothing persists) or 'lmdb' (off-heap, in `dir`). */
export function openStore(kind: 'lmdb' | 'memory', dir?: string): StateStore {
  if (kind === 'memory') return new MemoryStore();
  if (kind === 'lmdb') {
    if (dir === undefined || dir === '') throw new JoineryError('E_STATE', 'the lmdb state store needs a directory');
    return LmdbStore.open(dir);
  }
  throw new JoineryError('E_STATE', `unknown state store kind: ${String(kind)}`);
}
