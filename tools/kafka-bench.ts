/**
 * Kafka → joinery → Kafka throughput with the broker on the same machine, next to the kafkajs
 * consumer alone (KafkaSource drained, nothing else) as the ceiling, and the broker's CPU share;
 * CPU µs per input event for each (joinery's per thread: router, workers, other).
 *
 *   npm run build && node dist/tools/kafka-bench.js [--events 1000000] [--workers 2] [--brokers HOST:PORT]
 *
 * Without --brokers it starts one with tools/kafka/start and stops it at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaSource } from '../src/kafka/kafkajs/index.js';

const root = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const events = Number(arg('events', '1000000'));
const workers = arg('workers', '2');
let brokers = arg('brokers', '');
const ownBroker = !brokers;
// The same per-checkout default as tools/kafka/start (cksum of the real path of tools/kafka).
const stateFile = process.env.JOINERY_KAFKA_STATE ?? `/tmp/joinery-kafka-${execFileSync('sh', ['-c', 'pwd -P | cksum'], { cwd: path.join(root, 'tools/kafka'), encoding: 'utf8' }).split(' ')[0]}.state`;
if (ownBroker) brokers = execFileSync(path.join(root, 'tools/kafka/start'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
const brokerPid = Number(/JOINERY_KAFKA_PID=(\d+)/.exec(fs.readFileSync(stateFile, 'utf8'))?.[1] ?? 0);
const hz = 100; // USER_HZ on Linux
const cpuSeconds = (pid: number) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / hz; };
const joinery = path.join(root, 'bin/joinery.js');
const tag = Date.now().toString(36);
const L = `bench-imp-${tag}`, R = `bench-play-${tag}`;

try {
  console.log(`kafka-bench: ${events.toLocaleString('en-US')} events into ${L}/${R} (3 partitions each) on ${brokers}`);
  const g = spawnSync(process.execPath, [joinery, 'gen', '--brokers', brokers, '--left-topic', L, '--right-topic', R, '--partitions', '3', '--events', String(events), '--progress', 'off'], { stdio: 'inherit' });
  if (g.status !== 0) throw new Error('gen failed');

  // 1. The ceiling: the consumer alone.
  let t0 = performance.now(), b0 = cpuSeconds(brokerPid);
  const c0 = process.cpuUsage();
  const src = await KafkaSource.open({ brokers: [brokers], groupId: `bench-ceiling-${tag}`, leftTopic: L, rightTopic: R, format: 'flatbuffers', exitWhenIdleMs: 1000 });
  let n = 0, lastAt = t0;
  for (let b = await src.next(); b; b = await src.next()) { n += b.count; lastAt = performance.now(); }
  await src.close();
  const c1 = process.cpuUsage(c0);
  const ceilCpuUs = (c1.user + c1.system) / n;
  const ceilSec = (lastAt - t0) / 1000;
  const ceilBroker = (cpuSeconds(brokerPid) - b0) / ((performance.now() - t0) / 1000);
  console.log(`consumer alone (KafkaSource.next loop): ${Math.round(n / ceilSec).toLocaleString('en-US')} events/s (${n} events in ${ceilSec.toFixed(2)}s), ${ceilCpuUs.toFixed(1)} µs CPU/event (this process), broker CPU ${(100 * ceilBroker).toFixed(0)}% of one core`);

  // 2. The whole path: Kafka → joinery → Kafka.
  t0 = performance.now(); b0 = cpuSeconds(brokerPid);
  const r = spawnSync(process.execPath, [joinery, 'run', '--brokers', brokers, '--left', `kafka:${L}`, '--right', `kafka:${R}`, '--group', `bench-run-${tag}`,
    '--workers', workers, '--out', `kafka:bench-out-${tag}`, '--exit-when-idle', '1s', '--state-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-kbench-')), '--json', '--progress', 'off'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('run failed');
  const wall = (performance.now() - t0) / 1000;
  const brokerCpuS = cpuSeconds(brokerPid) - b0;
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  type Cpu = { usPerEvent: number; threads?: Array<{ name: string; usPerEvent: number }> };
  const cpu = s.cpu as Cpu | undefined;
  const cpuText = cpu ? `${cpu.usPerEvent.toFixed(1)} µs CPU/event${cpu.threads ? ` (${cpu.threads.map((t) => `${t.name} ${t.usPerEvent.toFixed(1)}`).join(', ')})` : ''}` : 'CPU n/a';
  const busySec = (s.elapsedMs - 1000) / 1000; // minus the idle second that ends the run
  const total = s.eventsIn[0] + s.eventsIn[1];
  console.log(`Kafka → joinery → Kafka (${workers} workers, lmdb): ${Math.round(total / busySec).toLocaleString('en-US')} events/s (${total} events, ${s.pairs} pairs written, ${busySec.toFixed(2)}s), ${cpuText}, broker CPU ${(100 * brokerCpuS / wall).toFixed(0)}% of one core (${((brokerCpuS * 1e6) / total).toFixed(1)} µs/event), p99 ${s.p99Ms.toFixed(0)} ms`);
  console.log(JSON.stringify({ ceilingEventsPerSec: n / ceilSec, ceilingCpuUsPerEvent: ceilCpuUs, endToEndEventsPerSec: total / busySec, cpu, brokerCpuUsPerEvent: (brokerCpuS * 1e6) / total, pairs: s.pairs, workers: Number(workers) }));
} finally {
  if (ownBroker) spawnSync(path.join(root, 'tools/kafka/stop'), { stdio: 'inherit' });
}
