import type { CheckpointContext } from '../checkpoint/index.js';
import type { Manifest } from '../checkpoint/manifest.js';
import type { EngineControl } from '../control/engine-control.js';
import type { StopSignal } from '../core/signals.js';
import type { MetricsHub } from '../metrics/report.js';
import type { ReplayPlan } from '../rebuild/replay.js';
import type { LineSink, RecordSink } from '../sink/sink.js';
import type { LogPosition, PartitionRef, Source } from '../source/source.js';
import type { InputFormats } from './setup.js';

export interface EngineOptions {
  sources: Source[];
  formats: InputFormats;
  /** Progress on stderr: the live line on a terminal, a log record per interval otherwise. */
  progress: boolean;
  /** Print the human summary on stderr when it is a terminal (otherwise the caller logs the `finished` record). */
  printSummary: boolean;
  statsIntervalMs?: number;
  /** Called every stats interval (for benchmarks sampling heap). */
  onTick?: (hub: MetricsHub) => void;
  /** Sinks the caller opened (sinks that need async setup); otherwise the engine opens the line sinks --out, --late-out, --dead-letter name. */
  outRecords?: RecordSink;
  lateSink?: LineSink;
  deadSink?: LineSink;
  /** Checkpointing (opened with openCheckpoints before the sources, which it may have positioned). */
  checkpoints?: CheckpointContext | null;
  /** SIGTERM/SIGINT: stop the sources, drain, final checkpoint, exit normally; a second signal exits at once. */
  handleSignals?: boolean;
  /** False for a run nothing resumes (bench): stop messages then promise no next start. Default true. */
  resumable?: boolean;
  /** Rebuild the join buffer by replaying up to a resume position, output suppressed until there (src/rebuild/replay.ts). */
  rebuild?: ReplayPlan;
  /** Backfill: the sources end at a cut; unmatched rows past the cut are left to the job that goes on from it (src/backfill). */
  bounded?: boolean;
  /** Observation and steering from outside (HTTP endpoint): handed the engine's parts once the workers are ready. */
  control?: EngineControl;
  /** The caller runs the engine again with the same sources and sinks: leave them open (they are flushed). */
  keepOpen?: boolean;
  /** The inputs' positions kept outside the checkpoints (commits, holding the inputs, transactional output). */
  positions?: PositionsPort;
  /** The run owns a share of a group's partitions. */
  share?: GroupShare;
}

/**
 * What a run needs of an external system that keeps the inputs' positions itself, and may take
 * the output in transactions (Kafka: the group's committed offsets; src/kafka/io.ts fills it in).
 * Every field is optional: file and generator runs pass none.
 */
export interface PositionsPort {
  /**
   * Without checkpoints: commit positions whose records have been applied and their output handed
   * on (the router collects them from the batches' `logPosition`; per log partition the latest).
   */
  commitApplied?: (positions: LogPosition[]) => Promise<unknown>;
  /** How often commitApplied runs (default 1 s). */
  commitIntervalMs?: number;
  /** With checkpoints: commit a checkpoint's source positions once its manifest is durable. */
  commitCheckpoint?: (m: Manifest) => Promise<void>;
  /** outRecords is transactional: each checkpoint's commitCheckpoint commits exactly the output from before its barrier. */
  transactionalOutput?: boolean;
  /** Routing stalled on a full ring (true) or resumed (false): stop fetching the inputs, or go on. */
  onStall?: (stalled: boolean) => void;
}

/** This run owns a share of its sources' partitions; other processes own the rest (src/member.ts). */
export interface GroupShare {
  /**
   * Stop from outside (the group reassigning partitions): the engine sets `stop`; calling it ends
   * the run like a stop signal (drain, final checkpoint). A stop asked for before the router
   * exists (`requested`) is honoured as soon as it does. A stop signal the caller received for
   * this run before the engine took signals over (`signal`) is handled as the engine's own.
   * `discard` (set by the engine; `discarded` before it is) ends the run with that error and
   * commits nothing more — the member was evicted from its group; the sources and sinks the
   * caller handed in stay open when the error is E_GROUP_EVICTED (the caller aborts the output).
   */
  stopHandle: { stop?: () => void; requested?: boolean; signal?: StopSignal; discard?: (e: Error) => void; discarded?: Error };
  /** Partitions of the sources this run does not own: they never hold the watermark back. */
  notOwned: PartitionRef[];
  /** Checkpoint ids retention must keep although older than --checkpoint-retain (another process may still restore from them). */
  pinnedCheckpoints?: () => Promise<ReadonlySet<number>>;
}
