import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestoreProgress } from '../../src/engine/progress.js';

test('RestoreProgress: sums the workers\' running totals into one line, at most every interval', () => {
  const p = new RestoreProgress(2, 7, 1_000, 5_000);
  assert.equal(p.update(0, 10, 0, 3, 2_000), null, 'not due before the interval');
  assert.equal(p.update(1, 20, 1, 2, 5_999), null);
  assert.equal(p.update(0, 1_500_000, 2, 3, 6_000),
    'joinery: restoring checkpoint 7: 1,500,020 buffered events so far, 3 of 5 state file reads done (5s)');
  // Totals replace a worker's earlier ones (they are running totals, not increments).
  assert.equal(p.update(1, 2_000_000, 2, 2, 9_000), null, 'the next line waits a whole interval');
  assert.match(p.update(0, 1_600_000, 3, 3, 11_000)!, /3,600,000 buffered events so far, 5 of 5 state file reads done \(10s\)$/);
});
