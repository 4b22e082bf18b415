// tools/peers-bench.ts without the Flink peers (those need Java and Maven): the joinery half of the
// comparison, the cached data set, and a clear failure when the peers directory is missing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const TOOL = path.resolve(fileURLToPath(new URL('../../tools/peers-bench.js', import.meta.url)));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-peersbench-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tool(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TOOL, ...args], { timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('peers-bench: generates the workload once, runs joinery with and without checkpoints, same pairs, CPU per event in the table', async () => {
  const data = path.join(tmp, 'data');
  const args = ['--systems', 'joinery,joinery-ckpt', '--events', '20000', '--rounds', '1', '--data', data, '--json'];
  const r = await tool(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /generating the realistic workload/);
  const meta = JSON.parse(fs.readFileSync(path.join(data, 'complete.json'), 'utf8')) as { left: number; right: number };
  assert.equal(meta.left + meta.right, 20_000);
  // Plays per impression as the realistic shape asks (0.27), no duplicates.
  assert.ok(Math.abs(meta.right / meta.left - 0.27) < 0.03, `plays/impressions ${meta.right / meta.left}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { systems: Array<{ system: string; runs: number; cpuUsPerEvent: number; pairs: number[]; threads: Array<{ name: string }> }> };
  assert.deepEqual(j.systems.map((s) => s.system), ['joinery', 'joinery-ckpt']);
  for (const s of j.systems) {
    assert.equal(s.runs, 1);
    assert.ok(s.cpuUsPerEvent > 0);
    assert.equal(s.pairs.length, 1);
    if (process.platform === 'linux') assert.ok(s.threads.some((t) => t.name === 'worker-0'));
  }
  assert.equal(j.systems[0].pairs[0], j.systems[1].pairs[0]);
  assert.ok(j.systems[0].pairs[0] > 1000);
  assert.match(r.stdout, /\| joinery-ckpt \| [\d,]+ \| [\d,]+ \| [\d.]+ \| [\d.]+: router /);
  // Cached: the second run reuses the data set.
  const again = await tool(args);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /generating/);
});

test('peers-bench: a missing peers directory is a clear usage error before any work', async () => {
  const r = await tool(['--peers', path.join(tmp, 'no-such-peers'), '--rounds', '1', '--data', path.join(tmp, 'unused')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Flink peer job is not at .*no-such-peers.*--peers DIR/);
  assert.equal(fs.existsSync(path.join(tmp, 'unused')), false);
});
