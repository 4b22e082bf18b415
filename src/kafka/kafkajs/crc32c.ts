/**
 * CRC32C (Castagnoli) of produced record batches. With @node-rs/crc32 (a prebuilt native module
 * using the CPU's CRC32 instructions, ~5 GB/s here) for buffers of NATIVE_MIN_BYTES or more; else,
 * and wherever that module does not load or gives a wrong check value, slicing-by-16 in JS:
 * kafkajs's table version reads one byte per step (~370 MB/s here; this one ~1.1 GB/s, one flat
 * table being faster in V8 than eight separate ones). Same polynomial and result as kafkajs's
 * (test/unit/fast-codec.test.ts compares them). JOINERY_CRC32C=js keeps the JS one.
 */
import { createRequire } from 'node:module';

const CRC_TABLE: Int32Array = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let s = 1; s < 16; s++) {
    for (let n = 0; n < 256; n++) { const prev = t[(s - 1) * 256 + n]; t[s * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]; }
  }
  return t;
})();

/** Below this the native call costs more than it saves (measured: even at 340 bytes, 0.28 against 0.33 µs). */
const NATIVE_MIN_BYTES = 512;

type NativeCrc = (input: Uint8Array, initialState?: number) => number;

function loadNative(): NativeCrc | null {
  if (process.env.JOINERY_CRC32C === 'js') return null;
  try {
    const f = (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown }).crc32c;
    if (typeof f !== 'function') return null;
    const check = new Uint8Array(1024).map((_, i) => (i * 131 + 7) & 0xff);
    // the standard check value, and one long enough to take the module's wide path
    if (((f as NativeCrc)(Buffer.from('123456789')) >>> 0) !== 0xe3069283) return null;
    if (((f as NativeCrc)(check) >>> 0) !== jsCrc32c(check, 0, check.length)) return null;
    return f as NativeCrc;
  } catch {
    return null;
  }
}

/** Which implementation computes long CRCs ('native' or 'js'), for the start-up debug line and tests. */
export let crc32cImpl: 'native' | 'js' = 'js';
let native: NativeCrc | null = null;

export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  if (native !== null && end - start >= NATIVE_MIN_BYTES) return native(start === 0 && end === buf.length ? buf : buf.subarray(start, end)) >>> 0;
  return jsCrc32c(buf, start, end);
}

export function jsCrc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const T = CRC_TABLE;
  let crc = -1;
  let i = start;
  for (const end16 = end - 16; i <= end16; i += 16) {
    crc ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    crc = T[3840 + (crc & 0xff)] ^ T[3584 + ((crc >>> 8) & 0xff)] ^ T[3328 + ((crc >>> 16) & 0xff)] ^ T[3072 + (crc >>> 24)]
      ^ T[2816 + buf[i + 4]] ^ T[2560 + buf[i + 5]] ^ T[2304 + buf[i + 6]] ^ T[2048 + buf[i + 7]]
      ^ T[1792 + buf[i + 8]] ^ T[1536 + buf[i + 9]] ^ T[1280 + buf[i + 10]] ^ T[1024 + buf[i + 11]]
      ^ T[768 + buf[i + 12]] ^ T[512 + buf[i + 13]] ^ T[256 + buf[i + 14]] ^ T[buf[i + 15]];
  }
  for (; i < end; i++) crc = T[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

// Both loops run before V8 optimizes the function (a few dozen calls: V8 collects no type feedback
// in a function's first calls). Optimized first on a long buffer (OSR in the 16-byte loop), its
// code had no feedback for the tail loop, and the cached OSR code deoptimized there at nearly
// every call (25 deopts and recompiles in a 1M-event Kafka run; 820 in 15,000 calls).
{
  const warm = new Uint8Array(39).map((_, i) => i * 37 + 1);
  for (let k = 0; k < 64; k++) jsCrc32c(warm, k & 7);
}
native = loadNative();
crc32cImpl = native ? 'native' : 'js';
