/**
 * Canonical keys of both inputs interned to dense indexes, straight from the extractor's bytes: an
 * open-addressing hash table over a byte arena, because a Map of strings (one string per event,
 * then hashed again) took a quarter of verify's time on 2.5 M events with 1.8 M distinct keys.
 */
export class KeyTable {
  private arena = new Uint8Array(1 << 20);
  private used = 0;
  private offsets = new Int32Array(1 << 16);
  private lengths = new Int32Array(1 << 16);
  private hashes = new Int32Array(1 << 16);
  /** Open addressing: key index + 1, 0 = empty. */
  private slots = new Int32Array(1 << 17);
  size = 0;

  /** Index of the key bytes b[s, e), added when new. */
  intern(b: Uint8Array, s: number, e: number): number {
    const h = hashBytes(b, s, e);
    const k = this.lookup(b, s, e, h);
    if (k >= 0) return k;
    return this.add(b, s, e, h);
  }

  /** Index of the key bytes b[s, e), or -1 when no input has it. */
  find(b: Uint8Array, s: number, e: number): number {
    return this.lookup(b, s, e, hashBytes(b, s, e));
  }

  /** The key's canonical text as latin1 (one char per byte of its UTF-8). */
  latin1(k: number): string {
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + this.offsets[k], this.lengths[k]).toString('latin1');
  }

  /** The key's canonical text. */
  text(k: number): string {
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + this.offsets[k], this.lengths[k]).toString('utf8');
  }

  private lookup(b: Uint8Array, s: number, e: number, h: number): number {
    const slots = this.slots, mask = slots.length - 1, n = e - s, arena = this.arena;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const v = slots[i];
      if (v === 0) return -1;
      const k = v - 1;
      if (this.hashes[k] !== h || this.lengths[k] !== n) continue;
      const o = this.offsets[k];
      let j = 0;
      while (j < n && arena[o + j] === b[s + j]) j++;
      if (j === n) return k;
    }
  }

  private add(b: Uint8Array, s: number, e: number, h: number): number {
    const n = e - s, k = this.size++;
    if (k === this.offsets.length) {
      this.offsets = grow32(this.offsets); this.lengths = grow32(this.lengths); this.hashes = grow32(this.hashes);
    }
    if (this.used + n > this.arena.length) {
      const a = new Uint8Array(Math.max(this.arena.length * 2, this.used + n));
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    this.arena.set(b.subarray(s, e), this.used);
    this.offsets[k] = this.used; this.lengths[k] = n; this.hashes[k] = h;
    this.used += n;
    if (this.size * 2 > this.slots.length) this.rehash();
    else this.place(k, h);
    return k;
  }

  private place(k: number, h: number): void {
    const slots = this.slots, mask = slots.length - 1;
    let i = h & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = k + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    for (let k = 0; k < this.size; k++) this.place(k, this.hashes[k]);
  }
}

function grow32(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** FNV-1a, then a murmur finaliser so that the low bits (the slot) depend on every byte. */
function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h;
}
