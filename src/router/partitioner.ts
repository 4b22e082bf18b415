import { KEY_GROUPS } from '../config/schema.js';

/**
 * MurmurHash3 (x86, 32-bit) over bytes. Stable across processes, platforms and versions, which a
 * key-group assignment stored in checkpoints requires; a JS string hash would not be. Hand-written
 * (20 lines) because the npm packages hash JS strings, and the router hashes bytes already in a
 * scratch buffer without allocating.
 */
export function murmur3(bytes: Uint8Array, start: number, end: number, seed = 0x9747b28c): number {
  let h = seed | 0;
  let i = start;
  const stop4 = start + ((end - start) & ~3);
  for (; i < stop4; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51); k = (k << 15) | (k >>> 17); k = Math.imul(k, 0x1b873593);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch ((end - start) & 3) {
    case 3: k ^= bytes[i + 2] << 16; // falls through
    case 2: k ^= bytes[i + 1] << 8; // falls through
    case 1: k ^= bytes[i];
      k = Math.imul(k, 0xcc9e2d51); k = (k << 15) | (k >>> 17); k = Math.imul(k, 0x1b873593); h ^= k;
  }
  h ^= end - start;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

export function keyGroupOf(hash: number): number {
  return hash % KEY_GROUPS;
}

/** Contiguous key-group ranges, one per worker: worker i owns [start, end). */
export function keyGroupRanges(workers: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < workers; i++) {
    out.push([Math.floor((i * KEY_GROUPS) / workers), Math.floor(((i + 1) * KEY_GROUPS) / workers)]);
  }
  return out;
}

/** keyGroup → worker index, as a lookup table (the router does this per record). */
export function ownerTable(workers: number): Uint8Array {
  const t = new Uint8Array(KEY_GROUPS);
  keyGroupRanges(workers).forEach(([s, e], w) => t.fill(w, s, e));
  return t;
}
