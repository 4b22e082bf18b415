/**
 * Hot-key benchmark: paced normal traffic plus one hot key, run with and without
 * --max-key-entries, interleaved, medians. The engine runs in this process (src/engine.ts) on an
 * in-memory NDJSON source that hands records over at --rate events/s of wall time, so latency
 * measures waiting caused by the join, not a backlog of input read as fast as it can be.
 * Prints events/s, CPU µs per event (process CPU: main thread and workers), pairs, diverted
 * events and latency percentiles (router read → output written).
 *
 *   node dist/tools/hot-key-bench.js [--normal 100000] [--hot 5000] [--guard 1000] [--rate 20000] [--repeat 3]
 *   node dist/tools/hot-key-bench.js --cost    the detection's CPU per event in the join layer (lmdb store, with and without it)
 *
 * Latency is taken per drain of a worker's ring: every event in a drain gets the drain's end time.
 * While a hot key's pairs are emitted, the other keys' events in that worker's ring wait with it;
 * so the percentiles over all events are the other keys' (the hot key's own events, a few % of the
 * input, wait exactly as long as the other events of their drains).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from '../src/config/parse.js';
import { log } from '../src/core/log.js';
import { runEngine } from '../src/engine.js';
import { HotKeys } from '../src/join/hot-keys.js';
import { IntervalJoin } from '../src/join/join.js';
import { keyGroupOf, murmur3 } from '../src/router/partitioner.js';
import { openStore } from '../src/state/index.js';
import type { PartitionRef, RecordBatch, Source } from '../src/source/source.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const NORMAL = Number(opt('normal', '100000'));   // events per side, normal keys
const HOT = Number(opt('hot', '5000'));            // events per side, the hot key
const GUARD = Number(opt('guard', '1000'));
const RATE = Number(opt('rate', '20000'));         // events/s of wall time, both sides
const REPEAT = Number(opt('repeat', '3'));
const KEYS = 2000;
const BASE = 1_700_000_000_000;
const SPAN_MS = 1_000_000;                         // event time covered by the input
const BATCH = 200;

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

interface Rec { side: 0 | 1; ts: number; line: Buffer }

/** Both sides over SPAN_MS of event time, merged in event-time order; the hot key's events all fall within 40 s, so they all join each other (window ±1m). */
function makeInput(): Rec[] {
  const rnd = seeded(7);
  const recs: Rec[] = [];
  for (const side of [0, 1] as const) {
    const p = side === 0 ? 'l' : 'r', shift = side * 500;
    const push = (profileId: number, titleId: number, ts: number, id: string) =>
      recs.push({ side, ts, line: Buffer.from(JSON.stringify({ profileId, titleId, ts, eventId: id, pad: 'x'.repeat(60) }) + '\n') });
    for (let i = 0; i < NORMAL; i++) push(1 + Math.floor(rnd() * KEYS), 1, BASE + Math.floor(i * SPAN_MS / NORMAL) + shift, `${p}${i}`);
    for (let i = 0; i < HOT; i++) push(0, 0, BASE + SPAN_MS / 2 + Math.floor(i * 40_000 / HOT) + shift, `${p}h${i}`);
  }
  return recs.sort((a, b) => a.ts - b.ts);
}

/** Hands the records over in event-time order at RATE events/s of wall time. */
class PacedSource implements Source {
  readonly name = 'paced';
  readonly partitions: readonly PartitionRef[] = [{ side: 0, partition: 0 }, { side: 1, partition: 0 }];
  private i = 0;
  private readonly t0 = performance.now();
  constructor(private readonly recs: Rec[]) {}
  async next(): Promise<RecordBatch | null> {
    if (this.i >= this.recs.length) return null;
    const dueMs = this.t0 + (this.i / RATE) * 1000;
    const wait = dueMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const side = this.recs[this.i].side;
    const parts: Buffer[] = [];
    const first = this.i;
    while (this.i < this.recs.length && this.i - first < BATCH && this.recs[this.i].side === side) parts.push(this.recs[this.i++].line);
    const data = Buffer.concat(parts);
    const offsets = new Uint32Array(parts.length + 1);
    for (let k = 0; k < parts.length; k++) offsets[k + 1] = offsets[k] + parts[k].length;
    return { side, partition: 0, format: 'json', data, offsets, count: parts.length, lineDelimited: true, firstPosition: first + 1, origin: 'paced' };
  }
  async close(): Promise<void> {}
}

interface Result { eventsPerSec: number; cpuUsPerEvent: number; pairs: number; diverted: number; p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number; wallS: number }

async function runOnce(dir: string, recs: Rec[], guard: number): Promise<Result> {
  const state = path.join(dir, 'state');
  fs.rmSync(state, { recursive: true, force: true });
  const cfg = parseArgs('run', ['--left', 'gen:', '--right', 'gen:', '--lower', '-1m', '--upper', '1m', '--max-key-entries', String(guard), '--out', 'null', '--state-dir', state, '--workers', '2']);
  const c0 = process.cpuUsage(), t0 = performance.now();
  const s = await runEngine(cfg, { sources: [new PacedSource(recs)], formats: ['json', 'json'], progress: false, printSummary: false });
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const events = s.eventsIn[0] + s.eventsIn[1];
  return {
    eventsPerSec: s.eventsPerSec, cpuUsPerEvent: (c.user + c.system) / events, pairs: s.pairs, diverted: s.keyOverflow[0] + s.keyOverflow[1],
    p50Ms: s.p50Ms, p99Ms: s.p99Ms, p999Ms: s.p999Ms, maxMs: s.maxMs, wallS,
  };
}

const median = (xs: number[]) => { const a = [...xs].sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };

/** IntervalJoin over the lmdb store with and without HotKeys, runs alternating, median CPU µs per event. */
async function cost(dir: string): Promise<void> {
  const N = 300_000, rnd = seeded(1);
  const keys: Buffer[] = [], hashes: number[] = [], ids: Buffer[] = [];
  for (let i = 0; i < N; i++) { const k = Buffer.from(`[${Math.floor(rnd() * 20000)},${Math.floor(rnd() * 50)}]`); keys.push(k); hashes.push(murmur3(k, 0, k.length)); ids.push(Buffer.from(`e${i}`)); }
  const payload = Buffer.from(JSON.stringify({ a: 1, pad: 'x'.repeat(60) }));
  let n = 0;
  const once = async (withHot: boolean) => {
    const d = path.join(dir, `cost-${n++}`);
    const store = openStore('lmdb', d, { bucketMs: 30_000 });
    const hot = withHot ? new HotKeys(store, 1_000_000, 605_000, (side, ts) => (side === 0 ? ts + 600_000 : ts), () => {}) : null;
    const join = new IntervalJoin(store, 'inner', 0, 600_000, { pair() {}, unmatched() {} }, hot, null);
    const c0 = process.cpuUsage();
    for (let b = 0; b < N; b += 4096) {
      store.batch(() => {
        for (let i = b; i < Math.min(N, b + 4096); i++) join.onEvent((i & 1) as 0 | 1, keyGroupOf(hashes[i]), hashes[i], keys[i], 1000 + i * 10, ids[i], payload);
        join.onWatermark(b * 10 - 5000);
      });
    }
    const c = process.cpuUsage(c0);
    await store.close();
    return (c.user + c.system) / N;
  };
  const off: number[] = [], on: number[] = [];
  for (let k = 0; k < 7; k++) {
    if (k & 1) { on.push(await once(true)); off.push(await once(false)); } else { off.push(await once(false)); on.push(await once(true)); }
  }
  console.log(`join layer, lmdb store, ${N.toLocaleString('en-US')} events over 1M keys, 7 runs alternating, median CPU µs/event: without detection ${median(off).toFixed(2)}, with ${median(on).toFixed(2)}`);
}

log.configure({ level: 'error' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-hotbench-'));
try {
  if (args.includes('--cost')) await cost(dir);
  else await compare();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

async function compare(): Promise<void> {
  const recs = makeInput();
  console.log(`input: ${NORMAL.toLocaleString('en-US')} events per side over ${KEYS} keys + one hot key with ${HOT.toLocaleString('en-US')} per side within 40 s of event time (window ±1m), ` +
    `paced at ${RATE.toLocaleString('en-US')} events/s; --out null; 2 workers; ${REPEAT} runs each, interleaved, medians`);
  const runs: Record<string, Result[]> = { off: [], guard: [] };
  for (let i = 0; i < REPEAT; i++) {
    runs.off.push(await runOnce(dir, recs, 0));
    runs.guard.push(await runOnce(dir, recs, GUARD));
  }
  const row = (name: string, rs: Result[]) => {
    const f = (k: keyof Result) => median(rs.map((r) => r[k]));
    console.log(`${name.padEnd(28)} ${Math.round(f('eventsPerSec')).toLocaleString('en-US').padStart(9)} ev/s  ${f('cpuUsPerEvent').toFixed(1).padStart(6)} µs CPU/event  ` +
      `pairs ${f('pairs').toLocaleString('en-US').padStart(11)}  diverted ${String(f('diverted')).padStart(6)}  latency p50 ${f('p50Ms').toFixed(0)} ms  p99 ${f('p99Ms').toFixed(0)} ms  p99.9 ${f('p999Ms').toFixed(0)} ms  max ${f('maxMs').toFixed(0)} ms  (wall ${f('wallS').toFixed(1)} s)`);
  };
  row('--max-key-entries 0 (off)', runs.off);
  row(`--max-key-entries ${GUARD}`, runs.guard);
}
