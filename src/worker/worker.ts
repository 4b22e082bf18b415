/**
 * Worker thread entry: drains its ring, joins, writes output. One LMDB environment per worker
 * (a shared environment would serialise writers). A drain of up to DRAIN_FRAMES frames is one
 * store transaction and one output write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { ChangeWriter } from '../checkpoint/change-writer.js';
import { chainFilesFor, foldChain } from '../checkpoint/fold.js';
import { injectedDelayMs, injectedFault } from '../checkpoint/faults.js';
import { LoggedStore } from '../checkpoint/logged-store.js';
import { openStorage, type CheckpointStorage, type StagedFile } from '../checkpoint/storage.js';
import { JoineryError } from '../core/errors.js';
import { nowMs } from '../core/units.js';
import { HotKeys } from '../join/hot-keys.js';
import { IntervalJoin } from '../join/join.js';
import { flatToJson } from '../codec/flat.js';
import { currentTid } from '../metrics/cpu.js';
import { LatencyHistogram } from '../metrics/histogram.js';
import { TRACE_DIR, TraceTable, threadSchedMs } from '../metrics/trace.js';
import { RingConsumer } from '../ring/ring.js';
import {
  EV_ID_LEN, EV_KEY_GROUP, EV_KEY_HASH, EV_KEY_LEN, EV_PAYLOAD_LEN, EV_PARTITION, EV_ROUTED_AT, EV_SIDE, EV_TS,
  EVENT_HEADER_BYTES, FrameKind, WM_VALUE, BARRIER_ID,
} from '../ring/frame.js';
import { NdjsonEmitter } from '../sink/ndjson.js';
import { openLineSink, type LineSink } from '../sink/sink.js';
import { StateDiskGuard, stateStoreError } from '../state/disk.js';
import { openStore } from '../state/index.js';
import type { Side, StateStore } from '../state/store.js';
import type { BarrierAck, WorkerInit, WorkerMessage, WorkerRequest, WorkerStats } from './protocol.js';
import { installInspector } from './inspect.js';
import { EventViews, F_ID, F_KEY, F_PAYLOAD } from './event-views.js';
import { OutputGate } from '../sink/output-gate.js';
import { SuppressingEmitter } from '../rebuild/suppress.js';
import { CutEmitter } from '../sink/cut-emitter.js';

const DRAIN_FRAMES = 4096;
/** Deferred change records looked at per drain at least (LoggedStore.paceDeferred): twice the drain's events, or this. */
const WRITE_AHEAD_MIN = 4096;
/**
 * A drain also ends after this much wall time (checked every DRAIN_CHECK_FRAMES frames): its
 * output is written and its latency taken at its end, so every event of a drain waits for the last
 * one. 4096 frames took 14 ms and more of CPU (with seal steps and GC, 20–35 ms); a drain costs
 * ~10 µs of its own (transaction, flush), so ending them early is cheap.
 */
const DRAIN_BUDGET_MS = 4;
const DRAIN_CHECK_FRAMES = 128;
/**
 * Frames taken from the ring at a time: their events' first store reads (key index and open
 * slice table positions, cache misses on random keys) are issued together, then the events are
 * joined one by one. A window ends at any frame that is not an event, so nothing is taken past a
 * barrier or the end; the drain's checks (budget, halt, cut) run between windows.
 */
const WINDOW_FRAMES = 16;
/**
 * Seal work units (≈ 1–3 µs each) done per drain between watermarks, so that paced sealing goes
 * in small steps (the watermark's expire() then finds little due). See BucketStore.maintain.
 */
const MAINTAIN_UNITS = 512;
/** Park at most this long per wait, so stats still go out on an idle worker. */
const IDLE_WAIT_MS = 100;

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer as never);
const haltFlag = new Int32Array(init.halt);
/** Thrown inside a store batch when the process exits now: the batch's transaction is aborted (its lock freed). */
const HALT = new Error('halt');
const halted = () => Atomics.load(haltFlag, 0) === 1;
/** JOINERY_INJECT_FAULTS=slow-drain:MS: sleep before each drain (tests that need unjoined events in the rings on a fast machine). */
const slowDrainMs = injectedDelayMs('slow-drain');
const slowDrainCell = new Int32Array(new SharedArrayBuffer(4));
/** JOINERY_INJECT_FAULTS=stop-stall: never take a stop's cut (tests of --stop-timeout and of a second signal). */
const ignoreCut = (() => { try { injectedFault('stop-stall', `worker ${init.index}`); return false; } catch { return true; } })();

class Worker {
  private readonly ring: RingConsumer;
  private readonly store: StateStore;
  /** The store under any checkpoint logger (for its memory figure). */
  private readonly baseStore: StateStore;
  private readonly join: IntervalJoin;
  private readonly hot: HotKeys;
  /** --late-out lines of events diverted by --max-key-entries during this drain. */
  private overflowLines: string[] = [];
  private readonly emitter: NdjsonEmitter;
  private readonly sink: LineSink | null;
  private readonly latency = new LatencyHistogram();
  private readonly lag = new LatencyHistogram();
  private readonly events: [number, number] = [0, 0];
  private watermark = -Infinity;
  private routedAt = new Float64Array(DRAIN_FRAMES);
  private eventTs = new Float64Array(DRAIN_FRAMES);
  private lastStatsMs = 0;
  private peakEntries = 0;
  private ended = false;
  private aborted = false;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly views: EventViews;
  private readonly window = new Int32Array(WINDOW_FRAMES);
  private readonly prefetch: ((keyHash: number, ts: number) => number) | null;
  private prefetched = 0;
  // Checkpointing (null when off): the change log and the output gate. Output produced after
  // barrier b carries tag b and may reach the file only once main has released b, i.e. once every
  // worker has written its output from before b: the file's length then is a consistent cut.
  private readonly logged: LoggedStore | null = null;
  private readonly storage: CheckpointStorage | null = null;
  /** Where the current change file is staged (the writer appends to its local path). */
  private staged: StagedFile | null = null;
  private fileSeq = 0;
  private barrier = -1;          // barrier id met in the current drain
  private outTag = 0;
  private readonly gate: OutputGate<Uint8Array>;
  private pendingAcks: BarrierAck[] = [];
  /** The cut met (ring.cutId()), 0 before; its answer waits until the output before it is written. */
  private cut = 0;
  private cutAck: BarrierAck | null = null;
  /** Rebuild: drops the output of the replay (until REPLAY_END). */
  private readonly replay: SuppressingEmitter | null = null;
  /** Backfill: drops unmatched rows that belong after the cut (from REPLAY_END on). */
  private readonly cutEmitter: CutEmitter | null = null;
  private readonly disk = init.state === 'memory' ? null : new StateDiskGuard(init.stateDir, init.index);
  /** JOINERY_TRACE: one row per drain (see metrics/trace.ts). */
  private readonly trace = TRACE_DIR ? new TraceTable(`worker-${init.index}`,
    ['t0', 'gapMs', 'frames', 'events', 'wallMs', 'cpuMs', 'waitMs', 'upkeepMs', 'upkeepCpuMs', 'watermarks', 'ringBytes', 'ageFirstMs', 'ageLastMs', 'flushMs']) : null;
  private traceEnd = 0;
  // The current drain's figures (drainFrames runs inside the store's batch and leaves them here).
  private drainStartMs = 0;
  private drainN = 0;
  private drainEvents = 0;
  private upkeepMs = 0;
  private upkeepCpuMs = 0;
  private watermarks = 0;

  constructor() {
    this.ring = new RingConsumer(init.sab);
    this.u8 = this.ring.u8;
    this.dv = this.ring.dv;
    this.views = new EventViews(this.ring.sab, this.dv);
    const base = this.baseStore = openStore(init.state, path.join(init.stateDir, `worker-${init.index}`), { bucketMs: init.bucketMs, freezeGroupSlices: init.freezeGroupSlices, memoryBytes: init.stateMemoryBytes, lz4AboveBytes: init.lz4AboveBytes });
    this.prefetch = base.prefetch ? base.prefetch.bind(base) : null; // a hint: the logged wrapper need not pass it on
    if (init.checkpoint) {
      this.storage = openStorage(init.checkpoint.storage);
      this.logged = new LoggedStore(base, init.checkpoint.outer, this.newChangeFile(), init.checkpoint.intervalMs);
      this.logged.raw = this.dv;
      this.store = this.logged;
      this.outTag = init.checkpoint.firstEpoch;
    } else {
      this.store = base;
    }
    this.gate = new OutputGate(init.checkpoint?.firstEpoch ?? 0, (chunk) => this.sink!.write(chunk));
    this.emitter = new NdjsonEmitter(init.formats, init.out.kind === 'null', init.framing);
    this.sink = init.out.kind === 'file' ? openLineSink(init.out, false) : null;
    port.on('message', (m: WorkerRequest) => {
      // Output of processed frames is flushed before their space is released, so the released
      // head tells how far input has been applied and its output handed on (FIFO with 'out').
      if (m.type === 'sync') post({ type: 'synced', id: m.id, head: this.ring.releasedHead() });
      else if (m.type === 'release') this.onRelease(m.id);
      else if (m.type === 'abort') this.ended = this.aborted = true;
    });
    if (init.rebuild) this.replay = new SuppressingEmitter(this.emitter, init.lowerMs, init.upperMs);
    else if (init.backfill) this.cutEmitter = new CutEmitter(this.emitter, init.lowerMs, init.upperMs);
    const expireAt = (side: Side, ts: number) => (side === 0 ? Math.max(ts, ts + init.upperMs) : Math.max(ts, ts - init.lowerMs));
    const retentionMs = Math.max(0, init.upperMs, -init.lowerMs) + init.maxDelayMs;
    this.hot = new HotKeys(this.store, init.maxKeyEntries, Math.max(1000, retentionMs), expireAt,
      (msg, fields) => post({ type: 'log', msg: `worker ${init.index}: ${msg}`, fields: { worker: init.index, ...fields } }));
    this.join = new IntervalJoin(this.store, init.join, init.lowerMs, init.upperMs, this.replay ?? this.cutEmitter ?? this.emitter, this.hot,
      init.overflowOut ? (side, key, ts, payload, reason) => this.onOverflow(side, key, ts, payload, reason) : null, base);
    installInspector(port, () => this.store, init.index, init.formats); // GET /state?key=… (read-only probes between drains)
  }

  /** Process up to DRAIN_FRAMES frames in one transaction. Returns how many were read. */
  private drain(): number {
    const ring = this.ring;
    if (slowDrainMs > 0) Atomics.wait(slowDrainCell, 0, 0, slowDrainMs);
    const trace = this.trace;
    let t0 = 0, sched0: [number, number] = [0, 0], ringBytes = 0;
    if (trace) { t0 = nowMs(); sched0 = threadSchedMs(); ringBytes = ring.usedBytes(); this.upkeepMs = this.upkeepCpuMs = this.watermarks = 0; }
    this.disk?.check(Date.now());
    this.drainStartMs = nowMs();
    this.drainN = this.drainEvents = 0;
    this.store.batch(this.drainBody);
    const n = this.drainN, events = this.drainEvents;
    // Deferred change records likely to outlive the next barrier, written a bounded step at a time.
    if (this.logged !== null && n > 0) this.logged.paceDeferred(this.watermark, nowMs(), Math.max(WRITE_AHEAD_MIN, 2 * events));
    const f0 = trace ? nowMs() : 0;
    this.flushOutput();
    if (this.barrier >= 0) { this.onBarrier(this.barrier); this.barrier = -1; }
    ring.release();
    if (this.cut !== 0) this.onCut();
    if (events > 0) {
      const t = nowMs();
      for (let i = 0; i < events; i++) {
        this.latency.recordUs((t - this.routedAt[i]) * 1000);
        this.lag.recordUs((t - this.eventTs[i]) * 1000);
      }
    }
    if (trace && n > 0) {
      const t1 = nowMs(), s1 = threadSchedMs();
      trace.add(t0, this.traceEnd > 0 ? t0 - this.traceEnd : 0, n, events, t1 - t0, s1[0] - sched0[0], s1[1] - sched0[1], this.upkeepMs, this.upkeepCpuMs, this.watermarks,
        ringBytes, events > 0 ? t0 - this.routedAt[0] : 0, events > 0 ? t0 - this.routedAt[events - 1] : 0, t1 - f0);
      this.traceEnd = t1;
    }
    return n;
  }

  /**
   * The drain's frames, inside its store batch. One closure made once (drainBody), and the loop's
   * counters are its own locals: as a closure made per drain over drain()'s locals, every counter
   * lived in a context, and the loop's OSR code was compiled again and again as it deoptimized.
   */
  private readonly drainBody = (): void => this.drainFrames();

  private drainFrames(): void {
    let n = 0;
    let events = 0;
    const ring = this.ring, u8 = this.u8, dv = this.dv, join = this.join;
    const views = this.views, logged = this.logged;
    const startMs = this.drainStartMs;
    const win = this.window, prefetch = this.prefetch;
    let wi = 0, wn = 0, checkedAt = 0, pf = 0;
    for (;;) {
      if (wi === wn) {
        if (n >= DRAIN_FRAMES) break;
        if (n - checkedAt >= DRAIN_CHECK_FRAMES) { checkedAt = n; if (nowMs() - startMs > DRAIN_BUDGET_MS) break; }
        if (Atomics.load(haltFlag, 0) === 1) throw HALT;
        if (ring.cutId() !== 0 && !ignoreCut) { this.cut = ring.cutId(); break; } // a stop at a cut: the rest stays in the ring
        wi = wn = 0;
        while (wn < WINDOW_FRAMES && n + wn < DRAIN_FRAMES) {
          const o = ring.next();
          if (o < 0) break;
          win[wn++] = o;
          if (u8[o] !== FrameKind.Event) break;
          if (prefetch !== null) pf ^= prefetch(dv.getUint32(o + EV_KEY_HASH, true), dv.getFloat64(o + EV_TS, true));
        }
        if (wn === 0) break;
      }
      const off = win[wi++];
      n++;
      const kind = u8[off];
      if (kind === FrameKind.Event) {
        const side = u8[off + EV_SIDE] as Side;
        const keyLen = dv.getUint16(off + EV_KEY_LEN, true);
        const idLen = dv.getUint16(off + EV_ID_LEN, true);
        const payloadLen = dv.getUint32(off + EV_PAYLOAD_LEN, true);
        const k0 = off + EVENT_HEADER_BYTES, i0 = k0 + keyLen, p0 = i0 + idLen;
        const ts = dv.getFloat64(off + EV_TS, true);
        this.routedAt[events] = dv.getFloat64(off + EV_ROUTED_AT, true);
        this.eventTs[events] = ts;
        events++;
        this.events[side]++;
        if (logged !== null) {
          logged.sourcePartition = dv.getUint16(off + EV_PARTITION, true);
          logged.rawAt = k0; // key, id and payload lie back to back in the frame: one copy into the change file
          logged.rawBytes = p0 + payloadLen - k0;
        }
        join.onEvent(side, dv.getUint16(off + EV_KEY_GROUP, true), dv.getUint32(off + EV_KEY_HASH, true),
          views.field(F_KEY, k0, keyLen), ts, views.field(F_ID, i0, idLen), views.field(F_PAYLOAD, p0, payloadLen));
        if (logged !== null) logged.rawAt = -1;
      } else if (this.otherFrame(kind, off)) break;
    }
    this.prefetched ^= pf;
    this.drainN = n;
    this.drainEvents = events;
    if (events > 0) this.maintainStep();
  }

  /** A frame that is not an event; true when the drain ends at it. */
  private otherFrame(kind: number, off: number): boolean {
    const dv = this.dv;
    if (kind === FrameKind.Watermark) {
      const wm = dv.getFloat64(off + WM_VALUE, true);
      if (wm > this.watermark) {
        this.watermark = wm;
        const held = this.store.count(); // the most it holds: expiry follows
        if (held > this.peakEntries) this.peakEntries = held;
        if (this.trace) {
          const u0 = nowMs(), c0 = threadSchedMs()[0];
          this.join.onWatermark(wm);
          this.upkeepMs += nowMs() - u0;
          this.upkeepCpuMs += threadSchedMs()[0] - c0;
          this.watermarks++;
        } else this.join.onWatermark(wm);
      }
      return false;
    }
    if (kind === FrameKind.ReplayEnd) {
      this.replay?.end(this.watermark);
      this.cutEmitter?.end(this.watermark);
      return false;
    }
    if (kind === FrameKind.End) {
      this.ended = true;
      return true;
    }
    if (kind === FrameKind.Barrier) {
      this.barrier = dv.getFloat64(off + BARRIER_ID, true);
      return true; // the transaction and the output end at the barrier
    }
    throw new JoineryError('E_INTERNAL', `worker ${init.index}: unknown frame kind ${kind} in ring`);
  }

  private maintainStep(): void {
    const trace = this.trace;
    const u0 = trace ? nowMs() : 0, c0 = trace ? threadSchedMs()[0] : 0;
    this.store.maintain?.(MAINTAIN_UNITS);
    if (trace) { this.upkeepMs += nowMs() - u0; this.upkeepCpuMs += threadSchedMs()[0] - c0; }
  }

  private onOverflow(side: Side, key: Uint8Array, ts: number, payload: Uint8Array, reason: string): void {
    if (this.replay?.suppressing) return; // the lost run wrote these already
    let rec: string;
    try {
      rec = init.formats[side] === 'json' ? Buffer.from(payload).toString('utf8') : flatToJson(side === 0 ? 'Impression' : 'Play', payload, 0, payload.length);
    } catch { rec = JSON.stringify(Buffer.from(payload).toString('base64')); }
    this.overflowLines.push(`{"side":"${side === 0 ? 'left' : 'right'}","reason":${JSON.stringify(reason)},"key":${Buffer.from(key).toString('utf8')},"ts":${ts},"watermark":${Number.isFinite(this.watermark) ? this.watermark : null},"record":${rec}}\n`);
  }

  private flushOutput(): void {
    if (this.overflowLines.length > 0) {
      const chunk = new TextEncoder().encode(this.overflowLines.join('')); // own buffer: it is transferred
      this.overflowLines = [];
      post({ type: 'overflow', chunk }, [chunk.buffer as ArrayBuffer]);
    }
    if (this.emitter.pendingBytes() === 0) return;
    const chunk = this.emitter.take();
    if (!chunk) return;
    if (this.sink) {
      if (this.gate.offer(this.outTag, chunk)) this.sink.flush();
    } else if (init.out.kind !== 'null') post({ type: 'out', chunk }, [chunk.buffer as ArrayBuffer]);
  }

  /** The hot path appends synchronously to a local file: the port's staged files are local disk by contract. */
  private newChangeFile(): ChangeWriter {
    const c = init.checkpoint!;
    this.staged = this.storage!.stage(`${c.runId}-w${init.index}-${String(++this.fileSeq).padStart(6, '0')}.delta`);
    // The checksum as it is written: sealing then only fsyncs the file, whose pages may be gone from the cache.
    return new ChangeWriter(this.staged.localPath, 'delta', { checksum: true, dropSynced: true });
  }

  /**
   * Close the current change file (at a barrier or a cut): the file for main to publish, or null
   * with no error when nothing changed since the last one (an idle job added an empty file to the
   * chain at every checkpoint; the writer, which has not touched the disk yet, goes on), or null
   * with the error when it could not be completed (disk full or similar: the changes stay in this
   * writer, retried at the next barrier; this checkpoint fails, the previous one stays the restore
   * point, nothing is lost).
   */
  private closeChangeFile(): { file: BarrierAck['file']; error?: string } {
    // Inner sides' events still live and not yet written (LoggedStore.startDeferring) go in now.
    this.logged!.flushPending(this.watermark, nowMs());
    const w = this.logged!.writer;
    if (w.records === 0) return { file: null };
    if (!w.close()) return { file: null, error: `writing ${w.path}: ${w.lastError?.message ?? 'incomplete'}` };
    return { file: { ...this.staged!, bytes: w.bytes, records: w.records, expireAtMaxMs: w.expireAtMaxMs(), checksum: w.digest() } };
  }

  /** Close the change file at barrier `id` (if it can be completed) and answer main. */
  private onBarrier(id: number): void {
    if (!this.logged) throw new JoineryError('E_INTERNAL', `worker ${init.index}: checkpoint barrier without checkpointing`);
    injectedFault('worker-crash', `worker ${init.index}, barrier ${id}`);
    const { file, error } = this.closeChangeFile();
    if (file) this.logged.writer = this.newChangeFile();
    this.outTag = init.checkpoint!.gateOutput ? id : this.outTag;
    const ack: BarrierAck = { id, file, error, watermarkMs: this.watermark, stateBytes: this.store.bytes() };
    if (this.gate.released >= id - 1 || !init.checkpoint!.gateOutput) post({ type: 'barrier', ack });
    else this.pendingAcks.push(ack);
  }

  /**
   * A stop at a cut: what this worker processed is its state (the change file closes here, as at a
   * barrier); the frames it did not take stay in the ring, which main saves with the checkpoint.
   * Main released the output gate when it asked for the cut: nothing after it is produced.
   */
  private onCut(): void {
    this.ended = true;
    if (this.cut < 0 || !this.logged) return; // no checkpoint: the rest is dropped
    const { file, error } = this.closeChangeFile();
    this.cutAck = { id: this.cut, file, error, watermarkMs: this.watermark, stateBytes: this.store.bytes(), cut: true };
  }

  private onRelease(id: number): void {
    if (this.gate.release(id) > 0) this.sink!.flush();
    while (this.pendingAcks.length > 0 && this.gate.released >= this.pendingAcks[0].id - 1) post({ type: 'barrier', ack: this.pendingAcks.shift()! });
  }

  /** Fold the checkpoint's state files into the (empty) store before taking input. */
  private async restore(): Promise<void> {
    const r = init.restore!;
    const t0 = Date.now();
    const storage = this.storage ?? openStorage(init.checkpoint!.storage);
    const paths = await storage.fetch(r.files.map((f) => f.name));
    let events = 0, bytes = 0;
    const [from, to] = init.keyGroupRange;
    // Straight into the underlying store, not logged: the restored checkpoint's files stay the
    // head of the chain that later checkpoints extend.
    const target = this.logged ? this.logged.inner : this.store;
    const counted = new Set<string>(); // an outer join's fold reads each file twice
    // The lmdb store may seal what the restore has put in as it goes (restoreHorizon): up to the
    // checkpoint's watermark, and a margin behind the newest event time restored so far, since a
    // chain is in event-time order only roughly (out-of-order arrivals, and events written at a
    // barrier); one that still lands in a sealed slice reads it back, slower but exact.
    const marginMs = 2 * (init.checkpoint?.intervalMs ?? 60_000) + 60_000;
    let tsMax = -Infinity;
    let lastProgressMs = t0;
    const relevantFiles = chainFilesFor(r.files, from, to).length;
    foldChain(r.files.map((f, i) => ({ path: paths[i], keyGroups: f.keyGroups })), (p, n) => { if (!counted.has(p)) { counted.add(p); bytes += n; } }, from, to,
      init.checkpoint?.outer ?? [false, false], r.dropBeforeMs, (e) => {
        if (halted()) throw HALT;
        events++;
        if (e.ts > tsMax) tsMax = e.ts;
        target.insert(e.side, e.keyGroup, e.keyHash, e.key, e.ts, e.id, e.payload, e.joined, e.expireAtMs);
      }, (work) => {
        this.store.batch(() => {
          work();
          this.baseStore.restoreHorizon?.(Math.min(r.dropBeforeMs, tsMax - marginMs));
        });
        // A restore of tens of GB takes minutes: main logs where it is.
        const now = Date.now();
        if (now - lastProgressMs >= init.statsIntervalMs) {
          lastProgressMs = now;
          post({ type: 'restoring', index: init.index, events, filesRead: counted.size, files: relevantFiles });
        }
      }, undefined, null, true, true); // the chain's pages leave the page cache as they are read
    post({ type: 'restored', index: init.index, events, bytes, ms: Date.now() - t0 });
  }

  private stats(): WorkerStats {
    const c = this.join.counters;
    const sup = this.replay?.suppressed ?? this.cutEmitter?.suppressed ?? { pairs: 0, unmatched: [0, 0] };
    return {
      index: init.index, events: [this.events[0], this.events[1]], duplicates: c.duplicates, pairs: c.pairs - sup.pairs,
      unmatchedLeft: c.unmatchedLeft - sup.unmatched[0], unmatchedRight: c.unmatchedRight - sup.unmatched[1], expired: c.expired,
      suppressedPairs: sup.pairs, suppressedUnmatched: sup.unmatched[0] + sup.unmatched[1],
      stateEntries: this.store.count(), peakStateEntries: Math.max(this.peakEntries, this.store.count()), stateBytes: this.store.bytes(), watermarkMs: this.watermark,
      stateMemoryBytes: this.baseStore.memoryBytes?.() ?? 0, stateIndexBytes: this.baseStore.indexMemoryBytes?.() ?? 0, outputRecords: this.emitter.records, hotKeys: this.hot.report(),
    };
  }

  private maybeStats(): void {
    const t = Date.now();
    if (t - this.lastStatsMs < init.statsIntervalMs) return;
    this.lastStatsMs = t;
    post({ type: 'stats', stats: this.stats(), latency: this.latency.drainEncoded(), lag: this.lag.drainEncoded() });
  }

  async closeStore(): Promise<void> {
    await this.store.close();
  }

  async run(): Promise<void> {
    if (init.restore) await this.restore();
    // After the restore: what it inserted is in the chain already, and must not be written again.
    this.logged?.startDeferring();
    post({ type: 'ready', index: init.index, tid: currentTid() });
    const yieldEveryMs = 50;
    while (!this.ended) {
      if (halted()) throw HALT;
      const sliceStart = Date.now();
      let got = 0;
      // Busy phase: drain while there is work, but give the event loop a turn every ~50 ms.
      while (!this.ended && Date.now() - sliceStart < yieldEveryMs) {
        const n = this.drain();
        got += n;
        if (n === 0) break;
      }
      this.maybeStats();
      if (this.ended) break;
      if (got === 0) await this.ring.waitForDataAsync(IDLE_WAIT_MS);
      else await new Promise<void>((r) => setImmediate(r));
    }
    this.flushOutput();
    // Output held behind a barrier, or an answer to one, waits for main's release.
    while (!this.aborted && (this.gate.holding > 0 || this.pendingAcks.length > 0)) {
      if (halted()) throw HALT;
      await new Promise<void>((r) => setTimeout(r, 5));
    }
    // After every output chunk before the cut: its length is the checkpoint's output cut.
    if (this.cutAck && !this.aborted) { this.sink?.flush(); post({ type: 'barrier', ack: this.cutAck }); }
    this.sink?.close();
    const final = this.stats();
    post({ type: 'done', stats: final, latency: this.latency.drainEncoded(), lag: this.lag.drainEncoded() });
    await this.store.close();
    this.latency.destroy();
    this.lag.destroy();
    this.trace?.write();
  }
}

// A ref'd timer keeps the thread alive while it parks in Atomics.waitAsync (which alone does not, Node 20).
const keepAlive = setInterval(() => {}, 1 << 30);
let worker: Worker | null = null;
const finish = () => { clearInterval(keepAlive); port.removeAllListeners('message'); port.unref(); };
const failed = (e: unknown) => {
  if (e === HALT) { Promise.resolve(worker?.closeStore()).catch(() => {}).finally(finish); return; } // main is exiting: no report
  const stateError = init.state === 'memory' ? null : stateStoreError(e, init.stateDir, init.index);
  const err = e instanceof JoineryError ? e.toWire() : stateError ? stateError.toWire() : { code: 'E_WORKER', message: `worker ${init.index}: ${(e as Error)?.stack ?? String(e)}` };
  post({ type: 'error', error: err });
  // Close the store and let the thread end by itself: terminating a thread that still holds an
  // open LMDB environment can block in native code. (Its state is rebuilt from checkpoints.)
  Promise.resolve(worker?.closeStore()).catch(() => {}).finally(finish);
};
try {
  worker = new Worker();
  worker.run().then(finish, failed);
} catch (e) {
  failed(e);
}
