import { RingProducer } from '../ring/ring.js';
import type { LogPosition } from '../source/source.js';

/** A routed batch whose source position can be committed once every ring has consumed up to `tails`. */
interface PendingPosition extends LogPosition { tails: number[] }

/**
 * Log positions of routed batches, in routing order, until every worker has applied their
 * records: without checkpoints the consumer offsets are committed only for those (a crash then
 * repeats, never skips).
 */
export class AppliedPositions {
  private pending: PendingPosition[] = [];

  /** Copied: a source may reuse a batch, and its position, once asked for the next one. */
  push(at: LogPosition, tails: number[]): void {
    this.pending.push({ topic: at.topic, partition: at.partition, offset: at.offset, tails });
  }

  /** Positions applied by every worker given each ring's released head (u32), taken off the list; per log partition the latest wins. */
  take(heads: readonly number[]): LogPosition[] {
    const out = new Map<string, LogPosition>();
    let n = 0;
    for (const p of this.pending) {
      if (!p.tails.every((t, w) => RingProducer.reached(heads[w], t))) break; // later batches have later tails
      out.set(`${p.topic}\0${p.partition}`, { topic: p.topic, partition: p.partition, offset: p.offset });
      n++;
    }
    this.pending.splice(0, n);
    return [...out.values()];
  }
}
