import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputGate } from '../../src/sink/output-gate.js';

test('output gate: released tags pass at once, later ones wait for their release, in order', () => {
  const written: string[] = [];
  const gate = new OutputGate<string>(3, (s) => written.push(s));
  assert.equal(gate.offer(3, 'a'), true);
  assert.equal(gate.offer(4, 'b'), false);
  assert.equal(gate.offer(5, 'c'), false);
  assert.deepEqual(written, ['a']);
  assert.equal(gate.holding, 2);
  assert.equal(gate.release(4), 1);
  assert.deepEqual(written, ['a', 'b']);
  assert.equal(gate.release(2), 0, 'an older release changes nothing');
  assert.equal(gate.released, 4);
  assert.equal(gate.release(5), 1);
  assert.deepEqual(written, ['a', 'b', 'c']);
  assert.equal(gate.holding, 0);
});

test('output gate: tags of several workers interleave; a release writes every due item and keeps the rest in order', () => {
  const written: string[] = [];
  const gate = new OutputGate<string>(0, (s) => written.push(s));
  gate.offer(2, 'w0@2'); gate.offer(1, 'w1@1'); gate.offer(2, 'w0@2b'); gate.offer(3, 'w1@3'); gate.offer(1, 'w2@1');
  assert.equal(gate.release(1), 2);
  assert.deepEqual(written, ['w1@1', 'w2@1']);
  assert.equal(gate.release(3), 3);
  assert.deepEqual(written, ['w1@1', 'w2@1', 'w0@2', 'w0@2b', 'w1@3']);
});
