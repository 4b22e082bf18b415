/**
 * Latency tracing for diagnosis (JOINERY_TRACE=DIR): each thread records fixed-width rows of
 * numbers (a drain of a worker, a batch of the router, a GC pause) into a growing Float64Array and
 * writes them as TSV to DIR/NAME.tsv when it ends. Off (no cost beyond one branch) unless the
 * variable is set. Thread CPU and run-queue wait come from /proc/thread-self/schedstat (Linux): on a
 * shared machine the wait tells a thread starved of a core apart from one doing work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { mkdirs } from '../core/mkdirs.js';

export const TRACE_DIR = process.env.JOINERY_TRACE || '';

/** [on-CPU ms, run-queue wait ms] of the calling thread, or [0, 0] where schedstat is missing. */
export function threadSchedMs(): [number, number] {
  try {
    const f = fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    return [Number(f[0]) / 1e6, Number(f[1]) / 1e6];
  } catch {
    return [0, 0];
  }
}

export class TraceTable {
  private rows = new Float64Array(1 << 16);
  private n = 0;
  private readonly gc: number[] = [];
  private readonly obs: PerformanceObserver | null = null;
  constructor(private readonly name: string, private readonly columns: readonly string[]) {
    // GC pauses of this thread: start (epoch ms) and duration.
    this.obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gc.push(performance.timeOrigin + e.startTime, e.duration, (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0);
    });
    this.obs.observe({ entryTypes: ['gc'] });
  }
  add(...values: number[]): void {
    const w = this.columns.length;
    if ((this.n + 1) * w > this.rows.length) {
      const grown = new Float64Array(this.rows.length * 2);
      grown.set(this.rows);
      this.rows = grown;
    }
    this.rows.set(values, this.n * w);
    this.n++;
  }
  write(): void {
    this.obs?.disconnect();
    const w = this.columns.length;
    const lines = [this.columns.join('\t')];
    for (let i = 0; i < this.n; i++) lines.push(Array.from(this.rows.subarray(i * w, i * w + w), (v) => +v.toFixed(3)).join('\t'));
    mkdirs(TRACE_DIR);
    fs.writeFileSync(path.join(TRACE_DIR, `${this.name}.tsv`), lines.join('\n') + '\n');
    // kind (perf_hooks constants): 1 scavenge (minor), 4 mark-compact (major), 8 incremental marking, 16 weak callbacks.
    const g = ['start\tms\tkind'];
    for (let i = 0; i < this.gc.length; i += 3) g.push(`${this.gc[i].toFixed(3)}\t${this.gc[i + 1].toFixed(3)}\t${this.gc[i + 2]}`);
    fs.writeFileSync(path.join(TRACE_DIR, `${this.name}-gc.tsv`), g.join('\n') + '\n');
  }
}
