/**
 * Child of kafkajs-patches.test.ts (a fresh process: patches go in as kafkajs loads). MODE:
 * - early: kafkajs's modules are loaded before joinery's client, so the require-cache patches
 *   cannot go in; prints the log lines of checkKafkajsPatches for a single node.
 * - replaced: after joinery installed its patches, other code puts its own joinAndSync on
 *   kafkajs's ConsumerGroup; prints what checkKafkajsPatches says for a group member.
 * - unfenced: the same for kafkajs's request table entry of TxnOffsetCommit (back to v0/v1 only).
 * - unstable: the same for the entry of OffsetFetch (back to v1–v4, no require_stable).
 */
import { createRequire } from 'node:module';
import { configureLog, log } from '../../src/core/log.js';

const req = createRequire(import.meta.url);
const mode = process.argv[2];
const lines: string[] = [];
log.configure({ out: { write: (s: string) => { lines.push(s.trim()); } }, json: true, level: 'debug' });
configureLog({ level: 'debug' });
if (mode === 'early') req('kafkajs');
const client = await import('../../src/kafka/kafkajs/index.js');
if (mode === 'replaced') {
  const ConsumerGroup = req('kafkajs/src/consumer/consumerGroup.js') as { prototype: Record<string, unknown> };
  ConsumerGroup.prototype.joinAndSync = async function joinAndSync(): Promise<void> { /* someone else's */ };
}
if (mode === 'unfenced') {
  const table = req('kafkajs/src/protocol/requests/index.js') as { requests: Record<string, unknown> };
  table.requests.TxnOffsetCommit = { versions: ['0', '1'], protocol: () => undefined }; // someone else's
}
if (mode === 'unstable') {
  const table = req('kafkajs/src/protocol/requests/index.js') as { requests: Record<string, unknown> };
  table.requests.OffsetFetch = { versions: ['1', '2', '3', '4'], protocol: () => undefined }; // someone else's
}
let error: { code?: string; message: string } | null = null;
try {
  client.checkKafkajsPatches({ groupMemberCheckpoints: mode === 'replaced' || mode === 'unfenced' || mode === 'unstable' });
} catch (e) {
  error = { code: (e as { code?: string }).code, message: (e as Error).message };
}
process.stdout.write(JSON.stringify({ lines, error, status: client.kafkajsPatchStatus() }) + '\n');
