// Consumer thread of the ring stress test (not a test file itself).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RingConsumer } from '../../src/ring/ring.js';

if (!isMainThread) {
  const { sab, total } = workerData as { sab: SharedArrayBuffer; total: number };
  const c = new RingConsumer(sab);
  let expected = 0, errors = 0, sum = 0;
  while (expected < total) {
    const off = c.next();
    if (off < 0) { c.release(); c.waitForData(50); continue; }
    const i = c.dv.getUint32(off, true);
    if (i !== expected || c.frameBytes !== 4 + (i % 29)) errors++;
    for (let k = 4; k < c.frameBytes; k++) if (c.u8[off + k] !== ((i + k) & 0xff)) { errors++; break; }
    sum = (sum + i) % 1_000_000_007;
    expected++;
    if ((expected & 255) === 0) c.release();
  }
  c.release();
  parentPort!.postMessage({ count: expected, errors, sum });
}
