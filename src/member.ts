/**
 * `joinery run` as one member of a Kafka consumer group (Kafka input with --checkpoint-dir): the
 * group spreads the partitions over the members, and a partition's join buffer moves with it
 * through the shared checkpoint directory (src/checkpoint/handoff.ts).
 *
 *   open the source (join the group) ─► plan the state of the assignment ─► run the engine ─┐
 *          ▲                                                                                │
 *          └── a rebalance: before re-joining, the engine stops and checkpoints (commit) ◄──┘
 *
 * Before this member re-joins (another member joined or left, or the broker came back), the
 * KafkaSource's hook stops the engine like a stop signal: the router stops, the final checkpoint
 * commits the state, output and offsets of everything applied, the workers end. After the join the
 * loop plans again from the group's committed offsets and starts a fresh engine (workers, stores)
 * on the same source and sinks — Kafka Streams' "eager" rebalancing: simple, and exact.
 *
 * A member the group evicted (it stalled past the session timeout; its partitions went to another
 * member, which redoes its work since its last commit) must commit nothing more: its offset
 * commits carry its generation and member id, so the coordinator refuses them (E_GROUP_EVICTED
 * from the output transaction), and the re-join hook, told of the eviction, ends the run without
 * a checkpoint. Either way the run's uncommitted work is discarded (transaction aborted, positions
 * forgotten) and the loop plans again after the re-join.
 */
import * as os from 'node:os';
import { jobOf } from './checkpoint/index.js';
import { parseCheckpointRef, planHandoff, type CommittedOffset } from './checkpoint/handoff.js';
import { SidePool } from './checkpoint/pool.js';
import { memberStorage, storageAt } from './checkpoint/storage.js';
import { endpointsOf, kafkaTopic } from './config/endpoints.js';
import type { Config } from './config/schema.js';
import type { EngineControl } from './control/engine-control.js';
import { formatSummary, runEngine, type EngineOptions, type GroupShare, type Summary } from './engine.js';
import { kafkaAdapter } from './kafka/adapters.js';
import { openKafkaIO } from './kafka/io.js';
import { parseBrokers } from './kafka/options.js';
import { keyGroupRanges } from './router/partitioner.js';
import { openLineSink, type LineSink } from './sink/sink.js';
import type { Side } from './state/store.js';
import { exitSoon } from './core/exit.js';
import { JoineryError } from './core/errors.js';
import { onStopSignal, type StopSignal } from './core/signals.js';
import { log, type LogFields, type LogLevel } from './core/log.js';

/** The default member name: the host name, cut to what a member name may hold. */
export function defaultMemberName(): string {
  const n = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return n || 'joinery';
}

export interface MemberRunOptions {
  cfg: Config;
  control?: EngineControl;
  progress: boolean;
}

export async function runMember({ cfg, control, progress }: MemberRunOptions): Promise<Summary> {
  const adapter = await kafkaAdapter();
  adapter.checkClient({ groupMemberCheckpoints: true }); // before anything is locked or joined
  const member = cfg.member ?? defaultMemberName();
  const brokers = parseBrokers(cfg.brokers!);
  const ep = endpointsOf(cfg);
  const leftTopic = kafkaTopic(ep.left)!, rightTopic = kafkaTopic(ep.right)!;
  const topics = [leftTopic, rightTopic];
  const root = storageAt(cfg.checkpointDir!, false);
  const storage = memberStorage(root, member);
  storage.lock('--checkpoint-dir'); // two processes under one --member name would undo each other
  const job = jobOf(cfg);
  const ranges = keyGroupRanges(cfg.workers);
  const outer: [boolean, boolean] = [cfg.join === 'left' || cfg.join === 'full', cfg.join === 'right' || cfg.join === 'full'];
  const say = (msg: string, level: LogLevel = 'info', fields?: LogFields) => log.say(level, `joinery: member ${member}: ${msg}`, { member, ...fields });

  // The engine run in progress, for the re-join hook; the checkpoint its state was last committed with.
  let current: { handle: GroupShare['stopHandle']; done: Promise<unknown> } | null = null;
  let committedId = 0;
  const evictedError = (type: string) => new JoineryError('E_GROUP_EVICTED', `the consumer group ${cfg.group} evicted this member (${type})`);
  const closers: Array<() => Promise<void>> = [];
  const io = await openKafkaIO({
    cfg, member, control, checkpoints: true,
    onCommitted: (id) => { committedId = id; },
    beforeRejoin: async ({ evicted }) => {
      const c = current;
      if (!c) return; // between runs: nothing applied since the last commit
      if (evicted) {
        // Its partitions may be another member's already: end the run without committing (the run's
        // end reports the eviction), drop what was read, and plan from the group's offsets.
        c.handle.discard ? c.handle.discard(evictedError(evicted)) : (c.handle.discarded = evictedError(evicted));
        await c.done.catch(() => {});
        io.source?.discardPositions();
        return;
      }
      c.handle.stop ? c.handle.stop() : (c.handle.requested = true); // synchronously, before the source suspends
      say('the group is rebalancing: checkpointing before re-joining');
      await c.done.catch(() => {});
    },
  });
  closers.push(() => io.close());
  const src = io.source!;
  const format = src.format;
  const summaries: Summary[] = [];
  try {
    const extra: Partial<EngineOptions> = { ...io.engine };
    // The engine opens no line sinks for a run it is handed sinks for: the non-Kafka ones are opened here.
    let lateSink: LineSink | undefined = io.engine.lateSink, deadSink: LineSink | undefined = io.engine.deadSink;
    if (ep.lateOut && !lateSink) { const l = lateSink = openLineSink(ep.lateOut, false); closers.unshift(async () => { await l.close(); }); }
    if (ep.deadLetter && !deadSink) { const d = deadSink = openLineSink(ep.deadLetter, false); closers.unshift(async () => { await d.close(); }); }
    extra.lateSink = lateSink;
    extra.deadSink = deadSink;
    // This member's checkpoints that the group's offsets still name stay (another member may restore from them).
    const pinnedCheckpoints = async (): Promise<ReadonlySet<number>> => {
      const ids = new Set<number>();
      for (const c of await adapter.admin.fetchCommittedOffsets(brokers, cfg.group, topics)) {
        const r = parseCheckpointRef(c.metadata);
        if (r && r.member === member) ids.add(r.id);
      }
      return ids;
    };

    // Between engine runs (planning, waiting for the group) a stop signal ends the loop; during a
    // run the engine handles it (stop at a cut, final checkpoint). This handler stays pushed for
    // the whole member run and the engine's goes on top of it (core/signals.ts), so a signal that
    // comes while a run is starting, before its engine took signals over, is handed to that run.
    let signalled = false;
    const onSignal = (sig: StopSignal) => {
      if (signalled) { exitSoon(130); return; }
      signalled = true;
      // a run that has not taken signals yet handles it when it does; one that has ended is the last
      if (current) { current.handle.signal = sig; return; }
      say(`${sig}: stopping after the current step; send it again to exit at once`);
    };
    const releaseSignals = onStopSignal(onSignal);
    closers.push(async () => releaseSignals());
    /** The next group generation after `generation`, or -1 once a stop signal came while waiting. */
    const nextGeneration = (generation: number): Promise<number> => Promise.race([src.awaitGeneration(generation), new Promise<number>((r) => {
      const t = setInterval(() => { if (signalled) { clearInterval(t); r(-1); } }, 100);
      void src.awaitGeneration(generation).then(() => clearInterval(t), () => clearInterval(t));
    })]);
    let evicted = false;
    for (;;) {
      if (signalled) break;
      const generation = src.generationSeen;
      const assigned = src.assignedKafkaPartitions();
      const pool = new SidePool();
      const runId = `r${Date.now().toString(36)}${Math.random().toString(16).slice(2, 8)}`;
      let plan;
      try {
        // Stable (require_stable): never the offsets an output transaction still open is about to
        // replace — planning from them would restore a checkpoint older than committed output.
        const committed: CommittedOffset[] = await adapter.admin.fetchCommittedOffsets(brokers, cfg.group, topics, { requireStable: true });
        plan = await planHandoff({
          root, member, storage, pool, job, ranges, outer, runId, leftTopic, rightTopic, assigned, committed,
          // after an eviction too: this member's checkpoints past its committed one can never commit now
          sourceName: src.name, outputSpec: cfg.out, log: say, setAsideUncommitted: summaries.length === 0 || evicted,
        });
      } catch (e) {
        await pool.close();
        throw e;
      }
      if (src.generationSeen !== generation || signalled) { await pool.close(); continue; } // re-assigned while planning
      say(`assigned partitions [${assigned.join(',')}] (generation ${generation})` +
        (plan.used.length ? `; state from ${plan.used.join('; ')}` : '') + (plan.fresh.length ? `; partitions ${plan.fresh.join(',')} start without state` : ''));
      src.resetTo(plan.startOffsets);
      const mine = new Set(assigned);
      const notOwned = src.partitions.filter((p) => !mine.has(p.partition)).map((p) => ({ side: p.side as Side, partition: p.partition }));
      const handle: GroupShare['stopHandle'] = {};
      const done = runEngine(cfg, {
        ...extra, sources: [src], formats: [format, format], progress, printSummary: false,
        checkpoints: { storage, pool, job, runId, restored: plan.restored }, handleSignals: true, control,
        keepOpen: true, share: { stopHandle: handle, notOwned, pinnedCheckpoints },
      });
      current = { handle, done };
      committedId = plan.restored?.manifest.id ?? 0;
      evicted = false;
      let s: Summary;
      try {
        s = await done;
      } catch (e) {
        if (!(e instanceof JoineryError) || e.code !== 'E_GROUP_EVICTED') throw e;
        // Evicted (stalled past the session timeout): another member owns these partitions now and
        // redoes from the group's committed offsets what was applied here since. Nothing of it may
        // commit: the output transaction is aborted, the positions are forgotten, and the member
        // re-joins and plans again like after any rebalance.
        evicted = true;
        src.discardPositions();
        const why = /ILLEGAL_GENERATION|UNKNOWN_MEMBER_ID|FENCED_INSTANCE_ID/.exec(e.message)?.[0] ?? 'its offsets were refused';
        say(`evicted from the consumer group ${cfg.group} (${why}: it stalled longer than --session-timeout); ` +
          `the work applied since checkpoint ${committedId} is discarded uncommitted (the partitions' new owner redoes it from the group's committed offsets); re-joining`,
          'warn', { code: 'E_GROUP_EVICTED', checkpoint: committedId });
        await io.out?.abortTransaction().catch((x) => say(`aborting the output transaction after the eviction failed: ${(x as Error).message}`, 'warn', { code: 'E_OUTPUT' }));
        if (signalled) break;
        const next = await nextGeneration(generation);
        if (next < 0) break;
        say(`re-joined the group (generation ${next}) after the eviction: partitions [${src.assignedKafkaPartitions().join(',')}]`);
        continue;
      } finally {
        current = null;
      }
      summaries.push(s);
      if (s.stopped || signalled || !handle.requested) break; // a stop signal, or the input ended
      const next = await nextGeneration(generation);
      if (next < 0) break;
      const now = src.assignedKafkaPartitions();
      const gained = now.filter((p) => !mine.has(p)), lost = assigned.filter((p) => !now.includes(p));
      say(`re-joined the group (generation ${next}): gained [${gained.join(',')}], lost [${lost.join(',')}]`);
    }
  } finally {
    for (const c of closers) await c().catch(() => {});
  }
  const total = mergeSummaries(summaries, cfg);
  if (!log.isJson) log.say('info', formatSummary(total).trimEnd()); // in JSON: the CLI's `finished` record
  return total;
}

/** One summary for the whole run out of its per-assignment engine runs. */
function mergeSummaries(list: Summary[], cfg: Config): Summary {
  if (list.length === 0) {
    // stopped by a signal before the first run: nothing was read
    return {
      elapsedMs: 0, eventsIn: [0, 0], eventsPerSec: 0, pairs: 0, pairsPerSec: 0, outputRecords: 0, duplicates: 0, late: 0, deadLettered: 0, keyOverflow: [0, 0],
      unmatchedLeft: 0, unmatchedRight: 0, stateLeft: 0, peakStateEntries: 0, badTime: 0, alignPauses: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, workers: cfg.workers, state: cfg.state,
      backpressureWaits: 0, mainHeapUsedBytes: process.memoryUsage().heapUsed, stopped: true, rebalances: 0,
    };
  }
  const last = list[list.length - 1];
  const sum = (f: (s: Summary) => number) => list.reduce((n, s) => n + f(s), 0);
  const elapsedMs = sum((s) => s.elapsedMs);
  const eventsIn: [number, number] = [sum((s) => s.eventsIn[0]), sum((s) => s.eventsIn[1])];
  const pairs = sum((s) => s.pairs);
  return {
    ...last,
    elapsedMs, eventsIn, pairs,
    eventsPerSec: elapsedMs > 0 ? ((eventsIn[0] + eventsIn[1]) / elapsedMs) * 1000 : 0,
    pairsPerSec: elapsedMs > 0 ? (pairs / elapsedMs) * 1000 : 0,
    outputRecords: sum((s) => s.outputRecords), duplicates: sum((s) => s.duplicates), late: sum((s) => s.late),
    deadLettered: sum((s) => s.deadLettered), unmatchedLeft: sum((s) => s.unmatchedLeft), unmatchedRight: sum((s) => s.unmatchedRight),
    backpressureWaits: sum((s) => s.backpressureWaits), keyOverflow: [sum((s) => s.keyOverflow[0]), sum((s) => s.keyOverflow[1])],
    peakStateEntries: Math.max(...list.map((s) => s.peakStateEntries)), badTime: sum((s) => s.badTime), alignPauses: sum((s) => s.alignPauses),
    p50Ms: Math.max(...list.map((s) => s.p50Ms)), p99Ms: Math.max(...list.map((s) => s.p99Ms)),
    p999Ms: Math.max(...list.map((s) => s.p999Ms)), maxMs: Math.max(...list.map((s) => s.maxMs)),
    checkpoints: last.checkpoints && {
      ...last.checkpoints,
      completed: sum((s) => s.checkpoints?.completed ?? 0), failed: sum((s) => s.checkpoints?.failed ?? 0),
      compactions: sum((s) => s.checkpoints?.compactions ?? 0), restoredFrom: list[0].checkpoints?.restoredFrom ?? null,
      restoreMs: list[0].checkpoints?.restoreMs ?? null,
    },
    rebalances: list.length - 1,
  } as Summary;
}
