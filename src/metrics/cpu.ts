/**
 * CPU time per thread of this process, for "CPU µs per input event" next to events/s (CPU time
 * survives a noisy neighbour better than wall time does).
 *
 * Node 20 has no per-thread CPU API, so on Linux each thread's on-CPU time is read from
 * /proc/self/task/TID/schedstat (nanoseconds; /proc/…/stat would give 10 ms ticks). Worker
 * threads all carry the comm name "node", so each learns its own tid from /proc/thread-self and
 * reports it. A thread's task entry vanishes when it exits, so readings are sampled during the run
 * and the last one counts; what is not attributed to a named thread (V8 GC and compiler threads,
 * libuv's pool, the tail of a thread after its last sample) is "other", so the parts add up to the
 * process total. Elsewhere only the process total is reported.
 */
import * as fs from 'node:fs';

/** This thread's kernel task id, or null where /proc/thread-self does not exist (not Linux). */
export function currentTid(): number | null {
  try {
    const t = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(t) && t > 0 ? t : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/…/stat times (USER_HZ: 100 on every mainstream Linux build). */
const USER_HZ = 100;

/** On-CPU nanoseconds of a thread of this process, or null if it is gone (or not Linux). */
export function threadCpuNs(tid: number): number | null {
  try {
    return Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
  } catch {
    // Kernels built without CONFIG_SCHED_INFO have no schedstat: utime + stime in ticks.
    try {
      const f = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return ((Number(rest[11]) + Number(rest[12])) * 1e9) / USER_HZ;
    } catch {
      return null;
    }
  }
}

/** Process CPU time (user + system, every thread, exited ones included), in ns. */
function processCpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export interface ThreadCpu { name: string; ms: number; usPerEvent: number }

export interface CpuSummary {
  /** Process CPU over the measured interval (all threads). */
  totalMs: number;
  usPerEvent: number;
  /** Linux only: named threads (router = the main thread), then "other"; sums to totalMs. */
  threads?: ThreadCpu[];
}

/** Report order: the router (main thread), the workers by index, then the rest. */
const rank = (name: string) => (name === 'router' ? 0 : name.startsWith('worker-') ? 1 : 2);

export class CpuMeter {
  private readonly threads = new Map<string, { tid: number; startNs: number; lastNs: number }>();
  private startNs = processCpuNs();
  private readonly perThread: boolean;

  constructor() {
    const main = currentTid();
    this.perThread = main !== null;
    if (main !== null) this.add('router', main);
  }

  /** A thread to report under `name`; its CPU counts from now (or from the last start()). */
  add(name: string, tid: number | null | undefined): void {
    if (!this.perThread || tid == null) return;
    const ns = threadCpuNs(tid);
    if (ns !== null) this.threads.set(name, { tid, startNs: ns, lastNs: ns });
  }

  /** Start the measured interval here. */
  start(): void {
    this.startNs = processCpuNs();
    for (const t of this.threads.values()) { t.startNs = t.lastNs = threadCpuNs(t.tid) ?? t.lastNs; }
  }

  /** Take a reading of every live thread (call before a thread exits, and now and then). */
  sample(): void {
    for (const t of this.threads.values()) {
      const ns = threadCpuNs(t.tid);
      if (ns !== null) t.lastNs = ns;
    }
  }

  /** CPU since start() per input event (events = input events of both sides). */
  summary(events: number): CpuSummary {
    this.sample();
    const totalNs = Math.max(0, processCpuNs() - this.startNs);
    const per = (ns: number) => (events > 0 ? ns / 1000 / events : 0);
    const out: CpuSummary = { totalMs: totalNs / 1e6, usPerEvent: per(totalNs) };
    if (this.perThread) {
      const threads: ThreadCpu[] = [];
      let named = 0;
      for (const [name, t] of [...this.threads].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }))) {
        const ns = Math.max(0, t.lastNs - t.startNs);
        named += ns;
        threads.push({ name, ms: ns / 1e6, usPerEvent: per(ns) });
      }
      // The process total comes from getrusage, the threads from the scheduler: the two clocks
      // differ by a few ms, so "other" is clamped at zero rather than shown negative.
      const other = Math.max(0, totalNs - named);
      threads.push({ name: 'other', ms: other / 1e6, usPerEvent: per(other) });
      out.threads = threads;
    }
    return out;
  }
}

/** One line: "CPU 12.3 µs/event (router 4.1, worker-0 3.0, worker-1 3.2, other 2.0)". */
export function formatCpu(c: CpuSummary): string {
  const parts = c.threads?.map((t) => `${t.name} ${t.usPerEvent.toFixed(1)}`).join(', ');
  return `${c.usPerEvent.toFixed(1)} µs/event, ${(c.totalMs / 1000).toFixed(2)} s CPU${parts ? ` (${parts})` : ''}`;
}
