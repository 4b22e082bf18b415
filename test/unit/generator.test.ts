import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatExtractor, flatToJson } from '../../src/codec/flat.js';
import { FlatBatchWriter, splitFrames } from '../../src/codec/flat-writer.js';
import { parseArgs } from '../../src/config/parse.js';
import { JoineryError } from '../../src/core/errors.js';
import { runGenCommand } from '../../src/gen-command.js';
import type { Side } from '../../src/state/store.js';
import {
  FIXED_EPOCH_MS, Generator, genOptions, genOptionsFrom, type GenOptions, type ImpressionEvent, type PlayEvent,
} from '../../src/source/generator.js';
import type { RecordBatch } from '../../src/source/source.js';
import { MinHeap, Rng } from '../../src/source/gen-parts.js';
import { GeneratorSource, MAX_GEN_STATE_BYTES } from '../../src/source/gen-source.js';
import { decodeGenState, encodeGenState } from '../../src/source/gen-snapshot.js';
import { log } from '../../src/core/log.js';

/** Both sides in arrival order, pulled alternately in chunks (any pull pattern gives the same streams). */
function drain(opts: GenOptions, chunk = 1000): { left: ImpressionEvent[]; right: PlayEvent[]; gen: Generator } {
  const gen = new Generator(opts);
  const left: ImpressionEvent[] = [], right: PlayEvent[] = [];
  for (;;) {
    const a = gen.nextEvents(0, chunk);
    for (const e of a) left.push(e);
    const b = gen.nextEvents(1, gen.queued(1));
    for (const e of b) right.push(e);
    if (a.length === 0 && gen.exhausted(1)) break;
  }
  return { left, right, gen };
}

function flatStreams(opts: GenOptions): [Uint8Array, Uint8Array] {
  const gen = new Generator(opts);
  const w: [FlatBatchWriter, FlatBatchWriter] = [new FlatBatchWriter(), new FlatBatchWriter()];
  let n = 0;
  do {
    n = gen.nextFlat(0, 777, w[0]) + gen.nextFlat(1, 333, w[1]);
  } while (n > 0);
  return [w[0].data.slice(0, w[0].length), w[1].data.slice(0, w[1].length)];
}

test('genOptionsFrom maps the config; genOptions takes the schema defaults', () => {
  const cfg = parseArgs('gen', ['--left-out', 'a', '--right-out', 'b', '--seed', '7', '--gen-skew', '0.5', '--gen-disorder', '2s', '--events', '10']);
  const o = genOptionsFrom(cfg);
  assert.equal(o.seed, 7);
  assert.equal(o.skew, 0.5);
  assert.equal(o.disorderMs, 2000);
  assert.equal(o.events, 10);
  assert.equal(o.profiles, cfg.genProfiles);
  assert.equal(o.eventTimeRate, cfg.genEventTimeRate);
  const d = genOptions();
  assert.equal(d.seed, 42);
  assert.equal(d.profiles, 200_000);
  assert.equal(d.playProb, 0.25);
  assert.throws(() => new Generator(genOptions({ playProb: 1.5 })), (e: unknown) => e instanceof JoineryError && e.code === 'E_USAGE' && /gen-play-prob/.test(e.message));
  assert.throws(() => genOptions({ orphanPlays: 1 }), (e: unknown) => e instanceof JoineryError && /gen-orphan-plays/.test(e.message));
});

test('same seed ⇒ identical streams (whatever the pull pattern); different seed ⇒ different', () => {
  const opts = genOptions({ events: 20_000, playDelayMs: 5_000 });
  const a = flatStreams(opts);
  const b = flatStreams(opts);
  assert.deepEqual(a[0], b[0]);
  assert.deepEqual(a[1], b[1]);
  assert.ok(a[1].length > 0);
  const c = drain(opts, 4096);
  const d = drain(opts, 37);
  assert.deepEqual(c.left, d.left);
  assert.deepEqual(c.right, d.right);
  const other = flatStreams({ ...opts, seed: 43 });
  assert.notDeepEqual(other[0], a[0]);
  assert.notDeepEqual(other[1], a[1]);
  // Event time is anchored at a fixed epoch when rate is 0.
  assert.ok(c.left[0].ts >= FIXED_EPOCH_MS && c.left[0].ts < FIXED_EPOCH_MS + 10_000);
});

test('per-side arrival disorder never exceeds disorderMs', () => {
  for (const disorderMs of [0, 250, 3000]) {
    const { left, right } = drain(genOptions({ events: 60_000, disorderMs, playDelayMs: 2_000, duplicates: 0.05 }));
    for (const stream of [left, right] as Array<Array<{ ts: number }>>) {
      let max = -Infinity, worst = 0;
      for (const e of stream) {
        max = Math.max(max, e.ts);
        worst = Math.max(worst, max - e.ts);
      }
      assert.ok(worst <= disorderMs, `disorder ${worst} > ${disorderMs}`);
      if (disorderMs >= 250) assert.ok(worst > disorderMs / 4, `suspiciously ordered: ${worst}`);
    }
  }
});

test('duplicates: share as configured, identical bytes, unique ids otherwise', () => {
  const dupShare = 0.05;
  const gen = new Generator(genOptions({ events: 200_000, duplicates: dupShare, playDelayMs: 2_000 }));
  for (const side of [0, 1] as const) {
    const w = new FlatBatchWriter();
    const x = new FlatExtractor(side === 0 ? 'Impression' : 'Play', ['profileId', 'titleId'], 'ts', 'eventId');
    const seen = new Map<string, string>();
    let copies = 0, n = 0;
    for (;;) {
      w.reset();
      const k = gen.nextFlat(side, 4096, w);
      if (k === 0) break;
      for (let i = 0; i < k; i++) {
        const rec = w.data.subarray(w.offsets[i], w.offsets[i + 1]);
        assert.ok(x.extract(rec, 0, rec.length), x.error);
        const hex = Buffer.from(rec).toString('hex');
        const prev = seen.get(x.idText);
        if (prev === undefined) seen.set(x.idText, hex);
        else {
          copies++;
          assert.equal(hex, prev, `duplicate ${x.idText} differs`);
        }
        n++;
      }
    }
    const share = copies / seen.size;
    assert.ok(Math.abs(share - dupShare) < 0.01, `side ${side}: duplicate share ${share.toFixed(4)}`);
    assert.equal(gen.stats().duplicates[side], copies);
    assert.equal(gen.stats().emitted[side], n);
  }
});

test('play/impression ratio and orphan share roughly as configured', () => {
  const playProb = 0.3, orphanPlays = 0.1, titles = 1000;
  const { left, right, gen } = drain(genOptions({ events: 300_000, playProb, orphanPlays, titles, playDelayMs: 1_000, duplicates: 0 }));
  const orphans = right.filter((p) => p.titleId > titles);
  const matched = right.length - orphans.length;
  // A play lost past the end of the run is ~1 s of 150 s: ignore, with the tolerance below.
  assert.ok(Math.abs(matched / left.length - playProb) < 0.02, `matched plays per impression ${(matched / left.length).toFixed(3)}`);
  assert.ok(Math.abs(orphans.length / right.length - orphanPlays) < 0.015, `orphan share ${(orphans.length / right.length).toFixed(3)}`);
  assert.equal(gen.stats().orphanPlays, orphans.length);
  // Matched plays follow an impression of the same member and title; orphans never have one.
  const impressed = new Map<string, number>();
  for (const i of left) {
    const k = `${i.profileId}:${i.titleId}`;
    impressed.set(k, Math.min(impressed.get(k) ?? Infinity, i.ts));
  }
  // (At the very end a play may arrive before its impression, which the limit then cuts off.)
  const settled = left.reduce((m, i) => Math.max(m, i.ts), -Infinity) - 2 * gen.opts.disorderMs;
  let unexplained = 0;
  for (const p of right) {
    const first = impressed.get(`${p.profileId}:${p.titleId}`);
    if (p.titleId > titles) assert.equal(first, undefined);
    else if ((first === undefined || first > p.ts) && p.ts < settled) unexplained++;
  }
  assert.equal(unexplained, 0);
  for (const p of right) assert.ok(p.durationMs >= 1000 && Number.isInteger(p.durationMs));
  for (const i of left.slice(0, 1000)) assert.ok(i.row >= 0 && i.row <= 39 && i.position >= 0 && i.position <= 39);
});

test('Zipf skew: the top 1% of members carries far more than 1% of impressions', () => {
  const top1 = (skew: number): number => {
    const profiles = 20_000;
    const { left } = drain(genOptions({ events: 100_000, profiles, skew, playProb: 0 }));
    const counts = new Map<number, number>();
    for (const e of left) {
      assert.ok(e.profileId >= 1 && e.profileId <= profiles);
      counts.set(e.profileId, (counts.get(e.profileId) ?? 0) + 1);
    }
    const sorted = [...counts.values()].sort((a, b) => b - a);
    return sorted.slice(0, profiles / 100).reduce((a, b) => a + b, 0) / left.length;
  };
  const skewed = top1(1.1);
  assert.ok(skewed > 0.4, `top 1% share ${skewed.toFixed(3)} at skew 1.1`);
  const flat = top1(0);
  assert.ok(flat < 0.03, `top 1% share ${flat.toFixed(3)} at skew 0`);
  // 200k members build quickly (alias table) and sample correctly.
  const t0 = performance.now();
  const { left } = drain(genOptions({ events: 20_000, profiles: 200_000, skew: 1.1, seed: 9 }));
  assert.ok(performance.now() - t0 < 5_000);
  assert.ok(left.filter((e) => e.profileId === 1).length > left.length * 0.03);
});

test('--gen-profile-skew and --gen-title-skew set each dimension\'s Zipf exponent; unset, both follow --gen-skew', () => {
  const profiles = 100_000, titles = 2_000, events = 40_000;
  const zipfTop = (n: number, s: number) => { let h = 0; for (let k = 1; k <= n; k++) h += Math.pow(k, -s); return 1 / h; };
  const shares = (flags: string[]) => {
    const o = genOptionsFrom(parseArgs('gen', ['--left-out', 'a', '--right-out', 'b', '--events', String(events), '--gen-profiles', String(profiles),
      '--gen-titles', String(titles), '--gen-play-prob', '0', '--gen-duplicates', '0', ...flags]));
    const { left } = drain(o);
    return { o, profile: left.filter((e) => e.profileId === 1).length / left.length, title: left.filter((e) => e.titleId === 1).length / left.length };
  };
  const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= want * 0.15 + 0.0005, `${what}: top share ${got.toFixed(4)}, Zipf says ${want.toFixed(4)}`);
  // The realistic shape: flat members, skewed titles.
  const a = shares(['--gen-profile-skew', '0.5', '--gen-title-skew', '1.0']);
  assert.equal(a.o.profileSkew, 0.5);
  assert.equal(a.o.titleSkew, 1.0);
  near(a.profile, zipfTop(profiles, 0.5), 'members at 0.5');
  near(a.title, zipfTop(titles, 1.0), 'titles at 1.0');
  assert.ok(a.title > 30 * a.profile, `top title ${a.title} vs top member ${a.profile}`);
  // The other way round.
  const b = shares(['--gen-profile-skew', '1.0', '--gen-title-skew', '0.5']);
  near(b.profile, zipfTop(profiles, 1.0), 'members at 1.0');
  near(b.title, zipfTop(titles, 0.5), 'titles at 0.5');
  // One set, the other follows --gen-skew.
  const c = shares(['--gen-skew', '0.3', '--gen-title-skew', '1.2']);
  assert.equal(c.o.profileSkew, 0.3);
  near(c.title, zipfTop(titles, 1.2), 'titles at 1.2');
  near(c.profile, zipfTop(profiles, 0.3), 'members at --gen-skew 0.3');
  assert.equal(genOptions({ skew: 0.6 }).titleSkew, 0.6);
  assert.throws(() => genOptions({ titleSkew: -1 }), (e: unknown) => e instanceof JoineryError && /gen-title-skew/.test(e.message));
});

test('the events limit is exact, across both sides and duplicates', () => {
  for (const events of [1, 2, 7, 1000, 12_345]) {
    const { left, right, gen } = drain(genOptions({ events, duplicates: 0.2, playDelayMs: 500 }));
    assert.equal(left.length + right.length, events);
    assert.equal(gen.released, events);
    assert.ok(gen.done);
  }
});

async function collect(src: GeneratorSource): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for (;;) {
    const b = await src.next();
    if (!b) break;
    out.push({ ...b, data: b.data.slice(0, b.offsets[b.count]), offsets: b.offsets.slice(0, b.count + 1) });
  }
  return out;
}

test('GeneratorSource: FlatBuffers batches, alternating sides, exact limit, same events as the Generator', async () => {
  const opts = genOptions({ events: 30_000, playDelayMs: 2_000 });
  const src = new GeneratorSource(opts);
  assert.equal(src.name, 'gen:');
  assert.deepEqual(src.partitions, [{ side: 0, partition: 0 }, { side: 1, partition: 0 }]);
  const batches = await collect(src);
  assert.equal(await src.next(), null);
  await src.close();
  const per: [string[], string[]] = [[], []];
  const xs = [new FlatExtractor('Impression', ['profileId', 'titleId'], 'ts', 'eventId'), new FlatExtractor('Play', ['profileId', 'titleId'], 'ts', 'eventId')];
  const maxTs: [number, number] = [-Infinity, -Infinity];
  const position: [number, number] = [1, 1];
  let switches = 0;
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k];
    assert.equal(b.format, 'flatbuffers');
    assert.equal(b.partition, 0);
    assert.equal(b.origin, 'gen:');
    assert.ok(b.count > 0 && b.count <= 4096);
    assert.equal(b.firstPosition, position[b.side]);
    position[b.side] += b.count;
    if (k > 0 && batches[k - 1].side !== b.side) switches++;
    const table = b.side === 0 ? 'Impression' : 'Play';
    for (let i = 0; i < b.count; i++) {
      assert.ok(xs[b.side].extract(b.data, b.offsets[i], b.offsets[i + 1]), xs[b.side].error);
      maxTs[b.side] = Math.max(maxTs[b.side], xs[b.side].ts);
      per[b.side].push(flatToJson(table, b.data, b.offsets[i], b.offsets[i + 1]));
    }
    // Neither side runs far ahead of the other in event time.
    if (maxTs[0] > -Infinity && maxTs[1] > -Infinity) assert.ok(Math.abs(maxTs[0] - maxTs[1]) < 10_000, `sides apart by ${maxTs[0] - maxTs[1]} ms`);
  }
  assert.equal(per[0].length + per[1].length, 30_000);
  assert.ok(switches > 5);
  const gen = new Generator(opts);
  assert.deepEqual(per[0], gen.nextJson(0, 1e9).split('\n').slice(0, -1));
  assert.deepEqual(per[1], gen.nextJson(1, 1e9).split('\n').slice(0, -1));
});

test('GeneratorSource resumed at a checkpoint position: prepare() skips what was delivered, in steps, and next() goes on with the same events', async () => {
  const opts = genOptions({ events: 400_000, duplicates: 0.1, playDelayMs: 2_000 });
  const whole = await collect(new GeneratorSource(opts));
  const text = (bs: RecordBatch[], side: Side) => bs.filter((b) => b.side === side)
    .flatMap((b) => Array.from({ length: b.count }, (_, i) => flatToJson(side === 0 ? 'Impression' : 'Play', b.data, b.offsets[i], b.offsets[i + 1])));
  // Where a checkpoint taken after all but the last 10 batches would resume.
  const head = whole.slice(0, -10);
  const delivered: [number, number] = [text(head, 0).length, text(head, 1).length];
  assert.ok(delivered[0] > 0 && delivered[1] > 0);
  const src = new GeneratorSource(opts, undefined, { delivered, baseMs: new Generator(opts).baseMs });
  // The skip (~380k events, tens of ms at least) yields to the event loop: a timer fires meanwhile.
  let turns = 0;
  const tick = setInterval(() => turns++, 0);
  const p = src.prepare();
  assert.equal(src.prepare(), p, 'one skip, however often it is asked for');
  await p;
  clearInterval(tick);
  const rest = await collect(src);
  assert.equal(rest[0].firstPosition, delivered[rest[0].side] + 1);
  for (const side of [0, 1] as Side[]) assert.deepEqual(text(rest, side), text(whole, side).slice(delivered[side]), `side ${side}`);
  assert.ok(turns > 0, 'the event loop turned during the skip');
  // Closed while skipping: the skip stops, and the position stays the checkpoint's, not where the skip got to.
  const cut = new GeneratorSource(opts, undefined, { delivered, baseMs: new Generator(opts).baseMs });
  const skipping = cut.prepare();
  await new Promise((r) => setImmediate(r));
  await cut.close();
  await skipping;
  assert.deepEqual(cut.checkpointPosition().gen!.delivered, delivered);
  assert.equal(await cut.next(), null);
});

test('GeneratorSource resumed from the state a checkpoint stored: no regeneration, the same events after the cut', async () => {
  const opts = genOptions({ events: 200_000, duplicates: 0.1, playDelayMs: 5_000, disorderMs: 2_000 });
  const whole = await collect(new GeneratorSource(opts));
  const text = (bs: RecordBatch[], side: Side) => bs.filter((b) => b.side === side)
    .flatMap((b) => Array.from({ length: b.count }, (_, i) => flatToJson(side === 0 ? 'Impression' : 'Play', b.data, b.offsets[i], b.offsets[i + 1])));
  for (const cutAt of [1, 7, whole.length - 3]) {
    // A run cut after `cutAt` batches: its position and state, as the router takes them at a barrier.
    const first = new GeneratorSource(opts);
    for (let k = 0; k < cutAt; k++) await first.next();
    const pos = first.checkpointPosition().gen!;
    const bytes = first.checkpointState();
    assert.ok(bytes && bytes.length > 0);
    let reads = 0;
    const src = new GeneratorSource(opts, undefined, { ...pos, state: async () => { reads++; return bytes; } });
    // Not a single event regenerated: the generator starts where the state left it.
    await src.prepare();
    assert.equal(reads, 1);
    assert.equal(src.generator.released, first.generator.released);
    const rest = await collect(src);
    for (const side of [0, 1] as Side[]) assert.deepEqual(text(rest, side), text(whole, side).slice(pos.delivered[side]), `cut after ${cutAt} batches, side ${side}`);
    // The state of a resumed source at its own position equals the one it resumed from.
    const again = new GeneratorSource(opts, undefined, { ...pos, state: async () => bytes });
    await again.prepare();
    assert.deepEqual(again.checkpointState(), bytes);
  }
});

test('a generator state that cannot be used (corrupt, not at the position) is set aside with a warning, and the skip regenerates; one of other options is refused', async () => {
  const opts = genOptions({ events: 50_000, playDelayMs: 2_000 });
  const whole = await collect(new GeneratorSource(opts));
  const first = new GeneratorSource(opts);
  for (let k = 0; k < 4; k++) await first.next();
  const pos = first.checkpointPosition().gen!;
  const bytes = first.checkpointState()!;
  const other = new GeneratorSource(genOptions({ ...opts, seed: opts.seed + 1 }));
  for (let k = 0; k < 4; k++) await other.next();
  const behind = new GeneratorSource(opts);
  for (let k = 0; k < 2; k++) await behind.next();
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['cut short', bytes.subarray(0, bytes.length - 8), /wrong length/],
    ['not a state', new Uint8Array(64), /not a generator state/],
    ['an earlier position', behind.checkpointState()!, /not at the checkpoint's position/],
  ];
  const said: string[] = [];
  const orig = log.say.bind(log);
  log.say = (_level, msg) => { said.push(msg); };
  try {
    for (const [what, state, why] of cases) {
      said.length = 0;
      const src = new GeneratorSource(opts, undefined, { ...pos, state: async () => state });
      const rest = await collect(src);
      assert.equal(said.length, 1, what);
      assert.match(said[0], why, what);
      assert.match(said[0], /regenerating/, what);
      const count = rest.reduce((n, b) => n + b.count, 0);
      assert.equal(count, whole.reduce((n, b) => n + b.count, 0) - pos.delivered[0] - pos.delivered[1], what);
    }
  } finally {
    log.say = orig;
  }
  // The events delivered before the checkpoint came from another stream: neither the state nor a regeneration continues them.
  const otherSeed = new GeneratorSource(opts, undefined, { ...other.checkpointPosition().gen!, state: async () => other.checkpointState()! });
  await assert.rejects(collect(otherSeed), (e: unknown) => e instanceof JoineryError && e.code === 'E_CHECKPOINT' && e.exitCode === 4
    && new RegExp(`seed: ${opts.seed + 1} → ${opts.seed}`).test(e.message) && /other --checkpoint-dir/.test(e.message));
  // Mid-resume (the skip not at the position yet) there is no state to store: the checkpoint keeps the old position alone.
  const resuming = new GeneratorSource(opts, undefined, pos);
  assert.equal(resuming.checkpointState(), null);
  // The decoder refuses a reference to an event that is not there.
  const st = decodeGenState(bytes, first.generator.opts);
  assert.ok(!(st instanceof Error));
  if (st.queues[0].length > 0) st.queues[0][0] = 1e6; else st.arrivals[1] = 1e6;
  assert.match(String(decodeGenState(encodeGenState(st, first.generator.opts), first.generator.opts)), /bad event reference/);
  // Too large to be worth storing (plays held far ahead of their time): none, and the checkpoint keeps the position alone.
  const ahead = new GeneratorSource(genOptions({ events: 0, playProb: 1, playDelayMs: 1e10, duplicates: 0 }));
  ahead.generator.pump(50_000);
  assert.ok(ahead.checkpointState() !== null);
  while (ahead.generator.liveEvents * 57 <= MAX_GEN_STATE_BYTES) ahead.generator.pump(20_000);
  assert.equal(ahead.checkpointState(), null);
  // Counts that agree with each other but not with the length are refused before anything is allocated from them.
  const huge = Uint8Array.from(bytes);
  const dv = new DataView(huge.buffer);
  const countsAt = ((12 + dv.getUint32(8, true) + 7) & ~7) + 8 * 16;
  [1e9, 1e9, 0, 0, 0].forEach((n, i) => dv.setFloat64(countsAt + 8 * i, n, true));
  assert.match(String(decodeGenState(huge, first.generator.opts)), /wrong length/);
  // Counts whose byte lengths pass 2^31 (32-bit padding arithmetic would wrap them into agreement).
  [2 ** 28, 2 ** 26, 0, 2 ** 28 - 2 ** 26, 0].forEach((n, i) => dv.setFloat64(countsAt + 8 * i, n, true));
  assert.match(String(decodeGenState(huge, first.generator.opts)), /wrong length/);
});

test('GeneratorSource paces to --rate and stops at --duration', async () => {
  const t0 = performance.now();
  const paced = await collect(new GeneratorSource(genOptions({ rate: 2_000, events: 300 })));
  const pacedMs = performance.now() - t0;
  assert.equal(paced.reduce((a, b) => a + b.count, 0), 300);
  assert.ok(pacedMs > 100 && pacedMs < 2_000, `300 events at 2000/s took ${pacedMs.toFixed(0)} ms`);
  // Event time follows the wall clock when pacing.
  const x = new FlatExtractor('Impression', ['profileId'], 'ts', 'eventId');
  const first = paced.find((b) => b.side === 0)!;
  assert.ok(x.extract(first.data, first.offsets[0], first.offsets[1]));
  assert.ok(Math.abs(x.ts - Date.now()) < 60_000);

  const t1 = performance.now();
  const timed = await collect(new GeneratorSource(genOptions({ rate: 5_000, events: 0, durationMs: 150 })));
  const timedMs = performance.now() - t1;
  const n = timed.reduce((a, b) => a + b.count, 0);
  assert.ok(timedMs >= 140 && timedMs < 1_500, `duration 150 ms took ${timedMs.toFixed(0)} ms`);
  assert.ok(n > 200 && n < 2_000, `${n} events in 150 ms at 5000/s`);
});

test('gen command: NDJSON and size-prefixed FlatBuffers files hold the same streams', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-gen-test-'));
  const origWrite = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((s: string | Uint8Array) => { stderr += String(s); return true; }) as typeof process.stderr.write;
  try {
    const args = (fmt: string, l: string, r: string) => parseArgs('gen', ['--left-out', l, '--right-out', r, '--format', fmt, '--events', '5000', '--gen-play-delay', '1s', '--progress', 'off']);
    const p = (n: string) => path.join(dir, n);
    assert.equal(await runGenCommand(args('json', p('l.ndjson'), p('r.ndjson'))), 0);
    assert.equal(await runGenCommand(args('flatbuffers', p('l.fb'), p('r.fb'))), 0);
    assert.match(stderr, /5,000 events/);
    assert.match(stderr, /impressions \(\d[\d,]* duplicates\)/);
    assert.match(stderr, /orphans/);
    let total = 0;
    for (const [side, table] of [['l', 'Impression'], ['r', 'Play']] as const) {
      const lines = fs.readFileSync(p(`${side}.ndjson`), 'utf8').split('\n');
      assert.equal(lines.pop(), '');
      const frames = splitFrames(fs.readFileSync(p(`${side}.fb`)));
      assert.equal(frames.length, lines.length);
      for (let i = 0; i < frames.length; i++) assert.equal(flatToJson(table, frames[i]), lines[i]);
      total += lines.length;
    }
    assert.equal(total, 5000);
    // Past one round (65,536 events) the right side's take used to generate events of the left
    // after the left had taken its share: the last round lost them (84 of 200,000 here).
    assert.equal(await runGenCommand(parseArgs('gen', ['--left-out', p('l2.ndjson'), '--right-out', p('r2.ndjson'), '--events', '200000', '--seed', '11', '--gen-orphan-plays', '0.05', '--progress', 'off'])), 0);
    const gen = new Generator(genOptions({ events: 200_000, seed: 11, orphanPlays: 0.05 }));
    const want = [gen.nextJson(0, 1e9), gen.nextJson(1, 1e9)];
    assert.equal(fs.readFileSync(p('l2.ndjson'), 'utf8'), want[0]);
    assert.equal(fs.readFileSync(p('r2.ndjson'), 'utf8'), want[1]);
    await assert.rejects(runGenCommand(args('json', path.join(dir, 'missing-dir', 'l'), p('r2.ndjson'))),
      (e: unknown) => e instanceof JoineryError && e.code === 'E_OUTPUT' && /left output/.test(e.message));
  } finally {
    process.stderr.write = origWrite;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('MinHeap pops in the textbook binary heap\'s order, equal keys included (the streams depend on it)', () => {
  // Reference: the separate-array heap the generator used before its pairs were interleaved.
  class Ref {
    keys: number[] = []; vals: number[] = [];
    push(key: number, v: number): void {
      let i = this.keys.length; this.keys.push(key); this.vals.push(v);
      while (i > 0) { const p = (i - 1) >> 1; if (this.keys[p] <= key) break; this.keys[i] = this.keys[p]; this.vals[i] = this.vals[p]; i = p; }
      this.keys[i] = key; this.vals[i] = v;
    }
    pop(): number {
      const top = this.vals[0], n = this.keys.length - 1;
      const key = this.keys[n], v = this.vals[n];
      this.keys.length = n; this.vals.length = n;
      if (n > 0) {
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= n) break;
          if (c + 1 < n && this.keys[c + 1] < this.keys[c]) c++;
          if (this.keys[c] >= key) break;
          this.keys[i] = this.keys[c]; this.vals[i] = this.vals[c]; i = c;
        }
        this.keys[i] = key; this.vals[i] = v;
      }
      return top;
    }
  }
  const rng = new Rng(7);
  const h = new MinHeap(), ref = new Ref();
  let next = 0;
  for (let step = 0; step < 60_000; step++) {
    if (h.size === 0 || rng.next() < 0.55) {
      const key = Math.floor(rng.next() * 50); // few distinct keys: many ties
      h.push(key, next); ref.push(key, next); next++;
    } else {
      assert.equal(h.topKey, ref.keys[0]);
      assert.equal(h.pop(), ref.pop(), `step ${step}`);
    }
    assert.equal(h.size, ref.keys.length);
  }
});
