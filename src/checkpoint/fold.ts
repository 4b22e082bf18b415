/**
 * Rebuilding live state from a chain of change files (delta.ts): the rules a restore, a compaction
 * and a partition handoff share.
 */
import type { Side } from '../state/store.js';
import { ChangeType, FILE_HEADER_BYTES, checkHeader, forEachChange, type ChangeRecord } from './delta.js';

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

/**
 * Fold a chain of change files (oldest first) into the live events of key groups [kgFrom, kgTo):
 * EXPIRED removes, MARK sets the joined bit, events of non-outer sides past `dropBeforeMs`
 * (expireAt < it) are dropped as they can never join again. Visits each live event once, in
 * file order. The two passes keep only identities in memory, never payloads. With `partitions`,
 * only events read from those Kafka partitions (MARK and EXPIRED match by identity, so they follow).
 * `views` false: the visitor reads only the header fields and the record's bytes (ChangeWriter.copy).
 */
export function foldChain(files: readonly ChainFile[], read: (path: string) => Buffer, kgFrom: number, kgTo: number,
  outer: readonly [boolean, boolean], dropBeforeMs: number, visit: (r: ChangeRecord) => void,
  batch: (work: () => void) => void = (work) => work(), recordsPerBatch = 8192, partitions: PartitionFilter = null, views = true): void {
  const relevant = files.filter((f) => f.keyGroups[0] < kgTo && f.keyGroups[1] > kgFrom);
  const gone = new Set<string>();
  const marked = new Set<string>();
  // Each pass reads the files afresh: keeping the first pass's buffers for the second would hold
  // the whole chain in memory (per worker, during a restore) rather than one file.
  if (outer[0] || outer[1]) {
    for (const f of relevant) {
      forEachChange(read(f.path), f.path, kgFrom, kgTo, (r) => {
        if (r.type === ChangeType.Expired) gone.add(identity(r.side, r.key, r.ts, r.id));
        else if (r.type === ChangeType.Mark) marked.add(identity(r.side, r.key, r.ts, r.id));
      });
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
  for (const f of relevant) {
    const buf = read(f.path);
    checkHeader(buf, f.path);
    let o = FILE_HEADER_BYTES;
    // Identities of outer events need their key and id.
    const v = views || gone.size > 0 || marked.size > 0;
    while (o < buf.length) batch(() => { o = forEachChange(buf, f.path, kgFrom, kgTo, second, o, recordsPerBatch, v); });
  }
}
