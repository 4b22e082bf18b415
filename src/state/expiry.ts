/**
 * Expiry (see bucket-store.ts, "Expiry"): whole buckets go once their max expireAt is behind the
 * watermark, open or sealed, and their keys leave the key index with them. Cost: O(buckets) to
 * find what is due, then proportional to what goes (its keys, for the index; its entries only
 * when they must be reported).
 */
import { E_JOINED, EV_HEADER, NONE, OFF_MASK } from './bucket-format.js';
import type { Buckets } from './buckets.js';
import type { ClassStat, OpenSlice } from './open-slice.js';
import type { Part } from './sealed-io.js';
import type { Sealer } from './sealer.js';
import type { Buffered, Side } from './store.js';

/** Drops every bucket whose entries all have expireAt < watermarkMs; returns the entries removed. */
export function dropExpired(b: Buckets, sealer: Sealer, watermarkMs: number, onExpired: ((e: Buffered) => void) | undefined): number {
  if (!(watermarkMs > b.minMaxExpire)) return 0;
  let removed = 0;
  let min = Infinity;
  const order = b.order;
  // Everything goes (the end of input: watermark +∞): the key index is emptied at once rather than
  // key by key (a walk over every key held, seconds for millions, all in one call).
  const all = expiresAll(b, watermarkMs);
  for (let i = 0; i < order.length; i++) {
    const slice = order[i];
    const os = slice.open;
    if (os === undefined) {
      const parts = slice.parts;
      for (let j = 0; j < parts.length; j++) {
        const p = parts[j];
        if (p.maxExpire < watermarkMs) {
          removed += dropPart(b, p, onExpired);
          parts.splice(j--, 1);
          if (!all && !slice.frozen) b.unindexPart(p, slice.t); // a frozen slice's keys left the index already
        } else if (p.maxExpire < min) min = p.maxExpire;
      }
      if (parts.length === 0) b.removeSlice(i--, !all);
    } else {
      for (const cs of [...os.classes.values()]) {
        if (cs.maxExpire < watermarkMs) removed += dropOpenClass(b, sealer, os, cs, onExpired);
        else if (cs.maxExpire < min) min = cs.maxExpire;
      }
      if (os.classes.size === 0) {
        if (b.job?.os === os) sealer.abandonSeal(b.job, true);
        b.removeSlice(i--, !all); // unindexes its keys
      }
    }
  }
  if (all) {
    b.index.clear();
    b.dropUnindexing();
    b.freezer?.clear();
  }
  b.minMaxExpire = min;
  return removed;
}

/** Does every live bucket expire at `watermarkMs`? */
function expiresAll(b: Buckets, watermarkMs: number): boolean {
  if (b.order.length === 0) return false;
  for (const slice of b.order) {
    if (slice.open === undefined) {
      for (const p of slice.parts) if (!(p.maxExpire < watermarkMs)) return false;
    } else {
      for (const cs of slice.open.classes.values()) if (!(cs.maxExpire < watermarkMs)) return false;
    }
  }
  return true;
}

/**
 * Expires one bucket of an open slice: reports its entries when asked, then marks it dead. Its
 * entries stay linked (skipped everywhere) until the slice is sealed or emptied, so without a
 * callback this costs nothing per entry; the key index keeps the slice's keys until then (a probe
 * may visit the slice for nothing meanwhile, never miss anything).
 */
function dropOpenClass(b: Buckets, sealer: Sealer, os: OpenSlice, cs: ClassStat, onExpired: ((e: Buffered) => void) | undefined): number {
  if (onExpired !== undefined) {
    const view = b.reader.view;
    for (let s = 0; s < os.n; s++) {
      for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
        for (let r = os.head(side, s); r !== NONE; r = os.next(r)) {
          if (os.cls(r) !== cs.idx) continue;
          const buf = os.slab(r);
          const o = r & OFF_MASK;
          const idEnd = o + EV_HEADER + buf.readUInt16LE(o + 8);
          view.side = side;
          view.keyGroup = os.groupOf(s);
          view.key = os.key(s);
          view.ts = buf.readDoubleLE(o);
          view.id = buf.subarray(o + EV_HEADER, idEnd);
          view.payload = buf.subarray(idEnd, idEnd + buf.readUInt32LE(o + 10));
          view.joined = (buf[o + E_JOINED] & 1) === 1;
          onExpired(view);
        }
      }
    }
  }
  cs.dead = true;
  if (b.job?.os === os) sealer.dropFromSeal(b.job, cs);
  os.classes.delete(cs.c);
  if (os.lastCls === cs) os.lastCls = undefined;
  b.entries -= cs.count;
  b.byteCount -= cs.bytes;
  return cs.count;
}

/** Drops a sealed bucket (reporting its entries first when asked). Returns the entries removed. */
function dropPart(b: Buckets, part: Part, onExpired: ((e: Buffered) => void) | undefined): number {
  b.dirty = true;
  if (onExpired !== undefined) b.reader.forEachEntry(part, onExpired);
  part.db.dropSync();
  b.partGone(part);
  b.releasedNames.push(part.name);
  b.entries -= part.count;
  b.byteCount -= part.bytes;
  b.sealedCount -= part.count;
  return part.count;
}
