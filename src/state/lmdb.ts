/**
 * The one entry point of the `lmdb` package (lmdb-js). Both LMDB stores open their environments
 * through here with the same durability settings, so a change of binding or of those settings has
 * one place.
 */
import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';

export type { Database, RootDatabase };

/**
 * An environment for one worker's join buffer. `noSync`: commits are visible, not durable (a
 * process crash loses nothing committed; checkpoints will sync). No `useWritemap`: with
 * MDB_WRITEMAP, LMDB 0.9 aborts in mdb_freelist_save() when a transaction frees pages it dirtied
 * (see lmdb-store.ts and its regression test). `noReadAhead` (MDB_NORDAHEAD: madvise(MADV_RANDOM)
 * on the map): probes read single pages at random, and the kernel's read-around brought in ~32
 * pages per fault. Once the state outgrew the page cache, `perf` put ~20 % of the process's CPU
 * in reclaim under page_cache_ra_unbounded and the cache held mostly pages nobody asked for.
 */
export function openEnv(options: RootDatabaseOptionsWithPath): RootDatabase<Buffer, Buffer> {
  // lmdb-js reads noReadAhead (open.js) but its type declarations do not list it.
  const all: RootDatabaseOptionsWithPath & { noReadAhead: boolean } = {
    ...options, noSync: true, useWritemap: false, noReadAhead: true, keyEncoding: 'binary', encoding: 'binary',
  };
  return open<Buffer, Buffer>(all);
}
