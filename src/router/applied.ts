import { RingProducer } from '../ring/ring.js';

/** A routed batch whose source position can be committed once every ring has consumed up to `tails`. */
interface PendingPosition { topic: string; partition: number; nextOffset: string; tails: number[] }

/**
 * Kafka positions of routed batches, in routing order, until every worker has applied their
 * records: without checkpoints the consumer offsets are committed only for those (a crash then
 * repeats, never skips).
 */
export class AppliedPositions {
  private pending: PendingPosition[] = [];

  push(topic: string, partition: number, nextOffset: string, tails: number[]): void {
    this.pending.push({ topic, partition, nextOffset, tails });
  }

  /** Positions applied by every worker given each ring's released head (u32), taken off the list; per topic-partition the latest wins. */
  take(heads: readonly number[]): Array<{ topic: string; partition: number; offset: string }> {
    const out = new Map<string, { topic: string; partition: number; offset: string }>();
    let n = 0;
    for (const p of this.pending) {
      if (!p.tails.every((t, w) => RingProducer.reached(heads[w], t))) break; // later batches have later tails
      out.set(`${p.topic}\0${p.partition}`, { topic: p.topic, partition: p.partition, offset: p.nextOffset });
      n++;
    }
    this.pending.splice(0, n);
    return [...out.values()];
  }
}
