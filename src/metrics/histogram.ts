/**
 * Latency histograms: hdr-histogram-js (WASM build, ~20 ns per record) per worker, shipped to the
 * main thread as compressed base64 (≈2 KB) and merged there. The only file importing it.
 * Values are recorded in microseconds; names of the readers say so.
 */
import * as hdr from 'hdr-histogram-js';

let wasmReady = false;
function init(): void {
  if (!wasmReady) {
    hdr.initWebAssemblySync(); // once per thread
    wasmReady = true;
  }
}

export class LatencyHistogram {
  private h: hdr.Histogram;
  constructor() {
    init();
    this.h = hdr.build({ useWebAssembly: true, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, autoResize: true });
  }
  recordUs(us: number): void {
    this.h.recordValue(us < 0 ? 0 : Math.round(us));
  }
  /** Encode and reset (interval histogram). */
  drainEncoded(): string {
    const s = hdr.encodeIntoCompressedBase64(this.h);
    this.h.reset();
    return s;
  }
  addEncoded(s: string): void {
    const other = hdr.decodeFromCompressedBase64(s, 32, true);
    this.h.add(other);
    other.destroy();
  }
  get count(): number {
    return this.h.totalCount;
  }
  percentileMs(p: number): number {
    return this.h.totalCount === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000;
  }
  maxMs(): number {
    return this.h.totalCount === 0 ? 0 : this.h.maxValue / 1000;
  }
  reset(): void {
    this.h.reset();
  }
  /**
   * Cumulative counts of recorded values ≤ each bound (ms, ascending), the total count and the sum
   * in ms: a Prometheus histogram of this HDR histogram (exact to its 3 significant digits).
   */
  bucketCounts(boundsMs: readonly number[]): { cumulative: number[]; count: number; sumMs: number } {
    const cumulative = boundsMs.map(() => 0);
    let sumUs = 0;
    if (this.h.totalCount > 0) {
      const js = hdr.decodeFromCompressedBase64(hdr.encodeIntoCompressedBase64(this.h), 32, false) as unknown as hdr.JsHistogram;
      const it = js.recordedValuesIterator;
      it.reset();
      while (it.hasNext()) {
        const v = it.next();
        const us = v.valueIteratedTo, n = v.countAtValueIteratedTo;
        sumUs += us * n;
        for (let i = boundsMs.length - 1; i >= 0 && us <= boundsMs[i] * 1000; i--) cumulative[i] += n;
      }
      js.destroy();
    }
    return { cumulative, count: this.h.totalCount, sumMs: sumUs / 1000 };
  }
  destroy(): void {
    this.h.destroy();
  }
}
