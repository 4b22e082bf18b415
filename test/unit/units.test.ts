import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDurationMs, parseBytes, parseDurationMs } from '../../src/core/units.js';

test('durations take ms|s|m|h|d suffixes, plain milliseconds and negatives', () => {
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('5s'), 5000);
  assert.equal(parseDurationMs('2m'), 120_000);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('1d'), 86_400_000);
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('-30s'), -30_000);
  assert.equal(parseDurationMs('1200'), 1200);
  assert.equal(parseDurationMs('-7'), -7);
  for (const bad of ['', 's', '5x', '1e3', '5 s s', 'five']) assert.ok(Number.isNaN(parseDurationMs(bad)), bad);
});

test('durations format back to the largest exact unit', () => {
  assert.equal(formatDurationMs(600_000), '10m');
  assert.equal(formatDurationMs(-30_000), '-30s');
  assert.equal(formatDurationMs(1500), '1500ms');
  assert.equal(parseDurationMs(formatDurationMs(86_400_000)), 86_400_000);
});

test('sizes take binary suffixes', () => {
  assert.equal(parseBytes('65536'), 65536);
  assert.equal(parseBytes('64k'), 65536);
  assert.equal(parseBytes('16MiB'), 16 * 1024 * 1024);
  assert.equal(parseBytes('1g'), 1024 ** 3);
  assert.ok(Number.isNaN(parseBytes('12q')));
  assert.ok(Number.isNaN(parseBytes('-1')));
});
