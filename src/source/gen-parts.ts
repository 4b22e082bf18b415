/**
 * The generator's building blocks (src/source/generator.ts): a seeded random number generator,
 * Zipf-distributed draws, and the typed-array queues that hold released events in arrival order.
 * No heap object per event: the generator runs at millions of events per second.
 */


/** sfc32, seeded through splitmix32. Fast, 32-bit state words, passes PractRand to 2^60 bytes. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    let s = (seed >>> 0) ^ Math.floor(seed / 0x100000000);
    const mix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix(); this.b = mix(); this.c = mix(); this.d = 1;
    for (let i = 0; i < 15; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** The four state words (a generator snapshot stores them). */
  get state(): [number, number, number, number] { return [this.a, this.b, this.c, this.d]; }
  set state(w: [number, number, number, number]) { this.a = w[0] | 0; this.b = w[1] | 0; this.c = w[2] | 0; this.d = w[3] | 0; }
  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** Exponential with this mean (0 when mean is 0). */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }
}

/**
 * Walker/Vose alias table: O(1) sampling of rank k (0-based) with weight 1/(k+1)^skew. Threshold
 * and alias are interleaved in one Uint32Array so a sample touches one cache line.
 */
export class ZipfTable {
  private readonly table: Uint32Array; // [threshold × 2^32, alias] per slot
  constructor(readonly n: number, skew: number) {
    const w = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) { w[k] = Math.pow(k + 1, -skew); sum += w[k]; }
    const prob = new Float64Array(n);
    const alias = new Int32Array(n);
    const small = new Int32Array(n), large = new Int32Array(n);
    let ns = 0, nl = 0;
    for (let k = 0; k < n; k++) {
      w[k] = (w[k] * n) / sum;
      if (w[k] < 1) small[ns++] = k; else large[nl++] = k;
    }
    while (ns > 0 && nl > 0) {
      const sm = small[--ns], l = large[--nl];
      prob[sm] = w[sm];
      alias[sm] = l;
      w[l] = w[l] + w[sm] - 1;
      if (w[l] < 1) small[ns++] = l; else large[nl++] = l;
    }
    while (nl > 0) { const l = large[--nl]; prob[l] = 1; alias[l] = l; }
    while (ns > 0) { const sm = small[--ns]; prob[sm] = 1; alias[sm] = sm; } // rounding leftovers
    this.table = new Uint32Array(2 * n);
    for (let k = 0; k < n; k++) {
      this.table[2 * k] = Math.min(0xffffffff, Math.round(prob[k] * 4294967296));
      this.table[2 * k + 1] = prob[k] >= 1 ? k : alias[k];
    }
  }
  sample(rng: Rng): number {
    const i = Math.floor((rng.u32() * this.n) / 4294967296);
    return rng.u32() < this.table[2 * i] ? i : this.table[2 * i + 1];
  }
}

const zipfCache = new Map<string, ZipfTable>();
export function zipf(n: number, skew: number): ZipfTable {
  const k = `${n}:${skew}`;
  let t = zipfCache.get(k);
  if (!t) { t = new ZipfTable(n, skew); zipfCache.set(k, t); }
  return t;
}

/**
 * Binary min-heap of (key, pool index), each pair side by side in one Float64Array ([key, index]
 * at 2i, 2i + 1): a level of the sift touches one cache line, not one in each of two arrays (the
 * plays' heap holds ~50k events). The comparisons and moves are those of the textbook heap, so
 * equal keys (the plays' whole-millisecond times) leave it in the same order as ever: the
 * generator's streams depend on it.
 */
export class MinHeap {
  private kv = new Float64Array(2048);
  size = 0;
  get topKey(): number { return this.kv[0]; }
  push(key: number, v: number): void {
    if (2 * this.size === this.kv.length) {
      const k = new Float64Array(this.kv.length * 2); k.set(this.kv); this.kv = k;
    }
    const kv = this.kv;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = kv[2 * parent];
      if (pk <= key) break;
      kv[2 * i] = pk; kv[2 * i + 1] = kv[2 * parent + 1];
      i = parent;
    }
    kv[2 * i] = key; kv[2 * i + 1] = v;
  }
  pop(): number {
    const kv = this.kv;
    const top = kv[1] | 0;
    const n = --this.size;
    if (n > 0) {
      const key = kv[2 * n], v = kv[2 * n + 1];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && kv[2 * c + 2] < kv[2 * c]) c++;
        const ck = kv[2 * c];
        if (ck >= key) break;
        kv[2 * i] = ck; kv[2 * i + 1] = kv[2 * c + 1];
        i = c;
      }
      kv[2 * i] = key; kv[2 * i + 1] = v;
    }
    return top;
  }
  /** The [key, value] pairs in heap order (a view: copy before the next push). */
  entries(): Float64Array { return this.kv.subarray(0, 2 * this.size); }
  /** Replace the contents by pairs in heap order, as entries() gave them (the order is the heap's invariant, kept as is). */
  load(kv: Float64Array): void {
    this.kv = new Float64Array(Math.max(2048, 2 ** Math.ceil(Math.log2(kv.length + 2))));
    this.kv.set(kv);
    this.size = kv.length / 2;
  }
}

/** Growable FIFO of pool indices. */
export class IndexQueue {
  private buf = new Int32Array(1024);
  private head = 0;
  private tail = 0;
  get size(): number { return this.tail - this.head; }
  push(v: number): void {
    if (this.tail === this.buf.length) {
      const n = this.tail - this.head;
      if (n * 2 <= this.buf.length) this.buf.copyWithin(0, this.head, this.tail);
      else {
        const nb = new Int32Array(this.buf.length * 2);
        nb.set(this.buf.subarray(this.head, this.tail));
        this.buf = nb;
      }
      this.head = 0;
      this.tail = n;
    }
    this.buf[this.tail++] = v;
  }
  shift(): number {
    return this.buf[this.head++];
  }
  /** The queued values, first to leave first (a view). */
  items(): Int32Array { return this.buf.subarray(this.head, this.tail); }
  /** Replace the contents by these values, in order. */
  load(v: Int32Array): void {
    this.buf = new Int32Array(Math.max(1024, v.length * 2));
    this.buf.set(v);
    this.head = 0;
    this.tail = v.length;
  }
}
