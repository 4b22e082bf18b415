/**
 * Heap-resident join buffer: the reference implementation of StateStore, used by tests, small runs
 * and `--state memory`. Nothing survives close().
 *
 * Layout:
 *  - `keys`: Map from keyHash → chain of slots, one per (keyGroup, key bytes) (so keyHash must be a
 *    function of the key bytes, as the router computes it). A slot holds the key (copied once) and,
 *    per side, the entries sorted by (ts, id bytes). Sorting by id within equal ts makes the identity
 *    (side, key, ts, id) a binary-search lookup and gives the same order as the LMDB store's keys.
 *    Each side is a chunked sorted list (chunks of ≤ 2·CHUNK entries), so a hot key with 100k
 *    buffered events still inserts and removes in O(log n + CHUNK), not O(n).
 *  - `heap`: a binary min-heap of all entries by expireAtMs, so expire() pops exactly what expires
 *    (O(log n) each) instead of scanning.
 *  - An entry keeps id and payload in one copy (from Node's pooled allocator) with a view on each
 *    part, made once at insert so probes and expiry allocate nothing per visited entry.
 */
import { JoineryError } from '../core/errors.js';
import type { Buffered, Side, StateStore } from './store.js';

const CHUNK = 256;

interface Entry {
  side: Side;
  ts: number;
  joined: boolean;
  expireAtMs: number;
  id: Uint8Array;
  payload: Uint8Array;
  slot: KeySlot;
}

interface KeySlot {
  keyHash: number;
  next: KeySlot | undefined; // other keys with the same keyHash
  keyGroup: number;
  key: Uint8Array;
  sides: [Entry[][], Entry[][]]; // chunks, each sorted and non-empty; concatenation sorted
}

/** Orders an entry against (ts, id). */
function compareIdentity(e: Entry, ts: number, id: Uint8Array): number {
  if (e.ts < ts) return -1;
  if (e.ts > ts) return 1;
  const d = e.id;
  const la = d.length;
  const n = la < id.length ? la : id.length;
  for (let i = 0; i < n; i++) {
    const c = d[i] - id[i];
    if (c !== 0) return c;
  }
  return la - id.length;
}

export class MemoryStore implements StateStore {
  /** Exact expiry: an entry goes exactly when the watermark passes its expireAtMs. */
  readonly expiryGranularityMs = 0;
  private readonly keys = new Map<number, KeySlot>();
  private readonly heap: Entry[] = [];
  private entries = 0;
  private byteCount = 0;
  private closed = false;
  /** Reused view handed to callbacks (valid only during the callback, as the interface says). */
  private readonly view: Buffered = {
    side: 0, keyGroup: 0, key: new Uint8Array(0), ts: 0, id: new Uint8Array(0), payload: new Uint8Array(0), joined: false,
  };

  batch<T>(fn: () => T): T {
    this.checkOpen();
    return fn();
  }

  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean {
    this.checkOpen();
    ts = normTs(ts);
    if (Number.isNaN(expireAtMs)) throw new JoineryError('E_STATE', 'expireAtMs is NaN');
    keyHash >>>= 0;
    let slot = this.slotOf(keyHash, keyGroup, key);
    if (slot === undefined) {
      slot = { keyHash, next: this.keys.get(keyHash), keyGroup, key: new Uint8Array(key), sides: [[], []] };
      this.keys.set(keyHash, slot);
    }
    const chunks = slot.sides[side];
    let ci: number;
    let pos: number;
    const lastChunk = chunks.length > 0 ? chunks[chunks.length - 1] : undefined;
    if (lastChunk === undefined) {
      chunks.push([]);
      ci = 0;
      pos = 0;
    } else if (compareIdentity(lastChunk[lastChunk.length - 1], ts, id) < 0) {
      ci = chunks.length - 1; // common case: arrivals in time order append
      pos = lastChunk.length;
    } else {
      ci = chunkFor(chunks, ts, id);
      const c = chunks[ci];
      pos = lowerBound(c, ts, id);
      if (pos < c.length && compareIdentity(c[pos], ts, id) === 0) return false; // duplicate
    }
    // One copy of id + payload; Buffer.allocUnsafe draws small sizes from Node's pool.
    const data = Buffer.allocUnsafe(id.length + payload.length);
    data.set(id, 0);
    data.set(payload, id.length);
    const e: Entry = {
      side, ts, joined, expireAtMs, slot,
      id: new Uint8Array(data.buffer, data.byteOffset, id.length),
      payload: new Uint8Array(data.buffer, data.byteOffset + id.length, payload.length),
    };
    const c = chunks[ci];
    if (pos === c.length) c.push(e);
    else c.splice(pos, 0, e);
    if (c.length > 2 * CHUNK) chunks.splice(ci + 1, 0, c.splice(CHUNK));
    this.heapPush(e);
    this.entries++;
    this.byteCount += key.length + id.length + payload.length;
    return true;
  }

  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void {
    this.checkOpen();
    if (!(fromTs <= toTs)) return;
    const slot = this.slotOf(keyHash >>> 0, keyGroup, key);
    if (slot === undefined) return;
    const chunks = slot.sides[side];
    if (chunks.length === 0) return;
    fromTs = normTs(fromTs);
    const view = this.view;
    view.side = side;
    view.keyGroup = keyGroup;
    view.key = slot.key;
    // First chunk whose last entry has ts ≥ fromTs.
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid];
      if (c[c.length - 1].ts < fromTs) lo = mid + 1; else hi = mid;
    }
    for (let ci = lo; ci < chunks.length; ci++) {
      const c = chunks[ci];
      for (let i = ci === lo ? lowerBoundTs(c, fromTs) : 0; i < c.length; i++) {
        const e = c[i];
        if (e.ts > toTs) return;
        view.ts = e.ts;
        view.id = e.id;
        view.payload = e.payload;
        view.joined = e.joined;
        if (visit(view) === true) e.joined = true;
      }
    }
  }

  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void {
    this.checkOpen();
    const slot = this.slotOf(keyHash >>> 0, keyGroup, key);
    if (slot === undefined) return;
    const chunks = slot.sides[side];
    if (chunks.length === 0) return;
    ts = normTs(ts);
    const c = chunks[chunkFor(chunks, ts, id)];
    const e = c[lowerBound(c, ts, id)];
    if (e !== undefined && compareIdentity(e, ts, id) === 0) e.joined = true;
  }

  expire(watermarkMs: number, onExpired?: (e: Buffered) => void): number {
    this.checkOpen();
    let removed = 0;
    const heap = this.heap;
    const view = this.view;
    while (heap.length > 0 && heap[0].expireAtMs < watermarkMs) {
      const e = heap[0];
      if (onExpired !== undefined) {
        view.side = e.side;
        view.keyGroup = e.slot.keyGroup;
        view.key = e.slot.key;
        view.ts = e.ts;
        view.id = e.id;
        view.payload = e.payload;
        view.joined = e.joined;
        onExpired(view);
      }
      // The callback may not mutate the store, so e is still the heap top.
      this.heapPopTop();
      this.unlink(e);
      this.entries--;
      this.byteCount -= e.slot.key.length + e.id.length + e.payload.length;
      removed++;
    }
    return removed;
  }

  count(): number {
    return this.entries;
  }

  bytes(): number {
    return this.byteCount;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.keys.clear();
    this.heap.length = 0;
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.closed) throw new JoineryError('E_STATE', 'state store is closed');
  }

  private slotOf(keyHash: number, keyGroup: number, key: Uint8Array): KeySlot | undefined {
    for (let s = this.keys.get(keyHash); s !== undefined; s = s.next) {
      if (s.keyGroup === keyGroup && bytesEqual(s.key, key)) return s;
    }
    return undefined;
  }

  private dropSlot(slot: KeySlot): void {
    const head = this.keys.get(slot.keyHash);
    if (head === slot) {
      if (slot.next === undefined) this.keys.delete(slot.keyHash); else this.keys.set(slot.keyHash, slot.next);
      return;
    }
    for (let s = head; s !== undefined; s = s.next) {
      if (s.next === slot) { s.next = slot.next; return; }
    }
  }

  /** Removes e from its key's side list (and the key from the map when both sides are empty). */
  private unlink(e: Entry): void {
    const slot = e.slot;
    const chunks = slot.sides[e.side];
    let ci: number;
    let pos: number;
    if (chunks[0][0] === e) { // expiry mostly takes the oldest entry
      ci = 0;
      pos = 0;
    } else {
      ci = chunkFor(chunks, e.ts, e.id);
      pos = lowerBound(chunks[ci], e.ts, e.id);
    }
    const c = chunks[ci];
    if (c[pos] !== e) throw new JoineryError('E_INTERNAL', 'memory store: expiring entry not found in its key list');
    if (pos === 0) c.shift(); else c.splice(pos, 1);
    if (c.length === 0) {
      chunks.splice(ci, 1);
      if (slot.sides[0].length === 0 && slot.sides[1].length === 0) this.dropSlot(slot);
    }
  }

  private heapPush(e: Entry): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = heap[p];
      if (pe.expireAtMs <= e.expireAtMs) break;
      heap[i] = pe;
      i = p;
    }
    heap[i] = e;
  }

  private heapPopTop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r].expireAtMs < heap[l].expireAtMs ? r : l;
      if (heap[c].expireAtMs >= last.expireAtMs) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
  }
}

/** -0 and 0 are the same event time; NaN is not a time. */
function normTs(ts: number): number {
  if (Number.isNaN(ts)) throw new JoineryError('E_STATE', 'event time is NaN');
  return ts + 0;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of the chunk where (ts, id) is or would be inserted: the first whose last entry ≥ it, else the last. */
function chunkFor(chunks: Entry[][], ts: number, id: Uint8Array): number {
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = chunks[mid];
    if (compareIdentity(c[c.length - 1], ts, id) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** First index whose (ts, id) ≥ (ts, id). */
function lowerBound(c: Entry[], ts: number, id: Uint8Array): number {
  let lo = 0;
  let hi = c.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIdentity(c[mid], ts, id) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** First index whose ts ≥ ts. */
function lowerBoundTs(c: Entry[], ts: number): number {
  let lo = 0;
  let hi = c.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (c[mid].ts < ts) lo = mid + 1; else hi = mid;
  }
  return lo;
}
