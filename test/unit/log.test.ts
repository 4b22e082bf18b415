// The logger's two renderings of a `joinery: …` message (Logger.say): a JSON record off a terminal, the text itself on one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Logger } from '../../src/core/log.js';

function capture(isTTY: boolean): { out: { write(s: string): boolean; isTTY: boolean }; text: () => string } {
  let buf = '';
  return { out: { write: (s: string) => { buf += s; return true; }, isTTY }, text: () => buf };
}

test('say off a terminal: one JSON record with level, msg and code', () => {
  const c = capture(false);
  new Logger(c.out).say('warn', 'joinery: checkpoint 3 failed (…): ENOSPC', { code: 'E_CHECKPOINT', checkpoint: 3 });
  const lines = c.text().split('\n');
  assert.equal(lines.length, 2);
  const r = JSON.parse(lines[0]);
  assert.equal(r.level, 'warn');
  assert.equal(r.msg, 'joinery: checkpoint 3 failed (…): ENOSPC');
  assert.equal(r.code, 'E_CHECKPOINT');
  assert.equal(r.checkpoint, 3);
});

test('say on a terminal: the text as written (a progress line cleared first), the code in brackets', () => {
  const c = capture(true);
  const l = new Logger(c.out);
  l.say('warn', 'joinery: checkpoint 3 failed: ENOSPC', { code: 'E_CHECKPOINT', checkpoint: 3 });
  l.say('info', 'joinery: resuming from checkpoint 2', { checkpoint: 2 });
  assert.equal(c.text(), '\r\x1b[Kjoinery: checkpoint 3 failed: ENOSPC [E_CHECKPOINT]\n\r\x1b[Kjoinery: resuming from checkpoint 2\n');
});

test('say honours the level', () => {
  const c = capture(false);
  const l = new Logger(c.out, 'error');
  l.say('warn', 'hidden');
  l.say('error', 'shown', { code: 'E_OUTPUT' });
  assert.deepEqual(c.text().trim().split('\n').map((x) => JSON.parse(x).msg), ['shown']);
});

test('progress: the one redraw on a terminal — the line replaces the last, empty clears it, final keeps it', () => {
  const c = capture(true);
  const l = new Logger(c.out);
  l.progress('10 events');
  l.progress('20 events');
  l.progress('');
  l.progress('30 events', true);
  assert.equal(c.text(), '\r\x1b[K10 events\r\x1b[K20 events\r\x1b[K\r\x1b[K30 events\n');
});

test('a multi-line block for a person (the end-of-run summary) on a terminal: its text as written', () => {
  const c = capture(true);
  new Logger(c.out).say('info', 'joinery: done in 1.00s\n  pairs 3');
  assert.equal(c.text(), '\r\x1b[Kjoinery: done in 1.00s\n  pairs 3\n');
});
