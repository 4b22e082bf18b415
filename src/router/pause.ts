import { nowMs } from '../core/units.js';

/**
 * Pause/resume of routing (POST /pause, /resume). While paused the router does not pull batches
 * from its sources; what is in the rings is still applied and committed, the state stays, and
 * watermarks do not move (time spent paused does not count towards --idle-timeout, see
 * WatermarkTracker.shiftIdle), so no record turns late because of a pause.
 */
export class PauseGate {
  private held: { release: () => void; released: Promise<void> } | null = null;
  /**
   * Output back-pressure (the engine's output sink is full): holds routing like a pause, with the
   * same guarantees (barriers still go through, idle time does not count), but it is not a pause
   * by request: `paused` stays false and resume() does not lift it; it ends when its promise settles.
   */
  private outputHold: { released: Promise<void>; since: number; release: () => void } | null = null;
  private parkedWaiters: Array<() => void> = [];
  private finished = false;
  /** True while the router waits at the gate. */
  parked = false;
  /** True while the router waits for a source's next batch (which it will hold, unrouted, while paused). */
  private waitingInSource = false;
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

  /** Routing is held: paused by request, or waiting for the output to drain. */
  get holding(): boolean {
    return this.held !== null || this.outputHold !== null;
  }

  /** Hold routing until `until` settles (either way); one hold at a time, a second call while held is ignored. */
  holdForOutput(until: Promise<unknown>): void {
    if (this.outputHold) return;
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const hold = { released, since: nowMs(), release };
    this.outputHold = hold;
    const end = (): void => { if (this.outputHold === hold) this.outputHold = null; release(); };
    until.then(end, end);
  }

  /** End an output hold at once (the run failed: routing must reach its end, the sink may never drain). */
  releaseOutput(): void {
    const h = this.outputHold;
    this.outputHold = null;
    h?.release();
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

  /**
   * The router's side: wait while held (paused or output hold). Returns the milliseconds the hold
   * lasted. `onWake` runs first (a request made before this wait began woke no one) and at each
   * wake(); when it returns true the wait ends although the hold goes on (the router has a batch
   * in hand to route before a barrier: see Router.routeAll).
   */
  async pass(onWake?: () => Promise<boolean | void>): Promise<number> {
    if (!this.holding) return 0;
    const now = nowMs();
    const since = Math.min(this.pausedSince ?? now, this.outputHold?.since ?? now);
    this.parked = true;
    for (const w of this.parkedWaiters.splice(0)) w();
    let leave = onWake !== undefined && (await onWake()) === true;
    while (this.holding && !leave) {
      const holds = [this.held?.released, this.outputHold?.released].filter((p): p is Promise<void> => p !== undefined);
      await Promise.race([...holds, new Promise<void>((r) => { this.waker = r; })]);
      this.waker = null;
      if (onWake) leave = (await onWake()) === true;
    }
    this.parked = false;
    return nowMs() - since;
  }

  get inSource(): boolean {
    return this.waitingInSource;
  }

  /**
   * The router's side: it is about to wait for a source's next batch. Waiting there holds input as
   * parking does, so whoever waits for the router to park is released now: a pause that arrived
   * while the router was between the gate and the source (e.g. yielding to I/O) would otherwise wait
   * for a batch that may never come.
   */
  enterSource(): void {
    this.waitingInSource = true;
    for (const w of this.parkedWaiters.splice(0)) w();
  }

  leaveSource(): void {
    this.waitingInSource = false;
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
