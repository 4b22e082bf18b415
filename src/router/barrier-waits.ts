/**
 * The router's waits that must not hold a checkpoint back: a requested barrier goes into the rings
 * while the router waits for a source's next batch or for the end-of-run work.
 */
export class BarrierWaits {
  private waker: (() => void) | null = null;

  /** `inject` puts the requested barrier in (if any); `requested` tells whether one is waiting. */
  constructor(private readonly inject: () => Promise<void>, private readonly requested: () => boolean) {}

  /** A barrier was requested: wake the wait in progress, if any. */
  wake(): void {
    this.waker?.();
  }

  /**
   * Await a source's next batch, but put a requested barrier in meanwhile: a source waiting for
   * data (an idle Kafka topic) must not hold checkpoints back. Safe, as no batch is half-routed
   * and the source counts only batches it has handed out in its position.
   */
  async next<T>(next: Promise<T>): Promise<T> {
    const NEXT = Symbol('next');
    const tagged = next.then((v) => ({ [NEXT]: true, v }) as const);
    for (;;) {
      const wake = new Promise<null>((r) => { this.waker = () => r(null); });
      const r = await Promise.race([tagged, wake]);
      this.waker = null;
      if (r !== null) return r.v;
      await this.inject();
    }
  }

  /**
   * Wait for `p` while putting in every barrier requested meanwhile, including one requested
   * before this started listening. Only where no source batch is in hand (next() must not do
   * that: a source's position may already count the batch its pending next() holds).
   */
  async serving(p: Promise<void>): Promise<void> {
    const DONE = Symbol('done');
    const done = p.then(() => DONE);
    for (;;) {
      if (this.requested()) { await this.inject(); continue; }
      const wake = new Promise<null>((r) => { this.waker = () => r(null); });
      const r = await Promise.race([done, wake]);
      this.waker = null;
      if (r === DONE) return;
    }
  }
}
