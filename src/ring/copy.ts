/**
 * Byte copies on the per-event paths (router → ring, ring → arena). Measured on the 2-core box
 * (Node 20, one copy per call): a byte loop writing into a SharedArrayBuffer costs ~2.6 ns a byte
 * (25 bytes 65 ns, 82 bytes 217 ns); 4-byte DataView words cost about a third of that (25 bytes
 * 20 ns); `set` from a fresh plain view costs ~50 ns whatever the size (82 bytes 62 ns), and
 * `subarray` instead of the plain view adds a species-constructor call (~30 ns) and the same garbage.
 * Two words per iteration (issue 13): 90 bytes 30 ns against 88 ns for `set` (a fresh view, then
 * the builtin's buffer lookup and memmove), 256 bytes 73 against 134 ns (CPU time, loaded box).
 */

/** At most this many bytes are copied in words; more go through one `set`. */
export const WORD_COPY_MAX_BYTES = 256;

/**
 * Copies n bytes from src[s…] to dst[d…]. `sdv`/`ddv` are DataViews over the whole buffers of
 * `src`/`dst` (byte 0 of the DataView = byte 0 of the typed array).
 */
export function copyBytes(dst: Uint8Array, ddv: DataView, d: number, src: Uint8Array, sdv: DataView, s: number, n: number): void {
  if (n > WORD_COPY_MAX_BYTES) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset + s, n), d);
    return;
  }
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    ddv.setUint32(d + j, sdv.getUint32(s + j, true), true);
    ddv.setUint32(d + j + 4, sdv.getUint32(s + j + 4, true), true);
  }
  if (j + 4 <= n) { ddv.setUint32(d + j, sdv.getUint32(s + j, true), true); j += 4; }
  for (; j < n; j++) dst[d + j] = src[s + j];
}
