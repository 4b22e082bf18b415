/**
 * Backfill benchmark: 24 hours of event time with the realistic workload's shape (impressions :
 * plays ≈ 4 : 1, 1M members with Zipf 0.5 × 20k titles with Zipf 1.0, no duplicate deliveries; join
 * [−2 min, +1 h], max delay 30 s, inner, 2 workers), at an event rate scaled to this machine, replayed
 * by `joinery backfill` from Parquet and from NDJSON, interleaved runs, medians:
 *
 *   npm run build && node dist/tools/backfill-bench.js [--events 3000000] [--hours 24] [--runs 2] [--out null|file]
 *
 * Prints events/s, CPU µs per event (per thread), peak buffered entries and bytes, and the speed-up
 * over real time (event time covered / wall time). The data is generated once and cached under
 * $TMPDIR/joinery-backfill-bench/, keyed by the gen flags and the generator's code (NDJSON, then the Parquet twin written by `gen` from the same seed).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { genCacheKey } from './gen-cache.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'joinery.js');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const events = Number(opt('events', '3000000')), hours = Number(opt('hours', '24')), runs = Number(opt('runs', '2')), outKind = opt('out', 'file');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const rate = events / (hours * 3600);
const GEN = ['--events', String(events), '--gen-profiles', '1000000', '--gen-profile-skew', '0.5', '--gen-titles', '20000', '--gen-title-skew', '1.0',
  '--gen-play-prob', '0.2565', '--gen-duplicates', '0', '--gen-event-time-rate', rate.toFixed(4)];
const JOIN = ['--lower', '-2m', '--upper', '1h', '--max-delay', '30s', '--join', 'inner', '--workers', '2'];
const dir = path.join(os.tmpdir(), 'joinery-backfill-bench', `${events}-${hours}h-${genCacheKey(GEN)}`);

async function data(ext: 'ndjson' | 'parquet'): Promise<[string, string]> {
  const L = path.join(dir, `L.${ext}`), R = path.join(dir, `R.${ext}`);
  if (fs.existsSync(L) && fs.existsSync(R)) return [L, R];
  fs.mkdirSync(dir, { recursive: true });
  const t = performance.now();
  const g = await run(['gen', ...GEN, '--left-out', `${L}.tmp`, '--right-out', `${R}.tmp`, '--format', ext === 'parquet' ? 'parquet' : 'json']);
  if (g.code !== 0) throw new Error(`gen failed: ${g.stderr}`);
  fs.renameSync(`${L}.tmp`, L); fs.renameSync(`${R}.tmp`, R);
  process.stderr.write(`generated ${ext} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${(fs.statSync(L).size / 1e6).toFixed(0)} MB + ${(fs.statSync(R).size / 1e6).toFixed(0)} MB\n`);
  return [L, R];
}

type Cpu = { usPerEvent: number; threads?: Array<{ name: string; usPerEvent: number }> };
interface Result { eventsPerSec: number; cpu: Cpu; peakEntries: number; peakBytes: number; speedUp: number; elapsedMs: number; pairs: number }

async function main(): Promise<void> {
  const inputs = { ndjson: await data('ndjson'), parquet: await data('parquet') };
  const t0 = Number(JSON.parse(fs.readFileSync(inputs.ndjson[0], 'utf8').slice(0, 4096).split('\n')[0]).ts);
  const to = t0 + hours * 3_600_000 + 3_600_000; // past the end: the whole day
  const results: Record<string, Result[]> = { ndjson: [], parquet: [] };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-bfb-'));
  try {
    for (let i = 0; i < runs; i++) {
      for (const kind of (i % 2 ? ['parquet', 'ndjson'] : ['ndjson', 'parquet']) as Array<'ndjson' | 'parquet'>) {
        const [L, R] = inputs[kind];
        const out = outKind === 'null' ? 'null' : `file:${path.join(work, 'out.ndjson')}`;
        const r = await run(['backfill', '--left', `file:${L}`, '--right', `file:${R}`, ...JOIN, '--to', String(to), '--out', out,
          '--state-dir', path.join(work, 'st'), '--progress', 'off', '--json']);
        if (r.code !== 0) throw new Error(`backfill failed: ${r.stderr}`);
        const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
        const res: Result = { eventsPerSec: s.eventsPerSec, cpu: s.cpu, peakEntries: s.peakStateEntries, peakBytes: s.backfill.peakStateBytes, speedUp: s.backfill.speedUp, elapsedMs: s.elapsedMs, pairs: s.pairs };
        results[kind].push(res);
        process.stderr.write(`  run ${i + 1} ${kind.padEnd(7)} ${fmt(res.eventsPerSec)} events/s, ${res.cpu.usPerEvent.toFixed(2)} µs CPU/event, ${(res.elapsedMs / 1000).toFixed(1)} s, speed-up ${fmt(res.speedUp)}×, peak ${fmt(res.peakEntries)} entries / ${(res.peakBytes / 1048576).toFixed(0)} MiB, ${fmt(res.pairs)} pairs\n`);
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`backfill of ${hours} h of event time, ${fmt(events)} events (${rate.toFixed(1)} events/s of event time), join [−2m, +1h], 2 workers, --out ${outKind}; medians of ${runs} interleaved runs:`);
  for (const kind of ['parquet', 'ndjson'] as const) {
    const rs = results[kind];
    const names = [...new Set(rs.flatMap((r) => r.cpu.threads?.map((t) => t.name) ?? []))];
    const per = names.map((n) => `${n} ${median(rs.flatMap((r) => r.cpu.threads?.filter((t) => t.name === n).map((t) => t.usPerEvent) ?? [])).toFixed(2)}`).join(', ');
    console.log(`  ${kind.padEnd(7)} ${fmt(median(rs.map((r) => r.eventsPerSec)))} events/s, ${median(rs.map((r) => r.cpu.usPerEvent)).toFixed(2)} µs CPU/event (${per}), ` +
      `${(median(rs.map((r) => r.elapsedMs)) / 1000).toFixed(1)} s wall, speed-up over real time ${fmt(median(rs.map((r) => r.speedUp)))}×, ` +
      `peak buffer ${fmt(median(rs.map((r) => r.peakEntries)))} entries / ${(median(rs.map((r) => r.peakBytes)) / 1048576).toFixed(0)} MiB`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
