import { LatencyHistogram } from './histogram.js';
import type { WorkerStats } from '../worker/protocol.js';

/** Merged view of all workers, fed by their periodic stats messages. */
export class MetricsHub {
  readonly latency = new LatencyHistogram();   // router read → output written, µs
  readonly lag = new LatencyHistogram();       // output written − event time, µs
  readonly intervalLatency = new LatencyHistogram();
  readonly workers: WorkerStats[] = [];

  update(s: WorkerStats, latency: string, lag: string): void {
    this.workers[s.index] = s;
    this.latency.addEncoded(latency);
    this.intervalLatency.addEncoded(latency);
    this.lag.addEncoded(lag);
  }

  sum<K extends keyof WorkerStats>(k: K): number {
    let t = 0;
    for (const w of this.workers) if (w) t += w[k] as unknown as number;
    return t;
  }

  eventsProcessed(): number {
    let t = 0;
    for (const w of this.workers) if (w) t += w.events[0] + w.events[1];
    return t;
  }
}

export function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}
