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
 * deltas outgrow the base, a background compaction folds the chain into new base files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BarrierCut, Router } from '../router/router.js';
import type { BarrierAck } from '../worker/protocol.js';
import type { LogFields, LogLevel } from '../core/log.js';
import { decodeManifest, encodeManifest, MANIFEST_FORMAT, type Manifest, type StateFileRef } from './manifest.js';
import type { SidePool } from './pool.js';
import { injectedFault } from './faults.js';
import type { CheckpointStorage } from './storage.js';

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
  /** Chain of the restored checkpoint (continued by this run), and its id. */
  chain: StateFileRef[];
  lastId: number;
  retain: number;
  /** Ids to keep beyond `retain` (named by the group's committed offsets: another member may restore from them). */
  pinned?: () => Promise<ReadonlySet<number>>;
  /** Tell every worker that output before barrier `id` is written everywhere. */
  release: (id: number) => void;
  /** All workers passed barrier `id` (their output before it has been handed over). */
  onAllAcked?: (id: number) => void | Promise<void>;
  /** After the manifest is durable: commit source positions / the output transaction. */
  commit?: (m: Manifest) => Promise<void>;
  /** A message for the log; failures carry `code: 'E_CHECKPOINT'`. */
  log: (msg: string, level: LogLevel, fields?: LogFields) => void;
  /** Each checkpoint's outcome (metrics, /status). */
  onResult?: (r: { ok: boolean; id: number; durationMs?: number; bytes?: number }) => void;
}

/**
 * Compact when the deltas since the base exceed both this and twice the base (or when there are
 * too many files). Each compaction rewrites the live state, so letting the deltas reach 2× the base
 * keeps the rewriting to about the ingest volume (LSM-style amortisation) while a restore reads at
 * most ~3× the live state.
 */
const COMPACT_MIN_DELTA_BYTES = 256 * 1024 * 1024;
const COMPACT_DELTA_TO_BASE = 2;
const COMPACT_MAX_DELTA_FILES = 256;

export class CheckpointCoordinator {
  readonly stats: CheckpointStats = {
    completed: 0, failed: 0, lastId: 0, lastDurationMs: 0, lastNewBytes: 0, lastStateBytes: 0, lastError: null,
    lastCompletedAtMs: 0, compactions: 0, durationsMs: [], newBytes: [],
  };
  private chain: StateFileRef[];
  /** Change files the workers completed but no manifest has named yet (not yet fsynced/sealed). */
  private unsealed: Array<{ path: string; keyGroups: [number, number] }> = [];
  private nextId: number;
  private inFlight: Promise<boolean> | null = null;
  private acks: Map<number, BarrierAck>[] = [];
  private ackWaiter: { id: number; resolve: () => void; reject: (e: Error) => void } | null = null;
  private compacting: Promise<void> | null = null;
  private compacted: { replaces: StateFileRef[]; bases: StateFileRef[] } | null = null;
  private failure: Error | null = null;
  /** This run's state files that have been in the chain: retention may delete them once no kept manifest names them. */
  private readonly named = new Set<string>();

  constructor(private readonly o: CoordinatorOptions) {
    this.chain = [...o.chain];
    this.nextId = o.lastId + 1;
    this.stats.lastId = o.lastId;
  }

  /** A worker's answer to a barrier. */
  onAck(worker: number, ack: BarrierAck): void {
    (this.acks[ack.id] ??= new Map()).set(worker, ack);
    const w = this.ackWaiter;
    if (w && w.id === ack.id && this.acks[ack.id].size === this.o.ranges.length) { this.ackWaiter = null; w.resolve(); }
  }

  /** The engine failed: a checkpoint waiting for workers gives up. */
  abort(e: Error): void {
    this.failure = e;
    const w = this.ackWaiter;
    if (w) { this.ackWaiter = null; w.reject(e); }
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
    if (this.failure) return false;
    const id = this.nextId++;
    const t0 = performance.now();
    const acked = new Promise<void>((resolve, reject) => { this.ackWaiter = { id, resolve, reject }; });
    acked.catch(() => {});
    let cut: BarrierCut;
    try {
      cut = await this.o.router.barrier(id);
      await acked;
    } catch (e) {
      this.ackWaiter = null;
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
    let ok = true;
    const errors: string[] = [];
    for (let w = 0; w < this.o.ranges.length; w++) {
      const a = acks.get(w)!;
      if (a.file) this.unsealed.push({ path: a.file.path, keyGroups: this.o.ranges[w] });
      if (a.error) { ok = false; errors.push(`worker ${w}: ${a.error}`); }
    }
    if (cutError) { ok = false; errors.push(`output cut: ${cutError.message}`); }
    try {
      await this.o.onAllAcked?.(id);
      // 3b. Make the new files durable and checksum them (side pool), then the output file.
      const sealed = this.unsealed.length > 0 ? await this.o.pool.seal({ paths: this.unsealed.map((u) => u.path) }) : [];
      let newBytes = 0;
      sealed.forEach((s, i) => {
        this.named.add(path.basename(s.path));
        this.chain.push({ name: path.basename(s.path), kind: 'delta', keyGroups: this.unsealed[i].keyGroups, bytes: s.bytes, sha256: s.sha256 });
        newBytes += s.bytes;
      });
      this.unsealed = [];
      if (!ok) throw new Error(errors.join('; '));
      if (this.o.outputFile) await fsyncFile(this.o.outputFile);
      this.applyCompaction();
      const manifest: Manifest = {
        format: MANIFEST_FORMAT, id, createdAtMs: Date.now(), job: this.o.job, sources: cut.positions,
        router: { watermarkMs: cut.watermarkMs, partitions: cut.partitions },
        output: { spec: this.o.outputSpec, lengthBytes: outputLength },
        workers: this.o.ranges.map((r, w) => ({ keyGroups: r, watermarkMs: acks.get(w)!.watermarkMs })),
        files: [...this.chain],
        stats: { stateBytes: this.chain.reduce((s, f) => s + f.bytes, 0), newBytes, durationMs: 0 },
      };
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
      await this.retire();
      this.maybeCompact(manifest);
      return true;
    } catch (e) {
      this.stats.failed++;
      this.stats.lastError = (e as Error).message;
      this.o.log(`checkpoint ${id} failed (the previous checkpoint stays the restore point; retrying at the next interval): ${(e as Error).message}`, 'warn', { code: 'E_CHECKPOINT', checkpoint: id });
      this.o.onResult?.({ ok: false, id });
      return false;
    }
  }

  /** Keep the newest `retain` manifests; delete state files nothing kept refers to. */
  private async retire(): Promise<void> {
    const st = this.o.storage;
    try {
      const pinned = this.o.pinned ? await this.o.pinned() : new Set<number>();
      const ids = st.listManifests();
      const kept = ids.filter((id, i) => i < this.o.retain || pinned.has(id));
      for (const id of ids) if (!kept.includes(id)) st.removeManifest(id);
      const keep = new Set<string>(this.chain.map((f) => f.name));
      for (const f of this.compacted?.bases ?? []) keep.add(f.name);
      for (const id of kept) {
        // A kept manifest that cannot be read might still name files: delete nothing this time.
        let m: Manifest;
        try { m = decodeManifest(st.readManifest(id), `checkpoint ${id}`); } catch { return; }
        for (const f of m.files) keep.add(f.name);
      }
      for (const name of st.listFiles()) {
        // This run's files never in the chain are open change files or a compaction's output:
        // never delete them. Those that were (deltas a compaction replaced) go like any other.
        const open = name.startsWith(this.o.runId) && !this.named.has(name);
        if (!keep.has(name) && !open && !name.includes('.tmp')) { st.removeFile(name); this.named.delete(name); }
      }
    } catch (e) {
      this.o.log(`checkpoint retention: ${(e as Error).message}`, 'warn', { code: 'E_CHECKPOINT' });
    }
  }

  /** The run is ending: a compaction now would only delay the exit (the next run compacts). */
  finishing = false;

  private maybeCompact(m: Manifest): void {
    if (this.compacting || this.compacted || this.finishing) return;
    const baseBytes = this.chain.filter((f) => f.kind === 'base').reduce((s, f) => s + f.bytes, 0);
    const deltas = this.chain.filter((f) => f.kind === 'delta');
    const deltaBytes = deltas.reduce((s, f) => s + f.bytes, 0);
    if (deltas.length < COMPACT_MAX_DELTA_FILES && (deltaBytes < COMPACT_MIN_DELTA_BYTES || deltaBytes < COMPACT_DELTA_TO_BASE * baseBytes)) return;
    const snapshot = [...this.chain];
    const dropBeforeMs = Math.min(...m.workers.map((w) => w.watermarkMs));
    const t0 = performance.now();
    this.compacting = this.o.pool.compact({
      files: snapshot.map((f) => ({ path: path.join(this.o.storage.dataDir, f.name), keyGroups: f.keyGroups })),
      ranges: this.o.ranges, outer: this.o.outer, dropBeforeMs, outDir: this.o.storage.dataDir, prefix: `${this.o.runId}-c${m.id}`,
    }).then((out) => {
      this.compacted = {
        replaces: snapshot,
        bases: out.map((f) => ({ name: path.basename(f.path), kind: 'base' as const, keyGroups: f.keyGroups, bytes: f.bytes, sha256: f.sha256 })),
      };
      this.stats.compactions++;
      this.o.log(`compacted ${snapshot.length} state files (${mb(snapshot.reduce((s, f) => s + f.bytes, 0))}) into ${out.length} base file(s) (${mb(out.reduce((s, f) => s + f.bytes, 0))}) in ${((performance.now() - t0) / 1000).toFixed(1)}s`, 'info');
    }, (e: Error) => {
      this.o.log(`compaction failed (the chain stays as it is): ${e.message}`, 'warn', { code: 'E_CHECKPOINT' });
    }).finally(() => { this.compacting = null; });
  }

  /** Swap a finished compaction's bases in for the chain prefix it folded. */
  private applyCompaction(): void {
    const c = this.compacted;
    if (!c) return;
    this.compacted = null;
    const n = c.replaces.length;
    if (this.chain.length < n || c.replaces.some((f, i) => this.chain[i].name !== f.name)) return;
    this.chain = [...c.bases, ...this.chain.slice(n)];
    for (const f of c.bases) this.named.add(f.name);
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
