/**
 * Kafka stays behind its port, read from the sources (docs/architecture.md §1, §6):
 * - outside src/kafka/, no file reaches into the kafkajs adapter or names a kafkajs type;
 * - the engine (src/engine/, src/engine.ts) names no Kafka concept: what a run needs of an external
 *   system that keeps positions (commits, holding the inputs, transactional output, a group
 *   member's share) reaches it through its own `PositionsPort` and `GroupShare`
 *   (src/engine/options.ts), which src/kafka/io.ts and src/member.ts fill in;
 * - `file:`, `kafka:`, `gen:`, `stdout` and `null` flag values are parsed only in
 *   src/config/endpoints.ts: everything else, worker threads included, is handed typed descriptors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { srcFiles, type SrcFile } from './src-files.js';

const all = srcFiles();

/** The text without comments, lines kept in place (a `//` inside a string such as a URL is kept). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, '')).split('\n').map((l) => l.replace(/(^|[^:'"`\\])\/\/.*$/, '$1')).join('\n');
}

/** `file:line: text` of each code line matching `re`. */
function hits(files: SrcFile[], re: RegExp): string[] {
  return files.flatMap((f) => code(f.text).split('\n')
    .map((l, i) => (re.test(l) ? `${f.file}:${i + 1}: ${l.trim()}` : null)).filter((x): x is string => x !== null));
}

const outsideKafka = all.filter((f) => !f.file.startsWith('src/kafka/'));

/** kafkajs itself, its adapter's modules, or a type only kafkajs defines. */
const KAFKAJS = /['"]kafkajs(\/[^'"]*)?['"]|['"][^'"]*\/kafkajs\/[^'"]*['"]|\b(KafkaJS\w*|EachBatchPayload|EachMessagePayload|CompressionTypes|TopicPartitionOffsetAndMetadata|ITopicConfig|ProducerRecord|ProducerBatch|KafkaMessage|ConsumerConfig|ProducerConfig|SASLOptions)\b/;

test('outside src/kafka/, nothing imports the kafkajs adapter or names a kafkajs type', () => {
  assert.deepEqual(hits(outsideKafka, KAFKAJS), []);
});

/** Kafka by name, in an identifier or a string (comments may say what the port is for). */
const KAFKA_WORD = /kafka/i;

test('the engine names no Kafka concept: it sees Kafka only through its PositionsPort and GroupShare', () => {
  const engine = all.filter((f) => f.file.startsWith('src/engine/') || f.file === 'src/engine.ts');
  assert.ok(engine.length >= 8, `${engine.length} engine files`);
  assert.deepEqual(hits(engine, KAFKA_WORD), []);
});

/** A flag value taken apart by hand: its prefix tested or cut off, or compared with a bare kind. */
const PREFIX = /startsWith\(['"`](file|kafka|gen):|\.slice\((5|6)\)|(?<![kK]ind\s*)[!=]==\s*['"](stdout|null)['"]|['"](stdout|null)['"]\s*[!=]==(?!\s*\w*[kK]ind\b)/;

test('flag values are parsed into descriptors only in src/config/endpoints.ts (workers get the descriptor)', () => {
  assert.deepEqual(hits(all.filter((f) => f.file !== 'src/config/endpoints.ts'), PREFIX), []);
});

test('flag values reach the rest of src as descriptors: the spec parsers are called only in src/config/', () => {
  // filePathOfSpec stays for specs recorded in checkpoint manifests, which are strings by nature
  assert.deepEqual(hits(all.filter((f) => !f.file.startsWith('src/config/')), /\bparse(Sink|Source)Spec\(/), []);
});

test('the guard reads the sources it guards', () => {
  assert.ok(outsideKafka.some((f) => f.file === 'src/engine/index.ts'));
  assert.ok(outsideKafka.some((f) => f.file === 'src/worker/worker.ts'));
  // the patterns find what they look for
  assert.equal(hits([{ file: 'x.ts', abs: '', text: "import type { EachBatchPayload } from 'kafkajs';" }], KAFKAJS).length, 1);
  assert.equal(hits([{ file: 'x.ts', abs: '', text: "if (init.out !== 'null') post();" }], PREFIX).length, 1);
  assert.equal(hits([{ file: 'x.ts', abs: '', text: 'commit?: NonNullable<KafkaRunOptions["commit"]>;' }], KAFKA_WORD).length, 1);
  assert.equal(hits([{ file: 'x.ts', abs: '', text: '// pauses the Kafka partitions' }], KAFKA_WORD).length, 0);
});
