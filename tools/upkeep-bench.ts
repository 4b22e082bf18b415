/**
 * Store upkeep bench: a worker's drain loop without threads or input, to see how long single
 * drains take (p99 latency is set by the longest ones) in thread CPU time, which a busy machine
 * does not stretch the way it stretches wall time. Batches of 4096 events (one store batch each,
 * as a worker's drain), a probe and an insert per event, a watermark (expire) every 1024 events;
 * event time advances 50k events/s (one of 2 workers at `bench --source gen --rate 100000`), 30 s
 * buckets, window [0, 10m] as `bench`; 80 % left, right retention 0; keys skewed, mostly distinct.
 * Prints CPU µs/event, the CPU of batches (p50, p99, max, how many over 20 ms) and of the final
 * expire(+∞).
 *
 *   node dist/tools/upkeep-bench.js [--events 3000000] [--dist DIR]
 *
 * --dist: the compiled tree (a `dist` directory) whose bucket store to run, e.g. an older build's
 * copy, for a side-by-side comparison (interleave runs; medians).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const events = Number(opt('events', '3000000'));
const dist = path.resolve(opt('dist', path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));

interface Store {
  batch<T>(fn: () => T): T;
  insert(side: 0 | 1, keyGroup: number, keyHash: number, key: Uint8Array, ts: number, id: Uint8Array, payload: Uint8Array, joined: boolean, expireAtMs: number): boolean;
  probe(side: 0 | 1, keyGroup: number, keyHash: number, key: Uint8Array, fromTs: number, toTs: number, visit: () => void): void;
  expire(watermarkMs: number): number;
  close(): Promise<void>;
}
const { BucketStore } = await import(path.join(dist, 'src/state/bucket-store.js')) as { BucketStore: { open(dir: string, o: object): Store } };
const { currentTid, threadCpuNs } = await import(path.join(dist, 'src/metrics/cpu.js')) as {
  currentTid(): number | null; threadCpuNs(tid: number): number | null;
};
const tid = currentTid();
const cpuMs = (): number => {
  const ns = tid === null ? null : threadCpuNs(tid);
  if (ns !== null) return ns / 1e6;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-upkeep-bench-'));
const s = BucketStore.open(dir, { bucketMs: 30_000 });
let x = 4242;
const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
const key = new Uint8Array(12), id = new Uint8Array(8), payload = new Uint8Array(150);
const kv = new DataView(key.buffer), iv = new DataView(id.buffer);
const hash = (k: number) => Math.imul(k ^ (k >>> 15), 0x2c1b3c6d) ^ 0x5bd1e995;
let pairs = 0;
const visit = () => { pairs++; };
const t0 = 1.7e12 + 12_345; // not on a bucket boundary
const batches: number[] = [];
const c0 = cpuMs();
for (let i = 0; i < events; i += 4096) {
  const b0 = cpuMs();
  s.batch(() => {
    for (let j = i; j < Math.min(events, i + 4096); j++) {
      const k = Math.floor(rnd() * rnd() * 4_000_000);
      kv.setUint32(0, k); kv.setUint32(4, k * 7); kv.setUint32(8, 1);
      const ts = t0 + j / 50;
      const side = rnd() < 0.8 ? 0 : 1;
      iv.setFloat64(0, j);
      const h = hash(k);
      if (side === 0) s.probe(1, k & 4095, h, key, ts, ts + 600_000, visit);
      else s.probe(0, k & 4095, h, key, ts - 600_000, ts, visit);
      s.insert(side, k & 4095, h, key, ts, id, payload, false, side === 0 ? ts + 600_000 : ts);
      if ((j & 1023) === 1023) s.expire(ts - 5000);
    }
  });
  batches.push(cpuMs() - b0);
}
const e0 = cpuMs();
s.batch(() => s.expire(Infinity));
const endMs = cpuMs() - e0;
const total = cpuMs() - c0;
await s.close();
fs.rmSync(dir, { recursive: true, force: true });
const sorted = [...batches].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
console.log(JSON.stringify({
  dist, events, cpuUsPerEvent: +(total * 1000 / events).toFixed(3),
  batchCpuMs: { p50: +q(0.5).toFixed(1), p99: +q(0.99).toFixed(1), max: +sorted[sorted.length - 1].toFixed(1), over20: sorted.filter((c) => c > 20).length },
  endExpireCpuMs: +endMs.toFixed(1), pairs,
}));
