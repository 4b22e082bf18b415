/**
 * Rebuilding live state from a chain of change files (delta.ts): the rules a restore, a compaction
 * and a partition handoff share.
 */
import * as fs from 'node:fs';
import type { Side } from '../state/store.js';
import { dropCachedPages } from './page-cache.js';
import { ChangeType, FILE_HEADER_BYTES, forEachChangeIn, formatOfHeader, type ChangeFormat, type ChangeRecord } from './delta.js';

/**
 * Bytes of a change file read at a time. A worker's first delta holds everything it buffered in
 * its first interval (1.5 GB in a 1-minute interval of a large-state run), and a restore that read
 * whole files held that twice over (two workers) and was killed by a 3 GiB cgroup's OOM killer.
 */
const CHUNK_BYTES = 16 << 20;
/**
 * With `dropBehind`, the file's pages leave the page cache every this many bytes read (page-cache.ts):
 * a restore reads the whole chain once, and in a memory cgroup its pages otherwise crowd out the
 * state being rebuilt.
 */
const DROP_BEHIND_BYTES = 64 << 20;

/**
 * Calls `scan` on a change file chunk by chunk: the chunk, where its first record starts, the
 * file's format, the chunk's file offset, and whether the file goes on past it. `scan` returns
 * where it stopped; a record cut by the chunk's end is carried to the next chunk (the buffer
 * doubles for a record longer than a chunk). Returns the file's size. `dropBehind`: what was read
 * leaves the page cache as the scan goes (the file must be durable: it is published).
 */
export function scanFile(path: string, scan: (buf: Buffer, start: number, format: ChangeFormat, base: number, more: boolean) => number,
  chunkBytes = CHUNK_BYTES, dropBehind = false): number {
  const fd = fs.openSync(path, 'r');
  let dropped = 0;
  try {
    const size = fs.fstatSync(fd).size;
    let buf = Buffer.allocUnsafe(Math.max(FILE_HEADER_BYTES, Math.min(size, chunkBytes)));
    let base = 0; // file offset of buf[0]
    let have = 0; // bytes of buf read
    let format: ChangeFormat | undefined;
    let start = FILE_HEADER_BYTES;
    for (;;) {
      while (have < buf.length && base + have < size) {
        const n = fs.readSync(fd, buf, have, buf.length - have, base + have);
        if (n === 0) break;
        have += n;
      }
      if (dropBehind && base + have - dropped >= DROP_BEHIND_BYTES) { dropped = base + have; dropCachedPages(path); }
      format ??= formatOfHeader(buf.subarray(0, have), path);
      const more = base + have < size;
      const stop = scan(buf.subarray(0, have), start, format, base, more);
      if (!more) return size;
      if (stop === 0 && have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2); // one record longer than the chunk
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      } else {
        buf.copyWithin(0, stop, have);
        have -= stop;
        base += stop;
      }
      start = 0;
    }
  } finally {
    fs.closeSync(fd);
    if (dropBehind) dropCachedPages(path);
  }
}

/**
 * Identity of a buffered event (side, key, ts, id) as a string, for the restore's sets. The key's
 * length is part of it: key and id are arbitrary bytes, so a separator alone would let
 * (key "a|b", id "c") and (key "a", id "b|c") collide.
 */
export function identity(side: Side, key: Uint8Array, ts: number, id: Uint8Array): string {
  return `${side}|${ts}|${key.length}|${Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1')}${Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1')}`;
}

export interface ChainFile { path: string; keyGroups: [number, number] }

/** Which events of a chain to keep: those read from these Kafka partitions (a partition's share of a member's state). */
export type PartitionFilter = ReadonlySet<number> | null;

/** The files of a chain that hold key groups of [kgFrom, kgTo): the ones foldChain reads. */
export function chainFilesFor<F extends Pick<ChainFile, 'keyGroups'>>(files: readonly F[], kgFrom: number, kgTo: number): F[] {
  return files.filter((f) => f.keyGroups[0] < kgTo && f.keyGroups[1] > kgFrom);
}

/**
 * Fold a chain of change files (oldest first) into the live events of key groups [kgFrom, kgTo):
 * EXPIRED removes, MARK sets the joined bit, events of non-outer sides past `dropBeforeMs`
 * (expireAt < it) are dropped as they can never join again. Visits each live event once, in
 * file order. The two passes keep only identities in memory, never payloads. With `partitions`,
 * only events read from those Kafka partitions (MARK and EXPIRED match by identity, so they follow).
 * `views` false: the visitor reads only the header fields and the record's bytes (ChangeWriter.copy).
 * `dropBehind`: the last pass drops the files' pages from the page cache as it reads them (scanFile).
 */
export function foldChain(files: readonly ChainFile[], onRead: (path: string, bytes: number) => void, kgFrom: number, kgTo: number,
  outer: readonly [boolean, boolean], dropBeforeMs: number, visit: (r: ChangeRecord) => void,
  batch: (work: () => void) => void = (work) => work(), recordsPerBatch = 8192, partitions: PartitionFilter = null, views = true,
  dropBehind = false): void {
  const relevant = chainFilesFor(files, kgFrom, kgTo);
  const gone = new Set<string>();
  const marked = new Set<string>();
  // Each pass reads the files afresh, a chunk at a time: memory holds one chunk, never a file.
  if (outer[0] || outer[1]) {
    const first = (r: ChangeRecord): void => {
      if (r.type === ChangeType.Expired) gone.add(identity(r.side, r.key, r.ts, r.id));
      else if (r.type === ChangeType.Mark) marked.add(identity(r.side, r.key, r.ts, r.id));
    };
    for (const f of relevant) {
      onRead(f.path, scanFile(f.path, (buf, start, format, base, more) =>
        forEachChangeIn(buf, f.path, kgFrom, kgTo, first, start, Infinity, true, format, base, more)));
    }
  }
  const second = (r: ChangeRecord): void => {
      if (r.type !== ChangeType.Event) return;
      if (partitions && !partitions.has(r.sourcePartition - 1)) return;
      if (!outer[r.side]) {
        if (r.expireAtMs < dropBeforeMs) return;
      } else if (gone.size > 0 || marked.size > 0) {
        const idn = identity(r.side, r.key, r.ts, r.id);
        if (gone.has(idn)) return;
        if (!r.joined && marked.has(idn)) r.joined = true;
      }
      visit(r);
  };
  // Identities of outer events need their key and id.
  const v = views || gone.size > 0 || marked.size > 0;
  for (const f of relevant) {
    onRead(f.path, scanFile(f.path, (buf, start, format, base, more) => {
      let o = start;
      for (;;) {
        const before = o;
        batch(() => { o = forEachChangeIn(buf, f.path, kgFrom, kgTo, second, o, recordsPerBatch, v, format, base, more); });
        if (o === buf.length || o === before) return o; // the chunk's end, or a record cut by it
      }
    }, CHUNK_BYTES, dropBehind));
  }
}
