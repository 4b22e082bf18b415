/**
 * kafkajs patches are verified at start, not assumed: a patch that could not go in is a warning
 * naming it, and one that went in but was later replaced counts as missing (for the re-join hook:
 * a group member refuses to start). Each case runs in a fresh node process with the real kafkajs.
 * (The refusal through the CLI against a broker: test/kafka/patches.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./kafkajs-patches-child.js', import.meta.url));
type Out = { lines: string[]; error: { code?: string; message: string } | null; status: Array<{ name: string; active: boolean; detail: string }> };
const run = (mode: string, env: NodeJS.ProcessEnv = {}): Out => {
  const e = { ...process.env, ...env };
  delete e.JOINERY_KAFKAJS_SKIP_PATCH; delete e.JOINERY_FAST_SKIP; delete e.JOINERY_KAFKAJS_FAST;
  Object.assign(e, env);
  return JSON.parse(execFileSync(process.execPath, [CHILD, mode], { env: e, encoding: 'utf8' })) as Out;
};

test('require-cache patches that cannot go in (kafkajs loaded first) are each reported with a warning', () => {
  const out = run('early');
  const warnings = out.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn').map((l) => l.msg);
  for (const name of ['group-messages', 'txn-retry', 'fast-codec', 'txn-offset-fence', 'offset-fetch-stable']) {
    assert.ok(warnings.some((w) => w.startsWith(`kafkajs patch ${name} is not installed (`) && /loaded before the patch/.test(w)), `${name}: ${JSON.stringify(warnings)}`);
    assert.equal(out.status.find((s) => s.name === name)?.active, false);
  }
  // the prototype patch does not depend on load order; a single node does not need it anyway
  assert.equal(out.status.find((s) => s.name === 'rejoin')?.active, true);
  assert.equal(out.error, null);
  const listed = out.lines.map((l) => JSON.parse(l) as { msg: string; active?: string[] }).find((l) => l.msg === 'kafkajs patches');
  assert.deepEqual(listed?.active, ['rejoin']);
});

test('a re-join hook replaced after install counts as missing: a group member is refused (E_KAFKA_PATCH)', () => {
  const out = run('replaced');
  assert.equal(out.error?.code, 'E_KAFKA_PATCH', JSON.stringify(out));
  assert.match(out.error!.message, /installed at load, then replaced by other code/);
  assert.deepEqual(out.status.filter((s) => s.active).map((s) => s.name), ['group-messages', 'txn-retry', 'fast-codec', 'txn-offset-fence', 'offset-fetch-stable']);
});

test('a TxnOffsetCommit request table entry replaced after install counts as missing: a group member is refused (E_KAFKA_PATCH)', () => {
  const out = run('unfenced');
  assert.equal(out.error?.code, 'E_KAFKA_PATCH', JSON.stringify(out));
  assert.match(out.error!.message, /fenced transactional offset commit \(patch txn-offset-fence.*installed at load, then replaced by other code/);
  assert.deepEqual(out.status.filter((s) => !s.active).map((s) => s.name), ['txn-offset-fence']);
});

test('an OffsetFetch request table entry replaced after install counts as missing: a warning, and a group member still starts (it falls back to reads that agree)', () => {
  const out = run('unstable');
  assert.equal(out.error, null, JSON.stringify(out));
  assert.deepEqual(out.status.filter((s) => !s.active).map((s) => [s.name, s.detail]), [['offset-fetch-stable', 'installed at load, then replaced by other code']]);
  const warnings = out.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn').map((l) => l.msg);
  assert.ok(warnings.some((w) => w.startsWith('kafkajs patch offset-fetch-stable is not installed') && /without require_stable/.test(w)), JSON.stringify(warnings));
});

test('an unknown name in JOINERY_KAFKAJS_SKIP_PATCH is a warning, a known one is left out quietly', () => {
  const out = run('normal', { JOINERY_KAFKAJS_SKIP_PATCH: 'txn-retry,rejoim' });
  const warnings = out.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn').map((l) => l.msg);
  assert.deepEqual(warnings, ['JOINERY_KAFKAJS_SKIP_PATCH: no patch named rejoim (the patches: group-messages, txn-retry, fast-codec, rejoin, txn-offset-fence, offset-fetch-stable)']);
  assert.deepEqual(out.status.filter((s) => !s.active).map((s) => [s.name, s.detail]), [['txn-retry', 'skipped (JOINERY_KAFKAJS_SKIP_PATCH)']]);
});

test('every command that uses Kafka lists the active patches at debug level, before it connects (topics, verify --output kafka:)', async () => {
  const { joinery } = await import('../e2e/cli.js');
  const fs = await import('node:fs'), os = await import('node:os'), path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-patches-'));
  for (const f of ['l.ndjson', 'r.ndjson']) fs.writeFileSync(path.join(dir, f), '');
  const env = { JOINERY_KAFKAJS_SKIP_PATCH: '', JOINERY_FAST_SKIP: '', JOINERY_KAFKAJS_FAST: '' };
  for (const args of [
    ['topics', '--brokers', '127.0.0.1:1', '--left-topic', 'a', '--right-topic', 'b'],
    ['verify', '--left', `file:${path.join(dir, 'l.ndjson')}`, '--right', `file:${path.join(dir, 'r.ndjson')}`, '--output', 'kafka:out', '--brokers', '127.0.0.1:1'],
  ]) {
    const r = await joinery([...args, '--log-level', 'debug', '--connect-timeout', '500ms'], { env });
    const listed = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; active?: string[] }).find((l) => l.msg === 'kafkajs patches');
    assert.ok(listed, `${args[0]}: ${r.stderr}`);
    assert.deepEqual(listed.active?.map((a) => a.replace(/\(.*$/, '')), ['group-messages', 'txn-retry', 'fast-codec', 'rejoin', 'txn-offset-fence', 'offset-fetch-stable']);
    assert.equal(r.code, 3, 'then the unreachable broker ends it (E_INPUT)');
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
