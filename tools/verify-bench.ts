/**
 * `joinery verify` benchmark (issue 11): input events/s and CPU µs per input event (all threads),
 * peak RSS, in memory and spilled, optionally against another build side by side.
 *
 *   node dist/tools/verify-bench.js [--events N] [--runs R] [--threads T] [--max-memory BYTES]
 *       [--baseline PATH/bin/joinery.js] [--dir DIR]
 *
 * The data set has the realistic workload's shape (README, Benchmarks: impressions : plays ≈ 4 : 1,
 * skewed profiles and titles), scaled by --events; `run` writes the output to verify once. The runs
 * interleave (this build, the baseline, this build spilled under --max-memory, …) and medians are
 * printed. Wall time on a shared machine says little; CPU per event is the steadier figure, and
 * "events/s if CPU-bound" = threads / CPU per event is what idle cores would give.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'joinery.js');
const args = process.argv.slice(2);
const opt = (name: string, def?: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const events = Number(opt('events', '1000000')), runs = Number(opt('runs', '3')), threads = opt('threads', '2')!;
const budget = opt('max-memory', '16m')!, baseline = opt('baseline');
const dir = opt('dir') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-verify-bench-'));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

/** Runs a command under /usr/bin/time when there is one, for the peak RSS. */
function run(bin: string, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string; maxRssKb?: number }> {
  const timeBin = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const [cmd, full] = timeBin ? [timeBin, ['-f', 'maxrss=%M', process.execPath, bin, ...argv]] : [process.execPath, [bin, ...argv]];
  return new Promise((resolve) => {
    const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('close', (code) => {
      const m = /maxrss=(\d+)/.exec(stderr);
      resolve({ code, stdout, stderr, maxRssKb: m ? Number(m[1]) : undefined });
    });
  });
}

const L = path.join(dir, 'L.ndjson'), R = path.join(dir, 'R.ndjson'), O = path.join(dir, 'O.ndjson');
if (!fs.existsSync(O)) {
  const scale = events / 2_540_000;
  const g = await run(BIN, ['gen', '--events', String(events), '--gen-profiles', String(Math.max(1000, Math.round(1_000_000 * scale))), '--gen-profile-skew', '0.5',
    '--gen-titles', '20000', '--gen-title-skew', '1.0', '--gen-play-prob', '0.2565', '--gen-duplicates', '0', '--gen-event-time-rate', '176.39',
    '--left-out', L, '--right-out', R]);
  if (g.code !== 0) throw new Error(g.stderr);
  const r = await run(BIN, ['run', '--left', `file:${L}`, '--right', `file:${R}`, '--out', `file:${O}`, '--state', 'memory', '--progress', 'off', '--log-level', 'error']);
  if (r.code !== 0) throw new Error(r.stderr);
}
const bytes = [L, R, O].map((f) => fs.statSync(f).size);
console.log(`data: ${dir} (${bytes.map((b) => `${(b / 1048576).toFixed(0)} MB`).join(' + ')}), ${events.toLocaleString('en-US')} input events; ${runs} runs each, interleaved`);

interface Variant { name: string; bin: string; extra: string[] }
const variants: Variant[] = [{ name: `this build, ${threads} threads, in memory`, bin: BIN, extra: ['--threads', threads] }];
if (baseline) variants.push({ name: `baseline ${baseline}`, bin: baseline, extra: [] });
variants.push({ name: `this build, ${threads} threads, --max-memory ${budget} (spilled)`, bin: BIN, extra: ['--threads', threads, '--max-memory', budget] });
const got = new Map<string, Array<{ eps: number; cpu: number; rss: number; spilled: number }>>(variants.map((v) => [v.name, []]));
for (let i = 0; i < runs; i++) {
  for (const v of variants) {
    const r = await run(v.bin, ['verify', '--left', `file:${L}`, '--right', `file:${R}`, '--output', `file:${O}`, '--json', '--progress', 'off', ...v.extra]);
    if (r.code !== 0) throw new Error(`${v.name}: exit ${r.code}: ${r.stderr.slice(0, 2000)}`);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    got.get(v.name)!.push({ eps: j.inputEventsPerSec, cpu: j.cpuUsPerEvent, rss: (r.maxRssKb ?? 0) / 1024, spilled: j.spill?.spilledBytes ?? 0 });
  }
}
console.log('| build | input events/s (wall) | CPU µs per input event | events/s if CPU-bound | peak RSS | spilled |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const v of variants) {
  const xs = got.get(v.name)!;
  const cpu = median(xs.map((x) => x.cpu));
  const t = v.bin === BIN ? Number(threads) : 1;
  console.log(`| ${v.name} | ${Math.round(median(xs.map((x) => x.eps))).toLocaleString('en-US')} | ${cpu.toFixed(2)} | ` +
    `${Math.round((t * 1e6) / cpu).toLocaleString('en-US')} (${t} core${t === 1 ? '' : 's'}) | ${median(xs.map((x) => x.rss)).toFixed(0)} MB | ${(median(xs.map((x) => x.spilled)) / 1048576).toFixed(0)} MB |`);
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
if (!opt('dir')) fs.rmSync(dir, { recursive: true, force: true });
