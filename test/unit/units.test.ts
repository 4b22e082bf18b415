import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDurationMs, parseBytes, parseDurationMs, parseTime } from '../../src/core/units.js';
import { JoineryError } from '../../src/core/errors.js';

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

test('times: epoch milliseconds within a date\'s range (±8.64e15), ISO-8601; beyond it a usage error naming the flag, not a crash later', () => {
  assert.equal(parseTime('1767225600000', 'from'), 1767225600000);
  assert.equal(parseTime('-8640000000000000', 'from'), -8.64e15);
  assert.equal(parseTime('2026-01-01T00:00:00Z', 'to'), Date.UTC(2026, 0, 1));
  for (const bad of ['8640000000000001', '99999999999999999999', '-8640000000000001']) {
    assert.throws(() => parseTime(bad, 'to'), (e: unknown) => e instanceof JoineryError && e.code === 'E_USAGE' && /--to: .* out of range/.test(e.message), bad);
  }
  assert.throws(() => parseTime('soon', 'rebuild-from'), /--rebuild-from: expected an ISO-8601 time/);
});
