// What a new user meets first: the CLI on the PATH, the help, the demo's first lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery } from './cli.js';

const ROOT = path.resolve(path.dirname(BIN), '..');

test('`npm install -g .` (the README\'s way onto the PATH) gives a joinery that runs from any directory', (t) => {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-global-'));
  t.after(() => fs.rmSync(prefix, { recursive: true, force: true }));
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', ROOT], { stdio: 'pipe', timeout: 120_000 });
  const bin = path.join(prefix, 'bin', 'joinery');
  assert.ok(fs.existsSync(bin), `${bin} exists`);
  const out = execFileSync(bin, ['--help'], { cwd: os.tmpdir(), encoding: 'utf8' });
  assert.match(out, /^joinery — a single-node stream-join engine/);
});

test('run --help names Kafka as an input and an output', async () => {
  const r = await joinery(['run', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.split('\n')[0], /Kafka topics.*Kafka topic/);
});

test('demo without a terminal says how long it will take before it goes quiet', async () => {
  const r = await joinery(['demo', '--events', '20000', '--workers', '1']);
  assert.equal(r.code, 0, r.stderr);
  // Without a terminal stderr is a log stream: one JSON record per line.
  const msgs = r.stderr.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  assert.match(msgs[0], /^joinery demo: 20,000 generated/);
  assert.match(msgs[1], /^joinery demo: expect about \d+ s/);
});
