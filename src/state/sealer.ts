/**
 * Sealing (see bucket-store.ts, "Incremental sealing"): pacing seal jobs against event time, the
 * work of a job (append each bucket's records in runs, build its key filters), the
 * switch of a slice from its arena to its sealed buckets, giving a job up, and the way back
 * (unsealing a slice an insert reached).
 */
import { JoineryError } from '../core/errors.js';
import {
  APPEND, copyWords, E_CLASS, E_JOINED, ENTRY_HEADER, EV_HEADER, markedBuffer, NONE, OFF_MASK, REC_HASH, REC_KEY, REC_SIDE,
  RUN_BYTES, RUN_KEYS, SLAB_SHIFT, VALUE_HEADER, WORD_COPY_MAX, type MarkedBuffer,
} from './bucket-format.js';
import { slotsFor, type Buckets } from './buckets.js';
import { DB_LZ4, DB_PLAIN, type Database } from './lmdb.js';
import { KeySet } from './key-index.js';
import { ClassStat, OpenSlice } from './open-slice.js';
import { PH_FILTER, PH_UNINDEX, PH_WRITE, SealJob, U_COUNT, U_FILTER, U_PUT, U_UNINDEX, type ClassSeal } from './seal-job.js';
import { forEachRecord, Part, type Slice } from './sealed-io.js';
import type { Side } from './store.js';

/** With k complete slices waiting, the per-call cap is multiplied by min(k, SEAL_BACKLOG_MAX) to catch up. */
const SEAL_BACKLOG_MAX = 8;

export interface SealPacing {
  readonly sealSpread: number;
  readonly sealUnitsPerCall: number;
  readonly sealAtOnceUnits: number;
  /** Open slices may hold this many bytes before complete ones are sealed (0: seal each once complete). */
  readonly memoryBytes: number;
}

/** Share of the memory budget kept for the newest complete slices (Sealer.recentFrom). */
const RECENT_SHARE = 0.5;

/** The k-th position (0-based) in sealing order: kept−1 down to 0, then kept up to last. */
function sealOrderAt(k: number, kept: number, last: number): number {
  return k < kept ? kept - 1 - k : k;
}

export class Sealer {
  private readonly bucketMs: number;
  private readonly sealSpread: number;
  private readonly sealAtOnceUnits: number;
  private readonly memoryBytes: number;
  private readonly runKey = Buffer.allocUnsafeSlow(4);

  constructor(private readonly b: Buckets, pacing: SealPacing) {
    this.bucketMs = b.bucketMs;
    this.sealSpread = pacing.sealSpread;
    this.sealAtOnceUnits = pacing.sealAtOnceUnits;
    this.memoryBytes = pacing.memoryBytes;
  }

  /**
   * Bytes by which the open slices exceed the memory budget (≤ 0: within it). With a budget,
   * complete slices stay open, probed in memory, until the open slices outgrow it; then the newest
   * complete ones are sealed (see nextToSeal and bucket-store.ts, "Memory budget").
   */
  private excessBytes(): number {
    return this.memoryBytes === 0 ? Infinity : this.b.openMemoryBytes() - this.memoryBytes;
  }

  /**
   * The next complete open slice (no later insert can reach it) to seal, or undefined. Without a
   * memory budget, or with `all`: the oldest. With one, only while the open slices exceed the
   * budget, in the order of sealOrderAt (see recentFrom).
   */
  nextToSeal(all = false): Slice | undefined {
    const order = this.b.order;
    const end = this.b.wmMax;
    if (all || this.memoryBytes === 0) {
      for (let i = 0; i < order.length; i++) {
        const slice = order[i];
        if ((slice.t + 1) * this.bucketMs > end) return undefined;
        if (slice.open !== undefined) return slice;
      }
      return undefined;
    }
    if (!(this.excessBytes() > 0)) return undefined;
    const last = this.lastComplete();
    const kept = this.recentFrom(last);
    for (let k = 0; k <= last; k++) {
      const i = sealOrderAt(k, kept, last);
      if (order[i].open !== undefined) return order[i];
    }
    return undefined;
  }

  /**
   * Where the *recent share* starts: the newest complete open slices that fit in RECENT_SHARE of
   * the budget, positions kept..last of `order`. Over the budget, the slices older than those are
   * sealed first, newest first; the recent ones only after them, oldest first (sealOrderAt).
   *
   * Why newest first: the newest lives longest, so sealing it frees memory for longest per byte
   * written; sealing the oldest would write nearly every slice once the budget is reached (each
   * sealed just before it expires), which measured as slow as sealing everything.
   * Why a recent share: when one side follows the other (a play minutes after its impression),
   * most matches are in the last minutes, and with a long window (24 h) and a small budget the
   * newest-first rule sealed every slice as soon as it was complete, so nearly every match was an
   * LMDB read, from disk once the state outgrew the page cache.
   */
  private recentFrom(last: number): number {
    const order = this.b.order;
    const share = this.memoryBytes * RECENT_SHARE;
    let held = 0;
    let i = last;
    for (; i >= 0; i--) {
      const os = order[i].open;
      if (os === undefined) continue;
      held += os.memoryBytes();
      if (held > share) break;
    }
    return i + 1;
  }

  /** Position in `order` of the newest complete slice (−1: none). */
  private lastComplete(): number {
    const order = this.b.order;
    const end = this.b.wmMax;
    let i = order.length - 1;
    while (i >= 0 && (order[i].t + 1) * this.bucketMs > end) i--;
    return i;
  }

  /**
   * Complete open slices to seal: the one being sealed and those waiting (with a memory budget, the
   * ones, in sealing order, whose sealing brings the open slices back within it).
   */
  pendingSeals(): number {
    const order = this.b.order;
    const job = this.b.job;
    let excess = this.excessBytes();
    let n = 0;
    const last = this.lastComplete();
    const kept = excess === Infinity ? 0 : this.recentFrom(last);
    for (let k = 0; k <= last; k++) {
      const os = order[sealOrderAt(k, kept, last)].open;
      if (os === undefined) continue;
      if (excess > 0 || job?.os === os) {
        n++;
        excess -= os.memoryBytes();
      }
    }
    return n;
  }

  /**
   * Event time for pacing seals: the watermark, advanced by how far inserted event time moved since
   * the watermark last rose (so that calls between watermark frames find work due), at most a bucket.
   */
  private sealClock(): number {
    const ahead = this.b.tsMax - this.b.tsMaxAtWm;
    return ahead > 0 ? this.b.wmMax + Math.min(ahead, this.bucketMs) : this.b.wmMax;
  }

  /**
   * Units of `job`'s work due now when paced: the slice of t is sealed while the clock (sealClock)
   * goes from its end (t+1)·B to (t+1+sealSpread)·B; all of it once the clock is past that, when
   * complete slices queue behind it, or when at most sealAtOnceUnits are left.
   */
  private due(job: SealJob, clock: number, queued: number): number {
    const left = job.estimate - job.done;
    const f = (clock - job.startClock) / (this.sealSpread * this.bucketMs);
    if (queued > 1 || !(f < 1) || left <= this.sealAtOnceUnits) return Infinity;
    return job.estimate * f - job.done;
  }

  /** Would a paced call (maintain) find sealing work to do? */
  sealDue(): boolean {
    if (this.b.job === undefined) return this.nextToSeal() !== undefined; // a new job: its first step at least
    return this.sealSpread === 0 || this.due(this.b.job, this.sealClock(), this.pendingSeals()) > 0;
  }

  /**
   * Advances the sealing of complete slices, oldest first, by at most `cap` units (a step may run
   * over by a little). Paced (expire(), maintain()): only what is due (see due()); with `catchUp`
   * (expire()), the cap is multiplied by the number of complete slices waiting, up to
   * SEAL_BACKLOG_MAX. sealSpread 0: no pacing, no cap.
   */
  sealWork(cap: number, paced: boolean, catchUp: boolean, all = false): void {
    if (paced && this.sealSpread === 0) {
      paced = false;
      cap = Infinity;
    }
    let queued = -1;
    let clock = 0;
    let used = 0;
    while (used < cap) {
      let job = this.b.job;
      if (job === undefined) {
        const slice = this.nextToSeal(all);
        if (slice === undefined) break;
        const os = slice.open!;
        // Paced from its slice's end, or, if the budget made it due later, from now.
        const end = (slice.t + 1) * this.bucketMs;
        job = this.b.job = os.job = new SealJob(slice, os, this.memoryBytes === 0 ? end : Math.max(end, this.sealClock()));
        // Later slices will be about this size: start them there rather than grow to it.
        this.b.slotHint = slotsFor(os.n);
      }
      let budget = cap - used;
      if (paced) {
        if (queued < 0) {
          queued = this.pendingSeals();
          clock = this.sealClock();
          if (catchUp && queued > 1) {
            cap *= Math.min(queued, SEAL_BACKLOG_MAX);
            budget = cap - used;
          }
        }
        const due = this.due(job, clock, queued);
        if (due <= 0) break; // on schedule: nothing to do yet
        if (due < budget) budget = due;
      }
      const u = this.sealStep(job, budget);
      used += u;
      job.done += u;
    }
  }

  /** One bounded step of a job; returns the units used (> 0). */
  private sealStep(job: SealJob, budget: number): number {
    if (job.ci >= job.classes.length) {
      if (job.phase !== PH_UNINDEX) {
        if (job.os.classList.length <= job.classes.length) return this.finishSeal(job); // no bucket expired while open
        job.phase = PH_UNINDEX;
        job.pos = 0;
      }
      if (job.pos < job.n) return this.unindexStep(job, budget) + U_COUNT;
      return this.finishSeal(job);
    }
    if (job.phase === PH_WRITE) return this.writeStep(job, budget) + U_COUNT;
    return this.filterStep(job, budget) + U_COUNT;
  }

  /**
   * Appends the current bucket's values, slot after slot (slot order), until the budget is used:
   * (key, side) records gathered into runs, one LMDB value each (see bucket-format.ts). A run is
   * put once the next record would take it past RUN_BYTES (so that it stays inline in its leaf
   * page) or at RUN_KEYS records; a run not full at the end of a step waits in vbuf for the next
   * step (the bucket's last run is put when its last slot is written).
   */
  private writeStep(job: SealJob, budget: number): number {
    const os = job.os;
    const cl = job.classes[job.ci];
    this.b.dirty = true;
    let db = cl.db;
    if (db === undefined) {
      const name = cl.name = this.b.takeName();
      try {
        db = this.b.root.openDB<Buffer, Buffer>(name, (this.b.compressNext() ? DB_LZ4 : DB_PLAIN) as typeof DB_PLAIN);
      } catch (err) {
        throw new JoineryError('E_STATE', `bucket store: cannot create a bucket database: ${(err as Error).message}`, { cause: err });
      }
      if (db === undefined) throw new JoineryError('E_STATE', `bucket store: cannot create bucket database ${name}`);
      cl.db = db;
    }
    const idx = cl.cs.idx;
    const bits = cl.bits;
    const hashes = job.hashes;
    const runs = job.runs;
    const nHashes = job.nHashes;
    const n = job.n;
    let ordinal = cl.ordinal;
    let used = 0;
    let k = job.pos;
    let v = this.b.vbuf;
    let vd = new DataView(v.buffer, 0, v.length); // a MarkedBuffer's byteOffset is 0
    let p = cl.runBytes; // bytes of the run being gathered
    let recs = cl.runRecs; // its records
    for (; k < n && used < budget; k++) {
      const s = k;
      used += U_COUNT;
      for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
        const head = os.head(side, s);
        if (head === NONE) continue;
        // The record header and key bytes, then the entries (copied: the arena stays intact and
        // readable until the switch).
        const h = os.hashOf(s);
        const kr = os.keyRefOf(s) - 4;
        const kLen = os.keyLenOf(s) + 4;
        let r0 = p;
        let q = r0 + REC_KEY + kLen + VALUE_HEADER;
        if (q > v.length) { v = this.grow(q, p); vd = new DataView(v.buffer, 0, v.length); }
        v.writeInt32LE(h, r0 + REC_HASH);
        v[r0 + REC_SIDE] = side;
        if (kLen <= WORD_COPY_MAX) copyWords(os.dvs[kr >>> SLAB_SHIFT], kr & OFF_MASK, vd, r0 + REC_KEY, kLen);
        else v.set(new Uint8Array(os.slabs[kr >>> SLAB_SHIFT].buffer, kr & OFF_MASK, kLen), r0 + REC_KEY);
        const first = ordinal;
        for (let r = head; r !== NONE; r = os.next(r)) {
          const d = os.dvs[r >>> SLAB_SHIFT];
          const o = r & OFF_MASK;
          if (d.getUint16(o + E_CLASS, true) !== idx) continue;
          const b = os.slabs[r >>> SLAB_SHIFT];
          const len = EV_HEADER + d.getUint16(o + 8, true) + d.getUint32(o + 10, true);
          if (q + len > v.length) { v = this.grow(q + len, q); vd = new DataView(v.buffer, 0, v.length); }
          if (len <= WORD_COPY_MAX) copyWords(d, o, vd, q, len);
          else v.set(new Uint8Array(b.buffer, o, len), q);
          q += len;
          const j = b[o + E_JOINED] & 1;
          if (j === 1) bits[ordinal >>> 3] |= 1 << (ordinal & 7);
          d.setUint32(o + E_JOINED, ordinal * 2 + j, true); // the entry's ordinal, for flags set before the switch
          ordinal++;
        }
        const cnt = ordinal - first;
        if (cnt === 0) continue; // the record is dropped: p stays
        if (q > RUN_BYTES && recs > 0) {
          // The record would take the run past the inline limit: the run goes without it, and the
          // record starts the next one.
          this.putRun(db, cl, v, r0);
          used += U_PUT;
          v.copyWithin(0, r0, q);
          q -= r0;
          r0 = 0;
          recs = 0;
        }
        const vo = r0 + REC_KEY + kLen;
        v.writeUInt32LE(q - r0, r0);
        v.writeUInt32LE(cnt, vo);
        v.writeUInt32LE(first, vo + 4);
        p = q;
        hashes[side][nHashes[side]] = h;
        runs[side][nHashes[side]++] = cl.runs;
        used += cnt;
        if (++recs >= RUN_KEYS || p >= RUN_BYTES) {
          this.putRun(db, cl, v, p);
          used += U_PUT;
          p = recs = 0;
        }
      }
    }
    if (k === n && recs > 0) {
      this.putRun(db, cl, v, p);
      used += U_PUT;
      p = recs = 0;
    }
    cl.runBytes = p;
    cl.runRecs = recs;
    cl.ordinal = ordinal;
    job.pos = k;
    if (k === n) {
      job.phase = PH_FILTER;
      job.pos = 0;
      job.fside = 0;
    }
    return used;
  }

  /** A larger run buffer, with the first `keep` bytes of the current one. */
  private grow(need: number, keep: number): MarkedBuffer {
    const v = this.b.vbuf;
    const w = markedBuffer(Math.max(need, v.length * 2));
    v.copy(w, 0, 0, keep);
    return this.b.vbuf = w;
  }

  private putRun(db: Database<Buffer, Buffer>, cl: ClassSeal, v: MarkedBuffer, len: number): void {
    this.runKey.writeUInt32BE(cl.runs++, 0);
    v.end = len;
    try {
      db.putSync(this.runKey, v, APPEND);
    } finally {
      v.end = 0;
    }
  }

  /** Builds the current bucket's key filters from the hashes collected while writing. */
  private filterStep(job: SealJob, budget: number): number {
    const cl = job.classes[job.ci];
    let used = 0;
    while (used < budget) {
      const side = job.fside;
      if (side > 1) {
        // This bucket is complete; on to the next.
        job.ci++;
        job.phase = PH_WRITE;
        job.pos = 0;
        job.nHashes[0] = job.nHashes[1] = 0;
        break;
      }
      const cnt = job.nHashes[side];
      if (cnt === 0) { job.fside++; continue; }
      let f = cl.filters[side];
      if (f === undefined) f = cl.filters[side] = new KeySet(cnt);
      const hs = job.hashes[side];
      const rs = job.runs[side];
      const end = Math.min(cnt, job.pos + Math.max(64, Math.ceil((budget - used) / U_FILTER)));
      for (let i = job.pos; i < end; i++) f.add(hs[i], rs[i]);
      used += (end - job.pos) * U_FILTER;
      job.pos = end;
      if (end === cnt) { job.fside++; job.pos = 0; }
    }
    return used;
  }

  /**
   * Removes from the key index, slot after slot until the budget is used, the (key, side) of the
   * slice that no part of the job holds: their entries all expired while the slice was open. The
   * slice stays open meanwhile; a probe would find nothing live there for those keys anyway.
   */
  private unindexStep(job: SealJob, budget: number): number {
    const os = job.os;
    const index = this.b.index;
    const t = job.slice.t;
    const classes = job.classes;
    const n = job.n;
    let used = 0;
    let s = job.pos;
    for (; s < n && used < budget; s++) {
      used += U_COUNT;
      const h = os.hashOf(s);
      for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
        if (os.head(side, s) === NONE) continue;
        let held = false;
        for (let c = 0; c < classes.length && !held; c++) held = classes[c].filters[side]?.has(h) === true;
        if (held) continue;
        index.remove(h, side, t);
        used += U_UNINDEX;
      }
    }
    job.pos = s;
    return used;
  }

  /** Every bucket of the job is complete: the slice switches from its arena to its parts. */
  private finishSeal(job: SealJob): number {
    const os = job.os;
    const byIdx: (ClassSeal | undefined)[] = [];
    for (const cl of job.classes) byIdx[cl.cs.idx] = cl;
    // Flags set after an entry was written: its ordinal is in its header.
    for (const r of job.late) {
      const cl = byIdx[os.cls(r)];
      if (cl === undefined) continue;
      const ord = os.dvs[r >>> SLAB_SHIFT].getUint32((r & OFF_MASK) + E_JOINED, true) >>> 1;
      cl.bits[ord >>> 3] |= 1 << (ord & 7);
    }
    const parts: Part[] = [];
    for (const cl of job.classes) {
      const cs = cl.cs;
      parts.push(new Part(cs.c, cl.name!, cl.db!, cs.count, cs.bytes, cs.maxExpire, cl.filters, cl.bits));
      this.b.sealedCount += cs.count;
    }
    // The arena goes: its entries not yet in a change file are written now (pending-log.ts).
    this.b.pending?.flushSlice(os);
    job.slice.parts = parts;
    job.slice.open = undefined;
    this.b.sealGen++;
    os.job = undefined;
    this.b.job = undefined;
    // Keys whose entries on a side all expired while the slice was open left the index (unindexStep).
    return 1 + job.late.length * U_FILTER;
  }

  /** Gives up a job (its slice changed, or goes: `sliceGoes`): drops the databases written so far. The slice stays open. */
  abandonSeal(job: SealJob, sliceGoes = false): void {
    if (job.phase === PH_UNINDEX && job.pos > 0 && !sliceGoes) {
      // Keys unindexed so far still have (dead) entries linked in the open slice, and an insert on
      // such a side adds no occurrence (it is not the key's first there): index them again.
      // Only a late insert or a watermark regression gets here.
      const os = job.os;
      for (let s = 0; s < job.pos; s++) {
        for (let side = 0 as Side; side <= 1; side = (side + 1) as Side) {
          if (os.head(side, s) !== NONE) this.b.index.add(os.hashOf(s), side, job.slice.t, s);
        }
      }
    }
    for (const cl of job.classes) this.dropSealDb(cl);
    job.classes.length = 0;
    job.os.job = undefined;
    if (this.b.job === job) this.b.job = undefined;
  }

  /** A bucket of a slice being sealed expired: it leaves the job, its partial database dropped. */
  dropFromSeal(job: SealJob, cs: ClassStat): void {
    const j = job.classes.findIndex((cl) => cl.cs === cs);
    if (j < 0) return;
    this.dropSealDb(job.classes[j]);
    job.classes.splice(j, 1);
    if (job.phase === PH_UNINDEX) {
      job.ci--; // every bucket was complete
      job.pos = 0; // keys only the dropped bucket held must leave the index too: start over
    } else if (j < job.ci) {
      job.ci--;
    } else if (j === job.ci && job.phase >= PH_WRITE) {
      job.phase = PH_WRITE;
      job.pos = 0;
      job.fside = 0;
      job.nHashes[0] = job.nHashes[1] = 0;
    }
  }

  private dropSealDb(cl: ClassSeal): void {
    if (cl.db === undefined) return;
    this.b.dirty = true;
    cl.db.dropSync();
    this.b.releasedNames.push(cl.name!);
    cl.db = undefined;
  }


  /** Reads a sealed slice back into memory and drops its databases (an insert reached it). */
  unseal(slice: Slice): OpenSlice {
    this.b.flushUnindex(slice.t); // its dropped buckets' keys leave the index before any of its keys come back
    this.b.dirty = true;
    // A frozen slice's keys left the key index (frozen.ts): they come back with the slice.
    const reindex = slice.frozen;
    const index = this.b.index;
    const os = new OpenSlice();
    for (const part of slice.parts) {
      const cs = new ClassStat(part.c, os.classList.length);
      cs.count = part.count;
      cs.bytes = part.bytes;
      cs.maxExpire = part.maxExpire;
      os.classes.set(part.c, cs);
      os.classList.push(cs);
      for (const { value: v } of part.db.getRange({})) {
        forEachRecord(v, (side, keyGroup, key, vo, _ve, h) => {
          const count = v.readUInt32LE(vo);
          let ordinal = v.readUInt32LE(vo + 4);
          let s = os.find(h, keyGroup, key);
          if (s === NONE) s = os.add(h, keyGroup, key);
          if (reindex && os.head(side, s) === NONE) index.add(h, side, slice.t, s);
          let p = vo + VALUE_HEADER;
          for (let i = 0; i < count; i++, ordinal++) {
            const ts = v.readDoubleLE(p);
            const idLen = v.readUInt16LE(p + 8);
            const len = EV_HEADER + idLen + v.readUInt32LE(p + 10);
            const ref = os.reserve(ENTRY_HEADER + len) + ENTRY_HEADER;
            const b = os.slab(ref);
            const o = ref & OFF_MASK;
            v.copy(b, o, p, p + len);
            b[o + E_JOINED] = (part.bits[ordinal >>> 3] & (1 << (ordinal & 7))) !== 0 ? 1 : 0;
            b.writeInt32LE(cs.idx, o + E_CLASS);
            os.linkAfter(side, s, os.floor(side, s, ts, b.subarray(o + EV_HEADER, o + EV_HEADER + idLen)), ref);
            p += len;
          }
        });
      }
      part.db.dropSync();
      this.b.partGone(part);
      this.b.releasedNames.push(part.name);
      this.b.sealedCount -= part.count;
      if (part.maxExpire < this.b.minMaxExpire) this.b.minMaxExpire = part.maxExpire;
    }
    slice.parts = [];
    slice.frozen = false;
    slice.open = os; // nothing to note for the deferred log: its entries were logged before they were sealed
    return os;
  }
}
