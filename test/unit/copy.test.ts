import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyBytes, WORD_COPY_MAX_BYTES } from '../../src/ring/copy.js';

test('copyBytes copies exactly n bytes between any offsets, into a SharedArrayBuffer, from views with a byteOffset', () => {
  const srcBuf = new Uint8Array(512);
  for (let i = 0; i < srcBuf.length; i++) srcBuf[i] = (i * 31 + 7) & 0xff;
  const src = srcBuf.subarray(3, 400); // a view that does not start at byte 0 of its buffer
  const sdv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const dst = new Uint8Array(new SharedArrayBuffer(512));
  const ddv = new DataView(dst.buffer);
  for (const n of [0, 1, 3, 4, 5, 7, 8, 25, WORD_COPY_MAX_BYTES - 1, WORD_COPY_MAX_BYTES, WORD_COPY_MAX_BYTES + 1, 82, 200]) {
    for (const s of [0, 1, 2, 5, 13]) {
      for (const d of [0, 3, 8, 17]) {
        dst.fill(0xee);
        copyBytes(dst, ddv, d, src, sdv, s, n);
        for (let i = 0; i < d; i++) assert.equal(dst[i], 0xee, `byte before the copy, n=${n} s=${s} d=${d}`);
        for (let i = 0; i < n; i++) assert.equal(dst[d + i], src[s + i], `n=${n} s=${s} d=${d} i=${i}`);
        assert.equal(dst[d + n], 0xee, `byte after the copy, n=${n} s=${s} d=${d}`);
      }
    }
  }
});
