/**
 * State larger than memory: a 24 h window at the realistic shape, fed by the live generator (so
 * the data set never sits in memory or on disk), until the join buffer holds --target-bytes; then
 * kill -9 and a restart from the last checkpoint.
 *
 *   npm run build && node dist/tools/large-state-bench.js [--target 40g] [--event-time-rate 2500]
 *       [--sample 15s] [--max-time 2h] [--workers 2] [--dir DIR] [--checkpoint-interval 1m] [--no-restart] [--json]
 *       [--memory-limit SIZE] [-- FLAGS FOR joinery run]
 *
 * Prints one line per sample: wall time, buffered bytes (the workers' stateBytes, summed) and
 * entries, the LMDB files' size on disk, events/s, process CPU µs and major page faults per event
 * over the sample (with the kernel's share of that CPU and the cores it kept busy), the main thread's V8 heap and the process RSS. At the end: events/s while the buffer was under
 * 1 GB (the in-memory figure) against the last quarter of the run, the heap's growth, and, unless
 * --no-restart, the seconds from a restart to the first event processed again.
 *
 * The buffer holds about (upper − lower + max-delay) × event-time rate × 0.8 events (impressions
 * wait up to 24 h for their plays, plays only 2 min): at 2500 events/s of event time that is
 * ~175M events once 24 h of event time have gone by.
 *
 * --memory-limit 3g runs the node in a memory cgroup of that size (page cache included; needs root
 * and a cgroup v1 or v2 memory controller), so "larger than memory" can be reached with a state
 * that fits on a small disk: the state must outgrow the limit, not the machine. Each sample then
 * also shows the cgroup's anonymous memory and page cache, and the "in memory" figure is taken
 * while the buffer is under a quarter of the limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(root, 'bin', 'joinery.js');
const dashes = process.argv.indexOf('--', 2);
const argv = process.argv.slice(2, dashes < 0 ? undefined : dashes);
/** Flags after `--` go to `joinery run` as they are (e.g. -- --state-memory 128m). */
const RUN_EXTRA = dashes < 0 ? [] : process.argv.slice(dashes + 1);
const FLAGS = ['--target', '--event-time-rate', '--sample', '--max-time', '--workers', '--dir', '--checkpoint-interval', '--no-restart', '--json', '--memory-limit', '--help'];

function usage(msg: string): never {
  process.stderr.write(`large-state-bench: ${msg}\n`);
  process.exit(2);
}
if (argv.includes('--help') || argv.includes('-h')) {
  const text = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0];
  process.stdout.write(text.replace(/^\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
  process.exit(0);
}
for (const a of argv) if (a.startsWith('--') && !FLAGS.includes(a)) usage(`unknown flag ${a} (known: ${FLAGS.join(' ')})`);
function opt(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  if (i + 1 >= argv.length) usage(`--${name} needs a value`);
  return argv[i + 1];
}
function bytesOf(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(s);
  if (!m) usage(`not a size: ${s} (e.g. 40g, 512m)`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2].toLowerCase()];
}
function msOf(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) usage(`not a duration: ${s} (e.g. 15s, 2h)`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2]];
}

const TARGET_BYTES = bytesOf(opt('target', '40g'));
const EVENT_TIME_RATE = Number(opt('event-time-rate', '2500'));
const SAMPLE_MS = msOf(opt('sample', '15s'));
const MAX_TIME_MS = msOf(opt('max-time', '2h'));
const WORKERS = opt('workers', '2');
const CKPT_INTERVAL = opt('checkpoint-interval', '1m');
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'joinery-large-state')));
const RESTART = !argv.includes('--no-restart');
const JSON_OUT = argv.includes('--json');
const MEMORY_LIMIT_BYTES = argv.includes('--memory-limit') ? bytesOf(opt('memory-limit', '')) : null;
if (!(EVENT_TIME_RATE > 0)) usage('--event-time-rate: expected a number > 0');

const GB = 1024 ** 3;
const say = (line: string) => process.stderr.write(line + '\n');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const p = (srv.address() as net.AddressInfo).port; srv.close(() => resolve(p)); });
  });
}

/** The node's command line; the restarted node logs at info, so its restore (events, seconds) shows. */
function command(port: number, logLevel: string): string[] {
  return [BIN, 'run', '--left', 'gen:', '--right', 'gen:',
    '--gen-profiles', '1000000', '--gen-profile-skew', '0.5', '--gen-titles', '20000', '--gen-title-skew', '1.0',
    '--gen-play-prob', '0.2565', '--gen-duplicates', '0', '--gen-event-time-rate', String(EVENT_TIME_RATE),
    '--lower', '-2m', '--upper', '24h', '--max-delay', '30s', '--workers', WORKERS, '--out', 'null',
    '--state-dir', path.join(DIR, 'state'), '--checkpoint-dir', path.join(DIR, 'checkpoints'),
    '--checkpoint-interval', CKPT_INTERVAL, '--http', `127.0.0.1:${port}`, '--progress', 'off', '--log-level', logLevel, ...RUN_EXTRA];
}

interface Status {
  phase: string;
  counters?: { eventsProcessed: { left: number; right: number } };
  workers: Array<{ stateEntries: number; stateBytes: number }>;
  lastCheckpoint: { id: number } | null;
}

async function get(port: number, p: string): Promise<string | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(10_000) });
    return r.ok ? await r.text() : null;
  } catch { return null; }
}
async function status(port: number): Promise<Status | null> {
  const t = await get(port, '/status');
  return t ? JSON.parse(t) as Status : null;
}
function metric(text: string | null, name: string): number {
  const m = text ? new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text) : null;
  return m ? Number(m[1]) : NaN;
}
/** user + system CPU seconds, of which system, and major page faults of a whole process (all threads), from /proc (Linux). */
function procStat(pid: number): { cpu: number; sys: number; majorFaults: number } {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' '); // rest[i] is field i + 3 of proc(5)
    return { cpu: (Number(rest[11]) + Number(rest[12])) / 100, sys: Number(rest[12]) / 100, majorFaults: Number(rest[9]) };
  } catch { return { cpu: NaN, sys: NaN, majorFaults: NaN }; }
}
function diskBytes(dir: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.isFile()) n += fs.statSync(p).blocks * 512;
    }
  };
  try { walk(dir); } catch { /* the node may be replacing files */ }
  return n;
}
const processed = (s: Status | null) => s?.counters ? s.counters.eventsProcessed.left + s.counters.eventsProcessed.right : 0;

interface Sample { tS: number; bufferedBytes: number; entries: number; diskBytes: number; eventsPerS: number; cpuUsPerEvent: number; sysShare: number; busyCores: number; majorFaultsPerEvent: number; heapBytes: number; rssBytes: number; anonBytes?: number; cacheBytes?: number }

/** A memory cgroup of `limitBytes` (v1 or v2), or a usage error saying why there is none. */
interface MemoryCgroup { dir: string; v2: boolean }
function makeCgroup(limitBytes: number): MemoryCgroup {
  const name = `joinery-large-state-${process.pid}`;
  const v1 = '/sys/fs/cgroup/memory';
  try {
    if (fs.existsSync(path.join(v1, 'memory.limit_in_bytes'))) {
      const dir = path.join(v1, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(Math.floor(limitBytes)));
      return { dir, v2: false };
    }
    if (fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('memory')) {
      const dir = path.join('/sys/fs/cgroup', name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.max'), String(Math.floor(limitBytes)));
      return { dir, v2: true };
    }
  } catch (e) {
    usage(`--memory-limit: cannot make a memory cgroup (${(e as Error).message}); it needs root and a writable cgroup memory controller`);
  }
  usage('--memory-limit: no cgroup memory controller on this machine (/sys/fs/cgroup)');
}
/** The cgroup's anonymous memory and page cache, in bytes. */
function cgroupMemory(cg: MemoryCgroup): { anonBytes: number; cacheBytes: number } {
  try {
    const st = fs.readFileSync(path.join(cg.dir, 'memory.stat'), 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(st)?.[1] ?? NaN);
    return cg.v2 ? { anonBytes: get('anon'), cacheBytes: get('file') } : { anonBytes: get('rss'), cacheBytes: get('cache') };
  } catch { return { anonBytes: NaN, cacheBytes: NaN }; }
}
function removeCgroup(cg: MemoryCgroup): void {
  // rmdir once its processes are gone (a killed node takes a moment to leave it)
  for (let i = 0; i < 50; i++) {
    try { fs.rmdirSync(cg.dir); return; } catch { sleepSync(100); }
  }
  say(`  (could not remove the cgroup ${cg.dir}; remove it with rmdir)`);
}
function sleepSync(ms: number): void { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }
const cgroup = MEMORY_LIMIT_BYTES !== null ? makeCgroup(MEMORY_LIMIT_BYTES) : null;

let running: ChildProcess | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    running?.kill('SIGKILL');
    if (cgroup) removeCgroup(cgroup);
    process.exit(130);
  });
}

function start(port: number, logLevel = 'warn'): ChildProcess {
  // In the cgroup: the shell moves itself there, then becomes the node (its children follow).
  const child = cgroup
    ? spawn('/bin/sh', ['-c', `echo $$ > ${cgroup.dir}/cgroup.procs && exec "$0" "$@"`, process.execPath, ...command(port, logLevel)], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, command(port, logLevel), { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (b: Buffer) => process.stderr.write(`  [node] ${b.toString().trimEnd()}\n`));
  running = child;
  return child;
}

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  fs.mkdirSync(DIR, { recursive: true });
  const port = await freePort();
  say(`large-state-bench: 24 h window, ${EVENT_TIME_RATE} events/s of event time, target ${(TARGET_BYTES / GB).toFixed(1)} GiB buffered, in ${DIR}${cgroup ? `; memory limited to ${(MEMORY_LIMIT_BYTES! / GB).toFixed(1)} GiB (cgroup ${cgroup.dir})` : ''}`);
  say(`  ${['node', ...command(port, 'warn')].join(' ')}`);
  let child = start(port);
  let exited = false;
  child.on('exit', () => { exited = true; });
  const t0 = Date.now();
  const samples: Sample[] = [];
  let prev = { t: t0, events: 0, cpu: 0, sys: 0, majorFaults: 0 };
  say(`  t(s)  buffered(GiB)  entries(M)  disk(GiB)  events/s  cpu µs/ev  sys%  cores  majflt/ev  heap(MiB)  rss(MiB)${cgroup ? '  anon(MiB)  cache(MiB)' : ''}`);
  while (!exited && Date.now() - t0 < MAX_TIME_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const [st, met] = await Promise.all([status(port), get(port, '/metrics')]);
    if (!st || !st.counters) continue;
    const now = Date.now(), events = processed(st), { cpu, sys, majorFaults } = procStat(child.pid!);
    const s: Sample = {
      tS: (now - t0) / 1000,
      bufferedBytes: st.workers.reduce((n, w) => n + w.stateBytes, 0),
      entries: st.workers.reduce((n, w) => n + w.stateEntries, 0),
      diskBytes: diskBytes(path.join(DIR, 'state')),
      eventsPerS: (events - prev.events) / ((now - prev.t) / 1000),
      cpuUsPerEvent: events > prev.events ? ((cpu - prev.cpu) * 1e6) / (events - prev.events) : NaN,
      // The kernel's share (page faults, reclaim) and the cores kept busy: what is left of 2 is waiting.
      sysShare: cpu > prev.cpu ? (sys - prev.sys) / (cpu - prev.cpu) : NaN,
      busyCores: (cpu - prev.cpu) / ((now - prev.t) / 1000),
      // Reads of state the page cache had lost (each a disk read and, on a VM, an exit): what memory pressure costs.
      majorFaultsPerEvent: events > prev.events ? (majorFaults - prev.majorFaults) / (events - prev.events) : NaN,
      heapBytes: metric(met, 'joinery_nodejs_heap_size_used_bytes'),
      rssBytes: metric(met, 'joinery_process_resident_memory_bytes'),
      ...(cgroup ? cgroupMemory(cgroup) : {}),
    };
    prev = { t: now, events, cpu, sys, majorFaults };
    samples.push(s);
    say(`  ${s.tS.toFixed(0).padStart(5)}  ${(s.bufferedBytes / GB).toFixed(2).padStart(13)}  ${(s.entries / 1e6).toFixed(1).padStart(10)}  ${(s.diskBytes / GB).toFixed(2).padStart(9)}  ${Math.round(s.eventsPerS).toString().padStart(8)}  ${s.cpuUsPerEvent.toFixed(2).padStart(9)}  ${(100 * s.sysShare).toFixed(0).padStart(4)}  ${s.busyCores.toFixed(2).padStart(5)}  ${s.majorFaultsPerEvent.toFixed(3).padStart(9)}  ${(s.heapBytes / 1024 ** 2).toFixed(0).padStart(9)}  ${(s.rssBytes / 1024 ** 2).toFixed(0).padStart(8)}${cgroup ? `  ${(s.anonBytes! / 1024 ** 2).toFixed(0).padStart(9)}  ${(s.cacheBytes! / 1024 ** 2).toFixed(0).padStart(10)}` : ''}`);
    if (s.bufferedBytes >= TARGET_BYTES) break;
  }
  if (exited) throw new Error(`the node exited early (${child.signalCode ?? `code ${child.exitCode}`}${child.signalCode === 'SIGKILL' && cgroup ? ': killed, likely by the cgroup\'s OOM killer' : ''}); see its log above`);
  const reached = samples.length ? samples[samples.length - 1].bufferedBytes : 0;

  let restartS: number | null = null;
  if (RESTART) {
    // Kill right after a checkpoint completes, so the restart measures restore, not lost progress.
    const before = (await status(port))?.lastCheckpoint?.id ?? 0;
    say(`  waiting for a checkpoint after #${before} before kill -9 …`);
    const deadline = Date.now() + 30 * 60_000;
    while (((await status(port))?.lastCheckpoint?.id ?? 0) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const t1 = Date.now();
    child = start(port, 'info');
    let first = 0;
    while (Date.now() - t1 < 30 * 60_000) {
      await new Promise((r) => setTimeout(r, 250));
      const st = await status(port);
      if (st && st.phase === 'running' && processed(st) > 0) { first = Date.now(); break; }
    }
    restartS = first ? (first - t1) / 1000 : null;
    say(`  restart: ${restartS === null ? 'no event processed within 30 min' : `${restartS.toFixed(1)} s to the first event processed again`}`);
    child.kill('SIGKILL');
  } else {
    child.kill('SIGTERM');
  }
  // The node's files go below: it must be gone first (its checkpoint writer may still be writing).
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));

  const med = (xs: number[]) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); return s.length ? s[s.length >> 1] : NaN; };
  const inMemoryBytes = Math.min(GB, (MEMORY_LIMIT_BYTES ?? Infinity) / 4);
  const small = samples.filter((s) => s.bufferedBytes < inMemoryBytes);
  const tail = samples.slice(Math.floor(samples.length * 0.75));
  const result = {
    targetBytes: TARGET_BYTES, memoryLimitBytes: MEMORY_LIMIT_BYTES, reachedBytes: reached, eventTimeRate: EVENT_TIME_RATE, runS: samples.length ? samples[samples.length - 1].tS : 0,
    inMemory: { eventsPerS: med(small.map((s) => s.eventsPerS)), cpuUsPerEvent: med(small.map((s) => s.cpuUsPerEvent)) },
    lastQuarter: { eventsPerS: med(tail.map((s) => s.eventsPerS)), cpuUsPerEvent: med(tail.map((s) => s.cpuUsPerEvent)), majorFaultsPerEvent: med(tail.map((s) => s.majorFaultsPerEvent)), bufferedBytes: med(tail.map((s) => s.bufferedBytes)) },
    heapBytes: { first: samples[0]?.heapBytes ?? NaN, max: Math.max(...samples.map((s) => s.heapBytes).filter(Number.isFinite)) },
    restartS, samples,
  };
  if (small.length > 0) say(`  in memory (< ${(inMemoryBytes / GB).toFixed(2)} GiB buffered): ${Math.round(result.inMemory.eventsPerS)} events/s, ${result.inMemory.cpuUsPerEvent.toFixed(2)} CPU µs/event (median of samples)`);
  else say(`  in memory: no sample while under ${(inMemoryBytes / GB).toFixed(2)} GiB buffered (the first came at ${((samples[0]?.bufferedBytes ?? 0) / GB).toFixed(2)} GiB; a shorter --sample gives one)`);
  const slower = small.length > 0 ? ` → ${(result.inMemory.eventsPerS / result.lastQuarter.eventsPerS).toFixed(2)}× slower` : '';
  say(`  last quarter (~${(result.lastQuarter.bufferedBytes / GB).toFixed(1)} GiB buffered): ${Math.round(result.lastQuarter.eventsPerS)} events/s, ${result.lastQuarter.cpuUsPerEvent.toFixed(2)} CPU µs/event, ${result.lastQuarter.majorFaultsPerEvent.toFixed(3)} major faults per event${slower}`);
  say(`  main heap: ${(result.heapBytes.first / 1024 ** 2).toFixed(0)} MiB at the first sample, at most ${(result.heapBytes.max / 1024 ** 2).toFixed(0)} MiB`);
  if (JSON_OUT) process.stdout.write(JSON.stringify(result) + '\n');
  fs.rmSync(DIR, { recursive: true, force: true });
}

main().catch((e) => { say(`large-state-bench: ${(e as Error).message}`); process.exitCode = 1; }).finally(() => { if (cgroup) removeCgroup(cgroup); });
