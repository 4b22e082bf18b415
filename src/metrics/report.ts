import { LatencyHistogram } from './histogram.js';
import type { WorkerStats } from '../worker/protocol.js';
import type { HotKeyEntries, HotKeyPairs } from '../join/hot-keys.js';

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

  /** Events diverted by --max-key-entries, per side. */
  keyOverflow(): [number, number] {
    const t: [number, number] = [0, 0];
    for (const w of this.workers) if (w?.hotKeys) { t[0] += w.hotKeys.diverted[0]; t[1] += w.hotKeys.diverted[1]; }
    return t;
  }

  /** The hottest keys over all workers (each key lives in one worker). */
  topKeys(n = 10): { byEntries: Array<HotKeyEntries & { worker: number }>; byPairsPerEvent: Array<HotKeyPairs & { worker: number }> } {
    const byEntries: Array<HotKeyEntries & { worker: number }> = [], byPairs: Array<HotKeyPairs & { worker: number }> = [];
    for (const w of this.workers) {
      if (!w?.hotKeys) continue;
      for (const e of w.hotKeys.byEntries) byEntries.push({ ...e, worker: w.index });
      for (const p of w.hotKeys.byPairsPerEvent) byPairs.push({ ...p, worker: w.index });
    }
    byEntries.sort((a, b) => b.entries - a.entries || b.diverted - a.diverted);
    byPairs.sort((a, b) => b.maxPairsPerEvent - a.maxPairsPerEvent);
    return { byEntries: byEntries.slice(0, n), byPairsPerEvent: byPairs.slice(0, n) };
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
