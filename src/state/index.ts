import { JoineryError } from '../core/errors.js';
import { BucketStore, type BucketStoreOptions } from './bucket-store.js';
import { LmdbStore, type LmdbStoreOptions } from './lmdb-store.js';
import { MemoryStore } from './memory-store.js';
import type { StateStore } from './store.js';

export type { Buffered, Side, StateStore, StoreOptions } from './store.js';
export { LmdbStore, type LmdbStoreOptions } from './lmdb-store.js';
export { BucketStore, DEFAULT_BUCKET_MS, type BucketStoreOptions } from './bucket-store.js';
export { MemoryStore } from './memory-store.js';

/**
 * 'lmdb' is the production store (time-bucketed: recent events in memory arenas, sealed buckets in
 * LMDB); 'lmdb-btree' the key-ordered B-tree layout with exact expiry, kept for comparison (random
 * inserts make it ~6× slower); 'memory' the heap store.
 */
export type StoreKind = 'lmdb' | 'memory' | 'lmdb-btree' | 'bucket';

/** Options of openStore: each kind reads its own (memory none, lmdb LmdbStoreOptions, bucket BucketStoreOptions). */
export interface OpenStoreOptions extends LmdbStoreOptions, BucketStoreOptions {}

/**
 * Opens a join buffer: 'memory' (heap, nothing persists), 'lmdb' (off-heap, key-ordered, in `dir`)
 * or 'bucket' (time-bucketed: recent events in memory, sealed buckets in LMDB in `dir`).
 */
export function openStore(kind: StoreKind, dir?: string, options?: OpenStoreOptions): StateStore {
  if (kind === 'memory') return new MemoryStore();
  if (kind === 'lmdb' || kind === 'bucket' || kind === 'lmdb-btree') {
    if (dir === undefined || dir === '') throw new JoineryError('E_STATE', `the ${kind} state store needs a directory`);
    if (kind === 'lmdb-btree') {
      return options === undefined ? LmdbStore.open(dir)
        : LmdbStore.open(dir, { mapSizeBytes: options.mapSizeBytes, filterBits: options.filterBits });
    }
    return BucketStore.open(dir, options === undefined ? {}
      : { bucketMs: options.bucketMs, mapSizeBytes: options.mapSizeBytes, maxDbs: options.maxDbs, memoryBytes: options.memoryBytes, freezeGroupSlices: options.freezeGroupSlices, lz4AboveBytes: options.lz4AboveBytes });
  }
  throw new JoineryError('E_STATE', `unknown state store kind: ${String(kind)}`);
}
