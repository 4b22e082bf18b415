/**
 * What the Kafka benchmarks share: a broker (tools/kafka/start, or one given with --brokers), CPU
 * time of processes and threads from /proc, the workload generated into two topics once, topic
 * clean-up between runs, and small statistics.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKafka, closeKafka, deleteTopics } from '../../src/kafka/kafkajs/index.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const JOINERY = path.join(root, 'bin', 'joinery.js');

const HZ = 100; // USER_HZ on Linux

/** utime + stime of a process (all its threads, dead ones included) or of one thread, in seconds. */
export function cpuSeconds(pid: number, tid?: number): number {
  const f = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(') ') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / HZ;
}

/** CPU seconds of each live thread of a process, by thread name (names repeat: summed). */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + cpuSeconds(pid, Number(tid)));
    } catch { /* the thread ended meanwhile */ }
  }
  return out;
}

export interface Broker {
  brokers: string;
  pid: number;
  /** Stops the broker when this process started it. */
  stop(): void;
}

/** The broker at `given`, or one started with tools/kafka/start (stopped by stop()). */
export function openBroker(given: string): Broker {
  // The same per-checkout default as tools/kafka/start (cksum of the real path of tools/kafka).
  const stateFile = process.env.JOINERY_KAFKA_STATE ??
    `/tmp/joinery-kafka-${execFileSync('sh', ['-c', 'pwd -P | cksum'], { cwd: path.join(root, 'tools/kafka'), encoding: 'utf8' }).split(' ')[0]}.state`;
  const own = !given;
  const brokers = own
    ? execFileSync(path.join(root, 'tools/kafka/start'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!
    : given;
  // The broker's CPU is reported only when it is the one this checkout started (its pid is known).
  let pid = 0;
  try {
    const state = fs.readFileSync(stateFile, 'utf8');
    if (state.includes(`JOINERY_KAFKA_BOOTSTRAP=${brokers}`)) pid = Number(/JOINERY_KAFKA_PID=(\d+)/.exec(state)?.[1] ?? 0);
  } catch { /* not ours */ }
  return { brokers, pid, stop: () => { if (own) spawnSync(path.join(root, 'tools/kafka/stop'), { stdio: 'inherit' }); } };
}

/**
 * The realistic workload of the Flink comparison (tools/peers-bench.ts): impressions and plays of
 * 1M members (Zipf 0.5) × 20k titles (Zipf 1.0), no duplicate deliveries (Kafka Streams does not
 * de-duplicate), 4 h of event time whatever the event count.
 */
export function realisticGenFlags(events: number): string[] {
  return ['--events', String(events), '--gen-profiles', '1000000', '--gen-profile-skew', '0.5', '--gen-titles', '20000', '--gen-title-skew', '1.0',
    '--gen-play-prob', '0.2565', '--gen-duplicates', '0', '--gen-event-time-rate', String(events / (4 * 3600))];
}

/** The join both systems run: right.ts − left.ts in [−2 min, +1 h], 30 s out of order allowed. */
export const JOIN_WINDOW = { lowerMs: -120_000, upperMs: 3_600_000, maxDelayMs: 30_000 };

/** `joinery gen --brokers` into two topics (keyed by the join key, murmur2-partitioned like Java's). */
export function genTopics(brokers: string, left: string, right: string, partitions: number, format: 'json' | 'flatbuffers', events: number): void {
  const g = spawnSync(process.execPath, [JOINERY, 'gen', '--brokers', brokers, '--left-topic', left, '--right-topic', right,
    '--partitions', String(partitions), '--format', format, ...realisticGenFlags(events), '--progress', 'off'], { stdio: 'inherit' });
  if (g.status !== 0) throw new Error(`joinery gen into ${left}/${right} failed (exit ${g.status})`);
}

/** Delete the named topics and every topic starting with one of the prefixes (Kafka Streams' internal ones). */
export async function dropTopics(brokers: string, names: readonly string[], prefixes: readonly string[] = []): Promise<void> {
  let doomed = [...names];
  if (prefixes.length > 0) {
    const h = createKafka([brokers], 'kafka-bench', { connectTimeoutMs: 10_000 });
    const admin = h.kafka.admin();
    try {
      await admin.connect();
      doomed = doomed.concat((await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(p))));
    } finally {
      await admin.disconnect().catch(() => {});
      closeKafka(h);
    }
  }
  if (doomed.length > 0) await deleteTopics([brokers], doomed);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
