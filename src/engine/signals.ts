/**
 * Graceful stop: the first signal stops the run at a cut (docs/architecture.md §3, the stop
 * checkpoint): reading stops, each worker stops at its next record, and with --checkpoint-dir the
 * final checkpoint keeps what the rings still held (a resume joins it first); without one, that
 * is dropped. Behind a hot key, draining the rings instead could take minutes. A rebuild whose
 * replay has not reached its resume position cannot be checkpointed: it drains as before.
 * A second signal exits at once (state is safe at the last checkpoint). Handled from the
 * workers' start on, so a signal during a long restore is graceful too (the cut is taken once
 * the workers are up). The stop is bounded (--stop-timeout): past the bound the process exits
 * non-zero; the next start resumes from the last completed checkpoint and reads again what was
 * not processed (source positions and the output length are only committed in checkpoints).
 */
import type { CheckpointCoordinator } from '../checkpoint/coordinator.js';
import type { Config } from '../config/schema.js';
import { EXIT_CODES } from '../core/errors.js';
import { exitSoon } from '../core/exit.js';
import { log } from '../core/log.js';
import { onStopSignal, type StopSignal } from '../core/signals.js';
import { formatDurationMs } from '../core/units.js';
import type { Router } from '../router/router.js';

export class StopControl {
  /** A stop signal came. */
  stopped = false;
  /** The stop checkpoint, when the stop was taken at a cut with checkpoints: it is the run's final one. */
  stopCheckpoint: Promise<boolean> | null = null;
  private stopTimer: NodeJS.Timeout | null = null;
  private cutPending = false;
  private coordinator: CheckpointCoordinator | null = null;
  private releaseSignals: (() => void) | null = null;

  constructor(private readonly p: {
    cfg: Config; router: Router; checkpointing: boolean; restoredId: number | null;
    handleSignals: boolean; resumable: boolean; stopHandle?: { stop?: () => void; requested?: boolean; signal?: StopSignal };
  }) {}

  /**
   * Take stop signals (when asked to) and a stop from outside (stopHandle). A signal the caller
   * took for this run before it got here (stopHandle.signal) is handled as if it came now.
   */
  install(): void {
    const { handleSignals, stopHandle } = this.p;
    if (handleSignals) this.releaseSignals = onStopSignal((sig) => this.signal(sig));
    if (stopHandle) {
      stopHandle.stop = () => { stopHandle.requested = true; this.stopRun(); };
      if (stopHandle.signal) this.signal(stopHandle.signal);
      else if (stopHandle.requested) this.stopRun();
    }
  }

  /** The workers are up: a stop asked for before takes its cut now. */
  attach(coordinator: CheckpointCoordinator): void {
    this.coordinator = coordinator;
    if (this.cutPending) this.stopCheckpoint = coordinator.stopCheckpoint();
  }

  dispose(): void {
    this.releaseSignals?.();
    this.releaseSignals = null;
    if (this.stopTimer) clearTimeout(this.stopTimer);
  }

  private stopRun(): 'cut' | 'drain' {
    const { router } = this.p;
    if (router.isCut || this.cutPending || this.stopCheckpoint) return 'cut';
    if (router.replay?.active) { router.stop(); return 'drain'; }
    if (!this.p.checkpointing) { router.cut(-1).catch(() => {}); return 'cut'; }
    if (!this.coordinator) { this.cutPending = true; return 'cut'; } // the workers are not up yet
    this.stopCheckpoint = this.coordinator.stopCheckpoint();
    return 'cut';
  }

  private signal(sig: StopSignal): void {
    const { cfg, router, checkpointing: ck } = this.p;
    if (this.stopped) {
      log.say('warn', `joinery: second ${sig}: exiting now${ck ? ' (resume from the last checkpoint)' : ''}`, { signal: sig, exitCode: 130 });
      exitSoon(130);
      return;
    }
    this.stopped = true;
    const how = router.replay?.active && !router.isCut
      ? `draining (the rebuild's replay has not reached its resume position)${ck ? ', final checkpoint' : ''}`
      : ck && !this.p.resumable ? 'at the next record; what was read but not yet joined goes into the final checkpoint (a benchmark is never resumed)'
      : ck ? 'at the next record; what was read but not yet joined goes into the final checkpoint and is joined first on the next start'
      : 'at the next record; what was read but not yet joined is dropped (no --checkpoint-dir to keep it in)';
    log.say('info', `joinery: ${sig}: stopping ${how} (at most ${formatDurationMs(cfg.stopTimeoutMs)}); send it again to exit at once`, { signal: sig });
    this.stopRun();
    this.stopTimer = setTimeout(() => {
      const last = this.coordinator?.stats.lastId || this.p.restoredId || 0;
      const resume = !this.p.resumable ? 'a benchmark is never resumed'
        : !ck ? 'without --checkpoint-dir the next start begins from scratch'
        : last ? `the next start resumes from checkpoint ${last} and reads again what was not processed after it`
        : 'no checkpoint was completed, so the next start begins from the start of the input';
      const fill = router.ringFill().map((f) => `${Math.round(f * 100)}%`).join('/');
      log.error(`joinery: the graceful stop did not finish within --stop-timeout ${formatDurationMs(cfg.stopTimeoutMs)} (rings ${fill} full); exiting: ${resume}`, { code: 'E_STOP_TIMEOUT', exitCode: EXIT_CODES.E_STOP_TIMEOUT });
      exitSoon(EXIT_CODES.E_STOP_TIMEOUT);
    }, cfg.stopTimeoutMs);
  }
}
