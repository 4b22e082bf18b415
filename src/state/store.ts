/**
 * The join buffer: what a worker keeps per side until the watermark says an event can no longer
 * join. One interface, three implementations (memory, lmdb, bucket) checked by one contract suite
 * (test/contract/store.contract.ts).
 *
 * Byte arguments (key, id, payload) are views that are only valid during the call: a store copies
 * what it keeps. Views handed to callbacks are likewise only valid during the callback.
 *
 * Identity: an entry is identified by (side, key, ts, id). Inserting the same identity twice is a
 * duplicate delivery: insert() returns false and stores nothing. (Re-deliveries carry the same
 * event time, so embedding the id in the time-ordered entry key makes de-duplication free instead
 * of costing a second table write per event.)
 */
export type Side = 0 | 1; // 0 = left, 1 = right

export interface Buffered {
  side: Side;
  keyGroup: number;
  key: Uint8Array;      // canonical key bytes
  ts: number;           // event time, ms
  id: Uint8Array;       // canonical id bytes
  payload: Uint8Array;  // record bytes as received
  joined: boolean;      // has joined at least one partner
}

export interface StateStore {
  /**
   * How coarse expire() may be, in ms: an entry is never removed while expireAtMs ≥ watermark, and
   * is removed at the latest once watermark > expireAtMs + expiryGranularityMs. 0 = exact (an entry
   * goes exactly when watermark > expireAtMs).
   */
  readonly expiryGranularityMs: number;
  /** Run fn as one write transaction (one per ring drain). All mutating calls happen inside batch(). */
  batch<T>(fn: () => T): T;
  /**
   * Buffer an event until the watermark passes expireAtMs. Returns false (and stores nothing) when
   * the same (side, key, ts, id) is already buffered.
   */
  insert(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array,
    payload: Uint8Array, joined: boolean, expireAtMs: number): boolean;
  /**
   * Visit the entries of `side` with this key and fromTs ≤ ts ≤ toTs, in ts order. When visit
   * returns true the entry's joined flag is set (persisted).
   */
  probe(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number,
    visit: (e: Buffered) => boolean | void): void;
  /** Set the joined flag of one entry (identity as in insert). */
  markJoined(side: Side, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array): void;
  /**
   * Remove every entry whose expireAtMs < watermarkMs, calling onExpired for each before it goes
   * (payload included, so outer joins can emit it). Cost is proportional to what expires, never a
   * scan of the whole buffer. Returns the number removed. A store with expiryGranularityMs > 0 may
   * keep such entries longer, within that bound (see expiryGranularityMs).
   */
  expire(watermarkMs: number, onExpired?: (e: Buffered) => void): number;
  /**
   * Optional background work (the bucket store's incremental sealing): do what is due of it, at
   * most about `budgetEntries` entries' worth. Meant to be called once per ring drain, inside its
   * batch (outside one it opens its own). Stores without such work leave it out; expire() alone
   * keeps them correct and on pace, maintain() only spreads the work into smaller steps.
   */
  maintain?(budgetEntries: number): void;
  /**
   * Optional hint: issue now the first memory reads an insert and probe of (keyHash, ts) will make
   * (they are cache misses), so that those of several events overlap. Changes nothing; returns a
   * value the caller keeps, so the reads are not optimised away.
   */
  prefetch?(keyHash: number, ts: number): number;
  /** Entries currently buffered. */
  count(): number;
  /** Approximate bytes held (payload + keys); for metrics. */
  bytes(): number;
  /**
   * Optional: deferred change logging (checkpoint/logged-store.ts). From this call on, the store
   * keeps a note of each entry inserted on a side in `sides`, where it would have been logged at
   * once, and hands those still live to `sink` when asked (DeferredLog.flush, at a checkpoint
   * barrier) or when it is about to let go of them without expiry (a slice sealed into LMDB). An
   * entry that expires before the next checkpoint is then never written to a change file.
   */
  deferLogging?(sides: readonly [boolean, boolean], sink: DeferredSink): DeferredLog;
  /** Bytes of the buffer held in memory rather than in LMDB (the lmdb store's open buckets, which --state-memory bounds); for metrics. */
  memoryBytes?(): number;
  /**
   * Bytes of the lmdb store's indexes over its buffer (key index, sealed buckets' filters and joined
   * bits, frozen group tables): memory that grows with the buffer, outside --state-memory; for metrics.
   */
  indexMemoryBytes?(): number;
  /**
   * During a restore, inside a batch: the store may treat event time up to `horizonMs` as complete
   * (as if a watermark had passed it) and move complete data out of memory as it usually would, so
   * that a restored state larger than memory does not wait in memory whole. Nothing is dropped or
   * expired; an event inserted below the horizon later is still taken.
   */
  restoreHorizon?(horizonMs: number): void;
  close(): Promise<void>;
}

/**
 * Where a store's deferred change records go: one EVENT record per live entry, its bytes read
 * where the store keeps them (the key at keyAt in keySrc; the id, then the payload, at tailAt in
 * tailSrc), so that nothing is copied twice.
 */
export interface DeferredSink {
  deferredEvent(side: Side, keyGroup: number, keyHash: number, keySrc: DataView, keyAt: number, keyLen: number, ts: number,
    tailSrc: DataView, tailAt: number, idLen: number, payloadLen: number, joined: boolean, expireAtMs: number, sourcePartition: number): void;
}

/** A store's deferred change log (StateStore.deferLogging). */
export interface DeferredLog {
  /** The Kafka partition + 1 of the events inserted next (0: another source); kept with each deferred entry. */
  partition: number;
  /** Hands every live entry noted since the last flush (or clear) to the sink; returns how many. */
  flush(): number;
  /**
   * Looks at up to `budget` noted entries not looked at yet: hands those whose expiry is at least
   * `minExpireMs` to the sink now, keeps the others for flush(). Returns how many it looked at.
   */
  writeAhead(budget: number, minExpireMs: number): number;
  /** Entries noted and not yet flushed (live or not). */
  pending(): number;
}

export interface StoreOptions {
  /** Directory for this store's files (lmdb). Created if missing. */
  dir?: string;
}
