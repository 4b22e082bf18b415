import { nowMs } from '../core/units.js';
import { TRACE_DIR, TraceTable, threadSchedMs } from '../metrics/trace.js';
import type { Extractor } from '../codec/json.js';
import { copyBytes } from '../ring/copy.js';
import { FrameSpill, RingProducer } from '../ring/ring.js';
import {
  BARRIER_BYTES, BARRIER_ID, END_BYTES, REPLAY_END_BYTES, EV_ID_LEN, EV_KEY_GROUP, EV_KEY_HASH, EV_KEY_LEN, EV_PAYLOAD_LEN, EV_PARTITION, EV_ROUTED_AT, EV_SIDE, EV_TS,
  EVENT_HEADER_BYTES, FrameKind, WATERMARK_BYTES, WM_VALUE,
} from '../ring/frame.js';
import type { SourcePosition } from '../checkpoint/manifest.js';
import { Replay, type ReplayPlan } from '../rebuild/replay.js';
import type { LogPosition, RecordBatch, Source } from '../source/source.js';
import type { Side } from '../state/store.js';
import { BatchCursor } from './batch-cursor.js';
import { keyGroupOf, murmur3, ownerTable } from './partitioner.js';
import { Aligner } from './align.js';
import { AppliedPositions } from './applied.js';
import { BarrierWaits } from './barrier-waits.js';
import { SavedFrames, unroutedFrames, type InflightStream } from './inflight.js';
import { PauseGate } from './pause.js';
import { MAX_TIME_MS, TimeGuard } from './time-guard.js';
import { WatermarkTracker } from './watermarks.js';

/** LMDB keys hold key + id; keep them well under its 1,978-byte key limit. */
const MAX_KEY_ID_BYTES = 1500;
const SPACE_WAIT_MS = 50;
const YIELD_EVERY_MS = 10;
/** While waiting for a batch, re-judge alignment this often (an input may go idle meanwhile). */
const ALIGN_CHECK_MS = 200;

import type { BarrierCut, Rejected, RouterCounters } from './types.js';
export type { BarrierCut, Rejected, RouterCounters };

/**
 * The main thread's stage: pull batches from the sources, read key/time/id from each record,
 * hash the key to a key group and the key group to its worker, and copy the record into that
 * worker's ring. Watermarks travel in-band after the records they follow. A full ring suspends
 * routing (the sources are not read) until the worker frees space: memory stays bounded and
 * nothing is dropped.
 */
export class Router {
  readonly counters: RouterCounters = { read: [0, 0], routed: [0, 0], late: 0, dead: 0, badTime: 0, backpressureWaits: 0 };
  readonly rings: RingProducer[];
  readonly tracker: WatermarkTracker;
  private readonly owner: Uint8Array;
  /** Canonical key and id bytes of the record in hand, written by the extractor. */
  private readonly scratch = new Uint8Array(64 * 1024);
  private readonly scratchDv = new DataView(this.scratch.buffer);
  private watermark = -Infinity;
  private aborted: Error | null = null;
  private dirty: Uint8Array;
  private readonly pending = new AppliedPositions();
  private stalled = false;
  private barrierRequest: { id: number; resolve: (c: BarrierCut) => void; reject: (e: Error) => void } | null = null;
  private finished = false;
  /** POST /pause and /resume: while paused no batch is pulled from the sources (see PauseGate). */
  readonly gate = new PauseGate();
  /** Rebuild (--rebuild-from): the replay in progress, see src/rebuild/replay.ts. */
  replay: Replay | null = null;
  /**
   * Backfill (src/backfill): the sources end at a cut, not at the end of their data. A source that
   * reached its cut keeps holding the watermark back until every one has; then the watermark is
   * advanced (to W_cut), a REPLAY_END frame marks the cut for the workers (unmatched rows that
   * expire at or after W_cut belong to the job that goes on from the cut), and only then do the
   * partitions end (+∞).
   */
  bounded = false;
  private readonly atCut: Source[] = [];
  private quietRejects = false;
  private loopDone = false;
  /** Called with true when routing stalls on a full ring, false when it goes on (sources pause/resume partitions). */
  onStall: (stalled: boolean) => void = () => {};

  constructor(sabs: SharedArrayBuffer[], private readonly sources: Source[],
    private readonly extractors: Record<Side, Record<'json' | 'flatbuffers', () => Extractor>>,
    maxDelayMs: number, idleTimeoutMs: number, private readonly onRejected: (r: Rejected) => void) {
    this.rings = sabs.map((s) => new RingProducer(s));
    this.owner = ownerTable(sabs.length);
    this.dirty = new Uint8Array(sabs.length);
    this.tracker = new WatermarkTracker(sources.flatMap((s) => s.partitions), maxDelayMs, idleTimeoutMs, nowMs());
    this.aligner = new Aligner(this.tracker, sources, 0);
    this.time = new TimeGuard(this.tracker, (r) => this.onFirstFuture(r), (m) => this.onJump(m));
  }

  /** Event-time alignment (see Aligner; 0 = off). */
  aligner: Aligner;
  /** --max-future and times that are not times (see TimeGuard). */
  private readonly time: TimeGuard;
  /** Called once, at the first record set aside as too far ahead (the engine logs it). */
  onFirstFuture: (reason: string) => void = () => {};
  /** A partition's event time jumped further than --max-future and the guard followed it (the engine logs it). */
  onJump: (message: string) => void = () => {};

  /** Set --max-drift and --max-future (before run()); 0 turns either off. */
  configureTime(maxDriftMs: number, maxFutureMs: number): void {
    this.aligner = new Aligner(this.tracker, this.sources, maxDriftMs);
    this.time.configure(maxFutureMs, this.sources);
  }

  /** Resume from a checkpoint's router state (before run()). */
  restore(watermarkMs: number, partitions: ReadonlyArray<{ side: number; partition: number; maxTsMs: number }>): void {
    this.tracker.restore(watermarkMs, partitions);
    this.watermark = watermarkMs;
  }

  /** Rebuild: replay the sources up to these resume positions before anything else (before run()). */
  startReplay(plan: ReplayPlan): void {
    this.replay = new Replay(plan, this.sources);
  }

  /**
   * Every partition reached its resume position: bring the watermark to where the lost run had it,
   * tell the workers (output from here on), route what was kept aside at the cuts, release holds.
   */
  private async endReplay(): Promise<void> {
    const r = this.replay!;
    r.active = false;
    if (r.plan.watermarkFloorMs !== undefined) this.tracker.restore(r.plan.watermarkFloorMs, []);
    await this.advanceWatermark();
    await this.broadcast(FrameKind.ReplayEnd);
    for (const b of r.takeStash()) await this.routeBatch(b);
    for (const s of this.sources) if (s.hold) for (const p of s.partitions) s.hold(p, false);
  }

  /** Route the replayed part of a batch (up to its partition's resume position); hold the partition once it got there. */
  private async routeReplayed(s: Source, b: RecordBatch): Promise<void> {
    const r = this.replay!;
    const cut = r.cut(b);
    const p = { side: b.side, partition: b.partition };
    await this.routeBatch(b, cut, true);
    if (r.isReached(p)) {
      if (r.allReached()) await this.endReplay();
      else s.hold?.(p, true);
    }
  }

  /** Put a checkpoint barrier into every ring at the next batch boundary; resolves with the source positions it stands for. One at a time. */
  barrier(id: number): Promise<BarrierCut> {
    if (this.barrierRequest) return Promise.reject(new Error('a checkpoint barrier is already pending'));
    if (this.aborted) return Promise.reject(this.aborted);
    if (this.finished) return Promise.reject(new Error('the input has ended'));
    if (this.spills) return Promise.reject(new Error('the run stops at a cut (the stop checkpoint)'));
    return new Promise((resolve, reject) => { this.barrierRequest = { id, resolve, reject }; this.gate.wake(); this.waits.wake(); });
  }

  private readonly injectPending = (): Promise<void> => this.injectBarrier();
  private readonly barrierWaiting = async (): Promise<boolean> => this.barrierRequest !== null;
  /** Waits that put requested barriers in meanwhile (see BarrierWaits). */
  private readonly waits = new BarrierWaits(() => this.injectBarrier(), () => this.barrierRequest !== null);

  private async injectBarrier(): Promise<void> {
    const req = this.barrierRequest;
    if (!req) return;
    if (this.replay?.active) {
      // A checkpoint taken mid-replay could not be resumed exactly: it waits for the replay's end.
      if (!this.loopDone && !this.stopping) return;
      this.barrierRequest = null;
      req.reject(new Error('the rebuild stopped before its replay reached the resume position: no checkpoint'));
      return;
    }
    this.barrierRequest = null;
    const at = this.cutAt(req.id);
    await this.broadcast(FrameKind.Barrier, req.id);
    req.resolve(at);
  }

  currentWatermark(): number {
    return this.watermark;
  }

  /** Stop routing as soon as possible (a worker failed). */
  abort(err: Error): void {
    this.aborted = err;
    const req = this.barrierRequest;
    if (req) { this.barrierRequest = null; req.reject(err); }
    this.gate.resume();
    this.gate.releaseOutput();
  }

  private extractorCache = new Map<string, Extractor>();
  private extractor(side: Side, format: 'json' | 'flatbuffers'): Extractor {
    const k = `${side}:${format}`;
    let e = this.extractorCache.get(k);
    if (!e) { e = this.extractors[side][format](); this.extractorCache.set(k, e); }
    return e;
  }

  /** Where worker w's frames go: its ring, or after a cut the spill. */
  private target(w: number): RingProducer | FrameSpill {
    return this.spills ? this.spills[w] : this.rings[w];
  }

  private async reserve(w: number, bytes: number): Promise<number> {
    const ring = this.rings[w];
    let off = this.spills ? -1 : ring.reserve(bytes);
    while (off < 0) {
      if (this.aborted) throw this.aborted;
      if (this.spills) { off = this.spills[w].reserve(bytes); break; }
      this.publishAll();
      this.counters.backpressureWaits++;
      if (!this.stalled) { this.stalled = true; this.onStall(true); }
      await ring.waitForSpace(SPACE_WAIT_MS);
      off = this.spills ? -1 : ring.reserve(bytes); // a cut during the wait: the ring takes nothing more
    }
    if (this.stalled) { this.stalled = false; this.onStall(false); }
    return off;
  }

  private publishAll(): void {
    if (this.spills) return; // the rings take nothing after a cut
    for (let w = 0; w < this.rings.length; w++) {
      if (this.dirty[w]) { this.rings[w].publish(); this.dirty[w] = 0; }
    }
  }

  /** Route records [0, count) of a batch; `replayed`: they lie before the resume position of a rebuild. */
  private async routeBatch(b: RecordBatch, count = b.count, replayed = false): Promise<void> {
    const slot = this.tracker.slot(b);
    const t = nowMs();
    this.tracker.touch(slot, t);
    const data = b.data;
    // A plain view: Buffer's subarray (a species constructor call) cost more than the copy itself.
    const bytes = data instanceof Buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data;
    const c = new BatchCursor(b, b.extractor ?? this.extractor(b.side, b.format), slot, t, bytes, replayed, count);
    this.counters.read[b.side] += count;
    c.wm = this.watermark;
    c.fromMs = replayed ? this.replay!.plan.fromMs : -Infinity;
    c.futureLimit = Math.min(MAX_TIME_MS, this.time.futureLimit(slot));
    c.aheadRun = this.time.aheadRun[slot];
    // A partition's first event sets its reference: the limit must follow it within this batch.
    c.refUnset = this.time.maxFutureMs !== Infinity && this.tracker.maxTsOf(slot) === -Infinity;
    // A log partition travels with each event into the checkpoints (state moves per partition)
    c.sourcePartition = b.logPosition !== undefined ? b.partition + 1 : 0;
    this.quietRejects = replayed;
    for (let i = this.routeRun(c, 0, count); i < count; i = this.routeRun(c, i + 1, count)) {
      // Record i found its ring full (or the run stops at a cut): wait for room, then write it.
      const off = await this.reserve(c.w, c.bodyLen);
      this.writeEvent(this.target(c.w), off, c, c.ts, c.hash, c.kg, c.keyLen, c.idLen, c.start, c.payloadLen);
    }
    this.time.aheadRun[slot] = c.aheadRun;
    this.publishAll();
    this.quietRejects = false;
    const k = b.logPosition; // never committed: replayed batches (offsets must not move back), batches cut short by a stop
    if (k !== undefined && !replayed && !this.spills) this.pending.push(k, this.rings.map((r) => r.publishedTail()));
  }

  /**
   * Routes records [from, count) of the batch in hand; returns count, or the index of a record whose
   * ring had no room (its frame's fields left in the cursor). Synchronous with nothing after the loop:
   * in routeBatch, its OSR code deoptimized after the loop at the end of ~60 batches per run.
   */
  private routeRun(c: BatchCursor, from: number, count: number): number {
    const b = c.b, ex = c.ex, slot = c.slot, replayed = c.replayed, wm = c.wm;
    const data = b.data, offs = b.offsets, skip = c.skip;
    const scratch = this.scratch;
    const isLines = c.isLines;
    let futureLimit = c.futureLimit;
    let aheadRun = c.aheadRun;
    const fast = c.fast, fastGen = c.fastGen;
    for (let i = from; i < count; i++) {
      const start = offs[i] + skip;
      let end = offs[i + 1];
      if (isLines) {
        while (end > start && (data[end - 1] === 10 || data[end - 1] === 13 || data[end - 1] === 32 || data[end - 1] === 9)) end--;
        if (end === start) { this.counters.read[b.side]--; continue; } // blank line
      }
      if (!(fast !== null && fast.generation === fastGen && fast.take(i, scratch, ex)) && !ex.extract(c.bytes, start, end, scratch)) {
        this.reject('dead', b, i, ex.error, data.subarray(start, end));
        continue;
      }
      const ts = ex.ts;
      if (ts > futureLimit || ts < -MAX_TIME_MS) {
        // One far-future record would otherwise move the watermark past everything after it.
        const bad = this.time.badTime(slot, ts, aheadRun);
        if (bad !== null) {
          if (ts <= MAX_TIME_MS) c.aheadRun = ++aheadRun;
          this.counters.badTime++;
          this.reject('dead', b, i, bad, data.subarray(start, end), ts);
          continue;
        }
        c.futureLimit = futureLimit = Math.min(MAX_TIME_MS, this.time.futureLimit(slot)); // the limit grew with the partition's time
      }
      if (aheadRun !== 0) c.aheadRun = aheadRun = 0;
      this.tracker.observe(slot, ts);
      if (c.refUnset) { c.refUnset = false; c.futureLimit = futureLimit = Math.min(MAX_TIME_MS, this.time.futureLimit(slot)); }
      if (replayed) {
        if (ts < c.fromMs) { this.replay!.counters.skipped++; continue; }
        this.replay!.counters.replayed++;
      }
      if (ts < wm) {
        this.reject('late', b, i, `event time ${ts} is behind the watermark ${wm}`, data.subarray(start, end), ts);
        continue;
      }
      const keyLen = ex.keyLen, idLen = ex.idLen; // written into scratch by extract (unless too long: rejected here)
      if (keyLen + idLen > MAX_KEY_ID_BYTES || keyLen > 0xffff || idLen > 0xffff) {
        this.reject('dead', b, i, `key and id take ${keyLen + idLen} bytes (limit ${MAX_KEY_ID_BYTES})`, data.subarray(start, end));
        continue;
      }
      const payloadStart = start + ex.lead; // after a byte order mark, which is not JSON inside the output line
      const payloadLen = end - payloadStart;
      const bodyLen = EVENT_HEADER_BYTES + keyLen + idLen + payloadLen;
      const w0 = this.rings[0];
      if (bodyLen > w0.maxFrameBytes) {
        this.reject('dead', b, i, `record of ${payloadLen} bytes exceeds the ring frame limit (${w0.maxFrameBytes}); raise --ring-size`, data.subarray(start, end));
        continue;
      }
      const hash = murmur3(scratch, 0, keyLen);
      const kg = keyGroupOf(hash);
      const w = this.owner[kg];
      const ring = this.rings[w];
      const off = this.spills ? -1 : ring.reserve(bodyLen);
      if (off < 0) { c.full(w, bodyLen, ts, hash, kg, keyLen, idLen, payloadStart, payloadLen); return i; }
      this.writeEvent(ring, off, c, ts, hash, kg, keyLen, idLen, payloadStart, payloadLen);
    }
    return count;
  }

  /** Writes an event frame at `off` of `ring` (reserved for it) from the record in scratch and the batch. */
  private writeEvent(ring: RingProducer | FrameSpill, off: number, c: BatchCursor, ts: number, hash: number, kg: number,
    keyLen: number, idLen: number, start: number, payloadLen: number): void {
    const u8 = ring.u8, dv = ring.dv;
    const side = c.b.side;
    u8[off] = FrameKind.Event;
    u8[off + EV_SIDE] = side;
    dv.setUint16(off + EV_KEY_GROUP, kg, true);
    dv.setUint32(off + EV_KEY_HASH, hash, true);
    dv.setFloat64(off + EV_TS, ts, true);
    dv.setFloat64(off + EV_ROUTED_AT, c.t, true);
    dv.setUint16(off + EV_KEY_LEN, keyLen, true);
    dv.setUint16(off + EV_ID_LEN, idLen, true);
    dv.setUint32(off + EV_PAYLOAD_LEN, payloadLen, true);
    dv.setUint16(off + EV_PARTITION, c.sourcePartition, true);
    const k0 = off + EVENT_HEADER_BYTES;
    const kiLen = keyLen + idLen;
    copyBytes(u8, dv, k0, this.scratch, this.scratchDv, 0, kiLen);
    copyBytes(u8, dv, k0 + kiLen, c.bytes, c.bytesDv, start, payloadLen);
    ring.commit();
    this.dirty[this.owner[kg]] = 1;
    this.counters.routed[side]++;
  }

  /** Log positions whose records every worker has applied, given each ring's released head (see AppliedPositions). */
  takeApplied(heads: readonly number[]): LogPosition[] {
    return this.pending.take(heads);
  }

  private reject(kind: 'dead' | 'late', b: RecordBatch, i: number, reason: string, record: Uint8Array, ts?: number): void {
    if (kind === 'dead') this.counters.dead++; else this.counters.late++;
    if (this.quietRejects) { this.replay!.counters.rejected++; return; } // the lost run wrote it already
    this.onRejected({ kind, side: b.side, origin: b.origin, position: b.recordOffsets ? b.recordOffsets[i] : b.firstPosition + i, reason, record, format: b.format, ts, watermarkMs: kind === 'late' ? this.watermark : undefined });
  }

  private async broadcast(kind: FrameKind, wm = 0): Promise<void> {
    for (let w = 0; w < this.rings.length; w++) {
      const bytes = kind === FrameKind.Watermark ? WATERMARK_BYTES : kind === FrameKind.Barrier ? BARRIER_BYTES : kind === FrameKind.ReplayEnd ? REPLAY_END_BYTES : END_BYTES;
      const off = await this.reserve(w, bytes);
      const ring = this.target(w);
      ring.u8[off] = kind;
      if (kind === FrameKind.Watermark) ring.dv.setFloat64(off + WM_VALUE, wm, true);
      else if (kind === FrameKind.Barrier) ring.dv.setFloat64(off + BARRIER_ID, wm, true);
      ring.commit();
      this.dirty[w] = 1;
    }
    this.publishAll();
  }

  /** Backfill: every source reached its cut. */
  private async endAtCut(): Promise<void> {
    await this.advanceWatermark();
    await this.broadcast(FrameKind.ReplayEnd);
    for (const s of this.atCut.splice(0)) for (const p of s.partitions) this.tracker.end(this.tracker.slot(p));
  }

  private async advanceWatermark(): Promise<void> {
    const now = nowMs();
    for (const s of this.atCut) for (const p of s.partitions) this.tracker.touch(this.tracker.slot(p), now); // at its cut, not idle
    for (const s of this.sources) {
      if (s.unreadPartitions) for (const p of s.unreadPartitions()) this.tracker.touch(this.tracker.slot(p), now);
      if (this.replay?.sourceHeld(s)) this.tracker.touch(this.tracker.slot(s.partitions[0]), now); // held, not idle
    }
    this.aligner.touchPaused(now);
    this.realign(now);
    const wm = this.tracker.current(now);
    if (wm > this.watermark) {
      this.watermark = wm;
      await this.broadcast(FrameKind.Watermark, wm);
    }
  }

  /**
   * Re-judge which partitions run ahead. A rebuild's replay reads each input up to its resume
   * position regardless (holding the one that got there could otherwise wait for one paused).
   */
  private realign(now = nowMs()): void {
    if (this.replay?.active || this.stopping) this.aligner.releaseAll();
    else this.aligner.update(now);
  }

  /** After a cut: worker w's frames go to spills[w], never again into its ring. */
  private spills: FrameSpill[] | null = null;
  private cutRequest: { id: number; resolve: (c: BarrierCut) => void } | null = null;

  /**
   * A stop at a cut (the stop checkpoint, docs/architecture.md §3): nothing more goes into the
   * rings, every worker stops at its next frame boundary, reading stops. The batch in hand is
   * finished into spills (a source's position counts whole batches). Resolves, once routing has
   * stopped, with the source positions after the last record routed: what the rings did not
   * deliver is then takeInflight(). `id` -1: a stop without a checkpoint.
   */
  cut(id: number): Promise<BarrierCut> {
    if (this.spills) return Promise.reject(new Error('the run was already cut'));
    this.publishAll();
    this.spills = this.rings.map(() => new FrameSpill());
    for (const r of this.rings) r.requestCut(id);
    const req = this.barrierRequest;
    if (req) { this.barrierRequest = null; req.reject(new Error('superseded by the stop checkpoint')); }
    this.stop();
    this.gate.releaseOutput(); // a full output sink must not hold the stop: nothing more is read
    const p = new Promise<BarrierCut>((resolve) => { this.cutRequest = { id, resolve }; });
    if (this.loopDone) this.resolveCut();
    return p;
  }

  get isCut(): boolean {
    return this.spills !== null;
  }

  private resolveCut(): void {
    const c = this.cutRequest;
    if (!c) return;
    this.cutRequest = null;
    c.resolve(this.cutAt(c.id));
  }

  /** Where the sources stand now (after the last record routed): what checkpoint `id` resumes from. */
  private cutAt(id: number): BarrierCut {
    const at = this.sources.map((s) => ({ s, p: s.checkpointPosition?.() })).filter((x): x is { s: Source; p: SourcePosition } => x.p !== undefined);
    return { id, positions: at.map((x) => x.p), states: at.map((x) => x.s.checkpointState?.() ?? null), watermarkMs: this.watermark, partitions: this.tracker.snapshot() };
  }

  /** After a cut, once every worker has stopped: the frames each did not process (see unroutedFrames). */
  takeInflight(): Uint8Array[] {
    return unroutedFrames(this.rings, this.spills!);
  }

  /** Frames a stop checkpoint saved, routed at the start of this run (see mergeInflight). */
  private readonly saved = new SavedFrames();
  /** Events of the saved frames routed at the start of this run. */
  inflightEvents = 0;
  /** Set the frames to route before anything read (before run()); `watermarks`: see mergeInflight. */
  setInflight(streams: InflightStream[], watermarks = true): void { this.saved.set(streams, watermarks); }
  /** Events of the saved frames still to route. */
  inflightPending(): number { return this.saved.pending(); }

  /** Route the saved frames first, each event to the worker now owning its key group (the worker count may have changed). */
  private async injectInflight(): Promise<void> {
    const steps = this.saved.take();
    if (!steps) return;
    const t = nowMs();
    // Never past the restored watermark: a member taking partitions from another member's checkpoint
    // restores the lower of the two, and its own frames' watermarks, computed without those partitions,
    // expired the state taken over early (docs/architecture.md §3, step 5).
    const capMs = this.watermark;
    for (const st of steps) {
      if (st.kind === 'watermark') {
        this.publishAll();
        if (capMs > -Infinity) await this.broadcast(FrameKind.Watermark, Math.min(st.valueMs, capMs));
        continue;
      }
      const w = this.owner[st.keyGroup];
      let ring: RingProducer | FrameSpill = this.rings[w];
      let o = this.spills ? -1 : ring.reserve(st.length);
      if (o < 0) { o = await this.reserve(w, st.length); ring = this.target(w); }
      ring.u8.set(st.bytes.subarray(st.offset, st.offset + st.length), o);
      ring.dv.setFloat64(o + EV_ROUTED_AT, t, true);
      ring.commit();
      this.dirty[w] = 1;
      this.inflightEvents++;
    }
    this.publishAll();
  }

  /** Stop reading the sources as if they had ended (graceful stop): the run finishes normally. */
  stop(): void {
    this.stopping = true;
    this.gate.resume();
    for (const s of this.sources) s.interrupt?.();
  }
  private stopping = false;
  private lastYieldMs = 0;

  /**
   * Route every source to its end (or until stop()), then end the workers' input. `beforeEnd`
   * runs after the last watermark and before the end frame; a barrier it requests goes in there.
   */
  async run(beforeEnd?: () => Promise<void>): Promise<void> {
    const live = this.sources.map((s) => ({ s, done: false }));
    let remaining = live.length;
    await this.injectInflight(); // before the restored watermark, which is at or past theirs (capped there)
    if (this.watermark > -Infinity) await this.broadcast(FrameKind.Watermark, this.watermark);
    if (this.replay?.active && this.replay.allReached()) await this.endReplay(); // nothing to replay
    // A source waiting for records (Kafka) may wait long: meanwhile the partition the others wait
    // for may go idle or reach its end, which must let them go on.
    const alignTimer = this.aligner.enabled ? setInterval(() => this.realign(), ALIGN_CHECK_MS) : null;
    alignTimer?.unref();
    try {
      await this.routeAll(live, remaining);
    } finally {
      this.trace?.write();
      if (alignTimer) clearInterval(alignTimer);
      this.aligner.releaseAll(); // a Kafka source outlives this run (a member's next assignment)
    }
    this.loopDone = true;
    this.resolveCut();
    this.gate.finish();
    if (!this.stopping) await this.advanceWatermark(); // +∞ once every partition ended
    await this.injectBarrier();
    // beforeEnd waits for the checkpoints in flight, and one queued behind another asks for its
    // barrier only now: keep putting barriers in while it runs (awaiting it alone would deadlock).
    if (beforeEnd) await this.waits.serving(beforeEnd()); // may request the final checkpoint's barrier
    await this.injectBarrier();
    this.finished = true;
    if (!this.spills) await this.broadcast(FrameKind.End); // after a cut the workers end by it
  }

  /** JOINERY_TRACE: one row per source batch (see metrics/trace.ts). */
  private readonly trace = TRACE_DIR ? new TraceTable('router', ['t0', 'nextMs', 'count', 'routeMs', 'wmMs', 'cpuMs', 'waitMs']) : null;

  private async routeAll(live: Array<{ s: Source; done: boolean }>, remaining: number): Promise<void> {
    const trace = this.trace;
    while (remaining > 0 && !this.stopping) {
      let readAny = false;
      for (const l of live) {
        if (l.done || this.stopping) continue;
        if (this.replay?.sourceHeld(l.s)) continue; // reached its resume position: waits for the others
        if (!this.aligner.readable(l.s)) continue; // ahead in event time: waits for the slower input
        readAny = true;
        if (this.aborted) throw this.aborted;
        await this.injectBarrier();
        if (this.gate.holding) {
          // A checkpoint requested while paused still goes through (the gate wakes for it).
          this.tracker.shiftIdle(await this.gate.pass(this.injectPending));
          if (this.aborted) throw this.aborted;
        }
        if (this.stopping) break;
        // Sources that read synchronously (files, the generator) resolve at once: give timers,
        // signals and I/O (checkpoints, HTTP, Kafka heartbeats) a turn every few ms.
        const t = nowMs();
        if (t - this.lastYieldMs > YIELD_EVERY_MS) { this.lastYieldMs = t; await new Promise<void>((r) => setImmediate(r)); }
        // A barrier requested in that turn has no wait to wake: in now (no await until next()), or an idle input holds it.
        while (this.barrierRequest !== null && !this.replay?.active && !this.aborted) await this.injectBarrier();
        this.gate.enterSource();
        const tn = trace ? nowMs() : 0, sched0 = trace ? threadSchedMs() : null;
        const b = await this.waits.next(l.s.next());
        const tr = trace ? nowMs() : 0;
        this.gate.leaveSource();
        if (this.gate.holding) { // hold the batch until resumed; its source counts it, so a barrier requested meanwhile ends the wait and follows it
          this.tracker.shiftIdle(await this.gate.pass(b === null ? this.injectPending : this.barrierWaiting));
          if (this.aborted) throw this.aborted;
        }
        if (b === null && this.stopping) break; // a stopped source (a re-join) has not ended: no +∞ watermark
        if (b === null && this.bounded) {
          l.done = true;
          remaining--;
          this.atCut.push(l.s);
          if (remaining === 0) await this.endAtCut();
        } else if (b === null) {
          l.done = true;
          remaining--;
          if (this.replay?.active) {
            this.replay.endSource(l.s); // ended before its resume position: nothing more to replay
            if (this.replay.allReached()) await this.endReplay();
          }
          for (const p of l.s.partitions) this.tracker.end(this.tracker.slot(p));
        } else if (this.replay?.active) {
          await this.routeReplayed(l.s, b);
        } else {
          await this.routeBatch(b);
        }
        const tw = trace ? nowMs() : 0;
        await this.advanceWatermark();
        if (trace) {
          const s1 = threadSchedMs();
          trace.add(tn, tr - tn, b?.count ?? 0, tw - tr, nowMs() - tw, s1[0] - sched0![0], s1[1] - sched0![1]);
        }
      }
      if (!readAny && remaining > 0 && !this.stopping) {
        // Every input left is ahead (cannot last), or all are held; no batch in hand: a barrier may go in.
        await this.injectBarrier();
        this.realign();
        await new Promise<void>((r) => setTimeout(r, 5));
      }
    }
  }

  /** Fill of each ring, 0..1, for progress output. */
  ringFill(): number[] {
    return this.rings.map((r) => r.usedBytes() / r.capacity);
  }
}
