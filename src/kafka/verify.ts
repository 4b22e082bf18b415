/**
 * The one place `joinery verify` (src/verify/) reads Kafka: a whole topic from its start up to
 * each partition's end as seen when the read starts, read_committed (records of aborted or open
 * transactions are not part of what a run produced, nor of what it consumed).
 */
import { JoineryError } from '../core/errors.js';
import { kafkaAdapter } from './adapters.js';
import { parseBrokers } from './options.js';

/** Hours: a topic of tens of GB takes that long. */
const READ_TIMEOUT_MS = 6 * 3_600_000;

export async function readWholeTopic(brokers: string, topic: string, flag: string,
  onRecord: (partition: number, offset: number, value: Buffer | null) => void): Promise<void> {
  const { readTopic } = await kafkaAdapter();
  await readTopic(parseBrokers(brokers), topic, (m) => onRecord(m.partition, Number(m.offset), m.value),
    { timeoutMs: READ_TIMEOUT_MS, isolation: 'read_committed' }).catch((e: Error) => {
    if (e instanceof JoineryError) throw e;
    throw new JoineryError('E_INPUT', `cannot read --${flag} kafka:${topic}: ${e.message}`);
  });
}
