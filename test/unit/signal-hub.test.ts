/**
 * core/signals.ts: a stop signal is never lost while handlers change hands, the newest handler
 * gets it, and with none pushed the process ends by it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./signal-hub-child.js', import.meta.url));
const run = (mode: string) => spawnSync(process.execPath, [CHILD, mode], { encoding: 'utf8', timeout: 20_000 });

test('a signal caught while one handler is swapped for another in the same tick reaches the new one', () => {
  // With process.on/off per part, Node stops its signal handle when the last listener goes and the
  // caught signal is dropped: the old group member then ran on after SIGTERM.
  const r = run('handover');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['B SIGTERM', 'done']);
});

test('the newest handler gets the signal; once it is popped the one below does', () => {
  const r = run('newest');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['B SIGINT', 'A SIGTERM', 'done']);
});

test('with no handler pushed a signal ends the process as without listeners', () => {
  const r = run('none');
  assert.equal(r.signal, 'SIGTERM', `status ${r.status}, stdout ${r.stdout}`);
  assert.equal(r.stdout, '');
});
