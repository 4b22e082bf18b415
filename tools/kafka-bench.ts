/**
 * Kafka → join → Kafka on one machine: joinery against Kafka Streams on the same topics and data.
 *
 *   npm run build && node dist/tools/kafka-bench.js [--events 1000000] [--rounds 1] [--workers 2]
 *       [--systems joinery,joinery-ckpt,kstreams] [--format json|flatbuffers] [--peers DIR] [--brokers HOST:PORT]
 *       [--ceiling] [--json]
 *
 * A system may name its own thread count as SYSTEM:N (`joinery:1`: one worker; `kstreams:1`: one
 * stream thread); without it, --workers applies to each. On 2 cores, `joinery:1` (the main thread
 * and one worker) is joinery's best setting on this path: the main thread carries kafkajs's
 * fetches and produces and the JSON scan, so a second worker adds a third busy thread (and a third
 * isolate for V8 to compile for) to two cores.
 *
 * 1. Starts a broker with tools/kafka/start (stopped at the end), or uses --brokers.
 * 2. Generates the workload once into two 3-partition topics with `joinery gen --brokers`: the
 *    realistic data of the Flink comparison (1M members Zipf 0.5 × 20k titles Zipf 1.0, 4 h of
 *    event time, no duplicate deliveries), keyed by the join key and partitioned by murmur2 of it,
 *    so both topics are co-partitioned as Kafka Streams requires. JSON values (the Kafka Streams job
 *    reads JSON); --format flatbuffers for joinery alone.
 * 3. Runs N rounds, the order alternating from round to round, each run into its own output topic:
 *    - joinery: `run` with --workers N (lmdb), the topics in, a Kafka topic out, until idle 1 s;
 *    - joinery-ckpt: the same with checkpoints every 10 s, at-least-once output (Kafka Streams'
 *      guarantee here; its changelog topics are what makes its state survive a crash);
 *    - kstreams: the Kafka Streams peer job (--peers DIR or JOINERY_PEERS: the directory holding
 *      kstreams-join/; built with Maven under PEERS_BUILD, default /tmp/joinery-peers): a
 *      KStream–KStream join with RocksDB window stores, N stream threads, at-least-once.
 *    Both join right.ts − left.ts in [−2 min, +1 h] on (profileId, titleId); joinery allows 30 s
 *    out of order (--max-delay), Kafka Streams 30 s of grace. The generator's disorder is 3 s, so
 *    neither drops anything as late and both must write the same pairs; the bench checks it.
 * 4. Prints each run and the medians: events/s (each system's own timing: joinery from start to
 *    its last event, without the idle second that ends the run; Kafka Streams from
 *    KafkaStreams.start() until its output topic held every pair), CPU µs per event of the whole
 *    process (joinery per thread from its summary, the main thread being "router"; the JVM from
 *    /proc, without its output-reader thread, which only counts the pairs), the broker's CPU per
 *    event, and the ratios.
 * --ceiling also times the kafkajs consumer alone (KafkaSource drained in this process) once.
 *
 * Exit 0 when every run succeeded and the pair counts agree; 1 otherwise.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KafkaSource } from '../src/kafka/kafkajs/index.js';
import { JOIN_WINDOW, JOINERY, cpuSeconds, dropTopics, genTopics, loadAverage, median, openBroker } from './kafka/bench-env.js';
import { buildKStreamsJob, createOutputTopic, runKStreams } from './kafka/kstreams-peer.js';

const argv = process.argv.slice(2);
const FLAGS = ['--events', '--rounds', '--workers', '--systems', '--format', '--peers', '--brokers', '--ceiling', '--json', '--help'];
function usage(msg: string): never {
  process.stderr.write(`kafka-bench: ${msg}\n`);
  process.exit(2);
}
function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  if (i + 1 >= argv.length) usage(`--${name} needs a value`);
  return argv[i + 1];
}
if (argv.includes('--help')) {
  process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0].replace(/^\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
  process.exit(0);
}
for (const a of argv) if (a.startsWith('--') && !FLAGS.includes(a)) usage(`unknown flag ${a}`);
const EVENTS = Number(opt('events', '1000000'));
const ROUNDS = Number(opt('rounds', '1'));
const WORKERS = Number(opt('workers', '2'));
const SYSTEMS = opt('systems', 'joinery,joinery-ckpt,kstreams').split(',');
const KNOWN = ['joinery', 'joinery-ckpt', 'kstreams'];
/** `joinery:1` → joinery with 1 worker; a bare name takes --workers. */
function parseSystem(spec: string): { base: string; threads: number } {
  const [base, n, ...rest] = spec.split(':');
  if (!KNOWN.includes(base) || rest.length > 0) usage(`--systems: unknown system ${spec} (known: ${KNOWN.join(', ')}, each optionally :THREADS)`);
  const threads = n === undefined ? WORKERS : Number(n);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) usage(`--systems ${spec}: expected a thread count from 1 to 64 after the colon`);
  return { base, threads };
}
const FORMAT = opt('format', 'json');
const PEERS = path.resolve(opt('peers', process.env.JOINERY_PEERS ?? ''));
const BUILD = process.env.PEERS_BUILD ?? '/tmp/joinery-peers';
const PARTITIONS = 3;
const IDLE_MS = 1000;
if (!Number.isInteger(EVENTS) || EVENTS < 1000) usage('--events: expected a whole number ≥ 1000');
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) usage('--rounds: expected a whole number ≥ 1');
if (!Number.isInteger(WORKERS) || WORKERS < 1) usage('--workers: expected a whole number ≥ 1');
const SPECS = new Map(SYSTEMS.map((s) => [s, parseSystem(s)]));
if (SPECS.size !== SYSTEMS.length) usage('--systems: a system is named twice');
const isKStreams = (system: string): boolean => SPECS.get(system)!.base === 'kstreams';
if (FORMAT !== 'json' && FORMAT !== 'flatbuffers') usage('--format: json or flatbuffers');
if (FORMAT !== 'json' && SYSTEMS.some(isKStreams)) usage('--format flatbuffers: the Kafka Streams job reads JSON values; use --systems joinery');

interface Run {
  system: string; round: number; ok: boolean;
  events: number; pairs: number;
  eventsPerSec: number;
  /** Whole process, per input event. */
  cpuUsPerEvent: number;
  /** joinery: the main thread (router + kafkajs); kstreams: without the measuring output reader. */
  mainUsPerEvent?: number; jobUsPerEvent?: number;
  threads?: Array<{ name: string; usPerEvent: number }>;
  brokerUsPerEvent: number;
  wallSeconds: number;
}

const say = (s: string): void => { process.stderr.write(`${s}\n`); };
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function runJoinery(system: string, round: number, brokers: string, brokerPid: number, L: string, R: string, tag: string): Promise<Run> {
  const name = system.replace(':', '.'); // a topic or group name has no colons
  const out = `bench-out-${tag}-${name}-${round}`;
  const { base, threads } = SPECS.get(system)!;
  const ckpt = base === 'joinery-ckpt' ? ['--checkpoint-dir', path.join(os.tmpdir(), `joinery-kbench-ckpt-${tag}-${name}-${round}`), '--delivery', 'at-least-once'] : [];
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kbench-'));
  const b0 = brokerPid ? cpuSeconds(brokerPid) : 0, t0 = performance.now();
  const r = spawnSync(process.execPath, [JOINERY, 'run', '--brokers', brokers, '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--format', FORMAT,
    '--group', `bench-run-${tag}-${name}-${round}`, ...ckpt, '--workers', String(threads), '--state', 'lmdb',
    '--lower', `${JOIN_WINDOW.lowerMs}ms`, '--upper', `${JOIN_WINDOW.upperMs}ms`, '--max-delay', `${JOIN_WINDOW.maxDelayMs}ms`,
    '--out', `kafka:${out}`, '--exit-when-idle', `${IDLE_MS}ms`, '--state-dir', stateDir, '--json', '--progress', 'off'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const wallSeconds = (performance.now() - t0) / 1000;
  const brokerS = brokerPid ? cpuSeconds(brokerPid) - b0 : NaN;
  fs.rmSync(stateDir, { recursive: true, force: true });
  if (ckpt.length > 0) fs.rmSync(ckpt[1], { recursive: true, force: true });
  await dropTopics(brokers, [out]);
  if (r.status !== 0) throw new Error(`joinery run failed (exit ${r.status})`);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    elapsedMs: number; eventsIn: [number, number]; pairs: number;
    cpu: { totalMs: number; threads: Array<{ name: string; usPerEvent: number }> };
  };
  const events = s.eventsIn[0] + s.eventsIn[1];
  return {
    system, round, ok: true, events, pairs: s.pairs,
    eventsPerSec: events / ((s.elapsedMs - IDLE_MS) / 1000),
    cpuUsPerEvent: (s.cpu.totalMs * 1000) / events,
    mainUsPerEvent: s.cpu.threads.find((t) => t.name === 'router')?.usPerEvent,
    threads: s.cpu.threads,
    brokerUsPerEvent: (brokerS * 1e6) / events, wallSeconds,
  };
}

async function runKStreamsOnce(system: string, round: number, classpath: string, brokers: string, brokerPid: number, L: string, R: string, tag: string, expectedPairs: number): Promise<Run> {
  const name = system.replace(':', '.');
  const out = `ks-out-${tag}-${name}-${round}`, appId = `ks-${tag}-${name}-${round}`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kstreams-kbench-'));
  createOutputTopic(classpath, brokers, out, PARTITIONS);
  const b0 = brokerPid ? cpuSeconds(brokerPid) : 0;
  const k = await runKStreams({
    // the pair-count file beside Kafka Streams' state directory, not in it: a run once lost it there
    classpath, brokers, leftTopic: L, rightTopic: R, outTopic: out, applicationId: appId, stateDir: path.join(stateDir, 'state'), outFile: path.join(stateDir, 'out.ndjson'),
    threads: SPECS.get(system)!.threads, lowerMs: JOIN_WINDOW.lowerMs, upperMs: JOIN_WINDOW.upperMs, graceMs: JOIN_WINDOW.maxDelayMs, expectedPairs, timeoutS: 1800,
  });
  const brokerS = brokerPid ? cpuSeconds(brokerPid) - b0 : NaN;
  fs.rmSync(stateDir, { recursive: true, force: true });
  await dropTopics(brokers, [out], [`${appId}-`]);
  return {
    system, round, ok: k.ok, events: k.events, pairs: k.pairs,
    eventsPerSec: k.events / k.jobSeconds,
    cpuUsPerEvent: (k.cpuSeconds * 1e6) / k.events,
    jobUsPerEvent: ((k.cpuSeconds - k.readerCpuSeconds) * 1e6) / k.events,
    brokerUsPerEvent: (brokerS * 1e6) / k.events, wallSeconds: k.wallSeconds,
  };
}

function describe(r: Run): string {
  const parts = [`${r.system} round ${r.round}: ${fmt(r.eventsPerSec)} events/s, ${fmt(r.pairs)} pairs, CPU ${r.cpuUsPerEvent.toFixed(2)} µs/event`];
  if (r.threads) parts.push(`(${r.threads.map((t) => `${t.name === 'router' ? 'main' : t.name} ${t.usPerEvent.toFixed(2)}`).join(', ')})`);
  if (r.jobUsPerEvent !== undefined) parts.push(`(${r.jobUsPerEvent.toFixed(2)} without the output reader)`);
  parts.push(`broker ${r.brokerUsPerEvent.toFixed(2)} µs/event, process wall ${r.wallSeconds.toFixed(1)} s${r.ok ? '' : ', FAILED'}`);
  return parts.join(' ');
}

async function ceiling(brokers: string, L: string, R: string, tag: string): Promise<void> {
  const t0 = performance.now(), c0 = process.cpuUsage();
  const src = await KafkaSource.open({ brokers: [brokers], groupId: `bench-ceiling-${tag}`, leftTopic: L, rightTopic: R, format: FORMAT as 'json', exitWhenIdleMs: IDLE_MS });
  let n = 0, lastAt = t0;
  for (let b = await src.next(); b; b = await src.next()) { n += b.count; lastAt = performance.now(); }
  await src.close();
  const c = process.cpuUsage(c0);
  say(`kafkajs consumer alone (KafkaSource.next loop): ${fmt(n / ((lastAt - t0) / 1000))} events/s, ${((c.user + c.system) / n).toFixed(2)} µs CPU/event`);
}

const broker = openBroker(opt('brokers', ''));
const tag = Date.now().toString(36);
const L = `bench-imp-${tag}`, R = `bench-play-${tag}`;
let exitCode = 0;
try {
  const classpath = SYSTEMS.some(isKStreams) ? buildKStreamsJob(PEERS, BUILD) : '';
  say(`kafka-bench: ${fmt(EVENTS)} events (${FORMAT}) into ${L}/${R} (${PARTITIONS} partitions each) on ${broker.brokers}; load average ${loadAverage()}`);
  genTopics(broker.brokers, L, R, PARTITIONS, FORMAT as 'json', EVENTS);
  if (argv.includes('--ceiling')) await ceiling(broker.brokers, L, R, tag);

  const runs: Run[] = [];
  let expectedPairs = -1;
  for (let round = 1; round <= ROUNDS; round++) {
    // joinery first in odd rounds (its pair count then tells Kafka Streams when it is done)
    const order = round % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const system of order) {
      const r = !isKStreams(system)
        ? await runJoinery(system, round, broker.brokers, broker.pid, L, R, tag)
        : await runKStreamsOnce(system, round, classpath, broker.brokers, broker.pid, L, R, tag, expectedPairs);
      if (!isKStreams(system) && expectedPairs < 0) expectedPairs = r.pairs;
      runs.push(r);
      say(`${describe(r)}; load average ${loadAverage()}`);
    }
  }

  const pairCounts = new Set(runs.map((r) => r.pairs));
  const agree = pairCounts.size === 1 && runs.every((r) => r.ok);
  if (!agree) exitCode = 1;
  const med = (system: string, f: (r: Run) => number | undefined): number => median(runs.filter((r) => r.system === system).map(f).filter((x): x is number => x !== undefined));
  const threads = Object.fromEntries([...SPECS].map(([s, v]) => [s, v.threads]));
  const summary: Record<string, unknown> = { events: EVENTS, format: FORMAT, rounds: ROUNDS, threads, pairs: [...pairCounts], pairsAgree: agree, loadAverage: loadAverage(), runs };
  say(`\nmedians of ${ROUNDS} round(s); threads (joinery: workers beside the main thread; Kafka Streams: stream threads): ${SYSTEMS.map((s) => `${s} ${threads[s]}`).join(', ')}; pairs ${agree ? `agree (${fmt(runs[0].pairs)})` : `DIFFER: ${[...pairCounts].join(' vs ')}`}`);
  for (const system of SYSTEMS) {
    const m = {
      eventsPerSec: med(system, (r) => r.eventsPerSec), cpuUsPerEvent: med(system, (r) => r.cpuUsPerEvent),
      mainUsPerEvent: med(system, (r) => r.mainUsPerEvent), jobUsPerEvent: med(system, (r) => r.jobUsPerEvent), brokerUsPerEvent: med(system, (r) => r.brokerUsPerEvent),
    };
    summary[system] = m;
    say(`  ${system}: ${fmt(m.eventsPerSec)} events/s, ${m.cpuUsPerEvent.toFixed(2)} µs CPU/event` +
      (!isKStreams(system) ? ` (main thread ${m.mainUsPerEvent.toFixed(2)})` : ` (${m.jobUsPerEvent.toFixed(2)} without the output reader)`) +
      `, broker ${m.brokerUsPerEvent.toFixed(2)} µs/event`);
  }
  for (const ks of SYSTEMS.filter(isKStreams)) {
    const k = summary[ks] as { eventsPerSec: number; jobUsPerEvent: number; brokerUsPerEvent: number };
    for (const system of SYSTEMS.filter((x) => !isKStreams(x))) {
      const j = summary[system] as { eventsPerSec: number; cpuUsPerEvent: number; brokerUsPerEvent: number };
      const ratio = { eventsPerSec: j.eventsPerSec / k.eventsPerSec, cpuPerEvent: k.jobUsPerEvent / j.cpuUsPerEvent,
        cpuPerEventWithBroker: (k.jobUsPerEvent + k.brokerUsPerEvent) / (j.cpuUsPerEvent + j.brokerUsPerEvent) };
      summary[`ratio:${system}/${ks}`] = ratio;
      say(`  ${system} / ${ks}: ${ratio.eventsPerSec.toFixed(1)}× the events/s, ${ratio.cpuPerEvent.toFixed(1)}× less CPU per event (${ratio.cpuPerEventWithBroker.toFixed(1)}× with the broker's)`);
    }
  }
  if (argv.includes('--json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
} catch (e) {
  say(`kafka-bench: ${(e as Error).message}`);
  exitCode = 1;
} finally {
  if (opt('brokers', '')) await dropTopics(broker.brokers, [L, R]).catch(() => {});
  broker.stop();
}
process.exit(exitCode);
