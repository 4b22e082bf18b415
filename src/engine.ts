import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CheckpointCoordinator, type CheckpointStats } from './checkpoint/coordinator.js';
import type { CheckpointContext } from './checkpoint/index.js';
import type { Manifest } from './checkpoint/manifest.js';
import { FlatExtractor, flatToJson } from './codec/flat.js';
import { JsonExtractor, type Extractor } from './codec/json.js';
import type { Config } from './config/schema.js';
import type { EngineControl } from './control/engine-control.js';
import { EXIT_CODES, JoineryError } from './core/errors.js';
import { exitSoon, haltGroup, isExiting, type HaltGroup } from './core/exit.js';
import { log } from './core/log.js';
import { formatDurationMs } from './core/units.js';
import { nowMs } from './core/units.js';
import { CpuMeter, formatCpu, type CpuSummary } from './metrics/cpu.js';
import { fmtCount, fmtRate, MetricsHub } from './metrics/report.js';
import { createRingBuffer, forEachFrame } from './ring/ring.js';
import { FrameKind } from './ring/frame.js';
import { keyGroupRanges } from './router/partitioner.js';
import { Router, type Rejected } from './router/router.js';
import { defaultMaxDriftMs } from './router/align.js';
import { endpointsOf, filePathOfSpec } from './config/endpoints.js';
import { decodeKafkaChunk } from './sink/ndjson.js';
import { checkWritable, openLineSink, type LineSink, type RecordSink } from './sink/sink.js';
import type { Source } from './source/source.js';
import type { ReplayPlan } from './rebuild/replay.js';
import type { Side } from './state/store.js';
import type { WorkerInit, WorkerMessage } from './worker/protocol.js';

export interface Summary {
  elapsedMs: number;
  eventsIn: [number, number];
  eventsPerSec: number;
  pairs: number;
  pairsPerSec: number;
  outputRecords: number;
  duplicates: number;
  late: number;
  deadLettered: number;
  /** Events diverted by --max-key-entries (left, right). */
  keyOverflow: [number, number];
  unmatchedLeft: number;
  unmatchedRight: number;
  stateLeft: number;
  /** Most events buffered in the join state at once (sum of each worker's peak). */
  peakStateEntries: number;
  /** Of deadLettered: event times too far ahead (--max-future) or not times at all. */
  badTime: number;
  /** Times an input partition was paused for running ahead in event time (--max-drift). */
  alignPauses: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  workers: number;
  state: string;
  backpressureWaits: number;
  mainHeapUsedBytes: number;
  /** CPU time from the start of input to the end, per input event; per thread on Linux. */
  cpu?: CpuSummary;
  /** Present when checkpointing: what this run's checkpoints did. */
  checkpoints?: { completed: number; failed: number; lastId: number; p50DurationMs: number; maxDurationMs: number; lastNewBytes: number; lastStateBytes: number; compactions: number; restoredFrom: number | null; restoreMs: number | null };
  /** Present when rebuilding (--rebuild-from): records replayed and joined, skipped (before TIME), late/malformed ones not written again, output suppressed. */
  rebuild?: { replayed: number; skipped: number; rejected: number; suppressedPairs: number; suppressedUnmatched: number; reachedResume: boolean };
  /** True when a stop signal ended the run before its inputs did. */
  stopped?: boolean;
  /** Kafka group member: how many times its assignment was re-planned after a rebalance. */
  rebalances?: number;
}

export interface EngineOptions {
  sources: Source[];
  formats: ['json' | 'flatbuffers', 'json' | 'flatbuffers'];
  /** Progress on stderr: the live line on a terminal, a log record per interval otherwise. */
  progress: boolean;
  /** Print the human summary on stderr when it is a terminal (otherwise the caller logs the `finished` record). */
  printSummary: boolean;
  statsIntervalMs?: number;
  /** Called every stats interval (for benchmarks sampling heap). */
  onTick?: (hub: MetricsHub) => void;
  /** Sinks the caller opened (Kafka sinks need async setup); otherwise the engine opens file/stdout/null ones. */
  outRecords?: RecordSink;
  lateSink?: LineSink;
  deadSink?: LineSink;
  /** Commit source positions whose records have been applied (Kafka offsets). */
  commit?: (positions: Array<{ topic: string; partition: number; offset: string }>) => Promise<unknown>;
  commitIntervalMs?: number;
  /** Routing stalled on a full ring (true) or resumed (false): pause/resume the source's partitions. */
  onStall?: (stalled: boolean) => void;
  /** Checkpointing (opened with openCheckpoints before the sources, which it may have positioned). */
  checkpoints?: CheckpointContext | null;
  /** Commit a checkpoint's source positions (Kafka: with the checkpoint id as offset metadata). */
  commitCheckpoint?: (m: Manifest) => Promise<void>;
  /** outRecords is transactional: each checkpoint's commitCheckpoint commits exactly the output from before its barrier. */
  transactionalOutput?: boolean;
  /** SIGTERM/SIGINT: stop the sources, drain, final checkpoint, exit normally; a second signal exits at once. */
  handleSignals?: boolean;
  /** Rebuild the join buffer by replaying up to a resume position, output suppressed until there (src/rebuild/replay.ts). */
  rebuild?: ReplayPlan;
  /** Backfill: the sources end at a cut; unmatched rows past the cut are left to the job that goes on from it (src/backfill). */
  bounded?: boolean;
  /** Observation and steering from outside (HTTP endpoint): handed the engine's parts once the workers are ready. */
  control?: EngineControl;
  /**
   * Stop from outside (a consumer-group re-join): the engine sets `stop`; calling it ends the run
   * like a stop signal (drain, final checkpoint). A stop asked for before the router exists
   * (`requested`) is honoured as soon as it does.
   */
  stopHandle?: { stop?: () => void; requested?: boolean };
  /** The caller runs the engine again with the same sources and sinks: leave them open (they are flushed). */
  keepOpen?: boolean;
  /** Partitions of the sources this run does not own (another group member does): they never hold the watermark back. */
  notOwned?: Array<{ side: Side; partition: number }>;
  /** Checkpoint ids retention must keep although older than --checkpoint-retain (another member may still restore from them). */
  pinnedCheckpoints?: () => Promise<ReadonlySet<number>>;
}

const FIRST_DEAD_LETTERS_SHOWN = 5;

function sideFields(cfg: Config, side: Side) {
  return {
    key: (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key,
    time: (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time,
    id: (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id,
  };
}

function makeExtractors(cfg: Config, formats: EngineOptions['formats']) {
  const make = (side: Side) => {
    const f = sideFields(cfg, side);
    const flat = () => {
      try {
        return new FlatExtractor(side === 0 ? 'Impression' : 'Play', f.key, f.time, f.id) as Extractor;
      } catch (e) {
        throw new JoineryError('E_USAGE', `--${side === 0 ? 'left' : 'right'} (FlatBuffers): ${(e as Error).message}`);
      }
    };
    if (formats[side] === 'flatbuffers') flat(); // validate field names before any work
    return { json: () => new JsonExtractor(f.key, f.time, f.id) as Extractor, flatbuffers: flat };
  };
  return { 0: make(0), 1: make(1) } as Record<Side, Record<'json' | 'flatbuffers', () => Extractor>>;
}

/** Prepare the state directory: create it, prove it is writable, and clear old worker environments. */
function prepareStateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new JoineryError('E_OUTPUT', `--state-dir ${dir} is not writable: ${(e as Error).message}`);
  }
  for (const name of fs.readdirSync(dir)) {
    if (/^worker-\d+$/.test(name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

const SIDE_NAME = ['left', 'right'] as const;

/** Bucket size of the lmdb store: a twentieth of the join window, within 1 s..30 s (measured: probes get cheaper up to ~30 s buckets; recent events wait in memory for about a bucket + max-delay). */
export function bucketMsFor(cfg: Config): number {
  return cfg.bucketMs ?? Math.min(30_000, Math.max(1_000, Math.round((cfg.upperMs - cfg.lowerMs) / 20)));
}

export async function runEngine(cfg: Config, opts: EngineOptions): Promise<Summary> {
  const extractors = makeExtractors(cfg, opts.formats);
  checkWritable(cfg.out, 'out');
  checkWritable(cfg.lateOut, 'late-out');
  checkWritable(cfg.deadLetter, 'dead-letter');
  if (cfg.state !== 'memory') prepareStateDir(cfg.stateDir);
  const ck = opts.checkpoints ?? null;
  const restored = ck?.restored?.manifest ?? null;
  const outKind = endpointsOf(cfg).out?.kind;
  if (outKind === 'file') {
    if (restored) cutOutput(cfg.out, restored);
    else if (!opts.rebuild) openLineSink(cfg.out, true).close(); // truncate once; workers append (a rebuild continues the file)
  }
  // Late and dead-letter files are at-least-once: a resumed run appends to them.
  const lateSink: LineSink | null = opts.lateSink ?? (cfg.lateOut ? openLineSink(cfg.lateOut, !restored && !opts.rebuild) : null);
  const deadSink: LineSink | null = opts.deadSink ?? (cfg.deadLetter ? openLineSink(cfg.deadLetter, !restored && !opts.rebuild) : null);
  if (ck?.restored) {
    for (const s of ck.restored.skipped) log.say('warn', `joinery: skipped ${s}`, { code: 'E_CHECKPOINT' });
    log.say('info', `joinery: resuming from checkpoint ${restored!.id} of ${new Date(restored!.createdAtMs).toISOString()} (${fmtBytes(restored!.stats.stateBytes)} of state in ${restored!.files.length} file(s))`, { checkpoint: restored!.id });
  }
  const outRecords = opts.outRecords ?? null;
  if (outKind === 'kafka' && !outRecords) throw new JoineryError('E_INTERNAL', '--out kafka: needs a record sink');

  let deadShown = 0;
  const onRejected = (r: Rejected) => {
    const side = SIDE_NAME[r.side];
    if (r.kind === 'dead') {
      if (deadSink) {
        // Text only when it is valid UTF-8: decoding other bytes would replace them with U+FFFD for good.
        const text = r.format === 'json' && isUtf8(r.record);
        const raw = Buffer.from(r.record).toString(text ? 'utf8' : 'base64');
        deadSink.write(Buffer.from(JSON.stringify({ side, origin: r.origin, position: r.position, error: r.reason, record: raw, encoding: text ? 'utf8' : 'base64' }) + '\n'));
      } else if (deadShown < FIRST_DEAD_LETTERS_SHOWN) {
        deadShown++;
        const where = r.format === 'json' ? `line ${r.position}` : `record ${r.position}`;
        log.say('warn', `joinery: malformed ${side} record at ${r.origin}:${r.position} (${where}): ${r.reason}${deadShown === FIRST_DEAD_LETTERS_SHOWN ? ' (further ones counted only; use --dead-letter to keep them)' : ''}`, { code: 'E_INPUT' });
      }
    } else if (lateSink) {
      let rec: string;
      try {
        rec = r.format === 'json' ? Buffer.from(r.record).toString('utf8') : flatToJson(r.side === 0 ? 'Impression' : 'Play', r.record, 0, r.record.length);
      } catch { rec = JSON.stringify(Buffer.from(r.record).toString('base64')); }
      lateSink.write(Buffer.from(`{"side":"${side}","origin":${JSON.stringify(r.origin)},"position":${r.position},"ts":${r.ts},"watermark":${r.watermarkMs},"record":${rec}}\n`));
    }
  };

  const ranges = keyGroupRanges(cfg.workers);
  const sabs = ranges.map(() => createRingBuffer(cfg.ringSizeBytes));
  const hub = new MetricsHub();
  const statsIntervalMs = opts.statsIntervalMs ?? 1000;
  const router = new Router(sabs, opts.sources, extractors, cfg.maxDelayMs, cfg.idleTimeoutMs, onRejected);
  if (opts.onStall) router.onStall = opts.onStall;
  router.bounded = !!opts.bounded;
  router.configureTime(cfg.maxDriftMs ?? defaultMaxDriftMs(cfg.maxDelayMs), cfg.maxFutureMs ?? 0);
  router.onFirstFuture = (reason) => log.warn(`an input record's event time is too far ahead and goes to ${cfg.deadLetter ? `--dead-letter ${cfg.deadLetter}` : 'the dead letters (counted; set --dead-letter to keep them)'}: ${reason}; later ones are counted only`);
  router.onJump = (message) => log.warn(message);
  if (restored) router.restore(restored.router.watermarkMs, restored.router.partitions);
  if (ck?.restored?.inflight?.length) {
    router.setInflight(ck.restored.inflight.map((f) => {
      try {
        return { bytes: new Uint8Array(fs.readFileSync(f.path)), partitions: f.partitions && new Set(f.partitions) };
      } catch (e) {
        throw new JoineryError('E_CHECKPOINT', `checkpoint ${restored!.id}: in-flight file ${f.path} cannot be read: ${(e as Error).message}`);
      }
    }), new Set(ck.restored.inflight.map((f) => f.checkpoint ?? '')).size === 1);
    const n = router.inflightPending();
    log.say('info', `joinery: ${fmtCount(n)} event(s) read but not yet joined when checkpoint ${restored!.id} was taken (a stop at a cut) are joined first`, { inflightEvents: n });
  }
  for (const p of opts.notOwned ?? []) router.tracker.end(router.tracker.slot(p));
  if (opts.rebuild) {
    router.startReplay(opts.rebuild);
    log.say('info', `joinery: rebuilding the join buffer: replaying from ${new Date(opts.rebuild.fromMs).toISOString()} up to ${opts.rebuild.describe}; output resumes there`);
  }
  const outer: [boolean, boolean] = [cfg.join === 'left' || cfg.join === 'full', cfg.join === 'right' || cfg.join === 'full'];
  let coordinator: CheckpointCoordinator | null = null;
  let restoredEvents = 0, restoreMs = 0;
  const framing: WorkerInit['framing'] = outKind !== 'kafka' ? 'ndjson'
    : (cfg.outFormat ?? opts.formats[0]) === 'flatbuffers' ? 'kafka-flatbuffers' : 'kafka-json';
  if (framing === 'kafka-flatbuffers' && (opts.formats[0] !== 'flatbuffers' || opts.formats[1] !== 'flatbuffers')) {
    throw new JoineryError('E_USAGE', '--out-format flatbuffers nests the input records, so it needs FlatBuffers inputs (use --out-format json)');
  }

  let failure: Error | null = null;
  const fail = (e: Error) => {
    if (!failure) failure = e;
    router.abort(e);
    coordinator?.abort(e);
  };

  const threads: Worker[] = [];
  const finishedWorkers: boolean[] = [];
  // Sync requests in flight, with the worker asked. A worker that ends (done, error, exit) answers
  // no more requests: its open ones are answered with its ring's released head, or a commit
  // waiting for them (and the end of the run, which waits for that commit) would hang.
  const syncWaiters = new Map<number, { worker: number; resolve: (head: number) => void }>();
  const endSyncs = (w: number) => {
    for (const [id, s] of syncWaiters) if (s.worker === w) { syncWaiters.delete(id); s.resolve(router.rings[w].releasedHead()); }
  };
  let syncSeq = 0;
  let outputFailure: Error | null = null;
  const outputFailed = (e: Error) => { if (!outputFailure) { outputFailure = e; fail(e); } };
  // A full output sink (a slow broker) holds routing until it drains, or its buffer would grow
  // without bound. Chunks already on their way are still written (the workers cannot be made to
  // wait), so it overshoots its mark by at most what the rings held. The hold is the gate's
  // output hold, not a pause (POST /resume does not lift it): checkpoint barriers still pass it,
  // so checkpoints and their transaction commits, which the sink may need to drain, go on.
  let awaitingOutput = false;
  const writeRecords = (chunk: Uint8Array) => {
    try {
      let full = false;
      decodeKafkaChunk(chunk, (k, v) => { if (!outRecords!.write(k, v)) full = true; });
      if (full && !awaitingOutput) {
        awaitingOutput = true;
        router.gate.holdForOutput(outRecords!.ready().then(() => { awaitingOutput = false; }, (e) => { awaitingOutput = false; outputFailed(e as Error); }));
      }
    } catch (e) { outputFailed(e as Error); }
  };
  const tty = opts.progress;
  // Transactional output: a chunk a worker sent after its barrier b (tag b) belongs to the
  // transaction after checkpoint b, so it waits until checkpoint b has committed (or failed,
  // leaving the transaction open for the next one). FIFO per worker keeps tags exact.
  const ackedEpoch: number[] = new Array(cfg.workers).fill(restored?.id ?? 0);
  let openEpoch = restored?.id ?? 0;
  let heldOut: Array<{ tag: number; chunk: Uint8Array }> = [];
  const openOutput = (id: number) => {
    if (id > openEpoch) openEpoch = id;
    const keep: typeof heldOut = [];
    for (const h of heldOut) { if (h.tag <= openEpoch) writeRecords(h.chunk); else keep.push(h); }
    heldOut = keep;
  };
  const ready: Promise<void>[] = [];
  const done: Promise<void>[] = [];
  const cpu = new CpuMeter();
  const halt = haltGroup();
  for (let i = 0; i < cfg.workers; i++) {
    const init: WorkerInit = {
      index: i, sab: sabs[i], halt: halt.sab, keyGroupRange: ranges[i], join: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs,
      formats: opts.formats, state: cfg.state, bucketMs: bucketMsFor(cfg), stateDir: cfg.stateDir, out: cfg.out, framing, statsIntervalMs,
      rebuild: !!opts.rebuild, backfill: !!opts.bounded, maxKeyEntries: cfg.maxKeyEntries ?? 0, maxDelayMs: cfg.maxDelayMs, overflowOut: !!lateSink,
    };
    if (ck) {
      init.checkpoint = { dataDir: ck.storage.dataDir, runId: ck.runId, outer, gateOutput: outKind === 'file', firstEpoch: restored?.id ?? 0 };
      if (restored) {
        init.restore = {
          files: restored.files.map((f) => ({ path: path.join(ck.storage.dataDir, f.name), keyGroups: f.keyGroups })),
          dropBeforeMs: Math.min(...restored.workers.map((w) => w.watermarkMs)),
          watermarkMs: restored.router.watermarkMs,
        };
      }
    }
    const t = new Worker(new URL('./worker/worker.js', import.meta.url), { workerData: init });
    threads.push(t);
    halt.track(t);
    let resolveReady!: () => void, resolveDone!: () => void;
    ready.push(new Promise((r) => { resolveReady = r; }));
    done.push(new Promise((r) => { resolveDone = r; }));
    let finished = false;
    t.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'ready': cpu.add(`worker-${i}`, m.tid); resolveReady(); break;
        case 'stats': hub.update(m.stats, m.latency, m.lag); break;
        case 'out':
          if (!outRecords) process.stdout.write(m.chunk);
          else if (!opts.transactionalOutput || ackedEpoch[i] <= openEpoch) writeRecords(m.chunk);
          else heldOut.push({ tag: ackedEpoch[i], chunk: m.chunk });
          break;
        case 'synced': syncWaiters.get(m.id)?.resolve(m.head); syncWaiters.delete(m.id); break;
        case 'barrier': ackedEpoch[i] = m.ack.id; coordinator?.onAck(i, m.ack); break;
        case 'overflow': try { lateSink?.write(m.chunk); } catch (e) { fail(e as Error); } break;
        case 'log': log.warn(m.msg, m.fields); break;
        case 'restored': restoredEvents += m.events; restoreMs = Math.max(restoreMs, m.ms); break;
        case 'done': cpu.sample(); finished = true; finishedWorkers[i] = true; hub.update(m.stats, m.latency, m.lag); endSyncs(i); coordinator?.onWorkerDone(i, m.stats.watermarkMs); resolveDone(); break;
        case 'error':
          fail(JoineryError.fromWire(m.error as never));
          endSyncs(i); resolveReady(); resolveDone();
          break;
      }
    });
    t.on('error', (e) => { fail(new JoineryError('E_WORKER', `worker ${i} crashed: ${e.stack ?? e.message}`)); endSyncs(i); resolveReady(); resolveDone(); });
    t.on('exit', (code) => {
      if (!finished && !isExiting()) fail(new JoineryError('E_WORKER', `worker ${i} exited (code ${code}) before finishing its input`));
      endSyncs(i); resolveReady(); resolveDone();
    });
  }
  // Graceful stop: the first signal stops the run at a cut (docs/architecture.md §3, the stop
  // checkpoint): reading stops, each worker stops at its next record, and with --checkpoint-dir the
  // final checkpoint keeps what the rings still held (a resume joins it first); without one, that
  // is dropped. Behind a hot key, draining the rings instead could take minutes. A rebuild whose
  // replay has not reached its resume position cannot be checkpointed: it drains as before.
  // A second signal exits at once (state is safe at the last checkpoint). Handled from the
  // workers' start on, so a signal during a long restore is graceful too (the cut is taken once
  // the workers are up). The stop is bounded (--stop-timeout): past the bound the process exits
  // non-zero; the next start resumes from the last completed checkpoint and reads again what was
  // not processed (source positions and the output length are only committed in checkpoints).
  let stopped = false;
  let stopTimer: NodeJS.Timeout | null = null;
  let cutPending = false;
  let stopCheckpoint: Promise<boolean> | null = null;
  const stopRun = (): 'cut' | 'drain' => {
    if (router.isCut || cutPending || stopCheckpoint) return 'cut';
    if (router.replay?.active) { router.stop(); return 'drain'; }
    if (!ck) { router.cut(-1).catch(() => {}); return 'cut'; }
    if (!coordinator) { cutPending = true; return 'cut'; } // the workers are not up yet
    stopCheckpoint = coordinator.stopCheckpoint();
    return 'cut';
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopped) {
      log.say('warn', `joinery: second ${sig}: exiting now${ck ? ' (resume from the last checkpoint)' : ''}`, { signal: sig, exitCode: 130 });
      exitSoon(130);
      return;
    }
    stopped = true;
    const how = router.replay?.active && !router.isCut
      ? `draining (the rebuild's replay has not reached its resume position)${ck ? ', final checkpoint' : ''}`
      : ck ? 'at the next record; what was read but not yet joined goes into the final checkpoint and is joined first on the next start'
      : 'at the next record; what was read but not yet joined is dropped (no --checkpoint-dir to keep it in)';
    log.say('info', `joinery: ${sig}: stopping ${how} (at most ${formatDurationMs(cfg.stopTimeoutMs)}); send it again to exit at once`, { signal: sig });
    stopRun();
    stopTimer = setTimeout(() => {
      const last = coordinator?.stats.lastId || restored?.id || 0;
      const resume = !ck ? 'without --checkpoint-dir the next start begins from scratch'
        : last ? `the next start resumes from checkpoint ${last} and reads again what was not processed after it`
        : 'no checkpoint was completed, so the next start begins from the start of the input';
      const fill = router.ringFill().map((f) => `${Math.round(f * 100)}%`).join('/');
      log.error(`joinery: the graceful stop did not finish within --stop-timeout ${formatDurationMs(cfg.stopTimeoutMs)} (rings ${fill} full); exiting: ${resume}`, { code: 'E_STOP_TIMEOUT', exitCode: EXIT_CODES.E_STOP_TIMEOUT });
      exitSoon(EXIT_CODES.E_STOP_TIMEOUT);
    }, cfg.stopTimeoutMs);
  };
  if (opts.handleSignals) { process.on('SIGTERM', onSignal); process.on('SIGINT', onSignal); }
  if (opts.stopHandle) {
    opts.stopHandle.stop = () => { opts.stopHandle!.requested = true; stopRun(); };
    if (opts.stopHandle.requested) stopRun();
  }
  await Promise.all(ready);
  if (failure) {
    if (opts.handleSignals) { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); }
    if (stopTimer) clearTimeout(stopTimer);
    await stopAll(threads, halt); await ck?.pool.close(); halt.close(); throw failure;
  }
  if (restored) log.say('info', `joinery: restored ${fmtCount(restoredEvents)} buffered events in ${(restoreMs / 1000).toFixed(1)}s`, { events: restoredEvents, restoreMs: Math.round(restoreMs) });

  if (ck) {
    coordinator = new CheckpointCoordinator({
      storage: ck.storage, pool: ck.pool, router, ranges, job: ck.job, outer, runId: ck.runId,
      outputFile: filePathOfSpec(cfg.out) ?? undefined, outputSpec: cfg.out,
      chain: restored?.files ?? [], lastId: restored?.id ?? 0, retain: cfg.checkpointRetain, pinned: opts.pinnedCheckpoints,
      release: (id) => { for (let w = 0; w < threads.length; w++) if (!finishedWorkers[w]) threads[w].postMessage({ type: 'release', id }); },
      commit: opts.commitCheckpoint && opts.transactionalOutput
        // A transaction that fails to commit took its output with it: stop (the restart resumes
        // from the checkpoint the group's offsets name) rather than go on with a gap.
        ? async (m) => { try { await opts.commitCheckpoint!(m); } catch (e) { fail(e as Error); throw e; } }
        : opts.commitCheckpoint,
      onResult: (r) => { if (opts.transactionalOutput) openOutput(r.id); opts.control?.recordCheckpoint(r); },
      // Output after an overtaken barrier belongs to the stop checkpoint's transaction: write it now.
      onSuperseded: (id) => { if (opts.transactionalOutput) openOutput(id); },
      log: (msg, level, fields) => log.say(level, `joinery: ${msg}`, fields),
    });
  }
  if (cutPending && coordinator) stopCheckpoint = coordinator.stopCheckpoint();
  const checkpointTimer = coordinator ? setInterval(() => {
    if (!coordinator!.busy && !failure) void coordinator!.checkpoint();
  }, cfg.checkpointIntervalMs) : null;
  let finalCheckpoint: Promise<boolean> | null = null;
  const beforeEnd = coordinator ? async () => {
    coordinator!.finishing = true;
    if (stopCheckpoint) return; // the stop checkpoint is the final one
    await coordinator!.idle();
    if (!failure && !stopCheckpoint) finalCheckpoint = coordinator!.checkpoint();
  } : undefined;

  opts.control?.attach({ cfg, router, hub, ranges, threads, sources: opts.sources });
  if (opts.control && coordinator) {
    const c = coordinator;
    opts.control.checkpointNow = async () => {
      const ok = await c.checkpoint();
      if (!ok) throw new JoineryError('E_CHECKPOINT', `checkpoint failed: ${c.stats.lastError ?? 'unknown'}`);
      return { id: c.stats.lastId };
    };
  }

  if (ck) cpu.add('side-pool', await ck.pool.tid().catch(() => null));
  cpu.start();
  const start = nowMs();
  let lastProcessed = 0, lastPairs = 0, lastT = start;
  const ticker = setInterval(() => {
    cpu.sample();
    opts.onTick?.(hub);
    if (!tty) return;
    const t = nowMs();
    const processed = hub.eventsProcessed(), pairs = hub.sum('pairs');
    const dt = (t - lastT) / 1000;
    const wm = router.currentWatermark(), maxTs = router.tracker.maxEventTime();
    const wmLag = Number.isFinite(wm) && Number.isFinite(maxTs) ? `${((maxTs - wm) / 1000).toFixed(1)}s` : '-';
    const p99 = hub.intervalLatency.percentileMs(99);
    hub.intervalLatency.reset();
    const line = `[${((t - start) / 1000).toFixed(0)}s] in ${fmtRate((processed - lastProcessed) / dt)} ev/s  out ${fmtRate((pairs - lastPairs) / dt)} pairs/s  state ${fmtCount(hub.sum('stateEntries'))}  wm lag ${wmLag}  ring ${router.ringFill().map((f) => `${Math.round(f * 100)}%`).join('/')}  p99 ${p99.toFixed(1)}ms`;
    // The live line is for a terminal; --progress on without one gets a record per interval.
    if (log.isJson) log.info(line, { progress: true }); else process.stderr.write(`\r\x1b[K${line}`);
    lastProcessed = processed; lastPairs = pairs; lastT = t;
  }, statsIntervalMs);

  /**
   * Commit what every worker has applied: ask each worker how far it has released its ring (its
   * reply follows every output chunk it posted for that input), hand the output to the broker,
   * then commit the source positions all of whose records lie below those heads.
   */
  let committing: Promise<void> | null = null;
  const commitApplied = async (): Promise<void> => {
    if (!opts.commit) return;
    const heads = await Promise.all(threads.map((t, w) => finishedWorkers[w] || failure
      ? Promise.resolve(router.rings[w].releasedHead())
      : new Promise<number>((resolve) => { const id = ++syncSeq; syncWaiters.set(id, { worker: w, resolve }); t.postMessage({ type: 'sync', id }); })));
    if (failure) return;
    await outRecords?.flush();
    await lateSink?.flush();
    await deadSink?.flush();
    const positions = router.takeApplied(heads);
    if (positions.length > 0) await opts.commit(positions);
  };
  const commitTimer = opts.commit && !coordinator ? setInterval(() => {
    if (committing || failure) return;
    committing = commitApplied().catch((e) => fail(e as Error)).finally(() => { committing = null; });
  }, opts.commitIntervalMs ?? 1000) : null;

  try {
    await router.run(beforeEnd);
  } catch (e) {
    fail(e as Error);
  }
  if (failure) {
    // The end-of-input frame may never come, so the workers would wait for it forever: ask them
    // to stop (they close their LMDB environments; terminating a thread inside LMDB can hang).
    // Their state is rebuilt on the next start; nothing accepted is acknowledged to the source.
    for (let w = 0; w < threads.length; w++) if (!finishedWorkers[w]) threads[w].postMessage({ type: 'abort' });
    const stopped = await Promise.race([Promise.all(done).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref())]);
    if (!stopped) await stopAll(threads, halt);
  } else {
    await Promise.all(done);
  }
  if (commitTimer) clearInterval(commitTimer);
  if (checkpointTimer) clearInterval(checkpointTimer);
  if (committing) await committing;
  if (!failure && !coordinator) {
    try { await commitApplied(); } catch (e) { fail(e as Error); }
  }
  const last = stopCheckpoint ?? finalCheckpoint;
  if (last && !(await last) && !failure) {
    log.say('error', `joinery: the ${stopCheckpoint ? 'stop' : 'final'} checkpoint failed; a restart resumes from checkpoint ${coordinator!.stats.lastId || '(none)'} and redoes the rest`, { code: 'E_CHECKPOINT' });
  }
  if (router.isCut && !ck && !failure) {
    let dropped = 0;
    for (const b of router.takeInflight()) forEachFrame(b, (off) => { if (b[off] === FrameKind.Event) dropped++; });
    if (dropped > 0) log.say('warn', `joinery: stopped with ${fmtCount(dropped)} routed event(s) not yet joined: dropped (without --checkpoint-dir there is nothing to resume them from)`, { droppedEvents: dropped });
  }
  if (coordinator) await coordinator.close();
  cpu.sample(); // the pool thread ends with close()
  await ck?.pool.close();
  if (opts.handleSignals) { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); }
  if (stopTimer) clearTimeout(stopTimer);
  clearInterval(ticker);
  if (tty && !log.isJson) process.stderr.write('\r\x1b[K');
  if (!opts.keepOpen || failure) await Promise.all(opts.sources.map((s) => s.close()));
  for (const sink of [lateSink, deadSink, outRecords]) {
    const callers = sink === outRecords || sink === opts.lateSink || sink === opts.deadSink;
    try { if (opts.keepOpen && callers && !failure) await sink?.flush(); else await sink?.close(); } catch (e) { fail(e as Error); }
  }
  if (failure) {
    await stopAll(threads, halt);
    halt.close();
    throw failure;
  }
  halt.close();

  const elapsedMs = nowMs() - start;
  const eventsIn: [number, number] = [router.counters.read[0], router.counters.read[1]];
  const pairs = hub.sum('pairs');
  const summary: Summary = {
    elapsedMs,
    eventsIn,
    eventsPerSec: ((eventsIn[0] + eventsIn[1]) / elapsedMs) * 1000,
    pairs,
    pairsPerSec: (pairs / elapsedMs) * 1000,
    outputRecords: hub.sum('outputRecords'),
    duplicates: hub.sum('duplicates'),
    late: router.counters.late,
    deadLettered: router.counters.dead,
    keyOverflow: hub.keyOverflow(),
    unmatchedLeft: hub.sum('unmatchedLeft'),
    unmatchedRight: hub.sum('unmatchedRight'),
    stateLeft: hub.sum('stateEntries'),
    peakStateEntries: hub.sum('peakStateEntries'),
    badTime: router.counters.badTime,
    alignPauses: router.aligner.pauses,
    p50Ms: hub.latency.percentileMs(50),
    p99Ms: hub.latency.percentileMs(99),
    p999Ms: hub.latency.percentileMs(99.9),
    maxMs: hub.latency.maxMs(),
    workers: cfg.workers,
    state: cfg.state,
    backpressureWaits: router.counters.backpressureWaits,
    mainHeapUsedBytes: process.memoryUsage().heapUsed,
    cpu: cpu.summary(eventsIn[0] + eventsIn[1]),
  };
  if (coordinator) summary.checkpoints = checkpointSummary(coordinator.stats, restored?.id ?? null, restored ? restoreMs : null);
  if (router.replay) {
    const c = router.replay.counters;
    summary.rebuild = { ...c, suppressedPairs: hub.sum('suppressedPairs'), suppressedUnmatched: hub.sum('suppressedUnmatched'), reachedResume: !router.replay.active };
  }
  if (stopped) summary.stopped = true;
  if (opts.printSummary && !log.isJson) process.stderr.write(formatSummary(summary)); // in JSON: the caller's `finished` record
  return summary;
}

/**
 * Stop worker threads after a failure: halt them first (they abort their open LMDB transaction;
 * terminating a thread inside one deadlocks its exit), terminate what is left; one stuck in native
 * code must not hang the node, so give up after a while.
 */
async function stopAll(threads: Worker[], halt: HaltGroup): Promise<void> {
  if (await halt.halt(5000)) return;
  await terminateAll(threads);
}

async function terminateAll(threads: Worker[]): Promise<void> {
  await Promise.all(threads.map((t) => Promise.race([t.terminate(), new Promise((r) => setTimeout(r, 5000).unref())])));
}

function checkpointSummary(st: CheckpointStats, restoredFrom: number | null, restoreMs: number | null): NonNullable<Summary['checkpoints']> {
  const d = [...st.durationsMs].sort((a, b) => a - b);
  return {
    completed: st.completed, failed: st.failed, lastId: st.lastId, p50DurationMs: d.length ? d[Math.floor(d.length / 2)] : 0,
    maxDurationMs: d.length ? d[d.length - 1] : 0, lastNewBytes: st.lastNewBytes, lastStateBytes: st.lastStateBytes,
    compactions: st.compactions, restoredFrom, restoreMs,
  };
}

/** Cut the output file back to what the restored checkpoint committed (exactly-once on restart). */
function cutOutput(spec: string, m: Manifest): void {
  const file = filePathOfSpec(spec)!;
  const was = m.output.spec, wasFile = filePathOfSpec(was);
  // The length is only meaningful for the file it was measured on: another output would be cut
  // (or emptied) to it, destroying what it held and missing everything before the checkpoint.
  if (wasFile === null || path.resolve(wasFile) !== path.resolve(file)) {
    throw new JoineryError('E_CHECKPOINT', `checkpoint ${m.id} was taken with --out ${was}; this run writes ${spec}, which the checkpoint never measured (its output before the checkpoint is not there): use --out ${was}, or start over with a new --checkpoint-dir`);
  }
  const want = m.output.lengthBytes ?? 0;
  let size: number;
  try { size = fs.statSync(file).size; } catch { size = -1; }
  if (size < want) {
    throw new JoineryError('E_CHECKPOINT', `output ${file} has ${size < 0 ? 'gone' : `${size} bytes`} but checkpoint ${m.id} committed ${want} bytes of it: the output was changed since; restore it or start over with a new --checkpoint-dir`);
  }
  if (size > want) fs.truncateSync(file, want);
}

function fmtBytes(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} KB`;
}

export function formatSummary(s: Summary): string {
  const lines = [
    `joinery: done in ${(s.elapsedMs / 1000).toFixed(2)}s with ${s.workers} worker(s), ${s.state} state`,
    `  events in        left ${fmtCount(s.eventsIn[0])}, right ${fmtCount(s.eventsIn[1])} (${fmtRate(s.eventsPerSec)} events/s)`,
    `  duplicates       ${fmtCount(s.duplicates)}`,
    `  late             ${fmtCount(s.late)}`,
    `  dead-lettered    ${fmtCount(s.deadLettered)}${s.badTime ? ` (${fmtCount(s.badTime)} with event times too far ahead or not times)` : ''}`,
    ...(s.keyOverflow[0] + s.keyOverflow[1] > 0 ? [`  key overflow     left ${fmtCount(s.keyOverflow[0])}, right ${fmtCount(s.keyOverflow[1])} (--max-key-entries)`] : []),
    `  pairs            ${fmtCount(s.pairs)} (${fmtRate(s.pairsPerSec)} pairs/s)`,
    `  unmatched        left ${fmtCount(s.unmatchedLeft)}, right ${fmtCount(s.unmatchedRight)}`,
    `  state left       ${fmtCount(s.stateLeft)} entries (peak ${fmtCount(s.peakStateEntries)}${s.alignPauses ? `; inputs paused ${fmtCount(s.alignPauses)}× to stay aligned in event time` : ''})`,
    ...(s.cpu ? [`  cpu              ${formatCpu(s.cpu)}`] : []),
    `  latency          p50 ${s.p50Ms.toFixed(2)}ms  p99 ${s.p99Ms.toFixed(2)}ms  p99.9 ${s.p999Ms.toFixed(2)}ms  max ${s.maxMs.toFixed(2)}ms (router read → output written)`,
  ];
  const c = s.checkpoints;
  if (c) {
    lines.push(`  checkpoints      ${c.completed} taken, ${c.failed} failed, last #${c.lastId}: ${fmtBytes(c.lastNewBytes)} new, ${fmtBytes(c.lastStateBytes)} state; duration p50 ${c.p50DurationMs.toFixed(0)}ms max ${c.maxDurationMs.toFixed(0)}ms${c.compactions ? `; ${c.compactions} compaction(s)` : ''}`);
    if (c.restoredFrom !== null) lines.push(`  restored         from checkpoint ${c.restoredFrom} in ${((c.restoreMs ?? 0) / 1000).toFixed(1)}s`);
  }
  const rb = s.rebuild;
  if (rb) lines.push(`  rebuild          replayed ${fmtCount(rb.replayed)} (skipped ${fmtCount(rb.skipped)} before --rebuild-from), suppressed ${fmtCount(rb.suppressedPairs)} pairs and ${fmtCount(rb.suppressedUnmatched)} unmatched rows emitted before the resume position${rb.reachedResume ? '' : '; STOPPED BEFORE THE RESUME POSITION: its output is incomplete, rebuild again'}`);
  if (s.stopped) lines.push('  stopped          by signal before the end of input (resume with the same command)');
  return lines.join('\n') + '\n';
}
