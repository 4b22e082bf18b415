/**
 * Canonical keys of both inputs interned to dense indexes, straight from the extractor's bytes: an
 * open-addressing hash table over a byte arena, because a Map of strings (one string per event,
 * then hashed again) took a quarter of verify's time on 2.5 M events with 1.8 M distinct keys.
 */
export class KeyTable {
  private arena: Uint8Array;
  private used = 0;
  /** Per key: [arena offset, length]. */
  private meta: Int32Array;
  /**
   * Open addressing, two Int32 per slot: [key index + 1 (0 = empty), hash]. The hash sits next to
   * the index so a probe that does not match costs one cache line, not three.
   */
  private slots: Int32Array;
  size = 0;

  /** `expectedKeys`: sizes the tables up front (a partition knows how many records it holds). */
  constructor(expectedKeys = 1 << 16, expectedBytes = 1 << 20) {
    let slots = 1 << 10;
    while (slots < expectedKeys * 4) slots *= 2;
    this.slots = new Int32Array(slots);
    this.meta = new Int32Array(Math.max(1 << 10, expectedKeys * 2));
    this.arena = new Uint8Array(Math.max(1 << 12, expectedBytes));
  }

  /** Index of the key bytes b[s, e), added when new. */
  intern(b: Uint8Array, s: number, e: number): number {
    return this.internHashed(b, s, e, hashBytes(b, s, e));
  }

  /** As intern, with the key's hashBytes already known (it travels with a spilled record). */
  internHashed(b: Uint8Array, s: number, e: number, h: number): number {
    const k = this.lookup(b, s, e, h);
    if (k >= 0) return k;
    return this.add(b, s, e, h);
  }

  /** Index of the key bytes b[s, e), or -1 when no input has it. */
  find(b: Uint8Array, s: number, e: number): number {
    return this.lookup(b, s, e, hashBytes(b, s, e));
  }

  findHashed(b: Uint8Array, s: number, e: number, h: number): number {
    return this.lookup(b, s, e, h);
  }

  /** The key's canonical text as latin1 (one char per byte of its UTF-8). */
  latin1(k: number): string {
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + this.meta[2 * k], this.meta[2 * k + 1]).toString('latin1');
  }

  /** The key's canonical text. */
  text(k: number): string {
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + this.meta[2 * k], this.meta[2 * k + 1]).toString('utf8');
  }

  private lookup(b: Uint8Array, s: number, e: number, h: number): number {
    const slots = this.slots, mask = (slots.length >> 1) - 1, n = e - s, arena = this.arena, meta = this.meta;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const v = slots[2 * i];
      if (v === 0) return -1;
      if (slots[2 * i + 1] !== h) continue;
      const k = v - 1;
      if (meta[2 * k + 1] !== n) continue;
      const o = meta[2 * k];
      let j = 0;
      while (j < n && arena[o + j] === b[s + j]) j++;
      if (j === n) return k;
    }
  }

  private add(b: Uint8Array, s: number, e: number, h: number): number {
    const n = e - s, k = this.size++;
    if (2 * k + 2 > this.meta.length) this.meta = grow32(this.meta);
    if (this.used + n > this.arena.length) {
      const a = new Uint8Array(Math.max(this.arena.length * 2, this.used + n));
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    this.arena.set(b.subarray(s, e), this.used);
    this.meta[2 * k] = this.used; this.meta[2 * k + 1] = n;
    this.used += n;
    if (this.size * 4 > this.slots.length) this.rehash(); // load ≤ 1/2
    this.place(this.slots, k, h);
    return k;
  }

  private place(slots: Int32Array, k: number, h: number): void {
    const mask = (slots.length >> 1) - 1;
    let i = h & mask;
    while (slots[2 * i] !== 0) i = (i + 1) & mask;
    slots[2 * i] = k + 1;
    slots[2 * i + 1] = h;
  }

  private rehash(): void {
    const old = this.slots, next = new Int32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.place(next, old[i] - 1, old[i + 1]);
    this.slots = next;
  }
}

function grow32(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** FNV-1a, then a murmur finaliser so that the low bits (the slot) depend on every byte. */
export function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h;
}
