/**
 * runEngine: one run of the join, wired from its parts. The router (main thread) reads the inputs
 * into the workers' rings (worker-pool.ts); the workers' output goes through the output gate
 * (output.ts, ../sink/output-gate.ts); commits run in commit-loop.ts; stop signals in signals.ts; the
 * figures in summary.ts.
 */
import { CheckpointCoordinator } from '../checkpoint/coordinator.js';
import { JoineryError } from '../core/errors.js';
import { log } from '../core/log.js';
import { nowMs } from '../core/units.js';
import { CpuMeter } from '../metrics/cpu.js';
import { fmtCount, MetricsHub } from '../metrics/report.js';
import { createRingBuffer, forEachFrame } from '../ring/ring.js';
import { FrameKind } from '../ring/frame.js';
import { keyGroupRanges } from '../router/partitioner.js';
import { Router } from '../router/router.js';
import { defaultMaxDriftMs } from '../router/align.js';
import { checkWritable, isLineSinkKind, openLineSink, type LineSink } from '../sink/sink.js';
import { endpointsOf } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import type { WorkerInit } from '../worker/protocol.js';
import { CheckpointLoop, OffsetCommitLoop } from './commit-loop.js';
import { rejectedRecords, warnAllRefused } from './dead-letters.js';
import type { EngineOptions } from './options.js';
import { WorkerOutput } from './output.js';
import { RestoreProgress, startProgress } from './progress.js';
import { cutOutput, makeExtractors, prepareStateDir } from './setup.js';
import { StopControl } from './signals.js';
import { applyRouterPriority, restoreRouterPriority } from './priority.js';
import { buildSummary, fmtBytes, formatSummary, type Summary } from './summary.js';
import { WorkerPool, workerInits } from './worker-pool.js';

export type { EngineOptions, GroupShare, PositionsPort } from './options.js';
export { bucketMsFor } from './setup.js';
export { exitCodeOf, formatSummary, type Summary } from './summary.js';

export async function runEngine(cfg: Config, opts: EngineOptions): Promise<Summary> {
  const extractors = makeExtractors(cfg, opts.formats);
  const ep = endpointsOf(cfg);
  checkWritable(ep.out, 'out');
  checkWritable(ep.lateOut, 'late-out');
  checkWritable(ep.deadLetter, 'dead-letter');
  if (cfg.state !== 'memory') prepareStateDir(cfg.stateDir);
  const ck = opts.checkpoints ?? null;
  const restored = ck?.restored?.manifest ?? null;
  const out = ep.out!;
  if (out.kind === 'file') {
    if (restored) cutOutput(out, restored);
    else if (!opts.rebuild) openLineSink(out, true).close(); // truncate once; workers append (a rebuild continues the file)
  }
  // Late and dead-letter files are at-least-once: a resumed run appends to them.
  const lateSink: LineSink | null = opts.lateSink ?? (ep.lateOut ? openLineSink(ep.lateOut, !restored && !opts.rebuild) : null);
  const deadSink: LineSink | null = opts.deadSink ?? (ep.deadLetter ? openLineSink(ep.deadLetter, !restored && !opts.rebuild) : null);
  if (ck?.restored) {
    for (const s of ck.restored.skipped) log.say('warn', `joinery: skipped ${s}`, { code: 'E_CHECKPOINT' });
    for (const s of ck.restored.notes ?? []) log.say('warn', `joinery: ${s}`, { code: 'E_CHECKPOINT' });
    log.say('info', `joinery: resuming from checkpoint ${restored!.id} of ${new Date(restored!.createdAtMs).toISOString()} (${fmtBytes(restored!.stats.stateBytes)} of state in ${restored!.files.length} file(s))`, { checkpoint: restored!.id });
  }
  const outRecords = opts.outRecords ?? null;
  // An --out the workers cannot write themselves (Kafka) is the record sink the caller opened.
  const recordsOut = !isLineSinkKind(out.kind);
  if (recordsOut && !outRecords) throw new JoineryError('E_INTERNAL', `--out ${out.spec}: needs a record sink`);

  const onRejected = rejectedRecords(lateSink, deadSink);

  const ranges = keyGroupRanges(cfg.workers);
  const sabs = ranges.map(() => createRingBuffer(cfg.ringSizeBytes));
  const hub = new MetricsHub();
  const statsIntervalMs = opts.statsIntervalMs ?? 1000;
  const router = new Router(sabs, opts.sources, extractors, cfg.maxDelayMs, cfg.idleTimeoutMs, onRejected);
  const positions = opts.positions ?? {};
  if (positions.onStall) router.onStall = positions.onStall;
  router.bounded = !!opts.bounded;
  router.configureTime(cfg.maxDriftMs ?? defaultMaxDriftMs(cfg.maxDelayMs), cfg.maxFutureMs ?? 0);
  router.onFirstFuture = (reason) => log.warn(`an input record's event time is too far ahead and goes to ${cfg.deadLetter ? `--dead-letter ${cfg.deadLetter}` : 'the dead letters (counted; set --dead-letter to keep them)'}: ${reason}; later ones are counted only`);
  router.onJump = (message) => log.warn(message);
  if (restored) router.restore(restored.router.watermarkMs, restored.router.partitions);
  if (ck?.restored?.inflight?.length) {
    router.setInflight(await Promise.all(ck.restored.inflight.map(async (f) => {
      try {
        return { bytes: new Uint8Array(await f.storage.readFile(f.name)), partitions: f.partitions && new Set(f.partitions) };
      } catch (e) {
        throw new JoineryError('E_CHECKPOINT', `checkpoint ${restored!.id}: in-flight file ${f.name} in ${f.storage.location} cannot be read: ${(e as Error).message}`);
      }
    })), new Set(ck.restored.inflight.map((f) => f.checkpoint ?? '')).size === 1);
    const n = router.inflightPending();
    log.say('info', `joinery: ${fmtCount(n)} event(s) read but not yet joined when checkpoint ${restored!.id} was taken (a stop at a cut) are joined first`, { inflightEvents: n });
  }
  for (const p of opts.share?.notOwned ?? []) router.tracker.end(router.tracker.slot(p));
  if (opts.rebuild) {
    router.startReplay(opts.rebuild);
    log.say('info', `joinery: rebuilding the join buffer: replaying from ${new Date(opts.rebuild.fromMs).toISOString()} up to ${opts.rebuild.describe}; output resumes there`);
  }
  const outer: [boolean, boolean] = [cfg.join === 'left' || cfg.join === 'full', cfg.join === 'right' || cfg.join === 'full'];
  let coordinator: CheckpointCoordinator | null = null;
  let restoredEvents = 0, restoreMs = 0;
  const framing: WorkerInit['framing'] = !recordsOut ? 'ndjson'
    : (cfg.outFormat ?? opts.formats[0]) === 'flatbuffers' ? 'records-flatbuffers' : 'records-json';
  if (framing === 'records-flatbuffers' && (opts.formats[0] !== 'flatbuffers' || opts.formats[1] !== 'flatbuffers')) {
    throw new JoineryError('E_USAGE', '--out-format flatbuffers nests the input records, so it needs FlatBuffers inputs (use --out-format json)');
  }

  let failure: Error | null = null;
  const failed = () => failure !== null;
  const fail = (e: Error) => {
    if (!failure) failure = e;
    router.abort(e);
    coordinator?.abort(e);
  };

  const tty = opts.progress;
  const output = new WorkerOutput(outRecords, !!positions.transactionalOutput, cfg.workers, restored?.id ?? 0, router, fail);
  const cpu = new CpuMeter();
  const pool = new WorkerPool(router.rings, hub, cpu);
  const restoreProgress = restored ? new RestoreProgress(cfg.workers, restored.id, Date.now()) : null;
  const { threads, halt } = pool;
  restoreRouterPriority(); // (a group member's next run: its workers start at the process's priority)
  pool.start(workerInits({
    cfg, formats: opts.formats, sabs, ranges, halt: halt.sab, framing, statsIntervalMs, rebuild: !!opts.rebuild, backfill: !!opts.bounded,
    overflowOut: !!lateSink, ck, restored, outer,
  }), {
    out: (w, chunk) => output.onChunk(w, chunk),
    barrier: (w, ack) => { output.onBarrier(w, ack.id); coordinator?.onAck(w, ack); },
    overflow: (chunk) => { try { lateSink?.write(chunk); } catch (e) { fail(e as Error); } },
    restoring: (w, events, filesRead, files) => {
      const line = restoreProgress?.update(w, events, filesRead, files, Date.now());
      if (line) log.say('info', line, { checkpoint: restored!.id });
    },
    restored: (events, ms) => { restoredEvents += events; restoreMs = Math.max(restoreMs, ms); },
    done: (w, watermarkMs) => coordinator?.onWorkerDone(w, watermarkMs),
    fail,
  });
  const stop = new StopControl({ cfg, router, checkpointing: !!ck, restoredId: restored?.id ?? null, handleSignals: !!opts.handleSignals, resumable: opts.resumable !== false, stopHandle: opts.share?.stopHandle });
  stop.install();
  const handle = opts.share?.stopHandle;
  if (handle) {
    handle.discard = fail;
    if (handle.discarded) fail(handle.discarded);
  }
  // Sources get ready (the generator's resume skip) while the workers restore.
  const prepared = Promise.all(opts.sources.map((s) => s.prepare?.())).then(() => null, (e: Error) => e);
  await pool.allReady();
  applyRouterPriority(cfg.routerPriority, cfg.workers); // the workers exist: they keep their priority
  const notPrepared = await prepared;
  if (notPrepared) fail(notPrepared);
  if (failure) {
    stop.dispose();
    await pool.stopAll(); await ck?.pool.close(); halt.close(); throw failure;
  }
  if (restored) log.say('info', `joinery: restored ${fmtCount(restoredEvents)} buffered events in ${(restoreMs / 1000).toFixed(1)}s`, { events: restoredEvents, restoreMs: Math.round(restoreMs) });

  if (ck) {
    coordinator = new CheckpointCoordinator({
      storage: ck.storage, pool: ck.pool, router, ranges, job: ck.job, outer, runId: ck.runId,
      outputFile: out.kind === 'file' ? out.path : undefined, outputSpec: out.spec, resumable: opts.resumable,
      chain: restored?.files ?? [], lastId: restored?.id ?? 0,
      restoredWatermarkMs: restored ? Math.min(...restored.workers.map((w) => w.watermarkMs)) : undefined, retain: cfg.checkpointRetain, pinned: opts.share?.pinnedCheckpoints,
      release: (id) => pool.release(id),
      commit: positions.commitCheckpoint && positions.transactionalOutput
        // A transaction that fails to commit took its output with it: stop (the restart resumes
        // from the checkpoint the committed positions name) rather than go on with a gap.
        ? async (m) => { try { await positions.commitCheckpoint!(m); } catch (e) { fail(e as Error); throw e; } }
        : positions.commitCheckpoint,
      onResult: (r) => { if (positions.transactionalOutput) output.open(r.id); opts.control?.recordCheckpoint(r); },
      // Output after an overtaken barrier belongs to the stop checkpoint's transaction: write it now.
      onSuperseded: (id) => { if (positions.transactionalOutput) output.open(id); },
      log: (msg, level, fields) => log.say(level, `joinery: ${msg}`, fields),
    });
  }
  if (coordinator) stop.attach(coordinator);
  const checkpoints = coordinator ? new CheckpointLoop(coordinator, cfg.checkpointIntervalMs, failed, stop) : null;

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
  const stopProgress = startProgress({ hub, router, cpu, tty, statsIntervalMs, start, onTick: opts.onTick });
  const commits = positions.commitApplied && !coordinator ? new OffsetCommitLoop({
    commit: positions.commitApplied, intervalMs: positions.commitIntervalMs ?? 1000, pool, router, sinks: { outRecords, lateSink, deadSink }, failed, fail,
  }) : null;

  try {
    await router.run(checkpoints?.beforeEnd);
  } catch (e) {
    fail(e as Error);
  }
  if (!failure) warnAllRefused(router.counters.read, onRejected);
  if (failure) await pool.abort();
  else await pool.allDone();
  commits?.stopTimer();
  checkpoints?.stopTimer();
  await commits?.finish();
  const finalCheckpointOk = (await checkpoints?.finish()) ?? true;
  if (router.isCut && !ck && !failure) {
    let dropped = 0;
    for (const b of router.takeInflight()) forEachFrame(b, (off) => { if (b[off] === FrameKind.Event) dropped++; });
    if (dropped > 0) log.say('warn', `joinery: stopped with ${fmtCount(dropped)} routed event(s) not yet joined: dropped (without --checkpoint-dir there is nothing to resume them from)`, { droppedEvents: dropped });
  }
  if (coordinator) await coordinator.close();
  cpu.sample(); // the pool thread ends with close()
  await ck?.pool.close();
  stop.dispose();
  stopProgress();
  // An evicted group member's run ends with E_GROUP_EVICTED: the member goes on with the same
  // sources and sinks (it aborts the output transaction itself), so they stay open, unflushed.
  const evicted = (failure as Error | null) instanceof JoineryError && (failure as unknown as JoineryError).code === 'E_GROUP_EVICTED';
  const keep = !!opts.keepOpen && (!failure || evicted);
  if (!keep) await Promise.all(opts.sources.map((s) => s.close()));
  for (const sink of [lateSink, deadSink, outRecords]) {
    const callers = sink === outRecords || sink === opts.lateSink || sink === opts.deadSink;
    try { if (keep && callers) { if (!failure) await sink?.flush(); } else await sink?.close(); } catch (e) { fail(e as Error); }
  }
  if (failure) {
    await pool.stopAll();
    halt.close();
    throw failure;
  }
  halt.close();

  const summary = buildSummary({
    cfg, hub, router, cpu, elapsedMs: nowMs() - start,
    checkpoints: coordinator?.stats ?? null, restoredFrom: restored?.id ?? null, restoreMs, stopped: stop.stopped, finalCheckpointFailed: !finalCheckpointOk,
  });
  if (opts.printSummary && !log.isJson) log.say('info', formatSummary(summary).trimEnd()); // in JSON: the caller's `finished` record
  return summary;
}
