/**
 * The multiset of rows: row code (see batch.ts rowCode) → how often the batch join has it and how
 * often the output has it. Open addressing over typed arrays: row codes lie beyond 2^31, so a Map
 * would allocate a heap number per lookup. Iteration follows first insertion (the batch's order).
 */
export class RowCounts {
  private codes = new Float64Array(1 << 16);
  private expected = new Int32Array(1 << 16);
  private got = new Int32Array(1 << 16);
  /** Slot + 1 per entry in insertion order. */
  private order = new Int32Array(1 << 15);
  size = 0;

  /** Slot of the code, added (with zero counts) when new. */
  slot(code: number): number {
    const codes = this.codes, mask = codes.length - 1;
    // codes are (l + 1) · 2^26 + (r + 1): mix both halves
    const lo = code % 67108864, hi = (code - lo) / 67108864;
    let i = (Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi, 0x85ebca6b)) & mask;
    for (;;) {
      const c = codes[i];
      if (c === code) return i;
      if (c === 0) break;
      i = (i + 1) & mask;
    }
    if ((this.size + 1) * 2 > codes.length) {
      this.grow();
      return this.slot(code);
    }
    codes[i] = code;
    if (this.size === this.order.length) { const o = new Int32Array(this.order.length * 2); o.set(this.order); this.order = o; }
    this.order[this.size++] = i + 1;
    return i;
  }

  addExpected(code: number): void {
    const i = this.slot(code); // first: it may grow the arrays
    this.expected[i]++;
  }

  /** Counts one more output row; returns its slot (expectedAt, gotAt: no array per row). */
  addGot(code: number): number {
    const i = this.slot(code);
    this.got[i]++;
    return i;
  }

  expectedAt(slot: number): number { return this.expected[slot]; }
  gotAt(slot: number): number { return this.got[slot]; }

  /** Every row in insertion order. */
  forEach(fn: (code: number, expected: number, got: number) => void): void {
    for (let j = 0; j < this.size; j++) {
      const i = this.order[j] - 1;
      fn(this.codes[i], this.expected[i], this.got[i]);
    }
  }

  private grow(): void {
    const oldCodes = this.codes, oldExp = this.expected, oldGot = this.got, oldOrder = this.order.slice(0, this.size);
    const cap = oldCodes.length * 2;
    this.codes = new Float64Array(cap); this.expected = new Int32Array(cap); this.got = new Int32Array(cap);
    this.size = 0;
    for (let j = 0; j < oldOrder.length; j++) {
      const o = oldOrder[j] - 1;
      const i = this.slot(oldCodes[o]);
      this.expected[i] = oldExp[o]; this.got[i] = oldGot[o];
    }
  }
}
