/**
 * Checkpoint benchmarks (issue: checkpoints and recovery). Prints its figures; run after `npm ci`:
 *
 *   node dist/tools/checkpoint-bench.js throughput [--events N] [--runs R] [--interval DUR] [--together] [--steady-after S]
 *       `joinery bench` with checkpoints every 10 s against none, interleaved runs, medians + ratio,
 *       with CPU µs per input event per thread (router, workers, side pool, other). --together
 *       starts both runs of a round at the same moment, so that both meet the same contention from
 *       other jobs on a shared machine (each gets about half of it: compare CPU per event).
 *       --steady-after S also reports both from the runs' progress records after S seconds of
 *       processing: a checkpointed run reaches its steady state once its first change files have
 *       left the chain and are recycled (about five intervals); before, every page it writes is new.
 *   node dist/tools/checkpoint-bench.js growth [--events N] [--interval DUR]
 *       a join whose state only grows (3 h window): per checkpoint its duration, the bytes it
 *       wrote and the state it covers — incremental means the first stays flat while the last grows.
 *   node dist/tools/checkpoint-bench.js restore [--state-gib G]
 *       grow the state to G GiB (default 1) with checkpoints, kill -9, restart the same command and
 *       time from the restart to processing again.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// CKBENCH_BIN: drive another build's bin/joinery.js (before/after pairs from one tool).
const BIN = process.env.CKBENCH_BIN ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'joinery.js');
const args = process.argv.slice(2);
const mode = args[0] ?? 'throughput';
const opt = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-ckbench-'));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

type Child = ReturnType<typeof spawn>;
function run(argv: string[], onStderr?: (chunk: string, child: Child) => void, poll?: (child: Child) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; onStderr?.(d.toString(), child); });
    const t = poll ? setInterval(() => poll(child), 250) : null;
    child.on('close', (code) => { if (t) clearInterval(t); resolve({ code, stdout, stderr }); });
  });
}

function manifests(dir: string): Array<{ id: number; stats: { stateBytes: number; newBytes: number; durationMs: number } }> {
  const mdir = path.join(dir, 'manifests');
  if (!fs.existsSync(mdir)) return [];
  return fs.readdirSync(mdir).filter((n) => /^ckpt-\d+\.json$/.test(n)).sort().flatMap((n) => {
    try { return [JSON.parse(fs.readFileSync(path.join(mdir, n), 'utf8')).manifest]; } catch { return []; }
  });
}

type Cpu = { usPerEvent: number; threads?: Array<{ name: string; usPerEvent: number }> };
/** Median CPU µs per input event, total and per thread (from the runs' --json summaries). */
function cpuText(cs: Cpu[]): string {
  if (cs.length === 0) return 'CPU n/a';
  const names = [...new Set(cs.flatMap((c) => c.threads?.map((t) => t.name) ?? []))];
  const per = names.map((n) => `${n} ${median(cs.flatMap((c) => c.threads?.filter((t) => t.name === n).map((t) => t.usPerEvent) ?? [])).toFixed(2)}`);
  return `${median(cs.map((c) => c.usPerEvent)).toFixed(2)} µs CPU/event${per.length ? ` (${per.join(', ')})` : ''}`;
}

/** The median CPU per event of `b` against `a`, as a signed percentage. */
function cpuDelta(a: Cpu[], b: Cpu[]): string {
  if (a.length === 0 || b.length === 0) return 'n/a';
  const d = (median(b.map((c) => c.usPerEvent)) / median(a.map((c) => c.usPerEvent)) - 1) * 100;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)} %`;
}

async function throughput(): Promise<void> {
  const events = opt('events', '6000000'), runs = Number(opt('runs', '3')), interval = opt('interval', '10s');
  const base = ['bench', '--events', events, '--workers', '2', '--json', '--progress', args.includes('--steady-after') ? 'on' : 'off'];
  const rates: Record<string, number[]> = { none: [], checkpoints: [] };
  const cpus: Record<string, Cpu[]> = { none: [], checkpoints: [] };
  const cks: Array<{ completed: number; p50DurationMs: number; lastNewBytes: number }> = [];
  const together = args.includes('--together');
  const steadyAfterMs = Number(opt('steady-after', '0')) * 1000;
  const steady: Record<string, Array<{ eventsPerSec: number; usPerEvent: number }>> = { none: [], checkpoints: [] };
  for (let i = 0; i < runs; i++) {
    const kinds = i % 2 ? ['checkpoints', 'none'] : ['none', 'checkpoints'];
    const start = (kind: string) => {
      const extra = kind === 'checkpoints' ? ['--checkpoint-dir', path.join(tmp, `ck-${i}`), '--checkpoint-interval', interval] : [];
      return run([...base, ...extra, '--state-dir', path.join(tmp, `st-${kind}`)]);
    };
    const started = together ? kinds.map(start) : [];
    for (const [k, kind] of kinds.entries()) {
      const r = together ? await started[k] : await start(kind);
      if (r.code !== 0) throw new Error(`bench failed: ${r.stderr}`);
      const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
      rates[kind].push(s.eventsPerSec);
      if (s.cpu) cpus[kind].push(s.cpu);
      if (s.checkpoints) cks.push(s.checkpoints);
      if (steadyAfterMs > 0) {
        const w = steadyWindow(r.stderr, steadyAfterMs);
        if (!w) throw new Error(`run ${i + 1} ${kind}: no two progress records after ${steadyAfterMs / 1000} s (a longer run: --events)`);
        steady[kind].push(w);
      }
      process.stderr.write(`  run ${i + 1} ${kind.padEnd(11)} ${Math.round(s.eventsPerSec).toLocaleString('en-US')} events/s, ${cpuText(s.cpu ? [s.cpu] : [])}${s.checkpoints ? ` (${s.checkpoints.completed} checkpoints, p50 ${Math.round(s.checkpoints.p50DurationMs)} ms, ${s.checkpoints.compactions} compaction(s), ${s.checkpoints.expiredFiles ?? 0} expired file(s) dropped)` : ''}\n`);
    }
  }
  const a = median(rates.none), b = median(rates.checkpoints);
  console.log(`throughput, ${events} events, 2 workers, ${runs} ${together ? 'rounds of both runs at the same moment' : 'interleaved runs each'} (median):`);
  console.log(`  no checkpoints          ${Math.round(a).toLocaleString('en-US')} events/s, ${cpuText(cpus.none)}`);
  console.log(`  checkpoints every ${interval.padEnd(5)} ${Math.round(b).toLocaleString('en-US')} events/s, ${cpuText(cpus.checkpoints)}  (events/s ${((b / a - 1) * 100).toFixed(1)} %, CPU per event ${cpuDelta(cpus.none, cpus.checkpoints)}; ${median(cks.map((c) => c.completed))} checkpoints per run, p50 duration ${Math.round(median(cks.map((c) => c.p50DurationMs)))} ms)`);
  if (steadyAfterMs > 0) {
    const sa = median(steady.none.map((w) => w.eventsPerSec)), sb = median(steady.checkpoints.map((w) => w.eventsPerSec));
    const ca = median(steady.none.map((w) => w.usPerEvent)), cb = median(steady.checkpoints.map((w) => w.usPerEvent));
    console.log(`steady state (progress records from ${steadyAfterMs / 1000} s of processing to the last; process CPU):`);
    console.log(`  no checkpoints          ${Math.round(sa).toLocaleString('en-US')} events/s, ${ca.toFixed(2)} µs CPU/event`);
    console.log(`  checkpoints every ${interval.padEnd(5)} ${Math.round(sb).toLocaleString('en-US')} events/s, ${cb.toFixed(2)} µs CPU/event  (events/s ${((sb / sa - 1) * 100).toFixed(1)} %, CPU per event ${cb >= ca ? '+' : ''}${((cb / ca - 1) * 100).toFixed(1)} %)`);
  }
}

/**
 * Events/s and process CPU µs per event between the first progress record at or after `fromMs`
 * of processing and the last one (JSON log records on stderr, `--progress on`); null without two.
 */
function steadyWindow(stderr: string, fromMs: number): { eventsPerSec: number; usPerEvent: number } | null {
  const recs: Array<{ elapsedMs: number; eventsIn: number; cpuMs: number }> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try { const j = JSON.parse(line); if (j.progress === true && j.elapsedMs >= fromMs) recs.push(j); } catch { /* not a record */ }
  }
  if (recs.length < 2) return null;
  const a = recs[0], b = recs[recs.length - 1], n = b.eventsIn - a.eventsIn;
  return n > 0 ? { eventsPerSec: (n * 1000) / (b.elapsedMs - a.elapsedMs), usPerEvent: ((b.cpuMs - a.cpuMs) * 1000) / n } : null;
}

async function growth(): Promise<void> {
  const dir = path.join(tmp, 'ck');
  const events = opt('events', '8000000'), interval = opt('interval', '3s');
  const r = await run(['run', '--left', 'gen:', '--right', 'gen:', '--events', events, '--upper', '3h', '--workers', '2', '--out', 'null',
    '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', dir, '--checkpoint-interval', interval, '--checkpoint-retain', '10000', '--progress', 'off', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  const ms = manifests(dir);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  console.log(`checkpoint growth: ${events} generated events, 3 h window (nothing expires before the end), checkpoint every ${interval}:`);
  console.log('  id   duration   written (new)   state covered');
  for (const m of ms) console.log(`  ${String(m.id).padStart(3)}  ${String(m.stats.durationMs).padStart(6)} ms  ${mb(m.stats.newBytes).padStart(12)}   ${mb(m.stats.stateBytes).padStart(12)}`);
  console.log(`  whole run: ${Math.round(s.eventsPerSec).toLocaleString('en-US')} events/s, ${cpuText(s.cpu ? [s.cpu] : [])}, ${s.checkpoints?.compactions ?? 0} compaction(s)`);
}

async function restore(): Promise<void> {
  const gib = Number(opt('state-gib', '1'));
  const dir = path.join(tmp, 'ck');
  const argv = ['run', '--left', 'gen:', '--right', 'gen:', '--events', '0', '--upper', '6h', '--workers', '2', '--out', 'null',
    '--state-dir', path.join(tmp, 'st'), '--checkpoint-dir', dir, '--checkpoint-interval', '5s', '--checkpoint-retain', '2', '--progress', 'off'];
  const t0 = Date.now();
  await run(argv, undefined, (child) => {
    const last = manifests(dir).pop();
    if (last && last.stats.stateBytes >= gib * 1073741824 && !child.killed) child.kill('SIGKILL');
  });
  const last = manifests(dir).pop()!;
  console.log(`state built: checkpoint ${last.id} covers ${mb(last.stats.stateBytes)} (${((Date.now() - t0) / 1000).toFixed(0)} s to build), killed with SIGKILL`);
  const t1 = Date.now();
  let readyMs = 0, restoreLine = '';
  await run(argv, (chunk, child) => {
    const m = /restored .* in [\d.]+s/.exec(chunk);
    if (m && !readyMs) { readyMs = Date.now() - t1; restoreLine = m[0]; setTimeout(() => child.kill('SIGKILL'), 2000); }
  });
  console.log(`restart → processing again: ${(readyMs / 1000).toFixed(1)} s wall (process start, checkpoint verification, ${restoreLine})`);
}

const watchdog = (p: Promise<void>) => p.catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => fs.rmSync(tmp, { recursive: true, force: true }));
if (mode === 'throughput') await watchdog(throughput());
else if (mode === 'growth') await watchdog(growth());
else if (mode === 'restore') await watchdog(restore());
else { console.error(`unknown mode ${mode}: throughput | growth | restore`); process.exitCode = 2; }
