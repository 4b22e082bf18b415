/** The worker threads: their start, their messages, sync requests, and stopping them after a failure. */
import { Worker } from 'node:worker_threads';
import type { CheckpointContext } from '../checkpoint/index.js';
import type { Manifest } from '../checkpoint/manifest.js';
import { endpointsOf } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import { haltGroup, isExiting, type HaltGroup } from '../core/exit.js';
import { log } from '../core/log.js';
import type { CpuMeter } from '../metrics/cpu.js';
import type { MetricsHub } from '../metrics/report.js';
import type { BarrierAck, WorkerInit, WorkerMessage } from '../worker/protocol.js';
import { bucketMsFor, freezeGroupSlicesFor, lz4AboveBytesFor, stateMemoryBytesFor, type InputFormats } from './setup.js';
import { configureWorkerHeaps } from './worker-heap.js';

/** Each worker's start parameters: its ring, its key groups, and with checkpoints what it restores. */
export function workerInits(p: {
  cfg: Config; formats: InputFormats; sabs: SharedArrayBuffer[]; ranges: Array<[number, number]>; halt: SharedArrayBuffer;
  framing: WorkerInit['framing']; statsIntervalMs: number; rebuild: boolean; backfill: boolean; overflowOut: boolean;
  ck: CheckpointContext | null; restored: Manifest | null; outer: [boolean, boolean];
}): WorkerInit[] {
  const { cfg, ck, restored } = p;
  const out = endpointsOf(cfg).out!; // the descriptor crosses to the threads as plain data
  const inits: WorkerInit[] = [];
  for (let i = 0; i < cfg.workers; i++) {
    const init: WorkerInit = {
      index: i, sab: p.sabs[i], halt: p.halt, keyGroupRange: p.ranges[i], join: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs,
      formats: p.formats, state: cfg.state, bucketMs: bucketMsFor(cfg), freezeGroupSlices: freezeGroupSlicesFor(cfg), stateMemoryBytes: Math.floor(stateMemoryBytesFor(cfg) / cfg.workers), lz4AboveBytes: lz4AboveBytesFor(cfg), stateDir: cfg.stateDir, out, framing: p.framing, statsIntervalMs: p.statsIntervalMs,
      rebuild: p.rebuild, backfill: p.backfill, maxKeyEntries: cfg.maxKeyEntries ?? 0, maxDelayMs: cfg.maxDelayMs, overflowOut: p.overflowOut,
    };
    if (ck) {
      const storage = ck.storage.descriptor;
      if (!storage) throw new JoineryError('E_INTERNAL', `checkpoint storage ${ck.storage.location} cannot be opened by worker threads`);
      init.checkpoint = { storage, runId: ck.runId, outer: p.outer, gateOutput: out.kind === 'file', firstEpoch: restored?.id ?? 0, intervalMs: cfg.checkpointIntervalMs };
      if (restored) {
        init.restore = {
          files: restored.files.map((f) => ({ name: f.name, keyGroups: f.keyGroups })),
          dropBeforeMs: Math.min(...restored.workers.map((w) => w.watermarkMs)),
          watermarkMs: restored.router.watermarkMs,
        };
      }
    }
    inits.push(init);
  }
  return inits;
}

/** What the engine does with the workers' messages (stats, sync answers and logs the pool handles itself). */
export interface WorkerEvents {
  out(worker: number, chunk: Uint8Array): void;
  barrier(worker: number, ack: BarrierAck): void;
  overflow(chunk: Uint8Array): void;
  /** A worker's restore progress (its running totals), while restoring. */
  restoring(worker: number, events: number, filesRead: number, files: number): void;
  restored(events: number, ms: number): void;
  /** A worker finished its input (after its final stats are in the hub). */
  done(worker: number, watermarkMs: number): void;
  fail(e: Error): void;
}

export class WorkerPool {
  readonly threads: Worker[] = [];
  readonly finished: boolean[] = [];
  readonly halt: HaltGroup = haltGroup();
  private readonly ready: Promise<void>[] = [];
  private readonly done: Promise<void>[] = [];
  // Sync requests in flight, with the worker asked. A worker that ends (done, error, exit) answers
  // no more requests: its open ones are answered with its ring's released head, or a commit
  // waiting for them (and the end of the run, which waits for that commit) would hang.
  private readonly syncWaiters = new Map<number, { worker: number; resolve: (head: number) => void }>();
  private syncSeq = 0;

  constructor(private readonly rings: ReadonlyArray<{ releasedHead(): number }>, private readonly hub: MetricsHub, private readonly cpu: CpuMeter) {}

  private endSyncs(w: number): void {
    for (const [id, s] of this.syncWaiters) if (s.worker === w) { this.syncWaiters.delete(id); s.resolve(this.rings[w].releasedHead()); }
  }

  /** Start one thread per init; `halt` must be the sab the inits carry. */
  start(inits: WorkerInit[], on: WorkerEvents): void {
    const { hub, cpu } = this;
    configureWorkerHeaps();
    for (const init of inits) {
      const i = init.index;
      const t = new Worker(new URL('../worker/worker.js', import.meta.url), { workerData: init });
      this.threads.push(t);
      this.halt.track(t);
      let resolveReady!: () => void, resolveDone!: () => void;
      this.ready.push(new Promise((r) => { resolveReady = r; }));
      this.done.push(new Promise((r) => { resolveDone = r; }));
      let finished = false;
      t.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'ready': cpu.add(`worker-${i}`, m.tid); resolveReady(); break;
          case 'stats': hub.update(m.stats, m.latency, m.lag); break;
          case 'out': on.out(i, m.chunk); break;
          case 'synced': this.syncWaiters.get(m.id)?.resolve(m.head); this.syncWaiters.delete(m.id); break;
          case 'barrier': on.barrier(i, m.ack); break;
          case 'overflow': on.overflow(m.chunk); break;
          case 'log': log.warn(m.msg, m.fields); break;
          case 'restoring': on.restoring(i, m.events, m.filesRead, m.files); break;
          case 'restored': on.restored(m.events, m.ms); break;
          case 'done': cpu.sample(); finished = true; this.finished[i] = true; hub.update(m.stats, m.latency, m.lag); this.endSyncs(i); on.done(i, m.stats.watermarkMs); resolveDone(); break;
          case 'error':
            on.fail(JoineryError.fromWire(m.error as never));
            this.endSyncs(i); resolveReady(); resolveDone();
            break;
        }
      });
      t.on('error', (e) => { on.fail(new JoineryError('E_WORKER', `worker ${i} crashed: ${e.stack ?? e.message}`)); this.endSyncs(i); resolveReady(); resolveDone(); });
      t.on('exit', (code) => {
        if (!finished && !isExiting()) on.fail(new JoineryError('E_WORKER', `worker ${i} exited (code ${code}) before finishing its input`));
        this.endSyncs(i); resolveReady(); resolveDone();
      });
    }
  }

  /** Every worker is up (restored) or has failed. */
  async allReady(): Promise<void> { await Promise.all(this.ready); }

  /** Every worker has ended. */
  async allDone(): Promise<void> { await Promise.all(this.done); }

  /**
   * How far each worker has released its ring (its reply follows every output chunk it posted for
   * that input). Ended workers, and all of them once the run failed, answer with the head as it is.
   */
  releasedHeads(failed: boolean): Promise<number[]> {
    return Promise.all(this.threads.map((t, w) => this.finished[w] || failed
      ? Promise.resolve(this.rings[w].releasedHead())
      : new Promise<number>((resolve) => { const id = ++this.syncSeq; this.syncWaiters.set(id, { worker: w, resolve }); t.postMessage({ type: 'sync', id }); })));
  }

  /** Release the output gate up to barrier `id` in every running worker. */
  release(id: number): void {
    for (let w = 0; w < this.threads.length; w++) if (!this.finished[w]) this.threads[w].postMessage({ type: 'release', id });
  }

  /**
   * After a failure the end-of-input frame may never come, so the workers would wait for it
   * forever: ask them to stop (they close their LMDB environments; terminating a thread inside
   * LMDB can hang). Their state is rebuilt on the next start; nothing accepted is acknowledged to
   * the source.
   */
  async abort(): Promise<void> {
    for (let w = 0; w < this.threads.length; w++) if (!this.finished[w]) this.threads[w].postMessage({ type: 'abort' });
    const stopped = await Promise.race([Promise.all(this.done).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref())]);
    if (!stopped) await this.stopAll();
  }

  /**
   * Stop worker threads after a failure: halt them first (they abort their open LMDB transaction;
   * terminating a thread inside one deadlocks its exit), terminate what is left; one stuck in native
   * code must not hang the node, so give up after a while.
   */
  async stopAll(): Promise<void> {
    if (await this.halt.halt(5000)) return;
    await Promise.all(this.threads.map((t) => Promise.race([t.terminate(), new Promise((r) => setTimeout(r, 5000).unref())])));
  }
}
