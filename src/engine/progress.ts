/** The stats tick: CPU samples, the caller's onTick, and the progress line (--progress). */
import { log } from '../core/log.js';
import { nowMs } from '../core/units.js';
import type { CpuMeter } from '../metrics/cpu.js';
import { fmtCount, fmtRate, type MetricsHub } from '../metrics/report.js';
import type { Router } from '../router/router.js';

/** Starts ticking every `statsIntervalMs`; returns what stops it (and clears the live line). */
export function startProgress(p: {
  hub: MetricsHub; router: Router; cpu: CpuMeter; tty: boolean; statsIntervalMs: number; start: number;
  onTick?: (hub: MetricsHub) => void;
}): () => void {
  const { hub, router, cpu, tty, start } = p;
  let lastProcessed = 0, lastPairs = 0, lastT = start;
  const ticker = setInterval(() => {
    cpu.sample();
    p.onTick?.(hub);
    if (!tty) return;
    const t = nowMs();
    const processed = hub.eventsProcessed(), pairs = hub.sum('pairs');
    const dt = (t - lastT) / 1000;
    const wm = router.currentWatermark(), maxTs = router.tracker.maxEventTime();
    const wmLag = Number.isFinite(wm) && Number.isFinite(maxTs) ? `${((maxTs - wm) / 1000).toFixed(1)}s` : '-';
    const p99 = hub.intervalLatency.percentileMs(99);
    hub.intervalLatency.reset();
    const line = `[${((t - start) / 1000).toFixed(0)}s] in ${fmtRate((processed - lastProcessed) / dt)} ev/s  out ${fmtRate((pairs - lastPairs) / dt)} pairs/s  state ${fmtCount(hub.sum('stateEntries'))}  wm lag ${wmLag}  ring ${router.ringFill().map((f) => `${Math.round(f * 100)}%`).join('/')}  p99 ${p99.toFixed(1)}ms`;
    // The live line is for a terminal; --progress on without one gets a record per interval, with
    // the running totals (so a tool can take rates over any span: checkpoint-bench's steady state).
    if (log.isJson) {
      const u = process.cpuUsage();
      log.info(line, { progress: true, elapsedMs: Math.round(t - start), eventsIn: processed, pairs, cpuMs: Math.round((u.user + u.system) / 1000) });
    } else log.progress(line);
    lastProcessed = processed; lastPairs = pairs; lastT = t;
  }, p.statsIntervalMs);
  return () => {
    clearInterval(ticker);
    if (tty && !log.isJson) log.progress('');
  };
}

/**
 * The workers' restore progress, summed, as an info line at most every `everyMs`: a restore of tens
 * of GB takes minutes, and without it the log is silent from "resuming from checkpoint" to
 * "restored". Workers report their running totals every stats interval (the 'restoring' message).
 */
export class RestoreProgress {
  private readonly events: number[];
  private readonly filesRead: number[];
  private readonly files: number[];
  private lastLogMs: number;
  constructor(workers: number, private readonly checkpointId: number, private readonly startMs: number, private readonly everyMs = 5000) {
    this.events = new Array<number>(workers).fill(0);
    this.filesRead = new Array<number>(workers).fill(0);
    this.files = new Array<number>(workers).fill(0);
    this.lastLogMs = startMs;
  }

  /** Records worker `w`'s totals; returns the line to log when one is due, else null. */
  update(w: number, events: number, filesRead: number, files: number, nowMs: number): string | null {
    this.events[w] = events;
    this.filesRead[w] = filesRead;
    this.files[w] = files;
    if (nowMs - this.lastLogMs < this.everyMs) return null;
    this.lastLogMs = nowMs;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    return `joinery: restoring checkpoint ${this.checkpointId}: ${fmtCount(sum(this.events))} buffered events so far, ` +
      `${sum(this.filesRead)} of ${sum(this.files)} state file reads done (${((nowMs - this.startMs) / 1000).toFixed(0)}s)`;
  }
}
