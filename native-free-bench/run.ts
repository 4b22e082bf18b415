/**
 * Micro-benchmarks of the data path's stages with benchmark.js, then the whole pipeline on the
 * memory store. Nothing here needs a broker or a native addon: `npm run bench` runs wherever Node
 * runs. Each line prints ops/s ± relative margin of error and the sample count.
 *
 *   npm run bench                 # all
 *   npm run bench -- ring probe   # only suites whose name contains one of the words
 */
import Benchmark from 'benchmark';
import { FlatExtractor } from '../src/codec/flat.js';
import { FlatBatchWriter } from '../src/codec/flat-writer.js';
import { JsonExtractor, ParsingJsonExtractor } from '../src/codec/json.js';
import { parseArgs } from '../src/config/parse.js';
import { runEngine } from '../src/engine.js';
import { IntervalJoin, type JoinEmitter } from '../src/join/join.js';
import { createRingBuffer, RingConsumer, RingProducer } from '../src/ring/ring.js';
import { keyGroupOf, murmur3 } from '../src/router/partitioner.js';
import { Generator, genOptions } from '../src/source/generator.js';
import { MemoryStore } from '../src/state/memory-store.js';
import { pregenerate } from '../src/bench.js';

const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.some((w) => name.includes(w));

function suite(name: string, add: (s: Benchmark.Suite) => void): Promise<void> {
  if (!want(name)) return Promise.resolve();
  return new Promise((resolve) => {
    const s = new Benchmark.Suite(name);
    add(s);
    console.log(`\n${name}`);
    s.on('cycle', (e: Benchmark.Event) => console.log(`  ${String(e.target)}`)).on('complete', () => resolve()).run({ async: false });
  });
}

// Sample data: 4096 generated impressions as FlatBuffers and as JSON lines.
const gen = new Generator(genOptions({ seed: 1, events: 0 }));
const w = new FlatBatchWriter(false, 1 << 20, 4096);
gen.nextFlat(0, 4096, w);
const flat = { data: w.data.slice(0, w.length), offsets: w.offsets.slice(0, 4097) };
const jsonLines = gen.nextJson(0, 4096).split('\n').filter(Boolean).map((l) => Buffer.from(l));

await suite('ring (100-byte frames, publish every 64)', (s) => {
  const sab = createRingBuffer(1 << 20);
  const p = new RingProducer(sab), c = new RingConsumer(sab);
  const rec = new Uint8Array(100).fill(7);
  s.add('write 64 + publish + read 64 + release', () => {
    for (let i = 0; i < 64; i++) { const off = p.reserve(100); p.u8.set(rec, off); p.commit(); }
    p.publish();
    let x = 0;
    for (let i = 0; i < 64; i++) x += c.u8[c.next()];
    c.release();
    if (x !== 64 * 7) throw new Error('ring corrupted');
  });
});

await suite('partitioner', (s) => {
  const keys = Array.from({ length: 1024 }, (_, i) => Buffer.from(`[${i * 7919},${i % 313}]`));
  let i = 0;
  s.add('murmur3 + key group of a 12-byte key', () => { const k = keys[i++ & 1023]; return keyGroupOf(murmur3(k, 0, k.length)); });
});

await suite('key extraction (key, time, id)', (s) => {
  const fx = new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId');
  const jx = new JsonExtractor(['profileId', 'titleId'], 'ts', 'eventId');
  const px = new ParsingJsonExtractor(['profileId', 'titleId'], 'ts', 'eventId');
  const out = new Uint8Array(64 * 1024); // the router's scratch: key and id bytes are written there
  let i = 0, j = 0, k = 0;
  s.add('FlatBuffers, read in place', () => { const n = i++ & 4095; if (!fx.extract(flat.data, flat.offsets[n], flat.offsets[n + 1], out)) throw new Error(fx.error); });
  s.add('NDJSON line, byte scanner (now)', () => { const l = jsonLines[j++ & 4095]; if (!jx.extract(l, 0, l.length, out)) throw new Error(jx.error); });
  s.add('NDJSON line, JSON.parse (before)', () => { const l = jsonLines[k++ & 4095]; if (!px.extract(l, 0, l.length, out)) throw new Error(px.error); });
  s.on('complete', () => {
    const ns = (name: string) => 1e9 / (s.filter((b: Benchmark) => b.name === name) as unknown as Benchmark[])[0].hz;
    console.log(`  ns per NDJSON record: ${ns('NDJSON line, JSON.parse (before)').toFixed(0)} before, ${ns('NDJSON line, byte scanner (now)').toFixed(0)} now`);
  });
});

await suite('join probe (memory store)', (s) => {
  const store = new MemoryStore();
  const nop: JoinEmitter = { pair() {}, unmatched() {} };
  const join = new IntervalJoin(store, 'inner', 0, 600_000, nop);
  const key = Buffer.from('[1,2]'), payload = Buffer.alloc(90, 1);
  // 100 buffered impressions for the probed key, 10k other keys.
  store.batch(() => {
    for (let i = 0; i < 100; i++) join.onEvent(0, 5, 77, key, 1000 + i, Buffer.from(`"i${i}"`), payload);
    for (let i = 0; i < 10_000; i++) { const k = Buffer.from(`[${i},9]`); join.onEvent(0, i % 4096, murmur3(k, 0, k.length), k, 1000, Buffer.from(`"o${i}"`), payload); }
  });
  let n = 0;
  s.add('play probing a key with 100 buffered impressions', () => { store.batch(() => join.onEvent(1, 5, 77, key, 2000, Buffer.from(`"p${n++}"`), payload)); });
  const miss = Buffer.from('[999999,1]');
  s.add('play probing a key with nothing buffered', () => { store.batch(() => join.onEvent(1, 6, 78, miss, 2000, Buffer.from(`"q${n++}"`), payload)); });
});

if (want('pipeline')) {
  console.log('\nwhole pipeline, memory store, replayed FlatBuffers (200k events, 2 workers)');
  const cfg = parseArgs('bench', ['--events', '200000', '--state', 'memory', '--workers', '2', '--progress', 'off']);
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const { batches } = await pregenerate(cfg);
    const src = { name: 'replay', partitions: [{ side: 0 as const, partition: 0 }, { side: 1 as const, partition: 0 }], i: 0,
      async next() { return this.i < batches.length ? batches[this.i++] : null; }, async close() {} };
    const sum = await runEngine(cfg, { sources: [src], formats: ['flatbuffers', 'flatbuffers'], progress: false, printSummary: false });
    runs.push(sum.eventsPerSec);
    console.log(`  run ${r + 1}: ${Math.round(sum.eventsPerSec).toLocaleString('en-US')} events/s, ${sum.pairs} pairs, p99 ${sum.p99Ms.toFixed(1)} ms`);
  }
  runs.sort((a, b) => a - b);
  console.log(`  median ${Math.round(runs[1]).toLocaleString('en-US')} events/s over 3 runs`);
}
