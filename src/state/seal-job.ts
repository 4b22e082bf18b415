/**
 * A seal job's state (see bucket-store.ts, "Incremental sealing"): one complete open slice being
 * written into sealed buckets, a bounded amount of work at a time, by sealer.ts.
 *
 * Slots are written in slot order (the order keys first came to the slice), not sorted: a bucket's
 * LMDB keys are run numbers, which increase whatever the order of the records in them, so every put
 * is still an append. (While each value was keyed by its key, the job first sorted the slots into
 * key order in bounded steps: counting by key group, scattering, a quicksort per group. That was
 * 2–7 % of a worker's CPU, and slot order also reads the slot arrays and, for keys with one entry,
 * the arena front to back.)
 */
import { RUN_BYTES, RUN_KEYS } from './bucket-format.js';
import type { KeySet } from './key-index.js';
import type { Database } from './lmdb.js';
import type { ClassStat, OpenSlice } from './open-slice.js';
import type { Slice } from './sealed-io.js';

// ---- incremental sealing ----
//
// Work is counted in units of about one entry written (see "Incremental sealing" in the header).

export const PH_WRITE = 3; // append the current bucket's records, slot after slot
export const PH_FILTER = 4; // build the current bucket's key filters
/**
 * Every bucket written; keys whose entries on a side all expired while the slice was open (in no
 * part) leave the key index, a bounded number of slots per step, before the switch. (Done at the
 * switch in one go, this took ~1 µs per key of the slice in one call: 0.1–0.2 s for a 30 s slice
 * at 50k events/s per worker, whenever a side's bucket expires while open — the right side when
 * lower = 0.)
 */
export const PH_UNINDEX = 5;
/**
 * Work units (≈ one entry written: the write phase counts one per entry plus U_PUT per LMDB value) per
 * slot visited, per filter hash, per key index removal. Calibrated on the 2-vCPU box.
 */
export const U_COUNT = 1 / 32;
export const U_FILTER = 1 / 16;
export const U_PUT = 1;
export const U_UNINDEX = 1 / 4; // per key index removal (a random access into the index)

/** One bucket (retention class) of a slice being sealed: its database as far as written, its bits and filters. */
export class ClassSeal {
  name: string | undefined = undefined;
  db: Database<Buffer, Buffer> | undefined = undefined;
  ordinal = 0; // next entry ordinal
  runs = 0; // runs put (the number of the run being gathered)
  runBytes = 0; // bytes of the run being gathered (at the start of the sealer's vbuf; it may span write steps)
  runRecs = 0; // its records
  readonly bits: Uint8Array;
  readonly filters: [KeySet | undefined, KeySet | undefined] = [undefined, undefined];
  constructor(readonly cs: ClassStat) {
    this.bits = new Uint8Array((cs.count + 7) >>> 3);
  }
}

/**
 * The sealing of one slice in progress. The slice stays open (in memory, fully served from its
 * arena) until every bucket's database is complete; then it switches to its parts in one step.
 * Any change to the slice's entries (an insert) abandons the job; a bucket that expires meanwhile
 * is dropped from it, its partial database with it.
 */
export class SealJob {
  phase = PH_WRITE;
  pos = 0; // next slot (write and unindex phases) or hash (filter phase)
  readonly n: number; // slots
  readonly classes: ClassSeal[];
  ci = 0; // bucket being written (earlier ones are complete)
  fside = 0; // filter phase: side being built
  readonly nHashes = [0, 0];
  readonly hashes: [Int32Array, Int32Array];
  readonly runs: [Int32Array, Int32Array]; // the run of each hash in `hashes`
  /** Entries whose joined flag was set since the job began (their bits are set at the switch). */
  readonly late: number[] = [];
  /** Work units the job is expected to take (roughly) and those done so far. */
  readonly estimate: number;
  done = 0;

  /** `startClock`: the event time (Sealer.sealClock) from which the job is paced. */
  constructor(readonly slice: Slice, readonly os: OpenSlice, readonly startClock: number) {
    const n = this.n = os.n;
    this.hashes = [new Int32Array(n), new Int32Array(n)];
    this.runs = [new Int32Array(n), new Int32Array(n)];
    this.classes = [...os.classes.values()].sort((a, b) => a.c - b.c).map((cs) => new ClassSeal(cs));
    let est = 0;
    for (const cl of this.classes) {
      // One value per run: a run closes at RUN_KEYS records or before it would pass RUN_BYTES.
      const runs = cl.cs.count / RUN_KEYS + cl.cs.bytes / RUN_BYTES;
      est += n * U_COUNT + cl.cs.count * (1 + U_FILTER) + runs * U_PUT;
    }
    if (os.classList.length > this.classes.length) est += n * (U_COUNT + U_UNINDEX);
    this.estimate = est;
  }
}
