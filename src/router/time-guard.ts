import { formatDurationMs } from '../core/units.js';
import type { Source } from '../source/source.js';
import type { WatermarkTracker } from './watermarks.js';

/** The largest time a JavaScript Date holds: event times beyond ±this are not times. */
export const MAX_TIME_MS = 8.64e15;
/**
 * After this many records in a row of one partition lie too far ahead, its time has really jumped
 * (a gap in the data longer than --max-future), not a bad clock in one record: the guard follows.
 */
const FOLLOW_JUMP_RECORDS = 1000;

/**
 * The router's guard on event times (--max-future): one record with a clock years ahead would
 * otherwise move its partition's watermark there and turn every later record late. The router's
 * batch loop keeps the per-slot state in locals and asks here only when a time looks wrong.
 */
export class TimeGuard {
  /** --max-future (Infinity = off). */
  maxFutureMs = Infinity;
  /** Per slot: 1 = a live source (the wall clock bounds its event times too). */
  private readonly liveSlots: Uint8Array;
  /** Per slot: records in a row set aside as too far ahead. */
  readonly aheadRun: Uint32Array;
  private warnedFuture = false;

  constructor(private readonly tracker: WatermarkTracker,
    private readonly onFirstFuture: (reason: string) => void, private readonly onJump: (message: string) => void) {
    this.liveSlots = new Uint8Array(tracker.size);
    this.aheadRun = new Uint32Array(tracker.size);
  }

  configure(maxFutureMs: number, sources: readonly Source[]): void {
    this.maxFutureMs = maxFutureMs > 0 ? maxFutureMs : Infinity;
    for (const s of sources) if (s.live) for (const p of s.partitions) this.liveSlots[this.tracker.slot(p)] = 1;
  }

  /**
   * Latest acceptable event time on a partition now: its max event time so far plus --max-future
   * (none before its first event: inputs may well start days apart), and for live sources at most
   * the wall clock plus as much.
   */
  futureLimit(slot: number): number {
    const ref = this.tracker.maxTsOf(slot);
    let limit = ref === -Infinity ? Infinity : ref + this.maxFutureMs;
    if (this.liveSlots[slot]) limit = Math.min(limit, Date.now() + this.maxFutureMs);
    return limit;
  }

  /**
   * Why event time `ts` is unacceptable on this partition (`run`: records in a row of it set aside
   * as too far ahead so far), or null if it is fine after all.
   */
  badTime(slot: number, ts: number, run: number): string | null {
    if (!(ts >= -MAX_TIME_MS && ts <= MAX_TIME_MS)) return `event time ${ts} is not a time (beyond ±${MAX_TIME_MS} ms)`;
    if (ts <= this.futureLimit(slot)) return null;
    const ref = this.tracker.maxTsOf(slot);
    const flag = `(--max-future ${formatDurationMs(this.maxFutureMs)})`;
    const partitionWise = ref > -Infinity && ts > ref + this.maxFutureMs;
    if (partitionWise && run >= FOLLOW_JUMP_RECORDS && !(this.liveSlots[slot] && ts > Date.now() + this.maxFutureMs)) {
      this.onJump(`${FOLLOW_JUMP_RECORDS} records in a row of one partition lay more than ${formatDurationMs(this.maxFutureMs)} ahead of its event time ${ref}: taking it as a jump in the data and following it to ${ts}; the ${FOLLOW_JUMP_RECORDS} went to the dead letters (raise --max-future for such data)`);
      return null;
    }
    const reason = partitionWise
      ? `event time ${ts} is ${fmtAhead(ts - ref)} ahead of its partition's ${ref} ${flag}`
      : `event time ${ts} is ${fmtAhead(ts - Date.now())} ahead of the wall clock ${flag}`;
    if (!this.warnedFuture) { this.warnedFuture = true; this.onFirstFuture(reason); }
    return reason;
  }
}

function fmtAhead(ms: number): string {
  const d = ms / 86_400_000;
  if (d >= 365) return `${(d / 365.25).toFixed(1)} years`;
  if (d >= 1) return `${d.toFixed(1)} days`;
  return `${(ms / 3_600_000).toFixed(1)} hours`;
}
