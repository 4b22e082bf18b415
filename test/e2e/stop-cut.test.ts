// A graceful stop (first SIGTERM) takes its checkpoint at a cut instead of draining the rings: the
// workers stop at their next record and what the rings still held goes into the checkpoint as
// in-flight files, joined first by the next start. Real processes, signals and files; the output
// of the stopped run plus the resumed one must equal an independent batch join exactly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, lastJson } from './cli.js';
import { canonical, multisetDiff, referenceJoin, readNdjson } from './reference-join.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-stopcut-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; sentAtMs: number; endedAtMs: number }

/** Run the CLI; `signal(child, stderrSoFar, send)` decides when to send SIGTERM (send records the time). Killed after 120 s. */
function start(args: string[], signal?: (stderr: () => string, send: () => void) => void, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '', stderr = '', sentAtMs = 0;
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code, sig) => { clearTimeout(kill); resolve({ code, signal: sig, stdout, stderr, sentAtMs, endedAtMs: Date.now() }); });
    signal?.(() => stderr, () => { sentAtMs = Date.now(); child.kill('SIGTERM'); });
  });
}

/** SIGTERM at the first progress record (the workers are up and busy, the signal handlers in). */
function termAtProgress(stderr: () => string, send: () => void): void {
  const t = setInterval(() => { if (/"progress":true/.test(stderr())) { clearInterval(t); send(); } }, 10);
  t.unref();
}

/** SIGTERM once `n` checkpoints of this run are on disk (its handlers are in by then, however slow the start). */
function termAfterCheckpoints(dir: string, n: number) {
  return (_stderr: () => string, send: () => void) => {
    const count = () => { try { return fs.readdirSync(path.join(dir, 'manifests')).filter((f) => /^ckpt-\d+\.json$/.test(f)).length; } catch { return 0; } };
    const t = setInterval(() => { if (count() >= n) { clearInterval(t); send(); } }, 10);
    t.unref();
  };
}

function newestManifest(dir: string): { id: number; inflight?: Array<{ name: string; events: number }> } {
  const names = fs.readdirSync(path.join(dir, 'manifests')).filter((f) => /^ckpt-\d+\.json$/.test(f)).sort();
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifests', names[names.length - 1]), 'utf8')).manifest;
}

const T0 = 1_767_225_600_000;
const line = (id: string, key: number, ts: number) => `{"eventId":"${id}","profileId":${key},"titleId":1,"ts":${ts}}\n`;

describe('graceful stop at a cut (hot key)', () => {
  // One key, every play after every impression and within the window: each play joins every
  // impression, so the workers lag far behind reading and the rings stay full.
  const N = 4000;
  const L = path.join(tmp, 'hot-l.ndjson'), R = path.join(tmp, 'hot-r.ndjson');
  before(() => {
    fs.writeFileSync(L, Array.from({ length: N }, (_, i) => line(`i-${i}`, 1, T0 + i * 10)).join(''));
    fs.writeFileSync(R, Array.from({ length: N }, (_, i) => line(`p-${i}`, 1, T0 + N * 10 + i * 10)).join(''));
  });

  test('SIGTERM exits 0 within seconds (no drain); the restart completes: every pair exactly once', async () => {
    const ck = path.join(tmp, 'ck-hot');
    const args = ['run', '--left', `file:${L}`, '--right', `file:${R}`, '--upper', '3h', '--out', 'null', '--state-dir', path.join(tmp, 'st-hot'),
      '--checkpoint-dir', ck, '--checkpoint-interval', '200ms', '--ring-size', '256k', '--stop-timeout', '60s', '--json'];
    const a = await start([...args, '--progress', 'on'], termAtProgress);
    assert.equal(a.signal, null, a.stderr.slice(-2000));
    assert.equal(a.code, 0, a.stderr.slice(-2000));
    const stopMs = a.endedAtMs - a.sentAtMs;
    // Draining what the rings held (the rest of the job's 16 M pairs) took 9-30 s here.
    assert.ok(stopMs < 5_000, `stopped ${stopMs} ms after SIGTERM`);
    const sa = lastJson(a.stdout) as { stopped?: boolean; pairs: number };
    assert.equal(sa.stopped, true);
    assert.match(a.stderr, /stop checkpoint \d+ taken at a cut/);
    const m = newestManifest(ck);
    const held = (m.inflight ?? []).reduce((n, f) => n + f.events, 0);
    assert.ok(held > 0, 'the stop checkpoint holds events the workers had not joined');

    const b = await start(args);
    assert.equal(b.code, 0, b.stderr.slice(-2000));
    assert.match(b.stderr, new RegExp(`${held.toLocaleString('en-US')} event\\(s\\) read but not yet joined when checkpoint ${m.id} was taken \\(a stop at a cut\\) are joined first`));
    const sb = lastJson(b.stdout) as { pairs: number; elapsedMs: number };
    assert.equal(sa.pairs + sb.pairs, N * N, `pairs before the stop ${sa.pairs} + after ${sb.pairs}`);
    // Self-calibrating on a loaded machine: the stop must be quicker than joining what it left
    // (a drain would take about that long, and leave the restart nothing to do).
    assert.ok(stopMs < sb.elapsedMs, `the stop took ${stopMs} ms, joining what it left ${Math.round(sb.elapsedMs)} ms: it drained`);
  });
});

describe('graceful stop at a cut (file output, several keys)', () => {
  // Four keys, both sides interleaved, ±500 ms: ~50 pairs per event, enough for the workers to lag
  // behind reading so that the rings are full when the signal comes.
  const N = 8000, KEYS = 4;
  const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson');
  let expected: string[];
  before(() => {
    fs.writeFileSync(L, Array.from({ length: N }, (_, i) => line(`i-${i}`, i % KEYS, T0 + i * 5)).join(''));
    fs.writeFileSync(R, Array.from({ length: N }, (_, i) => line(`p-${i}`, i % KEYS, T0 + 300 + i * 5)).join(''));
    expected = referenceJoin(readNdjson(L), readNdjson(R), { keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: -500, upperMs: 500, kind: 'full' });
  });
  const args = (name: string, workers: number) => ['run', '--left', `file:${L}`, '--right', `file:${R}`, '--lower', '-500ms', '--upper', '500ms', '--join', 'full',
    '--workers', String(workers), '--out', `file:${path.join(tmp, `out-${name}.ndjson`)}`, '--state-dir', path.join(tmp, `st-${name}`),
    '--checkpoint-dir', path.join(tmp, `ck-${name}`), '--checkpoint-interval', '100ms', '--ring-size', '256k', '--json'];
  const output = (name: string) => readNdjson(path.join(tmp, `out-${name}.ndjson`)).map((o) => canonical(o as never));

  /** Stop a run at a cut that holds unjoined events (tries again if the input ended first). */
  async function stoppedWithInflight(name: string, workers: number, checkpointsFirst: number): Promise<{ id: number; inflight: Array<{ name: string; events: number }> }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      fs.rmSync(path.join(tmp, `ck-${name}`), { recursive: true, force: true });
      // Workers pause 10 ms before each drain so the rings hold unjoined events at the signal on any machine.
      const a = await start(args(name, workers), termAfterCheckpoints(path.join(tmp, `ck-${name}`), checkpointsFirst), { ...process.env, JOINERY_INJECT_FAULTS: 'slow-drain:10' });
      assert.equal(a.code, 0, a.stderr.slice(-2000));
      const m = newestManifest(path.join(tmp, `ck-${name}`));
      if ((lastJson(a.stdout) as { stopped?: boolean }).stopped && (m.inflight ?? []).some((f) => f.events > 0)) return m as never;
    }
    assert.fail('five runs ended before a SIGTERM found unjoined events in the rings');
  }

  test('stopped with 2 workers, resumed with 3: the in-flight events go to their key group\'s new worker; output equals the batch join', async () => {
    const m = await stoppedWithInflight('rescale', 2, 1);
    const b = await start(args('rescale', 3));
    assert.equal(b.code, 0, b.stderr.slice(-2000));
    assert.match(b.stderr, new RegExp(`resuming from checkpoint ${m.id} `));
    assert.match(b.stderr, new RegExp(`not yet joined when checkpoint ${m.id} was taken \\(a stop at a cut\\) are joined first`));
    const diff = multisetDiff(expected, output('rescale'));
    assert.equal(diff, '', diff);
  });

  test('a corrupt in-flight file: the stop checkpoint is skipped for the previous one, output still exact', async () => {
    const m = await stoppedWithInflight('corrupt', 2, 1); // checkpoint 1 is the one to fall back to
    const f = m.inflight.find((x) => x.events > 0)!;
    const p = path.join(tmp, 'ck-corrupt', 'data', f.name);
    const bytes = fs.readFileSync(p);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(p, bytes);
    const b = await start(args('corrupt', 2));
    assert.equal(b.code, 0, b.stderr.slice(-2000));
    assert.match(b.stderr, new RegExp(`skipped checkpoint ${m.id}: in-flight file ${f.name} fails its checksum`));
    assert.doesNotMatch(b.stderr, new RegExp(`resuming from checkpoint ${m.id} `));
    const diff = multisetDiff(expected, output('corrupt'));
    assert.equal(diff, '', diff);
  });
});
