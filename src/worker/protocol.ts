import type { JoinKind } from '../config/schema.js';

/** What the supervisor hands a worker thread (workerData). Plain data: it crosses threads. */
export interface WorkerInit {
  index: number;
  sab: SharedArrayBuffer;
  keyGroupRange: [number, number];
  join: JoinKind;
  lowerMs: number;
  upperMs: number;
  formats: ['json' | 'flatbuffers', 'json' | 'flatbuffers'];
  state: 'lmdb' | 'memory' | 'lmdb-btree';
  bucketMs: number;
  stateDir: string;
  /** Output sink spec: file:PATH (the worker appends), stdout or kafka:TOPIC (chunks posted to main), null. */
  out: string;
  /** Layout of output chunks (kafka framings for --out kafka:TOPIC). */
  framing: 'ndjson' | 'kafka-json' | 'kafka-flatbuffers';
  statsIntervalMs: number;
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
  stateBytes: number;
  watermarkMs: number;
  outputRecords: number;
}

export type WorkerMessage =
  | { type: 'ready'; index: number }
  | { type: 'stats'; stats: WorkerStats; latency: string; lag: string }
  | { type: 'out'; chunk: Uint8Array }
  | { type: 'done'; stats: WorkerStats; latency: string; lag: string }
  | { type: 'error'; error: { code: string; message: string; stack?: string } }
  /** Reply to a sync request: everything before it in the ring up to `head` is applied, and every output chunk it produced was posted before this reply. */
  | { type: 'synced'; id: number; head: number };

/** main → worker */
export type WorkerRequest = { type: 'sync'; id: number };
