/**
 * The checkpoint coordinator (main thread), following docs/architecture.md §3:
 *  1. the router puts a barrier into every ring at a batch boundary and reports the source
 *     positions it stands for;
 *  2. each worker, on its barrier, closes its change file (everything its state gained since the
 *     previous barrier) and answers; it keeps processing meanwhile;
 *  3. once all have answered, the output cut is known (file length) and the output gate opens;
 *     the new change files are fsynced and checksummed on the side pool, the manifest is written
 *     with fsync + atomic rename;
 *  4. only then are positions committed to the source / the Kafka transaction committed.
 * A failed step fails that checkpoint only: the previous one stays the restore point, the change
 * files are kept (the next checkpoint includes them) and the next interval tries again.
 * Incremental: each checkpoint adds only the change files since the previous one; when the
 * chain holds much more than the live state, a background compaction folds it into new base files.
 */
import * as fs from 'node:fs';
import { spaceText } from '../state/disk.js';
import type { BarrierCut, Router } from '../router/router.js';
import type { BarrierAck } from '../worker/protocol.js';
import type { LogFields, LogLevel } from '../core/log.js';
import { decodeManifest, encodeManifest, MANIFEST_FORMAT, type Manifest, type StateFileRef } from './manifest.js';
import { forEachFrame } from '../ring/ring.js';
import { FrameKind } from '../ring/frame.js';
import { compactInto, type SidePool } from './pool.js';
import { injectedFault } from './faults.js';
import type { CheckpointStorage, StagedFile } from './storage.js';
import { expiryOf, fileExpired, orderFree } from './file-expiry.js';

export interface CheckpointStats {
  completed: number;
  failed: number;
  lastId: number;
  lastDurationMs: number;
  /** Bytes of state files this checkpoint added (the incremental part). */
  lastNewBytes: number;
  /** Bytes of the whole chain a restore would read. */
  lastStateBytes: number;
  lastError: string | null;
  lastCompletedAtMs: number;
  compactions: number;
  /** State files dropped from the chain unread, every event in them expired (file-expiry.ts). */
  expiredFiles: number;
  durationsMs: number[];
  newBytes: number[];
}

export interface CoordinatorOptions {
  storage: CheckpointStorage;
  pool: SidePool;
  router: Router;
  ranges: Array<[number, number]>;
  job: Manifest['job'];
  outer: [boolean, boolean];
  runId: string;
  /** File sink path (its length is the output cut), if the output is a file. */
  outputFile?: string;
  outputSpec: string;
  /** False when nothing resumes from these checkpoints (bench): the stop checkpoint's line says so. */
  resumable?: boolean;
  /** Chain of the restored checkpoint (continued by this run), and its id. */
  chain: StateFileRef[];
  lastId: number;
  /** The restored checkpoint's lowest worker watermark: the first checkpoint's watermark pace starts there. */
  restoredWatermarkMs?: number;
  retain: number;
  /** Ids to keep beyond `retain` (named by the group's committed offsets: another member may restore from them). */
  pinned?: () => Promise<ReadonlySet<number>>;
  /** Tell every worker that output before barrier `id` is written everywhere. */
  release: (id: number) => void;
  /** Checkpoint `id` was overtaken by the stop checkpoint: output held for it goes into the stop checkpoint's. */
  onSuperseded?: (id: number) => void;
  /** All workers passed barrier `id` (their output before it has been handed over). */
  onAllAcked?: (id: number) => void | Promise<void>;
  /** After the manifest is durable: commit source positions / the output transaction. */
  commit?: (m: Manifest) => Promise<void>;
  /** A message for the log; failures carry `code: 'E_CHECKPOINT'`. */
  log: (msg: string, level: LogLevel, fields?: LogFields) => void;
  /** Each checkpoint's outcome (metrics, /status). */
  onResult?: (r: { ok: boolean; id: number; durationMs?: number; bytes?: number }) => void;
  /** Compaction thresholds (tests); unset ones take COMPACT_DEFAULTS. */
  compact?: Partial<CompactThresholds>;
}

export interface CompactThresholds {
  minChainBytes: number;
  chainToLive: number;
  maxDeltaFiles: number;
}

/**
 * Compact when the chain (base + deltas) holds at least chainToLive (3) times the live state, and at least
 * minChainBytes (or when there are too many delta files). A compaction rewrites the live state and
 * reclaims only what expired, so it pays when most of the chain is dead: a growing state (a new job,
 * or one still filling its window) has a chain that is nearly all live, and compacting it would
 * rewrite the whole state for nothing — in the middle of the run, on the side pool and the disk
 * the checkpoints share. The factor keeps a restore reading at most ~3× the live state, and since
 * the chain must grow by about twice the live state between compactions, the rewriting stays
 * under half the ingest volume (LSM-style amortisation).
 * The live state is what the workers report at the barrier (key + id + payload of each buffered
 * event): a lower bound of its size in change records (each adds a header), so the estimate errs
 * towards compacting early rather than letting a restore read more.
 */
const COMPACT_DEFAULTS: CompactThresholds = { minChainBytes: 256 * 1024 * 1024, chainToLive: 3, maxDeltaFiles: 256 };

export class CheckpointCoordinator {
  readonly stats: CheckpointStats = {
    completed: 0, failed: 0, lastId: 0, lastDurationMs: 0, lastNewBytes: 0, lastStateBytes: 0, lastError: null,
    lastCompletedAtMs: 0, compactions: 0, expiredFiles: 0, durationsMs: [], newBytes: [],
  };
  private chain: StateFileRef[];
  /** Change files the workers completed but no manifest has named yet (staged, not yet published). */
  private unsealed: Array<{ file: NonNullable<BarrierAck['file']>; keyGroups: [number, number] }> = [];
  private nextId: number;
  private inFlight: Promise<boolean> | null = null;
  private acks: Map<number, BarrierAck>[] = [];
  private ackWaiter: { id: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  private compacting: Promise<void> | null = null;
  /** The files the running compaction reads. */
  private compactingFiles = new Set<string>();
  private compacted: { replaces: StateFileRef[]; bases: StateFileRef[] } | null = null;
  private failure: Error | null = null;
  /** This run's state files that have been in the chain: retention may delete them once no kept manifest names them. */
  private readonly named = new Set<string>();
  private readonly thresholds: CompactThresholds;

  constructor(private readonly o: CoordinatorOptions) {
    this.chain = [...o.chain];
    this.thresholds = { ...COMPACT_DEFAULTS, ...o.compact };
    this.lastDropBeforeMs = o.restoredWatermarkMs ?? -Infinity;
    this.nextId = o.lastId + 1;
    this.stats.lastId = o.lastId;
  }

  /** A worker's answer to a barrier. */
  onAck(worker: number, ack: BarrierAck): void {
    if (ack.cut) { this.cutAcks.set(worker, ack); this.checkCut(); return; }
    if (this.superseded.has(ack.id)) { this.takeOver(worker, ack); return; }
    (this.acks[ack.id] ??= new Map()).set(worker, ack);
    const w = this.ackWaiter;
    if (w && w.id === ack.id && this.acks[ack.id].size === this.o.ranges.length) { this.ackWaiter = null; w.resolve(); }
  }

  /** The engine failed: a checkpoint waiting for workers gives up. */
  abort(e: Error): void {
    this.failure = e;
    const w = this.ackWaiter;
    if (w) { this.ackWaiter = null; w.reject(e); }
    const c = this.cutWaiter;
    if (c) { this.cutWaiter = null; c(); } // the stop checkpoint sees this.failure
  }

  get busy(): boolean {
    return this.inFlight !== null;
  }

  /** Wait for the checkpoint in flight, if any. */
  async idle(): Promise<void> {
    if (this.inFlight) await this.inFlight;
  }

  /**
   * Take a checkpoint (after any in flight). The barrier request is made synchronously when
   * nothing is in flight, so the router sees it at its next batch boundary. Resolves true when
   * the manifest is durable and committed, false when this checkpoint failed (reported).
   */
  checkpoint(): Promise<boolean> {
    const prev = this.inFlight;
    const run = prev ? prev.then(() => this.take()) : this.take();
    const p = run.finally(() => { if (this.inFlight === p) this.inFlight = null; });
    this.inFlight = p;
    return p;
  }

  private async take(): Promise<boolean> {
    if (this.failure || this.cutting) return false;
    const id = this.nextId++;
    const t0 = performance.now();
    const acked = new Promise<void>((resolve, reject) => { this.ackWaiter = { id, resolve, reject }; });
    acked.catch(() => {});
    let cut: BarrierCut;
    try {
      cut = await this.o.router.barrier(id);
      await acked;
    } catch (e) {
      if (this.ackWaiter?.id === id) this.ackWaiter = null;
      if (this.superseded.has(id)) return false; // not a failure: the stop checkpoint took over
      this.stats.failed++;
      this.stats.lastError = (e as Error).message;
      this.o.onResult?.({ ok: false, id });
      return false;
    }
    const acks = this.acks[id];
    delete this.acks[id];
    // 3a. The output cut: every worker wrote its output from before the barrier, none wrote later output.
    let outputLength: number | undefined;
    let cutError: Error | null = null;
    try {
      if (this.o.outputFile) outputLength = fs.statSync(this.o.outputFile).size;
    } catch (e) {
      cutError = e as Error; // fails this checkpoint below, after its files are taken over
    } finally {
      this.o.release(id);
    }
    return this.complete(id, t0, cut, acks, outputLength, cutError, null);
  }

  // The stop checkpoint (a cut): see stopCheckpoint.
  private cutting = false;
  private cutId = 0;
  private readonly cutAcks = new Map<number, BarrierAck>();
  private cutWaiter: (() => void) | null = null;
  /** Checkpoints whose barrier the stop overtook: they never complete, their change files go into the stop checkpoint. */
  private readonly superseded = new Set<number>();

  /**
   * Stop at a cut instead of draining the rings (docs/architecture.md §3, "the stop checkpoint"):
   * the router stops and records the source positions after the last record routed, each worker
   * stops at its next frame boundary and closes its change file, and the frames still in the rings
   * go into the checkpoint as in-flight files; a resume routes them first. A checkpoint whose
   * barrier is still in a ring is overtaken: its change files that exist join this one. Resolves
   * like checkpoint(); the run ends with it (nothing more is checkpointed).
   */
  stopCheckpoint(): Promise<boolean> {
    this.finishing = true;
    this.cutting = true;
    const id = this.cutId = this.nextId++;
    const t0 = performance.now();
    const w = this.ackWaiter;
    if (w) {
      this.ackWaiter = null;
      this.superseded.add(w.id);
      for (const [worker, a] of this.acks[w.id] ?? []) this.takeOver(worker, a);
      delete this.acks[w.id];
      this.o.onSuperseded?.(w.id);
      w.reject(new Error(`superseded by the stop checkpoint ${id}`));
    }
    for (const [worker, wm] of this.doneWorkers) this.cutAcks.set(worker, { id, file: null, watermarkMs: wm, stateBytes: 0, cut: true });
    const cutP = this.o.router.cut(id);
    // Output held behind an earlier barrier may go now: everything produced before the cut belongs to this checkpoint.
    this.o.release(id);
    const acked = new Promise<void>((resolve) => { this.cutWaiter = resolve; });
    this.checkCut();
    const prev = this.inFlight;
    const run = (async (): Promise<boolean> => {
      let cut: BarrierCut;
      try {
        cut = await cutP;
        await acked;
        if (prev) await prev.catch(() => false); // a checkpoint past its barriers completes first (chain order)
        if (this.failure) throw this.failure;
      } catch (e) {
        this.stats.failed++;
        this.stats.lastError = (e as Error).message;
        this.o.onResult?.({ ok: false, id });
        return false;
      }
      let outputLength: number | undefined;
      let cutError: Error | null = null;
      try {
        if (this.o.outputFile) outputLength = fs.statSync(this.o.outputFile).size;
      } catch (e) { cutError = e as Error; }
      let inflight: Uint8Array[];
      try { inflight = this.o.router.takeInflight(); } catch (e) { cutError = e as Error; inflight = []; }
      return this.complete(id, t0, cut, this.cutAcks, outputLength, cutError, inflight);
    })();
    const p = run.finally(() => { if (this.inFlight === p) this.inFlight = null; });
    this.inFlight = p;
    return p;
  }

  /** Workers that ended, with their last watermark. */
  private readonly doneWorkers = new Map<number, number>();

  /**
   * A worker ended. One that did so without meeting the cut (before it, or before seeing it) had
   * processed the end of input: nothing of it is unprocessed, and its changes are in the files of
   * the final barrier it passed.
   */
  onWorkerDone(worker: number, watermarkMs: number): void {
    this.doneWorkers.set(worker, watermarkMs);
    if (!this.cutting || this.cutAcks.has(worker)) return;
    this.cutAcks.set(worker, { id: this.cutId, file: null, watermarkMs, stateBytes: 0, cut: true });
    this.checkCut();
  }

  private checkCut(): void {
    if (this.cutWaiter && this.cutAcks.size === this.o.ranges.length) { const r = this.cutWaiter; this.cutWaiter = null; r(); }
  }

  /** An overtaken checkpoint's answer: its change file holds state the stop checkpoint needs. */
  private takeOver(worker: number, ack: BarrierAck): void {
    if (ack.file) this.unsealed.push({ file: ack.file, keyGroups: this.o.ranges[worker] });
  }

  /** Steps 3 and 4 once every worker has answered: seal, write the manifest, commit. */
  private async complete(id: number, t0: number, cut: BarrierCut, acks: Map<number, BarrierAck>, outputLength: number | undefined,
    cutError: Error | null, inflight: Uint8Array[] | null): Promise<boolean> {
    let ok = true;
    const errors: string[] = [];
    for (let w = 0; w < this.o.ranges.length; w++) {
      const a = acks.get(w)!;
      if (a.file) this.unsealed.push({ file: a.file, keyGroups: this.o.ranges[w] });
      if (a.error) { ok = false; errors.push(`worker ${w}: ${a.error}`); }
    }
    if (cutError) { ok = false; errors.push(`output cut: ${cutError.message}`); }
    try {
      await this.o.onAllAcked?.(id);
      const inflightFiles = inflight ? await this.writeInflight(id, inflight) : [];
      const stateFiles = await this.writeSourceStates(id, cut.states ?? []);
      // Named now: a checkpoint failing after this leaves them to the next retire, not to the run's end.
      for (const f of stateFiles) this.named.add(f.file.name);
      // 3b. Make the new files durable and checksum them (side pool), then the output file.
      const st = this.o.storage;
      // The workers' change files come with the checksums their writers computed (no read-back).
      const known = new Map<string, { bytes: number; checksum: string }>();
      for (const u of this.unsealed) if (u.file.checksum !== undefined) known.set(u.file.localPath, { bytes: u.file.bytes, checksum: u.file.checksum });
      const seal = (paths: string[]) => this.o.pool.seal({ paths, dropCache: true, known: paths.map((p) => known.get(p)) });
      const sealedInflight = await st.publish(inflightFiles.map((f) => f.file), seal);
      const sealedStates = await st.publish(stateFiles.map((f) => f.file), seal);
      const sealed = await st.publish(this.unsealed.map((u) => u.file), seal);
      let newBytes = 0;
      sealed.forEach((s, i) => {
        this.named.add(s.name);
        const u = this.unsealed[i];
        this.chain.push({ name: s.name, kind: 'delta', keyGroups: u.keyGroups, bytes: s.bytes, checksum: s.checksum, ...expiryOf(u.file.expireAtMaxMs) });
        newBytes += s.bytes;
      });
      this.unsealed = [];
      if (!ok) throw new Error(errors.join('; '));
      if (this.o.outputFile) await fsyncFile(this.o.outputFile);
      // The lowest worker watermark: what expired everywhere (file drops, compaction).
      const dropBeforeMs = Math.min(...this.o.ranges.map((_, w) => acks.get(w)!.watermarkMs));
      this.dropExpired(dropBeforeMs);
      this.applyCompaction();
      const manifest: Manifest = {
        format: MANIFEST_FORMAT, id, createdAtMs: Date.now(), job: this.o.job,
        sources: cut.positions.map((p, i) => {
          const k = stateFiles.findIndex((f) => f.position === i);
          if (k < 0) return p;
          return { ...p, state: { name: sealedStates[k].name, bytes: sealedStates[k].bytes, checksum: sealedStates[k].checksum } };
        }),
        router: { watermarkMs: cut.watermarkMs, partitions: cut.partitions },
        output: { spec: this.o.outputSpec, lengthBytes: outputLength },
        workers: this.o.ranges.map((r, w) => ({ keyGroups: r, watermarkMs: acks.get(w)!.watermarkMs })),
        files: [...this.chain],
        stats: { stateBytes: this.chain.reduce((s, f) => s + f.bytes, 0), newBytes, durationMs: 0 },
      };
      if (inflightFiles.length > 0) {
        manifest.inflight = inflightFiles.map((f, i) => {
          this.named.add(f.file.name);
          return { name: f.file.name, keyGroups: f.keyGroups, bytes: sealedInflight[i].bytes, checksum: sealedInflight[i].checksum, events: f.events };
        });
      }
      manifest.stats.durationMs = Math.round(performance.now() - t0);
      // 3c. The commit point.
      await this.o.storage.writeManifest(id, encodeManifest(manifest));
      injectedFault('kill-after-manifest', `manifest ${id}`);
      // 4. Positions and output transaction follow the manifest, never precede it.
      await this.o.commit?.(manifest);
      const ms = performance.now() - t0;
      const s = this.stats;
      s.completed++; s.lastId = id; s.lastDurationMs = ms; s.lastNewBytes = newBytes;
      s.lastStateBytes = manifest.stats.stateBytes; s.lastError = null; s.lastCompletedAtMs = Date.now();
      s.durationsMs.push(ms); s.newBytes.push(newBytes);
      this.o.onResult?.({ ok: true, id, durationMs: ms, bytes: newBytes });
      if (inflight) {
        const n = manifest.inflight?.reduce((k, f) => k + f.events, 0) ?? 0;
        this.o.log(`stop checkpoint ${id} taken at a cut in ${Math.round(ms)}ms: ${n > 0 ? `${n} routed event(s) not yet joined are kept in it (${mb(manifest.inflight?.reduce((k, f) => k + f.bytes, 0) ?? 0)})${this.o.resumable === false ? ' (a benchmark is never resumed)' : ' and are joined first on the next start'}` : 'every routed event had been joined'}`, 'info', { checkpoint: id, inflightEvents: n });
      }
      await this.retire();
      this.maybeCompact(manifest.id, dropBeforeMs, [...acks.values()].reduce((n, a) => n + a.stateBytes, 0));
      return true;
    } catch (e) {
      this.stats.failed++;
      this.stats.lastError = (e as Error).message;
      // An evicted group member's commit is refused for good: the run ends (the member says why), no retry.
      if ((e as { code?: string }).code === 'E_GROUP_EVICTED') this.o.log(`checkpoint ${id} not committed: ${(e as Error).message}`, 'info', { code: 'E_GROUP_EVICTED', checkpoint: id });
      else this.o.log(`checkpoint ${id} failed in ${this.o.storage.location}${spaceNote(e, this.o.storage.location)} (the previous checkpoint stays the restore point${this.finishing ? '' : '; retrying at the next interval'}): ${(e as Error).message}`, 'warn', { code: 'E_CHECKPOINT', checkpoint: id });
      this.o.onResult?.({ ok: false, id });
      return false;
    }
  }

  /** Stage each worker's unprocessed frames (empty ones are left out). */
  private async writeInflight(id: number, frames: Uint8Array[]): Promise<Array<{ file: StagedFile; keyGroups: [number, number]; events: number }>> {
    const out: Array<{ file: StagedFile; keyGroups: [number, number]; events: number }> = [];
    for (const [w, bytes] of frames.entries()) {
      if (bytes.length === 0) continue;
      let events = 0;
      forEachFrame(bytes, (off) => { if (bytes[off] === FrameKind.Event) events++; });
      const file = await this.o.storage.writeStaged(`${this.o.runId}-w${w}-${String(id).padStart(6, '0')}.inflight`, bytes);
      out.push({ file, keyGroups: this.o.ranges[w], events });
    }
    return out;
  }

  /** Stage the sources' states (Source.checkpointState), one file each. */
  private async writeSourceStates(id: number, states: ReadonlyArray<Uint8Array | null>): Promise<Array<{ file: StagedFile; position: number }>> {
    const out: Array<{ file: StagedFile; position: number }> = [];
    for (const [i, bytes] of states.entries()) {
      if (bytes) out.push({ file: await this.o.storage.writeStaged(`${this.o.runId}-s${i}-${String(id).padStart(6, '0')}.state`, bytes), position: i });
    }
    return out;
  }

  /** Keep the newest `retain` manifests; delete state files nothing kept refers to. */
  private async retire(): Promise<void> {
    const st = this.o.storage;
    try {
      // Bounded: retention runs inside the checkpoint (busy), so a group member's read of the
      // group's offsets that hangs (a broker request retried for minutes) held every later
      // checkpoint back (an idle member took none for 85 s in CI). Skipped, nothing is deleted.
      const pinned = this.o.pinned ? await withinMs(this.o.pinned(), PINNED_WAIT_MS) : new Set<number>();
      if (pinned === null) {
        this.o.log(`checkpoint retention skipped: the checkpoints other members may still need were not known within ${PINNED_WAIT_MS / 1000} s`, 'warn', { code: 'E_CHECKPOINT' });
        return;
      }
      const ids = await st.listManifests();
      const kept = ids.filter((id, i) => i < this.o.retain || pinned.has(id));
      for (const id of ids) if (!kept.includes(id)) await st.removeManifest(id);
      const keep = new Set<string>(this.chain.map((f) => f.name));
      for (const f of this.compacted?.bases ?? []) keep.add(f.name);
      // A file a running compaction reads may have left the chain since (expired): not under it.
      for (const name of this.compactingFiles) keep.add(name);
      for (const id of kept) {
        // A kept manifest that cannot be read might still name files: delete nothing this time.
        let m: Manifest;
        try { m = decodeManifest(await st.readManifest(id), `checkpoint ${id}`); } catch { return; }
        for (const f of [...m.files, ...(m.inflight ?? [])]) keep.add(f.name);
        for (const p of m.sources) if (p.state) keep.add(p.state.name);
      }
      for (const name of await st.listFiles()) {
        // This run's files never in the chain are open change files or a compaction's output:
        // never delete them. Those that were (deltas a compaction replaced) go like any other.
        const open = name.startsWith(this.o.runId) && !this.named.has(name);
        if (!keep.has(name) && !open && !name.includes('.tmp')) {
          // A change file's pages are the next one's: written over rather than freed and refilled.
          // In a steady state each checkpoint drops about one per worker and stages as many.
          if (name.endsWith('.delta')) await st.recycleFile(name, this.o.ranges.length); else await st.removeFile(name);
          this.named.delete(name);
        }
      }
    } catch (e) {
      this.o.log(`checkpoint retention: ${(e as Error).message}`, 'warn', { code: 'E_CHECKPOINT' });
    }
  }

  /** The lowest worker watermark at the previous checkpoint of this run (its pace predicts expiry). */
  private lastDropBeforeMs = -Infinity;

  /** The run is ending: a compaction now would only delay the exit (the next run compacts). */
  finishing = false;

  /** After checkpoint `id`: `dropBeforeMs` its lowest worker watermark, `liveBytes` the workers' state at its barrier. */
  private maybeCompact(id: number, dropBeforeMs: number, liveBytes: number): void {
    const prev = this.lastDropBeforeMs;
    this.lastDropBeforeMs = dropBeforeMs;
    if (this.compacting || this.compacted || this.finishing) return;
    // Files that will expire whole within about two more checkpoints (at the watermark's pace over
    // the last interval) leave the chain by themselves: rewriting their live part now is wasted.
    // On a window shorter than a few intervals that is every file, and compaction never runs.
    // Without a pace (a new job's first checkpoint, whose chain is that one interval's files) that
    // is unknown, and a chain already mostly dead then means a window shorter than the interval:
    // its files expire by themselves at the next checkpoints. Only the file-count rule applies.
    const step = dropBeforeMs - prev;
    const paced = Number.isFinite(step) && step >= 0;
    const soon = paced ? dropBeforeMs + 2 * step : dropBeforeMs;
    const lasting = this.chain.filter((f) => !fileExpired(f, this.o.outer, soon));
    const deltas = lasting.filter((f) => f.kind === 'delta').length;
    const chainBytes = lasting.reduce((s, f) => s + f.bytes, 0);
    const t = this.thresholds;
    if (deltas < t.maxDeltaFiles && (!paced || chainBytes < t.minChainBytes || chainBytes < t.chainToLive * liveBytes)) return;
    const snapshot = lasting;
    this.compactingFiles = new Set(snapshot.map((f) => f.name));
    const t0 = performance.now();
    this.compacting = compactInto(this.o.storage, this.o.pool, this.o.storage, snapshot, {
      ranges: this.o.ranges, outer: this.o.outer, dropBeforeMs, prefix: `${this.o.runId}-c${id}`,
    }).then((bases) => {
      this.compacted = { replaces: snapshot, bases };
      this.stats.compactions++;
      this.o.log(`compacted ${snapshot.length} state files (${mb(snapshot.reduce((s, f) => s + f.bytes, 0))}) into ${bases.length} base file(s) (${mb(bases.reduce((s, f) => s + f.bytes, 0))}) in ${((performance.now() - t0) / 1000).toFixed(1)}s`, 'info');
    }, (e: Error) => {
      this.o.log(`compaction failed (the chain stays as it is): ${e.message}`, 'warn', { code: 'E_CHECKPOINT' });
    }).finally(() => { this.compacting = null; this.compactingFiles = new Set(); });
  }

  /**
   * Swap a finished compaction's bases in for the files it folded, at the head of the chain. The
   * files it left out (about to expire) or that were dropped as expired since are events of
   * non-outer sides only, whose order in the chain does not matter (no MARK or EXPIRED record
   * refers to them); anything else older than a folded file would, and the result is then not
   * used. The bases may still hold events of a dropped file (live when compacted, expired now):
   * harmless, a restore drops them.
   */
  private applyCompaction(): void {
    const c = this.compacted;
    if (!c) return;
    this.compacted = null;
    const folded = new Set(c.replaces.map((f) => f.name));
    let last = -1;
    this.chain.forEach((f, i) => { if (folded.has(f.name)) last = i; });
    if (this.chain.slice(0, last).some((f) => !folded.has(f.name) && !orderFree(f, this.o.outer))) return;
    this.chain = [...c.bases, ...this.chain.filter((f) => !folded.has(f.name))];
    for (const f of c.bases) this.named.add(f.name);
  }

  /**
   * Leave out of the chain the files whose every event has expired at this checkpoint's lowest
   * worker watermark (file-expiry.ts): without reading them, they stop counting towards the next
   * compaction and a restore. Retention deletes them once no kept manifest names them.
   */
  private dropExpired(dropBeforeMs: number): void {
    const kept = this.chain.filter((f) => !fileExpired(f, this.o.outer, dropBeforeMs));
    const n = this.chain.length - kept.length;
    if (n === 0) return;
    const bytes = this.chain.reduce((s, f) => s + f.bytes, 0) - kept.reduce((s, f) => s + f.bytes, 0);
    this.chain = kept;
    this.stats.expiredFiles += n;
    this.o.log(`${n} state file(s) (${mb(bytes)}) left the checkpoint chain: every event in them has expired`, 'debug');
  }

  /** Wait for a background compaction to finish (tests, benchmarks). */
  async compactionIdle(): Promise<void> {
    if (this.compacting) await this.compacting;
  }

  /** Wait for the checkpoint in flight. A compaction still running is abandoned (the pool is
   * destroyed next); its partial output is named by no manifest and removed by a later run. */
  async close(): Promise<void> {
    this.finishing = true;
    if (this.inFlight) await this.inFlight;
  }
}

async function fsyncFile(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`;
}

/** How long retention waits to learn which checkpoints other group members may still restore from. */
const PINNED_WAIT_MS = 10_000;

/** `p`'s value, or null when it takes longer than `ms` (its rejection is passed on). */
async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => { t = setTimeout(() => r(null), ms); })]);
  } finally {
    clearTimeout(t);
  }
}

/** For a full file system: how much is free where the checkpoints go, so the message says what to fix. */
function spaceNote(e: unknown, dir: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? ` (file system full: ${spaceText(dir)})` : '';
}
