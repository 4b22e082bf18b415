// The CLI's up-front checks, through the real CLI: value ranges, key lists of both sides,
// `config print`/`config --help`, and unknown JOINERY_* variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinery } from './cli.js';

const run = ['run', '--left', 'file:/nonexistent/a.ndjson', '--right', 'file:/nonexistent/b.ndjson'];
/** Environment without the caller's JOINERY_* variables (the test sets its own). */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv =>
  ({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JOINERY_'))), ...extra });

test('out-of-range values are E_USAGE naming the flag and the allowed range', async () => {
  const ring = await joinery([...run, '--ring-size', '8g']);
  assert.equal(ring.code, 2, ring.stderr);
  assert.match(ring.stderr, /--ring-size: must be between 64KiB and 1GiB \(got \\?"8g\\?"\)/);
  assert.match(ring.stderr, /E_USAGE/);

  const upper = await joinery([...run, '--upper', '9999999999999999999d']);
  assert.equal(upper.code, 2, upper.stderr);
  assert.match(upper.stderr, /--upper: must be between -3650d and 3650d/);

  const timer = await joinery([...run, '--checkpoint-interval', '30d']); // beyond a Node timer: it would fire every 1 ms
  assert.equal(timer.code, 2, timer.stderr);
  assert.match(timer.stderr, /--checkpoint-interval: must be between 1ms and 24d/);

  const workers = await joinery([...run, '--workers', '99999999999999999999']);
  assert.equal(workers.code, 2, workers.stderr);
  assert.match(workers.stderr, /--workers: must be between 1 and 64/);
});

test('key lists of different lengths per side are E_USAGE', async () => {
  const r = await joinery([...run, '--left-key', 'profileId', '--right-key', 'profileId,titleId']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /join key has 1 field\(s\) on the left \(profileId\) but 2 on the right \(profileId,titleId\)/);
  const viaKey = await joinery([...run, '--key', 'a,b', '--right-key', 'a']);
  assert.equal(viaKey.code, 2, viaKey.stderr);
});

test('config print: the listing and exit 0 without inputs, help for config and config print, no doubled prefix', async () => {
  const p = await joinery(['config', 'print'], { env: cleanEnv() });
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^workers: 2  # default$/m);
  assert.match(p.stdout, /^# joinery run cannot start yet: --left is required/m);

  const help = await joinery(['config', 'print', '--help'], { env: cleanEnv() });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^joinery config print \[COMMAND\] \[flags\]/);
  assert.doesNotMatch(help.stdout, /# default/, 'help, not the listing');

  const top = await joinery(['config', '--help'], { env: cleanEnv() });
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^joinery config print \[COMMAND\] \[flags\]/);

  const bad = await joinery(['config', 'print', 'nope'], { env: cleanEnv() });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /joinery config print: unknown command \\?"nope\\?"/);
  assert.doesNotMatch(bad.stderr, /joinery config[^"\n]*joinery config/, 'prefix once');

  const gen = await joinery(['gen'], { env: cleanEnv() });
  assert.equal(gen.code, 2);
  assert.doesNotMatch(gen.stderr, /joinery gen: joinery gen/);
});

test('unknown JOINERY_* variables are warned about, naming the nearest flag; the tools\' own are not', async () => {
  const r = await joinery(['config', 'print'], { env: cleanEnv({ JOINERY_WORKER: '4', JOINERY_KAFKA_STATE: '/tmp/x', JOINERY_TEST_KAFKA: 'h:1', JOINERY_KAFKAJS_FAST: '0', JOINERY_FAST_SKIP: '', JOINERY_INJECT_FAULTS: '' }) });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /unknown environment variable JOINERY_WORKER ignored; did you mean JOINERY_WORKERS \(--workers\)\?/);
  assert.doesNotMatch(r.stderr, /JOINERY_KAFKA_STATE|JOINERY_TEST_KAFKA|JOINERY_KAFKAJS_FAST|JOINERY_FAST_SKIP|JOINERY_INJECT_FAULTS/);
  assert.match(r.stdout, /^workers: 2  # default$/m, 'still ignored');
});
