import type { CheckpointStats } from '../checkpoint/coordinator.js';
import type { Config } from '../config/schema.js';
import { EXIT_CODES } from '../core/errors.js';
import { formatCpu, type CpuMeter, type CpuSummary } from '../metrics/cpu.js';
import { fmtCount, fmtRate, type MetricsHub } from '../metrics/report.js';
import type { Router } from '../router/router.js';

export interface Summary {
  elapsedMs: number;
  eventsIn: [number, number];
  eventsPerSec: number;
  pairs: number;
  pairsPerSec: number;
  outputRecords: number;
  duplicates: number;
  late: number;
  deadLettered: number;
  /** Events diverted by --max-key-entries (left, right). */
  keyOverflow: [number, number];
  unmatchedLeft: number;
  unmatchedRight: number;
  stateLeft: number;
  /** Most events buffered in the join state at once (sum of each worker's peak). */
  peakStateEntries: number;
  /** Of deadLettered: event times too far ahead (--max-future) or not times at all. */
  badTime: number;
  /** Times an input partition was paused for running ahead in event time (--max-drift). */
  alignPauses: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  workers: number;
  state: string;
  backpressureWaits: number;
  mainHeapUsedBytes: number;
  /** CPU time from the start of input to the end, per input event; per thread on Linux. */
  cpu?: CpuSummary;
  /** Present when checkpointing: what this run's checkpoints did. */
  checkpoints?: {
    completed: number; failed: number; lastId: number; p50DurationMs: number; maxDurationMs: number; lastNewBytes: number; lastStateBytes: number; compactions: number; expiredFiles?: number; restoredFrom: number | null; restoreMs: number | null;
    /** Present (true) when the run's last checkpoint, at a stop or at the end of input, failed: see exitCodeOf. */
    finalFailed?: true;
  };
  /** Present when rebuilding (--rebuild-from): records replayed and joined, skipped (before TIME), late/malformed ones not written again, output suppressed. */
  rebuild?: { replayed: number; skipped: number; rejected: number; suppressedPairs: number; suppressedUnmatched: number; reachedResume: boolean };
  /** True when a stop signal ended the run before its inputs did. */
  stopped?: boolean;
  /** Kafka group member: how many times its assignment was re-planned after a rebalance. */
  rebalances?: number;
}

/** The run's figures, taken once everything has ended. */
export function buildSummary(p: {
  cfg: Config; hub: MetricsHub; router: Router; cpu: CpuMeter; elapsedMs: number;
  checkpoints: CheckpointStats | null; restoredFrom: number | null; restoreMs: number; stopped: boolean; finalCheckpointFailed?: boolean;
}): Summary {
  const { cfg, hub, router, cpu, elapsedMs } = p;
  const eventsIn: [number, number] = [router.counters.read[0], router.counters.read[1]];
  const pairs = hub.sum('pairs');
  const summary: Summary = {
    elapsedMs,
    eventsIn,
    eventsPerSec: ((eventsIn[0] + eventsIn[1]) / elapsedMs) * 1000,
    pairs,
    pairsPerSec: (pairs / elapsedMs) * 1000,
    outputRecords: hub.sum('outputRecords'),
    duplicates: hub.sum('duplicates'),
    late: router.counters.late,
    deadLettered: router.counters.dead,
    keyOverflow: hub.keyOverflow(),
    unmatchedLeft: hub.sum('unmatchedLeft'),
    unmatchedRight: hub.sum('unmatchedRight'),
    stateLeft: hub.sum('stateEntries'),
    peakStateEntries: hub.sum('peakStateEntries'),
    badTime: router.counters.badTime,
    alignPauses: router.aligner.pauses,
    p50Ms: hub.latency.percentileMs(50),
    p99Ms: hub.latency.percentileMs(99),
    p999Ms: hub.latency.percentileMs(99.9),
    maxMs: hub.latency.maxMs(),
    workers: cfg.workers,
    state: cfg.state,
    backpressureWaits: router.counters.backpressureWaits,
    mainHeapUsedBytes: process.memoryUsage().heapUsed,
    cpu: cpu.summary(eventsIn[0] + eventsIn[1]),
  };
  if (p.checkpoints) {
    summary.checkpoints = checkpointSummary(p.checkpoints, p.restoredFrom, p.restoredFrom !== null ? p.restoreMs : null);
    if (p.finalCheckpointFailed) summary.checkpoints.finalFailed = true;
  }
  if (router.replay) {
    const c = router.replay.counters;
    summary.rebuild = { ...c, suppressedPairs: hub.sum('suppressedPairs'), suppressedUnmatched: hub.sum('suppressedUnmatched'), reachedResume: !router.replay.active };
  }
  if (p.stopped) summary.stopped = true;
  return summary;
}

function checkpointSummary(st: CheckpointStats, restoredFrom: number | null, restoreMs: number | null): NonNullable<Summary['checkpoints']> {
  const d = [...st.durationsMs].sort((a, b) => a - b);
  return {
    completed: st.completed, failed: st.failed, lastId: st.lastId, p50DurationMs: d.length ? d[Math.floor(d.length / 2)] : 0,
    maxDurationMs: d.length ? d[d.length - 1] : 0, lastNewBytes: st.lastNewBytes, lastStateBytes: st.lastStateBytes,
    compactions: st.compactions, expiredFiles: st.expiredFiles, restoredFrom, restoreMs,
  };
}

/** A finished run's exit code: E_FINAL_CHECKPOINT's (5) when its last checkpoint failed, else 0. */
export function exitCodeOf(s: Summary): number {
  return s.checkpoints?.finalFailed ? EXIT_CODES.E_FINAL_CHECKPOINT : 0;
}

export function fmtBytes(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} KB`;
}

export function formatSummary(s: Summary): string {
  const lines = [
    `joinery: done in ${(s.elapsedMs / 1000).toFixed(2)}s with ${s.workers} worker(s), ${s.state} state`,
    `  events in        left ${fmtCount(s.eventsIn[0])}, right ${fmtCount(s.eventsIn[1])} (${fmtRate(s.eventsPerSec)} events/s)`,
    `  duplicates       ${fmtCount(s.duplicates)}`,
    `  late             ${fmtCount(s.late)}`,
    `  dead-lettered    ${fmtCount(s.deadLettered)}${s.badTime ? ` (${fmtCount(s.badTime)} with event times too far ahead or not times)` : ''}`,
    ...(s.keyOverflow[0] + s.keyOverflow[1] > 0 ? [`  key overflow     left ${fmtCount(s.keyOverflow[0])}, right ${fmtCount(s.keyOverflow[1])} (--max-key-entries)`] : []),
    `  pairs            ${fmtCount(s.pairs)} (${fmtRate(s.pairsPerSec)} pairs/s)`,
    `  unmatched        left ${fmtCount(s.unmatchedLeft)}, right ${fmtCount(s.unmatchedRight)}`,
    `  state left       ${fmtCount(s.stateLeft)} entries (peak ${fmtCount(s.peakStateEntries)}${s.alignPauses ? `; inputs paused ${fmtCount(s.alignPauses)}× to stay aligned in event time` : ''})`,
    ...(s.cpu ? [`  cpu              ${formatCpu(s.cpu)}`] : []),
    `  latency          p50 ${s.p50Ms.toFixed(2)}ms  p99 ${s.p99Ms.toFixed(2)}ms  p99.9 ${s.p999Ms.toFixed(2)}ms  max ${s.maxMs.toFixed(2)}ms (router read → output written)`,
  ];
  const c = s.checkpoints;
  if (c) {
    lines.push(`  checkpoints      ${c.completed} taken, ${c.failed} failed, last #${c.lastId}: ${fmtBytes(c.lastNewBytes)} new, ${fmtBytes(c.lastStateBytes)} state; duration p50 ${c.p50DurationMs.toFixed(0)}ms max ${c.maxDurationMs.toFixed(0)}ms${c.compactions ? `; ${c.compactions} compaction(s)` : ''}${c.expiredFiles ? `; ${c.expiredFiles} expired file(s) dropped unread` : ''}${c.finalFailed ? '; the last one FAILED' : ''}`);
    if (c.restoredFrom !== null) lines.push(`  restored         from checkpoint ${c.restoredFrom} in ${((c.restoreMs ?? 0) / 1000).toFixed(1)}s`);
  }
  const rb = s.rebuild;
  if (rb) lines.push(`  rebuild          replayed ${fmtCount(rb.replayed)} (skipped ${fmtCount(rb.skipped)} before --rebuild-from), suppressed ${fmtCount(rb.suppressedPairs)} pairs and ${fmtCount(rb.suppressedUnmatched)} unmatched rows emitted before the resume position${rb.reachedResume ? '' : '; STOPPED BEFORE THE RESUME POSITION: its output is incomplete, rebuild again'}`);
  if (s.stopped) lines.push('  stopped          by signal before the end of input (resume with the same command)');
  return lines.join('\n') + '\n';
}
