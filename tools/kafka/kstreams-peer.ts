/**
 * The Kafka Streams peer job (a KStream–KStream join with RocksDB window stores) as an instrument
 * for tools/kafka-bench.ts: built with Maven into a writable directory outside the repo, run on
 * topics joinery gen wrote, measured from /proc.
 *
 * The job reads both topics as strings (the record key, here the join key's canonical text, and
 * the JSON value), takes event time from the value's "ts", joins with
 * JoinWindows.ofTimeDifferenceAndGrace(upper, grace).before(−lower).after(upper), writes each pair
 * as JSON to its output topic, and has an extra consumer thread ("output-reader") count the pairs
 * in that topic. Its own summary line (stdout) says when the expected pair count was reached,
 * counted from KafkaStreams.start(); that is the time reported.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cpuSeconds, threadCpuSeconds } from './bench-env.js';

const MAIN_CLASS = 'peers.kstreams.KStreamsJoinApp';
const JAR = 'kstreams-join-0.1.0.jar';

/**
 * A writable copy of PEERS/kstreams-join under BUILD, packaged with Maven when its sources are
 * newer than the jar. Returns the java classpath.
 */
export function buildKStreamsJob(peersDir: string, buildDir: string): string {
  const src = path.join(peersDir, 'kstreams-join');
  if (!fs.existsSync(path.join(src, 'pom.xml'))) {
    throw new Error(`the Kafka Streams peer job is not at ${src}: pass --peers DIR (or JOINERY_PEERS=DIR) naming the directory that holds kstreams-join/, or --systems joinery`);
  }
  const dir = path.join(buildDir, 'kstreams-join'), jar = path.join(dir, 'target', JAR);
  const newest = (d: string): number => fs.readdirSync(d, { withFileTypes: true })
    .reduce((m, e) => Math.max(m, e.isDirectory() ? newest(path.join(d, e.name)) : fs.statSync(path.join(d, e.name)).mtimeMs), 0);
  if (!fs.existsSync(jar) || newest(src) > fs.statSync(jar).mtimeMs) {
    for (const tool of ['java', 'mvn']) if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).error) throw new Error(`${tool} not found: the Kafka Streams job needs Java 17 and Maven`);
    process.stderr.write(`kafka-bench: building the Kafka Streams job in ${dir} with Maven (not timed)\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(buildDir, { recursive: true });
    fs.cpSync(src, dir, { recursive: true });
    spawnSync('chmod', ['-R', 'u+w', dir]);
    const b = spawnSync('mvn', ['-B', '-q', '-f', path.join(dir, 'pom.xml'), 'package', '-DskipTests'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (b.status !== 0) throw new Error('Maven build of the Kafka Streams job failed');
  }
  return `${jar}:${path.join(dir, 'target', 'lib', '*')}`;
}

/** (Re)create a topic the way the job expects its output topic: empty, retention.ms=-1 (its records carry event time). */
export function createOutputTopic(classpath: string, brokers: string, topic: string, partitions: number): void {
  const r = spawnSync('java', ['-cp', classpath, MAIN_CLASS, 'topics', '--bootstrap', brokers, '--topics', topic, '--partitions', String(partitions)],
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`creating ${topic} failed: ${r.stderr.trim()}`);
}

export interface KStreamsRunOptions {
  classpath: string;
  brokers: string;
  leftTopic: string;
  rightTopic: string;
  outTopic: string;
  applicationId: string;
  stateDir: string;
  outFile: string;
  threads: number;
  lowerMs: number;
  upperMs: number;
  graceMs: number;
  /** Pairs to wait for (the timed end); -1: until the inputs are consumed and the output is idle 3 s. */
  expectedPairs: number;
  timeoutS: number;
}

export interface KStreamsRun {
  ok: boolean;
  events: number;
  pairs: number;
  /** From KafkaStreams.start() until the output topic held the expected pairs. */
  jobSeconds: number;
  /** Spawn to exit, JVM start and shutdown included. */
  wallSeconds: number;
  /** The whole JVM (every thread, JIT and GC included). */
  cpuSeconds: number;
  /** Of which the output-reader thread (the measuring consumer, not the job). */
  readerCpuSeconds: number;
  summary: Record<string, unknown>;
}

const POLL_MS = 100;

/**
 * Run the job once. The JVM's CPU is read from /proc while it runs and once more the moment its
 * summary line arrives (after it closed the streams, before exit), so nothing but System.exit is
 * missed.
 */
export function runKStreams(o: KStreamsRunOptions): Promise<KStreamsRun> {
  const args = ['-Dpeers.log.level=ERROR', '-cp', o.classpath, MAIN_CLASS, 'run', '--bootstrap', o.brokers, '--out-file', o.outFile,
    '--left-topic', o.leftTopic, '--right-topic', o.rightTopic, '--out-topic', o.outTopic, '--threads', String(o.threads),
    '--lower-ms', String(o.lowerMs), '--upper-ms', String(o.upperMs), '--grace-ms', String(o.graceMs),
    '--expected', String(o.expectedPairs), '--application-id', o.applicationId, '--state-dir', o.stateDir, '--timeout-s', String(o.timeoutS)];
  const t0 = performance.now();
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid!;
  let cpu = 0, reader = 0;
  const sample = (): void => {
    try {
      cpu = cpuSeconds(pid);
      reader = threadCpuSeconds(pid).get('output-reader') ?? reader;
    } catch { /* exited */ }
  };
  const timer = setInterval(sample, POLL_MS);
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    stdout += d;
    if (stdout.includes('"system":"kstreams"')) sample();
  });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => { clearInterval(timer); reject(e); });
    child.on('exit', (code) => {
      clearInterval(timer);
      const wallSeconds = (performance.now() - t0) / 1000;
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (!line) { reject(new Error(`the Kafka Streams job exited with ${code} and no summary`)); return; }
      const s = JSON.parse(line) as { ok: boolean; events: number; pairs: number; seconds: number };
      resolve({ ok: code === 0 && s.ok, events: s.events, pairs: s.pairs, jobSeconds: s.seconds, wallSeconds, cpuSeconds: cpu, readerCpuSeconds: reader, summary: s });
    });
  });
}
