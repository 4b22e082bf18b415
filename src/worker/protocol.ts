import type { SinkEndpoint } from '../config/endpoints.js';
import type { JoinKind } from '../config/schema.js';
import type { HotKeyReport } from '../join/hot-keys.js';
import type { StagedFile, StorageDescriptor } from '../checkpoint/storage.js';
import type { ExpireAtMax } from '../checkpoint/file-expiry.js';

/** What the supervisor hands a worker thread (workerData). Plain data: it crosses threads. */
export interface WorkerInit {
  index: number;
  sab: SharedArrayBuffer;
  /** Int32 flag set to 1 when the process must exit now (src/core/exit.ts): abort the open transaction, close the store, end. */
  halt: SharedArrayBuffer;
  keyGroupRange: [number, number];
  join: JoinKind;
  lowerMs: number;
  upperMs: number;
  formats: ['json' | 'flatbuffers', 'json' | 'flatbuffers'];
  state: 'lmdb' | 'memory' | 'lmdb-btree';
  bucketMs: number;
  /** Slices per frozen group of the lmdb store (0: never freeze). */
  freezeGroupSlices: number;
  /** Memory budget of this worker's open buckets (see BucketStoreOptions.memoryBytes). */
  stateMemoryBytes: number;
  /** LMDB file size from which this worker's sealed buckets are LZ4-compressed (BucketStoreOptions.lz4AboveBytes; Infinity: never). */
  lz4AboveBytes: number;
  stateDir: string;
  /** --out as its descriptor: a file the worker appends to; stdout or a record sink (chunks posted to main); null. */
  out: SinkEndpoint;
  /** Layout of output chunks (records framings for a record sink such as --out kafka:TOPIC). */
  framing: 'ndjson' | 'records-json' | 'records-flatbuffers';
  statsIntervalMs: number;
  /** --max-key-entries (0 = no guard) and --max-delay (how long the hot-key sketch must remember). */
  maxKeyEntries: number;
  maxDelayMs: number;
  /** Diverted events are posted as 'overflow' lines (--late-out is set); else only counted. */
  overflowOut: boolean;
  /** Checkpointing on: log state changes into files staged in this storage (names carry runId). */
  checkpoint?: { storage: StorageDescriptor; runId: string; outer: [boolean, boolean]; gateOutput: boolean; firstEpoch: number; intervalMs: number };
  /** Rebuild (--rebuild-from): drop all output until the REPLAY_END frame (src/rebuild/replay.ts). */
  rebuild?: boolean;
  /** Backfill: REPLAY_END marks the cut; unmatched rows expiring at or after the watermark there are dropped (src/sink/cut-emitter.ts). */
  backfill?: boolean;
  /** Restore before taking input: fold these state files of the checkpoint storage (oldest first) into the store. */
  restore?: { files: Array<{ name: string; keyGroups: [number, number] }>; dropBeforeMs: number; watermarkMs: number };
}

/** A worker's answer to a checkpoint barrier: the state file covering the changes up to it. */
export interface BarrierAck {
  id: number;
  /**
   * Change file closed at this barrier, staged for the coordinator to publish (covers every change since the previous completed one), or null if it could not be completed (error says why; its changes stay pending).
   * `checksum`: computed by the writer as it wrote the file, so sealing it need not read it back.
   */
  file: (StagedFile & { bytes: number; records: number; expireAtMaxMs?: ExpireAtMax; checksum?: string }) | null;
  error?: string;
  watermarkMs: number;
  stateBytes: number;
  /** The answer to a stop at a cut (the ring's unread frames go into the checkpoint), not to a barrier frame. */
  cut?: boolean;
}

export interface WorkerStats {
  index: number;
  events: [number, number];
  duplicates: number;
  pairs: number;
  unmatchedLeft: number;
  unmatchedRight: number;
  expired: number;
  stateEntries: number;
  /** Most entries held at once (sampled before each expiry, so exact for a store that expires on watermarks). */
  peakStateEntries: number;
  stateBytes: number;
  /** Of the state, bytes in memory (the lmdb store's open buckets; --state-memory bounds them), 0 for other stores. */
  stateMemoryBytes: number;
  /** Memory of the store's indexes over the buffer (StateStore.indexMemoryBytes), 0 for other stores. */
  stateIndexBytes: number;
  watermarkMs: number;
  outputRecords: number;
  /** Rebuild: pairs and unmatched rows of the replay, not emitted (the lost run emitted them); not in pairs/unmatched*. */
  suppressedPairs?: number;
  suppressedUnmatched?: number;
  /** Keys holding the most entries / producing the most pairs per event, and events diverted by --max-key-entries per side. */
  hotKeys?: HotKeyReport;
}

export type WorkerMessage =
  /** tid: the thread's kernel task id (Linux), for per-thread CPU time (src/metrics/cpu.ts). */
  | { type: 'ready'; index: number; tid?: number | null }
  | { type: 'stats'; stats: WorkerStats; latency: string; lag: string }
  | { type: 'out'; chunk: Uint8Array }
  | { type: 'done'; stats: WorkerStats; latency: string; lag: string }
  | { type: 'error'; error: { code: string; message: string; stack?: string } }
  /** Reply to a sync request: everything before it in the ring up to `head` is applied, and every output chunk it produced was posted before this reply. */
  | { type: 'synced'; id: number; head: number }
  /** Reached checkpoint barrier `ack.id`: its state changes are in `ack.file` and its earlier output has been written. */
  | { type: 'barrier'; ack: BarrierAck }
  /** Progress of the restore, every statsIntervalMs while it lasts: events put back and chain files read so far (of `files`). */
  | { type: 'restoring'; index: number; events: number; filesRead: number; files: number }
  | { type: 'restored'; index: number; events: number; bytes: number; ms: number }
  /** Events diverted by --max-key-entries, as --late-out lines. */
  | { type: 'overflow'; chunk: Uint8Array }
  /** A warning for main's log (the worker thread's logger is not configured). */
  | { type: 'log'; msg: string; fields: Record<string, unknown> };

/** main → worker */
export type WorkerRequest =
  | { type: 'sync'; id: number }
  /** Every worker has written its output before barrier `id`: output after it may be written now. */
  | { type: 'release'; id: number }
  /** The run failed elsewhere: stop at the next drain boundary, close the store, report done. */
  | { type: 'abort' };
