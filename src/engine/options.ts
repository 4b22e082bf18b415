import type { CheckpointContext } from '../checkpoint/index.js';
import type { Manifest } from '../checkpoint/manifest.js';
import type { EngineControl } from '../control/engine-control.js';
import type { MetricsHub } from '../metrics/report.js';
import type { ReplayPlan } from '../rebuild/replay.js';
import type { LineSink, RecordSink } from '../sink/sink.js';
import type { Source } from '../source/source.js';
import type { Side } from '../state/store.js';
import type { InputFormats } from './setup.js';

export interface EngineOptions extends KafkaRunOptions {
  sources: Source[];
  formats: InputFormats;
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
  /** Checkpointing (opened with openCheckpoints before the sources, which it may have positioned). */
  checkpoints?: CheckpointContext | null;
  /** SIGTERM/SIGINT: stop the sources, drain, final checkpoint, exit normally; a second signal exits at once. */
  handleSignals?: boolean;
  /** Rebuild the join buffer by replaying up to a resume position, output suppressed until there (src/rebuild/replay.ts). */
  rebuild?: ReplayPlan;
  /** Backfill: the sources end at a cut; unmatched rows past the cut are left to the job that goes on from it (src/backfill). */
  bounded?: boolean;
  /** Observation and steering from outside (HTTP endpoint): handed the engine's parts once the workers are ready. */
  control?: EngineControl;
  /** The caller runs the engine again with the same sources and sinks: leave them open (they are flushed). */
  keepOpen?: boolean;
}

/**
 * The fields only Kafka runs set (offset commits, pausing partitions, transactions, group
 * membership). Grouped, but still flat in EngineOptions so that their callers (cli.ts, member.ts,
 * backfill) need no change; making them one Kafka options object belongs with the Kafka port.
 */
export interface KafkaRunOptions {
  /** Commit source positions whose records have been applied (Kafka offsets). */
  commit?: (positions: Array<{ topic: string; partition: number; offset: string }>) => Promise<unknown>;
  commitIntervalMs?: number;
  /** Routing stalled on a full ring (true) or resumed (false): pause/resume the source's partitions. */
  onStall?: (stalled: boolean) => void;
  /** Commit a checkpoint's source positions (Kafka: with the checkpoint id as offset metadata). */
  commitCheckpoint?: (m: Manifest) => Promise<void>;
  /** outRecords is transactional: each checkpoint's commitCheckpoint commits exactly the output from before its barrier. */
  transactionalOutput?: boolean;
  /**
   * Stop from outside (a consumer-group re-join): the engine sets `stop`; calling it ends the run
   * like a stop signal (drain, final checkpoint). A stop asked for before the router exists
   * (`requested`) is honoured as soon as it does.
   */
  stopHandle?: { stop?: () => void; requested?: boolean };
  /** Partitions of the sources this run does not own (another group member does): they never hold the watermark back. */
  notOwned?: Array<{ side: Side; partition: number }>;
  /** Checkpoint ids retention must keep although older than --checkpoint-retain (another member may still restore from them). */
  pinnedCheckpoints?: () => Promise<ReadonlySet<number>>;
}
