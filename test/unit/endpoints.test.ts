/** Source and sink flag values as typed descriptors (src/config/endpoints.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointsOf, kafkaTopic, parseSinkSpec, parseSourceSpec, sinkEndpoint, sourceEndpoint } from '../../src/config/endpoints.js';
import type { Config } from '../../src/config/schema.js';

test('each source kind parses into its descriptor; anything else is refused', () => {
  assert.deepEqual(parseSourceSpec('file:a/b.ndjson'), { kind: 'file', spec: 'file:a/b.ndjson', path: 'a/b.ndjson' });
  assert.deepEqual(parseSourceSpec('kafka:impressions'), { kind: 'kafka', spec: 'kafka:impressions', topic: 'impressions' });
  assert.deepEqual(parseSourceSpec('gen:'), { kind: 'gen', spec: 'gen:' });
  for (const bad of ['file:', 'kafka:', 'stdout', 'null', 'http://x', 'impressions']) assert.equal(parseSourceSpec(bad), null, bad);
  assert.throws(() => sourceEndpoint('s3://b/k', 'left'), /--left: unsupported source "s3:\/\/b\/k" \(use file:PATH, kafka:TOPIC or gen:\)/);
});

test('each sink kind parses into its descriptor; anything else is refused', () => {
  assert.deepEqual(parseSinkSpec('stdout'), { kind: 'stdout', spec: 'stdout' });
  assert.deepEqual(parseSinkSpec('null'), { kind: 'null', spec: 'null' });
  assert.deepEqual(parseSinkSpec('file:o.ndjson'), { kind: 'file', spec: 'file:o.ndjson', path: 'o.ndjson' });
  assert.deepEqual(parseSinkSpec('kafka:joined'), { kind: 'kafka', spec: 'kafka:joined', topic: 'joined' });
  for (const bad of ['gen:', 'file:', 'kafka:', 'STDOUT']) assert.equal(parseSinkSpec(bad), null, bad);
  assert.throws(() => sinkEndpoint('gen:', 'late-out'), /--late-out: unsupported sink "gen:"/);
});

test('endpointsOf describes every source and sink of a config, and follows a changed value', () => {
  const cfg = { left: 'kafka:l', right: 'kafka:r', out: 'kafka:o', lateOut: 'file:late.ndjson', deadLetter: undefined, output: undefined } as unknown as Config;
  const e = endpointsOf(cfg);
  assert.equal(kafkaTopic(e.left), 'l');
  assert.equal(kafkaTopic(e.right), 'r');
  assert.equal(kafkaTopic(e.out), 'o');
  assert.equal(e.lateOut?.kind, 'file');
  assert.equal(e.deadLetter, undefined);
  assert.equal(endpointsOf(cfg), e, 'parsed once per config');
  cfg.out = 'null';
  assert.equal(endpointsOf(cfg).out?.kind, 'null');
  assert.equal(kafkaTopic(endpointsOf(cfg).out), null);
});
