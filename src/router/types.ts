import type { SourcePosition } from '../checkpoint/manifest.js';
import type { Side } from '../state/store.js';

/** A record the router did not route: malformed (dead letter) or behind the watermark (late). */
export interface Rejected {
  kind: 'dead' | 'late';
  side: Side;
  origin: string;
  position: number;      // line number / record index
  reason: string;
  record: Uint8Array;    // view, valid during the callback
  format: 'json' | 'flatbuffers';
  ts?: number;
  watermarkMs?: number;
}

/** Where the sources stood when a barrier went into the rings: what a checkpoint resumes from. */
export interface BarrierCut {
  id: number;
  positions: SourcePosition[];
  /** Per position, the state its source stores beside it (Source.checkpointState), or null. */
  states?: Array<Uint8Array | null>;
  watermarkMs: number;
  partitions: Array<{ side: number; partition: number; maxTsMs: number; ended: boolean }>;
}

export interface RouterCounters {
  read: [number, number];
  routed: [number, number];
  late: number;
  dead: number;
  /** Of `dead`: event times too far ahead (--max-future) or not times at all. */
  badTime: number;
  backpressureWaits: number;
}
