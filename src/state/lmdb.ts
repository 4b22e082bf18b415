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
 * (see lmdb-store.ts and its regression test).
 */
export function openEnv(options: RootDatabaseOptionsWithPath): RootDatabase<Buffer, Buffer> {
  return open<Buffer, Buffer>({ ...options, noSync: true, useWritemap: false, keyEncoding: 'binary', encoding: 'binary' });
}
