/**
 * Progress of a long verification on stderr: records read and elapsed time, one line a second on
 * a terminal (redrawn), every 5 s otherwise (--progress on with stderr redirected).
 */
export class Progress {
  readonly startedMs = performance.now();
  records = 0;
  phase = 'reading';
  private lastMs = this.startedMs;

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
    this.phase = phase;
    if (this.on) this.print(performance.now());
  }

  elapsedMs(): number { return performance.now() - this.startedMs; }

  private print(now: number): void {
    const s = (now - this.startedMs) / 1000;
    const line = `joinery verify: ${this.phase}, ${this.records.toLocaleString('en-US')} records read, ${s.toFixed(1)} s`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : line + '\n');
  }

  done(): void {
    if (this.on && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  }
}
