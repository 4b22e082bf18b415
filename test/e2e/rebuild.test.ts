// Rebuild when checkpoints are gone (--rebuild-from TIME --resume-at …), end to end through the real
// CLI: a first run stops part-way (its output is what the lost run emitted), its state is lost, and
// a rebuild replays from TIME to the resume position and continues. The first output plus the
// rebuild's must equal an independent batch join exactly: nothing missing, nothing duplicated.
// And the guarantee's boundary: a TIME too recent loses pairs (never duplicates them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, joinery, lastJson } from './cli.js';
import { canonical, multisetDiff, referenceJoin, type Rec, readNdjson } from './reference-join.js';

const outputLines = (f: string): string[] => readNdjson(f).map((o) => canonical(o as never));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-rebuild-'));
const L = path.join(tmp, 'impressions.ndjson'), R = path.join(tmp, 'plays.ndjson');
// 200k events at 400 events/s of event time: ~500 s of event time, so TIME can cut well into it.
const GEN = ['--events', '200000', '--seed', '23', '--gen-profiles', '3000', '--gen-titles', '300', '--gen-event-time-rate', '400',
  '--gen-play-delay', '40s', '--gen-disorder', '2s', '--gen-duplicates', '0.02', '--gen-orphan-plays', '0.05'];
const LOWER = -10_000, UPPER = 90_000, MAX_DELAY = 3_000;
const JOIN = ['--lower', '-10s', '--upper', '90s', '--max-delay', '3s', '--format', 'json'];
const SPAN = Math.max(UPPER, 0) - Math.min(LOWER, 0); // the bound of the guarantee: TIME ≤ W_resume − SPAN
const refOf = (kind: 'inner' | 'full') => ({ keyFields: ['profileId', 'titleId'], timeField: 'ts', idField: 'eventId', lowerMs: LOWER, upperMs: UPPER, kind });
let left: Rec[], right: Rec[];

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The first records of a file (in arrival order) up to the first one with ts > T; with their byte length. */
function prefix(file: string, T: number): { text: string; bytes: number } {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let text = '';
  for (const l of lines) {
    if (l === '' || (JSON.parse(l).ts as number) > T) break;
    text += l + '\n';
  }
  return { text, bytes: Buffer.byteLength(text) };
}

function start(args: string[], act?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    act?.(child);
  });
}

describe('rebuild without checkpoints (files → file)', () => {
  let t0: number;
  before(async () => {
    const g = await joinery(['gen', ...GEN, '--format', 'json', '--left-out', L, '--right-out', R]);
    assert.equal(g.code, 0, g.stderr);
    left = readNdjson(L); right = readNdjson(R);
    t0 = Math.min(...left.slice(0, 100).map((r) => r.ts as number));
  });

  /**
   * Lost run = a run over the inputs' prefixes up to event time T (inner join: its output is exactly
   * the pairs among those events, i.e. what a run emitted before that resume position). Then a
   * rebuild over the whole inputs resumes at the prefixes' byte lengths.
   */
  async function truncatedThenRebuild(name: string, T: number, fromMs: number) {
    const pl = prefix(L, T), pr = prefix(R, T);
    const Lc = path.join(tmp, `${name}-L.ndjson`), Rc = path.join(tmp, `${name}-R.ndjson`);
    fs.writeFileSync(Lc, pl.text); fs.writeFileSync(Rc, pr.text);
    const out = path.join(tmp, `out-${name}.ndjson`);
    const common = [...JOIN, '--join', 'inner', '--state-dir', path.join(tmp, `state-${name}`), '--out', `file:${out}`, '--json'];
    const a = await joinery(['run', '--left', `file:${Lc}`, '--right', `file:${Rc}`, ...common, '--workers', '2']);
    assert.equal(a.code, 0, a.stderr);
    const first = outputLines(out).length;
    const b = await joinery(['run', '--left', `file:${L}`, '--right', `file:${R}`, ...common, '--workers', '3',
      '--rebuild-from', new Date(fromMs).toISOString(), '--resume-at', `${pl.bytes},${pr.bytes}`]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /rebuilding the join buffer: replaying from/);
    const s = lastJson(b.stdout) as { late: number; rebuild: { replayed: number; skipped: number; suppressedPairs: number; reachedResume: boolean } };
    assert.equal(s.late, 0);
    assert.equal(s.rebuild.reachedResume, true);
    return { out, first, s };
  }

  test('inner: truncated first run + rebuild from TIME = resume − (upper − lower) − max-delay equals the batch join exactly', async () => {
    const T = t0 + 300_000;
    // W_resume ≥ T − disorder − max-delay (the inputs' disorder is ≤ 2 s): TIME a little below W_resume − SPAN.
    const fromMs = T - 2_000 - MAX_DELAY - SPAN - 1_000;
    const { out, first, s } = await truncatedThenRebuild('inner', T, fromMs);
    assert.ok(first > 10_000, `the first run emitted ${first} pairs`);
    assert.ok(s.rebuild.skipped > 50_000, `the replay skipped the events before TIME (${s.rebuild.skipped})`);
    assert.ok(s.rebuild.suppressedPairs > 0 && s.rebuild.suppressedPairs < first, `suppressed ${s.rebuild.suppressedPairs} of the first run's ${first} pairs (the rest involve skipped events)`);
    const expected = referenceJoin(left, right, refOf('inner'));
    const diff = multisetDiff(expected, outputLines(out));
    assert.equal(diff, '', diff);
  });

  test('boundary: a TIME too recent loses pairs across the resume position (and never duplicates)', async () => {
    const T = t0 + 300_000;
    const fromMs = T - 20_000; // well inside the window: partners older than this are not replayed
    const { out } = await truncatedThenRebuild('too-recent', T, fromMs);
    const expected = referenceJoin(left, right, refOf('inner'));
    const got = outputLines(out);
    const count = new Map<string, number>();
    for (const e of expected) count.set(e, (count.get(e) ?? 0) + 1);
    let extra = 0;
    for (const g of got) { const n = count.get(g) ?? 0; if (n === 0) extra++; else count.set(g, n - 1); }
    const missing = [...count.values()].reduce((a, b) => a + b, 0);
    assert.equal(extra, 0, 'nothing duplicated or invented');
    assert.ok(missing > 0, 'pairs whose older event lies before TIME are missing: the guarantee needs TIME ≤ W_resume − (upper − lower)');
  });

  test('full join (exact-expiry store): run stopped by SIGTERM, checkpoint state lost, rebuild resumes at the manifest: equals the batch join exactly', async () => {
    const name = 'manifest';
    const out = path.join(tmp, `out-${name}.ndjson`), ckpt = path.join(tmp, `ckpt-${name}`);
    // An exact-expiry store (lmdb-btree): with the bucket store's coarse expiry, the lost run may
    // not yet have emitted unmatched rows of events expiring just before the resume watermark (README, Rebuild).
    const args = ['run', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--join', 'full', '--state', 'lmdb-btree',
      '--state-dir', path.join(tmp, `state-${name}`), '--out', `file:${out}`, '--checkpoint-dir', ckpt, '--checkpoint-interval', '200ms', '--json'];
    // Stop the first run part-way: right after the first checkpoint with a watermark is published (polled), so an
    // aligned checkpoint with a finite watermark exists and input is left. A fixed delay from the
    // start was either before the stop handling was installed (module loading takes over half a
    // second on a loaded machine) or after the input had ended, depending on the machine's load.
    let newest = '', stopManifest = '';
    let m: { router: { watermarkMs: number }; output: { lengthBytes: number } } | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      fs.rmSync(ckpt, { recursive: true, force: true });
      const a = await start([...args, '--workers', '2'], (c) => {
        const poll = setInterval(() => {
          if (c.exitCode !== null || c.signalCode !== null) { clearInterval(poll); return; }
          const dir = path.join(ckpt, 'manifests');
          const published = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^ckpt-\d+\.json$/.test(n)) : [];
          // (manifests are renamed into place whole; one with the watermark still at −∞ is too early)
          if (!published.some((n) => Number.isFinite(JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')).manifest.router.watermarkMs))) return;
          clearInterval(poll);
          c.kill('SIGTERM');
        }, 5);
      });
      assert.equal(a.code, 0, a.stderr);
      const manifests = fs.readdirSync(path.join(ckpt, 'manifests')).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort();
      // The stop's own checkpoint keeps unjoined events in in-flight files (lost with the state
      // below): a rebuild must resume at an earlier one, and says so when given it.
      const read = (n: string) => JSON.parse(fs.readFileSync(path.join(ckpt, 'manifests', n), 'utf8')).manifest;
      stopManifest = manifests.map((n) => path.join(ckpt, 'manifests', n)).find((p) => (read(path.basename(p)).inflight ?? []).length > 0) ?? '';
      const aligned = manifests.filter((n) => !(read(n).inflight ?? []).length);
      if (aligned.length === 0) continue;
      newest = path.join(ckpt, 'manifests', aligned[aligned.length - 1]);
      m = read(aligned[aligned.length - 1]);
      if ((lastJson(a.stdout) as { stopped?: boolean }).stopped && Number.isFinite(m!.router.watermarkMs)) break;
      m = null;
    }
    assert.ok(m, 'a first run stopped before the end of its input');
    // The checkpoints are gone: their state files are lost (the manifest survives elsewhere).
    const kept = path.join(tmp, `kept-${name}.json`);
    fs.copyFileSync(newest, kept);
    const stopKept = path.join(tmp, `kept-stop-${name}.json`);
    if (stopManifest) fs.copyFileSync(stopManifest, stopKept);
    fs.rmSync(path.join(ckpt, 'data'), { recursive: true, force: true });
    fs.appendFileSync(out, '{"not":"committed output, cut back by the rebuild"}\n');
    // Without --rebuild-from this is refused (no usable checkpoint) …
    const refused = await joinery([...args, '--workers', '2']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no usable checkpoint/);
    if (stopManifest) {
      const r = await joinery([...args, '--rebuild-from', String(m!.router.watermarkMs - SPAN), '--resume-at', stopKept]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /was taken at a stop \(a cut\) and kept \d+ event\(s\) read but not yet joined .*give an earlier manifest/);
    }
    // … with it, the run rebuilds from TIME and checkpoints again.
    const fromMs = m!.router.watermarkMs - SPAN - 1_000;
    const b = await joinery([...args, '--workers', '3', '--rebuild-from', String(fromMs), '--resume-at', kept]);
    assert.equal(b.code, 0, b.stderr);
    const sb = lastJson(b.stdout) as { late: number; rebuild: { skipped: number; suppressedPairs: number; suppressedUnmatched: number }; checkpoints: { completed: number } };
    assert.equal(sb.late, 0);
    assert.ok(sb.checkpoints.completed >= 1, 'checkpoints again after the replay');
    if (m!.router.watermarkMs - SPAN > t0 + 10_000) assert.ok(sb.rebuild.skipped > 0, 'events before TIME skipped');
    const diff = multisetDiff(referenceJoin(left, right, refOf('full')), outputLines(out));
    assert.equal(diff, '', diff);
    // With a usable checkpoint (the rebuild's own), --rebuild-from is refused: resume from it instead.
    const again = await joinery([...args, '--rebuild-from', String(fromMs), '--resume-at', kept]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /holds usable checkpoint \d+: resume from it/);
  });

  test('usage: --resume-at needs --rebuild-from; file inputs need --resume-at; a position inside a record is refused', async () => {
    const base = ['run', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--state', 'memory', '--out', 'null'];
    const a = await joinery([...base, '--resume-at', '0,0']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--resume-at goes with --rebuild-from/);
    const b = await joinery([...base, '--rebuild-from', '2026-01-01T00:00:00Z']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /needs --resume-at/);
    const c = await joinery([...base, '--rebuild-from', 'yesterday', '--resume-at', '0,0']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /--rebuild-from: expected an ISO-8601 time/);
    const d = await joinery([...base, '--rebuild-from', '0', '--resume-at', '5,0']);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /inside a record/);
  });
});
