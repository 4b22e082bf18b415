import { nowMs } from '../core/units.js';

/**
 * Pause/resume of routing (POST /pause, /resume). While paused the router does not pull batches
 * from its sources; what is in the rings is still applied and committed, the state stays, and
 * watermarks do not move (time spent paused does not count towards --idle-timeout, see
 * WatermarkTracker.shiftIdle), so no record turns late because of a pause.
 */
export class PauseGate {
  private held: { release: () => void; released: Promise<void> } | null = null;
  private parkedWaiters: Array<() => void> = [];
  private finished = false;
  /** True while the router waits at the gate. */
  parked = false;
  /** True while the router waits for a source's next batch (which it will hold, unrouted, while paused). */
  inSource = false;
  /** When the current pause began (nowMs), or null when running: idleness is judged as of then while paused. */
  pausedSince: number | null = null;

  private waker: (() => void) | null = null;

  /** Let the parked router do side work (a checkpoint barrier) without resuming input. */
  wake(): void {
    this.waker?.();
  }

  get paused(): boolean {
    return this.held !== null;
  }

  pause(): void {
    if (this.held) return;
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    this.held = { release, released };
    this.pausedSince = nowMs();
  }

  resume(): void {
    const h = this.held;
    if (!h) return;
    this.held = null;
    this.pausedSince = null;
    h.release();
  }

  /** The router's side: wait while paused. Returns the milliseconds the pause lasted. */
  async pass(onWake?: () => Promise<void>): Promise<number> {
    if (!this.held) return 0;
    const since = this.pausedSince ?? nowMs();
    this.parked = true;
    for (const w of this.parkedWaiters.splice(0)) w();
    while (this.held) {
      await Promise.race([this.held.released, new Promise<void>((r) => { this.waker = r; })]);
      this.waker = null;
      if (onWake) await onWake();
    }
    this.parked = false;
    return nowMs() - since;
  }

  /** Resolves once the router is parked at the gate or waiting in a source (both hold input), or has finished routing. */
  whenParked(): Promise<void> {
    if (this.parked || this.inSource || this.finished) return Promise.resolve();
    return new Promise((r) => this.parkedWaiters.push(r));
  }

  /** Routing ended: nothing will park any more. */
  finish(): void {
    this.finished = true;
    for (const w of this.parkedWaiters.splice(0)) w();
  }
}
