/**
 * Progress of a long verification on stderr: records read and elapsed time, one line a second on
 * a terminal (redrawn), every 5 s otherwise (--progress on with stderr redirected).
 */
const LABELS: Record<string, string> = {
  readLeft: 'reading the left input', readRight: 'reading the right input', join: 'joining', readOutput: 'reading the output', compare: 'comparing',
};

export class Progress {
  readonly startedMs = performance.now();
  records = 0;
  phase = '';
  private lastMs = this.startedMs;
  private phaseStartMs = this.startedMs;
  /** Wall time of each finished phase, ms. */
  readonly phasesMs: Record<string, number> = {};

  constructor(private readonly on: boolean) {}

  add(n: number): void {
    this.records += n;
    if (!this.on) return;
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
    if (this.on) this.print(performance.now());
  }

  elapsedMs(): number { return performance.now() - this.startedMs; }

  private setPhaseQuietly(): void {
    if (this.phase !== '') this.phasesMs[this.phase] = Math.round(performance.now() - this.phaseStartMs);
    this.phase = '';
  }

  private print(now: number): void {
    const s = (now - this.startedMs) / 1000;
    const line = `joinery verify: ${LABELS[this.phase] ?? this.phase}, ${this.records.toLocaleString('en-US')} records read, ${s.toFixed(1)} s`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : line + '\n');
  }

  done(): void {
    this.setPhaseQuietly();
    if (this.on && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  }
}
