/**
 * Write throughput of the transactional KafkaRecordSink next to the plain (idempotent) one, side by
 * side against the same broker: each round writes the same keyed records with both (order
 * alternating), the transactional one committing a transaction (with consumer-group offsets and a
 * checkpoint id as metadata) every --commit-every records. Reports each round and the median.
 *
 *   npm run build && node dist/tools/kafka-txn-bench.js [--records 500000] [--value-bytes 200]
 *     [--commit-every 100000] [--rounds 3] [--partitions 3] [--brokers HOST:PORT]
 *
 * Without --brokers it starts one with tools/kafka/start and stops it at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteTopics, ensureTopics, fetchCommittedOffsets, KafkaRecordSink, topicOffsets } from '../src/kafka/kafkajs/index.js';

const root = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const records = Number(arg('records', '500000'));
const valueBytes = Number(arg('value-bytes', '200'));
const commitEvery = Number(arg('commit-every', '100000'));
const rounds = Number(arg('rounds', '3'));
const partitions = Number(arg('partitions', '3'));
let brokers = arg('brokers', '');
const ownBroker = !brokers;
if (ownBroker) brokers = execFileSync(path.join(root, 'tools/kafka/start'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
const tag = Date.now().toString(36);

// records shaped like joined output: a key and a JSON value of about valueBytes
const keys: Buffer[] = [], vals: Buffer[] = [];
for (let i = 0; i < 4096; i++) {
  keys.push(Buffer.from(`[${i % 1009},${i % 97}]`));
  const base = JSON.stringify({ key: [i % 1009, i % 97], left: { eventId: `i-${i}`, ts: 1_700_000_000_000 + i }, right: { eventId: `p-${i}` }, pad: '' });
  vals.push(Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, valueBytes - base.length))}"`)));
}

async function run(mode: 'plain' | 'txn', round: number): Promise<{ recPerSec: number; commits: number; commitMsMax: number }> {
  const topic = `bench-txn-${mode}-${tag}-${round}`;
  await ensureTopics([brokers], [{ topic, partitions }]);
  const group = `bench-txn-group-${tag}-${round}`;
  const sink = await KafkaRecordSink.open({ brokers: [brokers], topic, ...(mode === 'txn' ? { transactionalId: `bench-${tag}-${round}` } : {}) });
  let commits = 0, commitMsMax = 0;
  const t0 = performance.now();
  for (let i = 0; i < records; i++) {
    if (!sink.write(keys[i & 4095], vals[i & 4095])) await sink.ready();
    if (mode === 'txn' && (i + 1) % commitEvery === 0) {
      const c0 = performance.now();
      await sink.commitTransaction(group, [{ topic, partition: 0, offset: i + 1 }], `ckpt-${commits + 1}`);
      commitMsMax = Math.max(commitMsMax, performance.now() - c0);
      commits++;
    }
  }
  if (mode === 'txn') {
    if (records % commitEvery !== 0) { await sink.commitTransaction(group, [{ topic, partition: 0, offset: records }], `ckpt-${commits + 1}`); commits++; }
  } else {
    await sink.flush();
  }
  const sec = (performance.now() - t0) / 1000;
  await sink.close();
  // check: everything is there (transaction markers add one offset per partition and commit)
  const written = (await topicOffsets([brokers], topic)).reduce((n, o) => n + Number(o.high), 0);
  const markers = mode === 'txn' ? written - records : 0;
  if (written < records || (mode === 'txn' && markers > commits * partitions)) throw new Error(`${topic}: ${written} offsets for ${records} records`);
  if (mode === 'txn') {
    const c = await fetchCommittedOffsets([brokers], group, [topic]);
    if (c[0]?.metadata !== `ckpt-${commits}`) throw new Error(`${topic}: committed metadata ${c[0]?.metadata}`);
  }
  await deleteTopics([brokers], [topic]).catch(() => {});
  return { recPerSec: records / sec, commits, commitMsMax };
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

try {
  console.log(`kafka-txn-bench: ${fmt(records)} records of ~${valueBytes} B into ${partitions} partitions on ${brokers}, ${rounds} rounds; transactions of ${fmt(commitEvery)} records`);
  const plain: number[] = [], txn: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order: Array<'plain' | 'txn'> = r % 2 === 0 ? ['plain', 'txn'] : ['txn', 'plain'];
    const line: string[] = [];
    for (const mode of order) {
      const res = await run(mode, r);
      (mode === 'plain' ? plain : txn).push(res.recPerSec);
      line.push(mode === 'plain' ? `plain ${fmt(res.recPerSec)} rec/s` : `transactional ${fmt(res.recPerSec)} rec/s (${res.commits} commits, slowest ${res.commitMsMax.toFixed(0)} ms)`);
    }
    console.log(`round ${r + 1}: ${line.join(', ')}`);
  }
  console.log(`median: plain ${fmt(median(plain))} rec/s, transactional ${fmt(median(txn))} rec/s (${(100 * median(txn) / median(plain)).toFixed(0)}% of plain)`);
  console.log(JSON.stringify({ records, valueBytes, commitEvery, partitions, plainRecPerSec: plain, txnRecPerSec: txn, plainMedian: median(plain), txnMedian: median(txn) }));
} finally {
  if (ownBroker) spawnSync(path.join(root, 'tools/kafka/stop'), { stdio: 'inherit' });
}
