/**
 * Progress of a long verification: a bar redrawn on a terminal (stderr) once a second, or a
 * `verify progress` log record every 5 s otherwise (--progress on with stderr redirected). The
 * scan's share is measured in bytes of the files (records of Kafka topics have no known total);
 * the join's in partitions.
 */
import { log } from '../core/log.js';

const LABELS: Record<string, string> = { scan: 'reading', join: 'joining' };
const BAR = 24;

export class Progress {
  readonly startedMs = performance.now();
  phase = '';
  private lastMs = this.startedMs;
  private phaseStartMs = this.startedMs;
  private timer: NodeJS.Timeout | undefined;
  /** Wall time of each finished phase, ms. */
  readonly phasesMs: Record<string, number> = {};

  /** `sample` gives [done, total, records read so far] of the current phase. */
  constructor(private readonly on: boolean, private readonly sample: () => [number, number, number]) {
    if (on) {
      this.timer = setInterval(() => this.tick(), 250);
      this.timer.unref();
    }
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastMs < (process.stderr.isTTY ? 1000 : 5000)) return;
    this.lastMs = now;
    this.print(now);
  }

  setPhase(phase: string): void {
    const now = performance.now();
    if (this.phase !== '') this.phasesMs[this.phase] = Math.round(now - this.phaseStartMs);
    this.phaseStartMs = now;
    this.phase = phase;
    if (this.on) { this.lastMs = now; this.print(now); }
  }

  elapsedMs(): number { return performance.now() - this.startedMs; }

  private print(now: number): void {
    const [done, total, records] = this.sample();
    const s = (now - this.startedMs) / 1000, ps = (now - this.phaseStartMs) / 1000;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const rate = Math.round(records / s);
    const eta = frac > 0.01 ? Math.round(ps * (1 - frac) / frac) : undefined;
    if (process.stderr.isTTY) {
      const filled = Math.round(frac * BAR);
      const line = `joinery verify: ${LABELS[this.phase] ?? this.phase} [${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${(frac * 100).toFixed(0)}%` +
        `  ${records.toLocaleString('en-US')} records, ${rate.toLocaleString('en-US')}/s, ${s.toFixed(1)} s${eta !== undefined ? `, ETA ${eta} s` : ''}`;
      log.progress(line);
    } else {
      log.info('verify progress', { phase: this.phase, percent: Number((frac * 100).toFixed(1)), records, recordsPerSec: rate, elapsedMs: Math.round(now - this.startedMs), etaMs: eta === undefined ? undefined : eta * 1000 });
    }
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.phase !== '') this.phasesMs[this.phase] = Math.round(performance.now() - this.phaseStartMs);
    this.phase = '';
    if (this.on && process.stderr.isTTY) log.progress('');
  }
}
