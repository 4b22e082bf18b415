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
export function openEnv(options: RootDatabaseOptionsWithPath, lz4 = false): RootDatabase<Buffer, Buffer> {
  // lmdb-js reads noReadAhead (open.js) but its type declarations do not list it.
  const all: RootDatabaseOptionsWithPath & { noReadAhead: boolean } = {
    ...options, noSync: true, useWritemap: false, noReadAhead: true, keyEncoding: 'binary', encoding: 'binary',
    ...(lz4 ? { compression: LZ4 } : {}),
  };
  return open<Buffer, Buffer>(all);
}

/**
 * lmdb-js's LZ4 (native: compressed in the put, decompressed in the get), for an environment opened
 * with `lz4`; each database then chooses with DB_LZ4 or DB_PLAIN. Values under 64 bytes stay as
 * they are. No dictionary: lmdb-js's default one (5.4 KB of JSON and English words) is loaded
 * into the LZ4 stream for every value compressed, which an earlier trial measured at 2.6 % of the
 * process's CPU; a sealed run (up to 2 KB of records alike) compresses well enough on its own.
 */
const LZ4 = { threshold: 64, dictionary: Buffer.alloc(0) };
/** A database of an `lz4` environment whose values are compressed; the environment's one LZ4 state. */
export const DB_LZ4 = { keyEncoding: 'binary', encoding: 'binary', compression: true } as const;
/** A database whose values are stored as they are (in any environment). */
export const DB_PLAIN = { keyEncoding: 'binary', encoding: 'binary', compression: false } as const;
