/**
 * The built-in traffic generator: Netflix-like impressions (left) and plays (right).
 *
 * Model, per generation step (one impression; event time advances a fixed step):
 * - the impression's member (profileId) and title are Zipf-skewed (exponents `profileSkew` and
 *   `titleSkew`, both `skew` unless set: members are typically flatter than titles);
 * - with probability `playProb` the impression leads to a play of the same member and title,
 *   `exponential(playDelayMs)` later in event time (so some plays fall outside a join window);
 * - orphan plays (a share `orphanPlays` of all plays) are plays of titles that never appear in an
 *   impression (ids above `titles`: found by search, not on the home page), so they never join;
 * - every event is delivered a second time with probability `duplicates` (identical bytes);
 * - each event arrives at ts + U(0, disorderMs) (a copy between the original's arrival and
 *   ts + disorderMs) and is released from a min-heap on arrival time once the generation frontier
 *   has passed it. So per side, max ts seen so far − ts ≤ disorderMs: with --max-delay ≥
 *   disorderMs nothing is late.
 *
 * The step is sized so that the emitted event count (both sides, duplicates included) averages
 * `rate` (or `eventTimeRate` when rate is 0) events per second of event time. With rate > 0, event
 * time starts at Date.now(); otherwise at a fixed 2026-01-01T00:00:00Z so runs repeat exactly.
 * Everything derives from one seeded PRNG (sfc32): the same options give the same streams.
 *
 * Events live in struct-of-arrays pools (no object per event) and are encoded straight into the
 * output buffer with FlatBatchWriter.
 */
import type { Config } from '../config/schema.js';
import { OPTIONS } from '../config/schema.js';
import { usageError } from '../core/errors.js';
import { FlatBatchWriter } from '../codec/flat-writer.js';
import { IndexQueue, MinHeap, Rng, zipf, type ZipfTable } from './gen-parts.js';
import type { ImpressionEvent, PlayEvent } from '../codec/flat.js';
import type { Side } from '../state/store.js';

export type { ImpressionEvent, PlayEvent } from '../codec/flat.js';

export interface GenOptions {
  seed: number;
  /** Events/s across both sides, wall clock (0 = as fast as possible). */
  rate: number;
  /** Stop after this many events across both sides, duplicates included (0 = unbounded). */
  events: number;
  /** Wall-clock limit in ms (0 = none); applied by the drivers (source, gen command). */
  durationMs: number;
  profiles: number;
  titles: number;
  skew: number;
  /** Zipf exponents of members and of titles on their own (each defaults to `skew`). */
  profileSkew?: number;
  titleSkew?: number;
  playProb: number;
  playDelayMs: number;
  orphanPlays: number;
  disorderMs: number;
  duplicates: number;
  /** Events per second of event time when rate is 0. */
  eventTimeRate: number;
}

const CONFIG_KEYS: Record<keyof GenOptions, keyof Config> = {
  seed: 'seed', rate: 'rate', events: 'events', durationMs: 'durationMs', profiles: 'genProfiles',
  titles: 'genTitles', skew: 'genSkew', profileSkew: 'genProfileSkew', titleSkew: 'genTitleSkew', playProb: 'genPlayProb', playDelayMs: 'genPlayDelayMs',
  orphanPlays: 'genOrphanPlays', disorderMs: 'genDisorderMs', duplicates: 'genDuplicates',
  eventTimeRate: 'genEventTimeRate',
};

export function genOptionsFrom(cfg: Config): GenOptions {
  const o = {} as Record<keyof GenOptions, number>;
  for (const k of Object.keys(CONFIG_KEYS) as Array<keyof GenOptions>) o[k] = cfg[CONFIG_KEYS[k]] as number;
  return validateGenOptions(o);
}

/** The schema's defaults (as for `run`), overridden by `over`. Handy for tests and benchmarks. */
export function genOptions(over: Partial<GenOptions> = {}): GenOptions {
  const o = {} as Record<keyof GenOptions, number>;
  for (const k of Object.keys(CONFIG_KEYS) as Array<keyof GenOptions>) {
    const spec = OPTIONS.find((s) => s.key === CONFIG_KEYS[k]);
    if (k === 'profileSkew' || k === 'titleSkew') continue; // unset: follow skew
    o[k] = (spec?.default as number | undefined) ?? 0;
  }
  return validateGenOptions({ ...o, ...over });
}

export function validateGenOptions(o: GenOptions): GenOptions {
  const bad = (flag: string, why: string): never => { throw usageError(`--${flag}: ${why}`); };
  const num = (v: number, flag: string, min: number, max = Infinity): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) bad(flag, `expected a number in [${min}, ${max}], got ${v}`);
  };
  num(o.seed, 'seed', 0);
  num(o.rate, 'rate', 0);
  num(o.events, 'events', 0);
  num(o.durationMs, 'duration', 0);
  num(o.profiles, 'gen-profiles', 1, 0xffffffff);
  num(o.titles, 'gen-titles', 1, 0x7fffffff);
  num(o.skew, 'gen-skew', 0, 10);
  o.profileSkew ??= o.skew;
  o.titleSkew ??= o.skew;
  num(o.profileSkew, 'gen-profile-skew', 0, 10);
  num(o.titleSkew, 'gen-title-skew', 0, 10);
  num(o.playProb, 'gen-play-prob', 0, 1);
  num(o.playDelayMs, 'gen-play-delay', 0);
  num(o.disorderMs, 'gen-disorder', 0);
  num(o.duplicates, 'gen-duplicates', 0, 1);
  num(o.eventTimeRate, 'gen-event-time-rate', Number.MIN_VALUE);
  if (!(o.orphanPlays >= 0 && o.orphanPlays < 1)) bad('gen-orphan-plays', `expected a share in [0, 1), got ${o.orphanPlays}`);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Event values

const DEVICES = ['tv', 'mobile', 'tablet', 'web', 'console'] as const;
const DEVICE_CUMULATIVE = [0.55, 0.75, 0.85, 0.95, 1];
const DEVICE_BYTES = DEVICES.map((d) => new TextEncoder().encode(d));
const SAME_DEVICE_PROB = 0.9;
const MAX_ROW = 39, MAX_POSITION = 39;
const MEAN_ROW = 6, MEAN_POSITION = 5;
const MEAN_WATCH_MS = 25 * 60_000, MIN_WATCH_MS = 1_000, MAX_WATCH_MS = 4 * 3_600_000;
/** Event-time origin when rate is 0: 2026-01-01T00:00:00Z. */
export const FIXED_EPOCH_MS = Date.UTC(2026, 0, 1);

const FLAG_DUP = 1, FLAG_ORPHAN = 2;

/** JSON text of an impression, keys in schema order (equal to flatToJson's text for its bytes). */
export function impressionJson(e: ImpressionEvent): string {
  return '{"eventId":' + JSON.stringify(e.eventId) + ',"profileId":' + numText(e.profileId) + ',"titleId":' + numText(e.titleId) +
    ',"ts":' + numText(e.ts) + ',"row":' + numText(e.row) + ',"position":' + numText(e.position) +
    ',"device":' + JSON.stringify(e.device) + '}';
}

/** JSON text of a play, keys in schema order (equal to flatToJson's text for its bytes). */
export function playJson(e: PlayEvent): string {
  return '{"eventId":' + JSON.stringify(e.eventId) + ',"profileId":' + numText(e.profileId) + ',"titleId":' + numText(e.titleId) +
    ',"ts":' + numText(e.ts) + ',"durationMs":' + numText(e.durationMs) + ',"device":' + JSON.stringify(e.device) + '}';
}

function numText(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** The live events of a generator state, struct of arrays (index = the remapped pool index). */
export interface GenEvents {
  side: Uint8Array; flags: Uint8Array; device: Uint8Array; pos: Uint16Array;
  idNum: Float64Array; profile: Uint32Array; title: Uint32Array; ts: Float64Array; arrival: Float64Array; extra: Uint32Array;
}

export function newGenEvents(n: number): GenEvents {
  return {
    side: new Uint8Array(n), flags: new Uint8Array(n), device: new Uint8Array(n), pos: new Uint16Array(n),
    idNum: new Float64Array(n), profile: new Uint32Array(n), title: new Uint32Array(n), ts: new Float64Array(n),
    arrival: new Float64Array(n), extra: new Uint32Array(n),
  };
}

/** A generator's whole state (Generator.exportState); heaps as [key, event] pairs in heap order, queues as events. */
export interface GenState {
  rng: [number, number, number, number];
  baseMs: number; step: number; frontier: number; nextImpressionId: number; nextPlayId: number;
  emittedTotal: number; emitted: [number, number]; dups: [number, number]; orphansEmitted: number; done: boolean;
  events: GenEvents; arrivals: Float64Array; future: Float64Array; queues: [Int32Array, Int32Array];
}

export interface GenStats {
  /** Events released per side, duplicates included. */
  emitted: [number, number];
  /** Of which duplicate copies. */
  duplicates: [number, number];
  /** Orphan plays released (copies included). */
  orphanPlays: number;
  /** Event time of the generation frontier (ms). */
  frontierMs: number;
}

/**
 * Deterministic event generator. Pull events per side in arrival order with nextFlat / nextEvents
 * / nextJson; events of the other side released meanwhile wait in that side's queue (pull both
 * sides, or memory grows).
 */
export class Generator {
  readonly opts: GenOptions;
  /** True once the `events` limit is reached: nothing more will be released (queues may still hold events). */
  done = false;

  private readonly rng: Rng;
  private readonly profilesZ: ZipfTable;
  private readonly titlesZ: ZipfTable;
  readonly baseMs: number;
  private readonly stepMs: number;
  private readonly orphansPerStep: number;
  private step = 0;
  private frontier: number;
  private nextImpressionId = 1;
  private nextPlayId = 1;
  private emittedTotal = 0;
  private readonly emitted: [number, number] = [0, 0];
  private readonly dups: [number, number] = [0, 0];
  private orphansEmitted = 0;

  // event pool (struct of arrays) with a free list
  private cap = 0;
  private side = new Uint8Array(0);
  private flags = new Uint8Array(0);
  private device = new Uint8Array(0);
  private idNum = new Float64Array(0);
  private profile = new Uint32Array(0);
  private title = new Uint32Array(0);
  private ts = new Float64Array(0);
  private arrival = new Float64Array(0);
  private extra = new Uint32Array(0);   // row (impression) or durationMs (play)
  private pos = new Uint16Array(0);     // position (impression)
  private free = new Int32Array(0);
  private nFree = 0;
  /** Scheduled events by arrival time (events within disorderMs of the frontier). */
  private readonly arrivals = new MinHeap();
  /** Plays whose event time is still ahead of the frontier, by ts; scheduled when it is reached. */
  private readonly future = new MinHeap();
  private readonly queues: [IndexQueue, IndexQueue] = [new IndexQueue(), new IndexQueue()];
  private readonly idScratch = new Uint8Array(32);

  /** `baseMs` fixes where event time starts (a restored run must regenerate the same events). */
  constructor(opts: GenOptions, baseMs?: number) {
    this.opts = validateGenOptions({ ...opts });
    const o = this.opts;
    this.rng = new Rng(o.seed);
    this.profilesZ = zipf(o.profiles, o.profileSkew!);
    this.titlesZ = zipf(o.titles, o.titleSkew!);
    this.orphansPerStep = (o.playProb * o.orphanPlays) / (1 - o.orphanPlays);
    const perStep = (1 + o.playProb + this.orphansPerStep) * (1 + o.duplicates);
    this.stepMs = (1000 * perStep) / (o.rate > 0 ? o.rate : o.eventTimeRate);
    this.baseMs = baseMs ?? (o.rate > 0 ? Date.now() : FIXED_EPOCH_MS);
    this.frontier = this.baseMs;
    this.grow(1 << 14);
  }

  stats(): GenStats {
    return { emitted: [this.emitted[0], this.emitted[1]], duplicates: [this.dups[0], this.dups[1]], orphanPlays: this.orphansEmitted, frontierMs: this.frontier };
  }

  /** Events generated and not yet handed out (scheduled, in the future, or queued): what exportState copies. */
  get liveEvents(): number {
    return this.cap - this.nFree;
  }

  /** Events released (both sides) so far. */
  get released(): number {
    return this.emittedTotal;
  }

  queued(side: Side): number {
    return this.queues[side].size;
  }

  /** True when `side` is finished: nothing queued and nothing more will be released for it. */
  exhausted(side: Side): boolean {
    return this.queues[side].size === 0 && (this.done || (side === 1 && this.opts.playProb === 0));
  }

  /** Advance until at least `n` more events are released (fewer once the limit is reached). */
  pump(n: number): void {
    const target = this.emittedTotal + n;
    while (!this.done && this.emittedTotal < target) this.stepOnce();
  }

  /** Advance until `side` has at least `n` events queued, or it is exhausted. */
  private fillSide(side: Side, n: number): void {
    if (side === 1 && this.opts.playProb === 0) return;
    const q = this.queues[side];
    while (!this.done && q.size < n) this.stepOnce();
  }

  /**
   * Append up to `max` events of `side` to `w` as FlatBuffers records; returns the count. With
   * `fill` (default) it generates until `max` are queued, so 0 means exhausted; without, it only
   * takes what is already queued.
   */
  nextFlat(side: Side, max: number, w: FlatBatchWriter, fill = true): number {
    if (fill) this.fillSide(side, max);
    const q = this.queues[side];
    const n = Math.min(max, q.size);
    for (let k = 0; k < n; k++) {
      const i = q.shift();
      this.writeFlat(i, w);
      this.release1(i);
    }
    return n;
  }

  /** Drops up to `max` events of `side` as nextFlat would hand them out (same state after), without formatting them; returns the count. */
  skip(side: Side, max: number): number {
    this.fillSide(side, max);
    const q = this.queues[side];
    const n = Math.min(max, q.size);
    for (let k = 0; k < n; k++) this.release1(q.shift());
    return n;
  }

  /** Up to `max` events of `side` as plain objects (empty = exhausted). */
  nextEvents(side: 0, max: number): ImpressionEvent[];
  nextEvents(side: 1, max: number): PlayEvent[];
  nextEvents(side: Side, max: number): Array<ImpressionEvent | PlayEvent>;
  nextEvents(side: Side, max: number): Array<ImpressionEvent | PlayEvent> {
    this.fillSide(side, max);
    const q = this.queues[side];
    const n = Math.min(max, q.size);
    const out: Array<ImpressionEvent | PlayEvent> = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = q.shift();
      out[k] = this.toObject(i);
      this.release1(i);
    }
    return out;
  }

  /** Up to `max` events of `side` as NDJSON text (each line ends with \n; '' = exhausted); `fill` as for nextFlat. */
  nextJson(side: Side, max: number, fill = true): string {
    if (fill) this.fillSide(side, max);
    const q = this.queues[side];
    const n = Math.min(max, q.size);
    let s = '';
    for (let k = 0; k < n; k++) {
      const i = q.shift();
      const id = (this.side[i] === 0 ? 'i-' : 'p-') + this.idNum[i];
      s += '{"eventId":"' + id + '","profileId":' + this.profile[i] + ',"titleId":' + this.title[i] + ',"ts":' + this.ts[i] +
        (this.side[i] === 0 ? ',"row":' + this.extra[i] + ',"position":' + this.pos[i] : ',"durationMs":' + this.extra[i]) +
        ',"device":"' + DEVICES[this.device[i]] + '"}\n';
      this.release1(i);
    }
    return s;
  }

  /**
   * Everything the next event depends on, the pool compacted to the live events (scheduled, in the
   * future heap, or queued): a checkpoint stores it so a resume starts here instead of regenerating
   * every event delivered before (gen-snapshot.ts encodes it). Heaps keep their layout, so equal
   * keys leave in the same order as they would have.
   */
  exportState(): GenState {
    const heaps = [this.arrivals.entries(), this.future.entries()];
    const queues = [this.queues[0].items(), this.queues[1].items()];
    // The live events keep their pool order (read in ascending order, the copies stream rather than
    // miss the cache at every event: 3–4× faster at 400k live events), renumbered from 0.
    const remap = new Int32Array(this.cap).fill(-1);
    for (const kv of heaps) for (let k = 1; k < kv.length; k += 2) remap[kv[k]] = 0;
    for (const q of queues) for (let k = 0; k < q.length; k++) remap[q[k]] = 0;
    let n = 0;
    for (let i = 0; i < remap.length; i++) if (remap[i] === 0) remap[i] = n++ + 1;
    const order = new Int32Array(n);
    for (let i = 0; i < remap.length; i++) if (remap[i] > 0) order[--remap[i]] = i;
    const ev = newGenEvents(n);
    for (let k = 0; k < n; k++) {
      const i = order[k];
      ev.side[k] = this.side[i]; ev.flags[k] = this.flags[i]; ev.device[k] = this.device[i]; ev.pos[k] = this.pos[i];
      ev.idNum[k] = this.idNum[i]; ev.profile[k] = this.profile[i]; ev.title[k] = this.title[i]; ev.ts[k] = this.ts[i];
      ev.arrival[k] = this.arrival[i]; ev.extra[k] = this.extra[i];
    }
    const heap = (kv: Float64Array): Float64Array => {
      const out = new Float64Array(kv.length);
      for (let k = 0; k < kv.length; k += 2) { out[k] = kv[k]; out[k + 1] = remap[kv[k + 1]]; }
      return out;
    };
    return {
      rng: this.rng.state, baseMs: this.baseMs, step: this.step, frontier: this.frontier,
      nextImpressionId: this.nextImpressionId, nextPlayId: this.nextPlayId, emittedTotal: this.emittedTotal,
      emitted: [this.emitted[0], this.emitted[1]], dups: [this.dups[0], this.dups[1]], orphansEmitted: this.orphansEmitted, done: this.done,
      events: ev, arrivals: heap(heaps[0]), future: heap(heaps[1]), queues: [queues[0].map((i) => remap[i]), queues[1].map((i) => remap[i])],
    };
  }

  /** Continue from a state exportState gave (of a generator with the same options and baseMs). */
  importState(st: GenState): void {
    if (st.baseMs !== this.baseMs) throw new Error(`generator state starts at ${st.baseMs}, not ${this.baseMs}`);
    const ev = st.events, n = ev.side.length;
    if (this.cap < n) this.grow(2 ** Math.ceil(Math.log2(n + 1)));
    this.side.set(ev.side); this.flags.set(ev.flags); this.device.set(ev.device); this.idNum.set(ev.idNum);
    this.profile.set(ev.profile); this.title.set(ev.title); this.ts.set(ev.ts); this.arrival.set(ev.arrival);
    this.extra.set(ev.extra); this.pos.set(ev.pos);
    this.nFree = 0;
    for (let i = this.cap - 1; i >= n; i--) this.free[this.nFree++] = i;
    this.arrivals.load(st.arrivals); this.future.load(st.future);
    this.queues[0].load(st.queues[0]); this.queues[1].load(st.queues[1]);
    this.rng.state = st.rng;
    this.step = st.step; this.frontier = st.frontier; this.nextImpressionId = st.nextImpressionId; this.nextPlayId = st.nextPlayId;
    this.emittedTotal = st.emittedTotal; this.emitted[0] = st.emitted[0]; this.emitted[1] = st.emitted[1];
    this.dups[0] = st.dups[0]; this.dups[1] = st.dups[1]; this.orphansEmitted = st.orphansEmitted; this.done = st.done;
  }

  // ---- internals ----

  private toObject(i: number): ImpressionEvent | PlayEvent {
    const device = DEVICES[this.device[i]];
    if (this.side[i] === 0) {
      return { eventId: 'i-' + this.idNum[i], profileId: this.profile[i], titleId: this.title[i], ts: this.ts[i], row: this.extra[i], position: this.pos[i], device };
    }
    return { eventId: 'p-' + this.idNum[i], profileId: this.profile[i], titleId: this.title[i], ts: this.ts[i], durationMs: this.extra[i], device };
  }

  private writeFlat(i: number, w: FlatBatchWriter): void {
    const b = this.idScratch;
    const isLeft = this.side[i] === 0;
    b[0] = isLeft ? 0x69 : 0x70; // 'i' | 'p'
    b[1] = 0x2d;                 // '-'
    const num = this.idNum[i];
    let idLen: number;
    if (num < 0x80000000) { // small-integer arithmetic, the common case
      let n = num | 0;
      // Comparisons, not a loop of divisions, for the digit count (ids grow by one per event).
      const digits = n < 100000 ? (n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5)
        : (n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10);
      for (let p = 1 + digits; p >= 2; p--) { const q = (n / 10) | 0; b[p] = 0x30 + n - q * 10; n = q; }
      idLen = 2 + digits;
    } else {
      const t = String(num);
      for (let k = 0; k < t.length; k++) b[2 + k] = t.charCodeAt(k);
      idLen = 2 + t.length;
    }
    const dev = DEVICE_BYTES[this.device[i]];
    if (isLeft) w.appendImpression(b, idLen, this.profile[i], this.title[i], this.ts[i], this.extra[i], this.pos[i], dev);
    else w.appendPlay(b, idLen, this.profile[i], this.title[i], this.ts[i], this.extra[i], dev);
  }

  private grow(n: number): void {
    const old = this.cap;
    const g = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.side = g(this.side, (k) => new Uint8Array(k));
    this.flags = g(this.flags, (k) => new Uint8Array(k));
    this.device = g(this.device, (k) => new Uint8Array(k));
    this.idNum = g(this.idNum, (k) => new Float64Array(k));
    this.profile = g(this.profile, (k) => new Uint32Array(k));
    this.title = g(this.title, (k) => new Uint32Array(k));
    this.ts = g(this.ts, (k) => new Float64Array(k));
    this.arrival = g(this.arrival, (k) => new Float64Array(k));
    this.extra = g(this.extra, (k) => new Uint32Array(k));
    this.pos = g(this.pos, (k) => new Uint16Array(k));
    const free = new Int32Array(n);
    free.set(this.free.subarray(0, this.nFree));
    for (let i = n - 1; i >= old; i--) free[this.nFree++] = i;
    this.free = free;
    this.cap = n;
  }

  private alloc(): number {
    if (this.nFree === 0) this.grow(this.cap * 2);
    return this.free[--this.nFree];
  }

  private release1(i: number): void {
    this.free[this.nFree++] = i;
  }

  /** Schedule event i (arrival = ts + U(0, disorder)) and, with probability `duplicates`, a copy. */
  private schedule(i: number): void {
    const rng = this.rng, d = this.opts.disorderMs;
    const t = this.ts[i];
    const arr = t + rng.next() * d;
    this.arrival[i] = arr;
    this.arrivals.push(arr, i);
    if (this.opts.duplicates > 0 && rng.next() < this.opts.duplicates) {
      const j = this.alloc();
      this.side[j] = this.side[i]; this.flags[j] = this.flags[i] | FLAG_DUP; this.device[j] = this.device[i];
      this.idNum[j] = this.idNum[i]; this.profile[j] = this.profile[i]; this.title[j] = this.title[i];
      this.ts[j] = t; this.extra[j] = this.extra[i]; this.pos[j] = this.pos[i];
      this.arrival[j] = arr + rng.next() * (t + d - arr);
      this.arrivals.push(this.arrival[j], j);
    }
  }

  private randomDevice(): number {
    const u = this.rng.next();
    let k = 0;
    while (u >= DEVICE_CUMULATIVE[k]) k++;
    return k;
  }

  private watchMs(): number {
    return Math.min(MAX_WATCH_MS, MIN_WATCH_MS + Math.round(this.rng.exp(MEAN_WATCH_MS)));
  }

  private newPlay(profile: number, title: number, ts: number, device: number, flags: number): void {
    const p = this.alloc();
    this.side[p] = 1; this.flags[p] = flags; this.device[p] = device;
    this.idNum[p] = this.nextPlayId++;
    this.profile[p] = profile; this.title[p] = title; this.ts[p] = ts;
    this.extra[p] = this.watchMs(); this.pos[p] = 0;
    if (ts > this.frontier) this.future.push(ts, p);
    else this.schedule(p);
  }

  /** Release every event that has arrived by `upTo`, in arrival order, until the limit. */
  private releaseUpTo(upTo: number): void {
    const h = this.arrivals, limit = this.opts.events;
    while (h.size > 0 && h.topKey <= upTo) {
      const i = h.pop();
      const s = this.side[i] as Side;
      this.queues[s].push(i);
      this.emitted[s]++;
      const f = this.flags[i];
      if (f & FLAG_DUP) this.dups[s]++;
      if (f & FLAG_ORPHAN) this.orphansEmitted++;
      if (++this.emittedTotal === limit) { this.done = true; return; }
    }
  }

  private stepOnce(): void {
    const o = this.opts, rng = this.rng;
    const now = this.baseMs + this.step * this.stepMs;
    this.step++;
    const ts = Math.floor(now);
    this.frontier = ts;
    // Plays whose time has come get their arrival time now (≥ their ts > the previous frontier).
    const fut = this.future;
    while (fut.size > 0 && fut.topKey <= ts) this.schedule(fut.pop());
    // Every event scheduled from here on has arrival ≥ ts, so releasing up to ts keeps arrival order.
    this.releaseUpTo(ts);
    if (this.done) return;

    const profile = this.profilesZ.sample(rng) + 1;
    const title = this.titlesZ.sample(rng) + 1;
    const device = this.randomDevice();
    const imp = this.alloc();
    this.side[imp] = 0; this.flags[imp] = 0; this.device[imp] = device;
    this.idNum[imp] = this.nextImpressionId++;
    this.profile[imp] = profile; this.title[imp] = title; this.ts[imp] = ts;
    this.extra[imp] = Math.min(MAX_ROW, Math.floor(rng.exp(MEAN_ROW)));
    this.pos[imp] = Math.min(MAX_POSITION, Math.floor(rng.exp(MEAN_POSITION)));
    this.schedule(imp);

    if (o.playProb > 0 && rng.next() < o.playProb) {
      const playDevice = rng.next() < SAME_DEVICE_PROB ? device : this.randomDevice();
      this.newPlay(profile, title, ts + Math.round(rng.exp(o.playDelayMs)), playDevice, 0);
    }

    let orphans = this.orphansPerStep;
    while (orphans > 0) {
      if (orphans >= 1 || rng.next() < orphans) {
        const p = this.profilesZ.sample(rng) + 1;
        const t = o.titles + 1 + this.titlesZ.sample(rng); // never shown in an impression
        this.newPlay(p, t, ts, this.randomDevice(), FLAG_ORPHAN);
      }
      orphans -= 1;
    }
  }
}
