import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { flagTableMarkdown, helpText, parseArgs } from '../../src/config/parse.js';
import { OPTIONS } from '../../src/config/schema.js';
import { JoineryError } from '../../src/core/errors.js';

const base = ['--left', 'file:a.ndjson', '--right', 'file:b.ndjson'];

function usageErr(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof JoineryError && e.code === 'E_USAGE' && e.exitCode === 2 && re.test(e.message));
}

test('defaults fit the impression/play schema', () => {
  const c = parseArgs('run', base);
  assert.deepEqual(c.key, ['profileId', 'titleId']);
  assert.equal(c.time, 'ts');
  assert.equal(c.id, 'eventId');
  assert.equal(c.join, 'inner');
  assert.equal(c.workers, 2);
  assert.equal(c.state, 'lmdb');
  assert.equal(c.out, 'stdout');
  assert.equal(parseArgs('demo', []).out, 'null');
});

test('values are parsed to their units, both --flag v and --flag=v', () => {
  const c = parseArgs('run', [...base, '--lower=-30s', '--upper', '2m', '--max-delay', '500', '--ring-size', '1m', '--key', 'a, b', '--join', 'full', '--left-id', 'lid']);
  assert.equal(c.lowerMs, -30_000);
  assert.equal(c.upperMs, 120_000);
  assert.equal(c.maxDelayMs, 500);
  assert.equal(c.ringSizeBytes, 1 << 20);
  assert.deepEqual(c.key, ['a', 'b']);
  assert.equal(c.join, 'full');
  assert.equal(c.leftId, 'lid');
});

test('unknown flags and bad values name the flag and exit 2', () => {
  usageErr(() => parseArgs('run', [...base, '--bogus', '1']), /unknown flag --bogus/);
  usageErr(() => parseArgs('run', [...base, '--workers', 'two']), /--workers/);
  usageErr(() => parseArgs('run', [...base, '--workers', '0']), /--workers: must be between 1 and 64/);
  usageErr(() => parseArgs('run', [...base, '--join', 'outer']), /--join: must be one of inner\|left\|right\|full/);
  usageErr(() => parseArgs('run', [...base, '--upper', '10 minutes']), /--upper/);
  usageErr(() => parseArgs('run', [...base, '--ring-size', '100000']), /power of two/);
  usageErr(() => parseArgs('run', [...base, '--workers']), /--workers needs a value/);
  usageErr(() => parseArgs('run', [...base, '--workers', '2', '--workers', '3']), /given twice/);
  usageErr(() => parseArgs('run', [...base, '--left-out', 'x']), /does not apply to 'joinery run'/);
});

test('contradictory or missing flags fail before any work', () => {
  usageErr(() => parseArgs('run', ['--right', 'file:b']), /--left is required/);
  usageErr(() => parseArgs('run', [...base, '--lower', '5m', '--upper', '1m']), /--lower .* must not exceed --upper/);
  usageErr(() => parseArgs('run', ['--left', 'gen:', '--right', 'file:b']), /same kind/);
  usageErr(() => parseArgs('run', ['--left', 'http:x', '--right', 'http:y']), /unsupported source/);
  usageErr(() => parseArgs('run', ['--left', 'kafka:x', '--right', 'kafka:y']), /need --brokers/);
  usageErr(() => parseArgs('run', ['--left', 'kafka:x', '--right', 'kafka:x', '--brokers', 'h:1']), /different Kafka topics/);
  usageErr(() => parseArgs('run', [...base, '--out-format', 'json']), /--out-format applies to --out kafka/);
  usageErr(() => parseArgs('run', [...base, '--out', 'file:o', '--late-out', 'file:o']), /different files/);
  usageErr(() => parseArgs('gen', ['--left-out', 'a']), /--right-out/);
});

test('--help lists every flag of a command with its default', () => {
  const h = helpText('run', 'x');
  for (const o of OPTIONS.filter((o) => o.commands.includes('run'))) assert.ok(h.includes(`--${o.flag}`), o.flag);
  assert.match(h, /--upper DUR .*\[default: 10m\]/);
  assert.match(h, /--ring-size BYTES .*\[default: 16MiB\]/);
  const table = flagTableMarkdown();
  for (const o of OPTIONS) assert.ok(table.includes(`\`--${o.flag}`), o.flag);
});

test('--state-memory: a size, 0 allowed; unset, min(1 GiB, a quarter of memory), shared by the workers', async () => {
  const { stateMemoryBytesFor } = await import('../../src/engine/setup.js');
  const os = await import('node:os');
  assert.equal(stateMemoryBytesFor(parseArgs('run', [...base, '--state-memory', '256m'])), 256 * 1024 * 1024);
  assert.equal(stateMemoryBytesFor(parseArgs('run', [...base, '--state-memory', '0'])), 0);
  const d = stateMemoryBytesFor(parseArgs('run', base));
  assert.equal(d, Math.min(1024 ** 3, Math.floor(Math.min(os.totalmem(), process.constrainedMemory?.() || Infinity) / 4)));
  usageErr(() => parseArgs('run', [...base, '--state-memory', '-1']), /--state-memory/);
  usageErr(() => parseArgs('run', [...base, '--state-memory', 'lots']), /--state-memory/);
});

test('gen refuses one file for both streams, however it is named (./, absolute, symlink, hard link)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-gen-same-'));
  try {
    const g = path.join(dir, 'g.ndjson');
    fs.writeFileSync(g, '');
    fs.symlinkSync(g, path.join(dir, 'sym.ndjson'));
    fs.linkSync(g, path.join(dir, 'hard.ndjson'));
    for (const other of [g, path.join(dir, '.', 'g.ndjson'), path.join(dir, 'sym.ndjson'), path.join(dir, 'hard.ndjson'), path.join(dir, 'x', '..', 'g.ndjson')]) {
      usageErr(() => parseArgs('gen', ['--left-out', g, '--right-out', other]), /are the same file/);
    }
    assert.equal(parseArgs('gen', ['--left-out', g, '--right-out', path.join(dir, 'r.ndjson')]).rightOut, path.join(dir, 'r.ndjson'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
