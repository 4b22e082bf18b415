/**
 * The run's commits: with --checkpoint-dir, a checkpoint every --checkpoint-interval and a final
 * one at the end of input; without, the inputs' positions committed (PositionsPort) as their records are applied.
 */
import type { CheckpointCoordinator } from '../checkpoint/coordinator.js';
import { EXIT_CODES } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Router } from '../router/router.js';
import type { LineSink, RecordSink } from '../sink/sink.js';
import type { PositionsPort } from './options.js';
import type { StopControl } from './signals.js';
import type { WorkerPool } from './worker-pool.js';

export class CheckpointLoop {
  private readonly timer: NodeJS.Timeout;
  private finalCheckpoint: Promise<boolean> | null = null;

  constructor(private readonly coordinator: CheckpointCoordinator, intervalMs: number, private readonly failed: () => boolean, private readonly stop: StopControl) {
    this.timer = setInterval(() => {
      if (!coordinator.busy && !failed()) void coordinator.checkpoint();
    }, intervalMs);
  }

  /** Run by the router once its inputs have ended, before the end-of-input frame. */
  readonly beforeEnd = async (): Promise<void> => {
    this.coordinator.finishing = true;
    if (this.stop.stopCheckpoint) return; // the stop checkpoint is the final one
    await this.coordinator.idle();
    if (!this.failed() && !this.stop.stopCheckpoint) this.finalCheckpoint = this.coordinator.checkpoint();
  };

  stopTimer(): void { clearInterval(this.timer); }

  /**
   * Wait for the stop or final checkpoint; false (and said) when it failed. The run then ends with
   * E_FINAL_CHECKPOINT (exit 5), not 0: what it read since its last completed checkpoint is not
   * kept (a stop's unjoined events), and its output since then is not committed (Kafka
   * transactions) or is cut back by the next start (files), which redoes that part.
   */
  async finish(): Promise<boolean> {
    const stopCheckpoint = this.stop.stopCheckpoint;
    const last = stopCheckpoint ?? this.finalCheckpoint;
    if (!last || (await last) || this.failed()) return true;
    const st = this.coordinator.stats;
    log.say('error', `joinery: the ${stopCheckpoint ? 'stop' : 'final'} checkpoint failed (${st.lastError ?? 'unknown error'}); ` +
      `exiting with ${EXIT_CODES.E_FINAL_CHECKPOINT}: start again to finish, it resumes from checkpoint ${st.lastId || '(none: from the start)'} and redoes the rest`,
    { code: 'E_FINAL_CHECKPOINT', exitCode: EXIT_CODES.E_FINAL_CHECKPOINT });
    return false;
  }
}

export class OffsetCommitLoop {
  private committing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly p: {
    commit: NonNullable<PositionsPort['commitApplied']>; intervalMs: number; pool: WorkerPool; router: Router;
    sinks: { outRecords: RecordSink | null; lateSink: LineSink | null; deadSink: LineSink | null };
    failed: () => boolean; fail: (e: Error) => void;
  }) {
    this.timer = setInterval(() => {
      if (this.committing || p.failed()) return;
      this.committing = this.commitApplied().catch((e) => p.fail(e as Error)).finally(() => { this.committing = null; });
    }, p.intervalMs);
  }

  /**
   * Commit what every worker has applied: ask each worker how far it has released its ring (its
   * reply follows every output chunk it posted for that input), hand the output to the broker,
   * then commit the source positions all of whose records lie below those heads.
   */
  async commitApplied(): Promise<void> {
    const { pool, router, sinks } = this.p;
    const heads = await pool.releasedHeads(this.p.failed());
    if (this.p.failed()) return;
    await sinks.outRecords?.flush();
    await sinks.lateSink?.flush();
    await sinks.deadSink?.flush();
    const positions = router.takeApplied(heads);
    if (positions.length > 0) await this.p.commit(positions);
  }

  stopTimer(): void { clearInterval(this.timer); }

  /** Wait for a commit in progress; then, unless the run failed, commit what is left. */
  async finish(): Promise<void> {
    if (this.committing) await this.committing;
    if (!this.p.failed()) {
      try { await this.commitApplied(); } catch (e) { this.p.fail(e as Error); }
    }
  }
}
