/**
 * joinery against Apache Flink on the realistic workload, side by side on this machine.
 *
 *   npm run build && node dist/tools/peers-bench.js [--rounds N] [--peers DIR] [--data DIR] [--events N]
 *       [--systems joinery,joinery-ckpt,flink-rocksdb,flink-hashmap] [--workers 2] [--timeout 30m] [--json]
 *
 * 1. Generates the workload once into --data (default $TMPDIR/joinery-peers-data/<hash of the
 *    flags and the generator's code>), reused while neither changes: 2.0M impressions + 0.54M plays
 *    over 4 h of event time, 1M members (Zipf 0.5) × 20k titles (Zipf 1.0), no duplicate
 *    deliveries (Flink does not de-duplicate), NDJSON. --events N scales it down (same shape, same
 *    4 h of event time) for a quick try.
 * 2. Builds the Flink job of the peers directory (--peers DIR or JOINERY_PEERS: the directory
 *    holding flink-interval-join/; needed when a Flink system runs) with Maven under PEERS_BUILD (default
 *    /tmp/joinery-peers), only when its sources changed.
 * 3. Runs N rounds, each system once per round, the order rotating from round to round (so no
 *    system always runs first on a cold page cache): joinery without checkpoints, joinery with
 *    checkpoints every 10 s, Flink with RocksDB state and with heap state (both checkpoint every
 *    10 s). The join is fixed to what the Flink job implements: key (profileId, titleId), inner,
 *    right.ts − left.ts in [−2 min, 1 h], 30 s out-of-orderness, parallelism = workers.
 * 4. Checks every run wrote the same number of pairs, and prints medians: events/s over the whole
 *    process (wall time, JVM and MiniCluster start included, as a user waits) and over the job
 *    alone (each system's own figure), CPU µs per event of the whole process (user + system of the
 *    child, from the shell's `times`), joinery's per-thread CPU, and joinery / Flink ratios.
 *
 * Exit 0 when every run succeeded and the pair counts agree; 1 otherwise; 2 on usage errors.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { genCacheKey } from './gen-cache.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(root, 'bin', 'joinery.js');
const argv = process.argv.slice(2);
const HELP = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0];

function usage(msg: string): never {
  process.stderr.write(`peers-bench: ${msg}\n`);
  process.exit(2);
}
function opt(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  if (i + 1 >= argv.length) usage(`--${name} needs a value`);
  return argv[i + 1];
}
if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(HELP.replace(/^\/\*\*\n/, '').replace(/^ \* ?/gm, '')); process.exit(0); }
for (const a of argv) if (a.startsWith('--') && !['--rounds', '--peers', '--data', '--events', '--systems', '--workers', '--timeout', '--json', '--help'].includes(a)) usage(`unknown flag ${a}`);

const ROUNDS = Number(opt('rounds', '3'));
const WORKERS = Number(opt('workers', '2'));
const TIMEOUT_MS = durationMs(opt('timeout', '30m'));
const SYSTEMS = opt('systems', 'joinery,joinery-ckpt,flink-rocksdb,flink-hashmap').split(',');
const JSON_OUT = argv.includes('--json');
const PEERS = path.resolve(opt('peers', process.env.JOINERY_PEERS ?? ''));
const BUILD = process.env.PEERS_BUILD ?? '/tmp/joinery-peers';
const KNOWN = ['joinery', 'joinery-ckpt', 'flink-rocksdb', 'flink-hashmap'];
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) usage('--rounds: expected a whole number ≥ 1');
if (!Number.isInteger(WORKERS) || WORKERS < 1) usage('--workers: expected a whole number ≥ 1');
for (const s of SYSTEMS) if (!KNOWN.includes(s)) usage(`--systems: unknown system ${s} (known: ${KNOWN.join(', ')})`);
const needFlink = SYSTEMS.some((s) => s.startsWith('flink-'));

function durationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) usage(`bad duration ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms'];
}

/**
 * The realistic workload. --events counts both sides: 2.0M impressions + 0.54M plays. The
 * generator's plays per impression are playProb / (1 − orphanPlays) = 0.2565 / 0.95 = 0.27 (5 %
 * of plays have no impression, the generator's default); the event-time rate spreads the 2.54M
 * events over 4 h (2,540,000 / 14,400 s).
 */
const EVENTS = Number(opt('events', '2540000'));
if (!Number.isInteger(EVENTS) || EVENTS < 1000) usage('--events: expected a whole number ≥ 1000');
export const REALISTIC_GEN = [
  '--events', String(EVENTS), '--gen-profiles', '1000000', '--gen-profile-skew', '0.5', '--gen-titles', '20000', '--gen-title-skew', '1.0',
  '--gen-play-prob', '0.2565', '--gen-duplicates', '0', '--gen-event-time-rate', (EVENTS / 14_400).toFixed(2), '--seed', '42',
];
const JOIN = ['--key', 'profileId,titleId', '--time', 'ts', '--id', 'eventId', '--lower', '-2m', '--upper', '1h', '--join', 'inner', '--max-delay', '30s'];

const log = (s: string) => process.stderr.write(`[peers-bench] ${s}\n`);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const lines = (f: string) => { let n = 0; const b = fs.readFileSync(f); for (let i = 0; i < b.length; i++) if (b[i] === 10) n++; return n; };

/** Generate the data set into its cache directory unless it is there (written under a temp name, renamed when complete). */
function dataSet(): { L: string; R: string; events: number } {
  const hash = genCacheKey(REALISTIC_GEN);
  const dir = path.resolve(opt('data', path.join(os.tmpdir(), 'joinery-peers-data', hash)));
  const L = path.join(dir, 'impressions.ndjson'), R = path.join(dir, 'plays.ndjson'), done = path.join(dir, 'complete.json');
  if (!fs.existsSync(done)) {
    log(`generating the realistic workload into ${dir} (once): joinery gen ${REALISTIC_GEN.join(' ')}`);
    const part = `${dir}.part-${process.pid}`;
    fs.rmSync(part, { recursive: true, force: true });
    fs.mkdirSync(part, { recursive: true });
    const g = spawnSync(process.execPath, [BIN, 'gen', ...REALISTIC_GEN, '--format', 'json', '--progress', 'off',
      '--left-out', path.join(part, 'impressions.ndjson'), '--right-out', path.join(part, 'plays.ndjson')], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (g.status !== 0) { fs.rmSync(part, { recursive: true, force: true }); throw new Error(`joinery gen failed (exit ${g.status})`); }
    const counts = { left: lines(path.join(part, 'impressions.ndjson')), right: lines(path.join(part, 'plays.ndjson')) };
    fs.writeFileSync(path.join(part, 'complete.json'), JSON.stringify({ gen: REALISTIC_GEN, ...counts }) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.renameSync(part, dir);
  }
  const c = JSON.parse(fs.readFileSync(done, 'utf8')) as { left: number; right: number };
  return { L, R, events: c.left + c.right };
}

/** Build the Flink job as the peers' compare script does: a writable copy, rebuilt when its sources are newer than the jar. */
function flinkClasspath(): string {
  const src = path.join(PEERS, 'flink-interval-join');
  if (!fs.existsSync(path.join(src, 'pom.xml'))) {
    usage(`the Flink peer job is not at ${src}: pass --peers DIR (or JOINERY_PEERS=DIR) naming the peers directory that holds flink-interval-join/, or --systems joinery,joinery-ckpt`);
  }
  const dir = path.join(BUILD, 'flink'), jar = path.join(dir, 'target', 'flink-interval-join-0.1.0.jar');
  const newest = (d: string): number => fs.readdirSync(d, { withFileTypes: true }).reduce((m, e) => Math.max(m, e.isDirectory() ? newest(path.join(d, e.name)) : fs.statSync(path.join(d, e.name)).mtimeMs), 0);
  if (!fs.existsSync(jar) || newest(src) > fs.statSync(jar).mtimeMs) {
    for (const tool of ['java', 'mvn']) if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).error) usage(`${tool} not found: the Flink job needs Java 17 and Maven`);
    log(`building the Flink job in ${dir} with Maven (not timed; minutes the first time)`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(BUILD, { recursive: true });
    fs.cpSync(src, dir, { recursive: true });
    spawnSync('chmod', ['-R', 'u+w', dir]);
    const b = spawnSync('mvn', ['-B', '-q', '-f', path.join(dir, 'pom.xml'), 'package', '-DskipTests'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (b.status !== 0) throw new Error('Maven build of the Flink job failed');
  }
  return `${jar}:${path.join(dir, 'target', 'lib', '*')}`;
}

interface Result {
  system: string; round: number; ok: boolean; error?: string;
  wallS: number; cpuS: number; pairs: number;
  /** The system's own figure (joinery: from reading to the end; Flink: env.execute). */
  jobEventsPerSec: number;
  /** joinery only: its summary's per-thread CPU over its run. */
  threads?: Array<{ name: string; usPerEvent: number }>;
  jobCpuUsPerEvent?: number;
}

/**
 * Run a command under bash and read the child's CPU (user + system, all its threads, reaped
 * children included) from the shell's `times` builtin after it exits: /proc/PID is gone by then.
 */
function timed(cmd: string[], dir: string): Promise<{ code: number | null; wallS: number; cpuS: number; stdout: string; stderr: string }> {
  const timesFile = path.join(dir, 'times');
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-c', '"$@"; rc=$?; times > "$JOINERY_TIMES_FILE"; exit $rc', 'bash', ...cmd], {
      cwd: root, env: { ...process.env, JOINERY_TIMES_FILE: timesFile }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; if (stderr.length > 1 << 20) stderr = stderr.slice(-65536); });
    const timer = setTimeout(() => { stderr += `\ntimed out after ${TIMEOUT_MS / 1000}s`; try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallS = (performance.now() - t0) / 1000;
      let cpuS = NaN;
      try {
        // Second line: the shell's children, "XmY.YYYs XmY.YYYs" (user, system).
        const kids = fs.readFileSync(timesFile, 'utf8').trim().split('\n')[1];
        cpuS = [...kids.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
      } catch { /* left NaN: reported as missing */ }
      resolve({ code, wallS, cpuS, stdout, stderr });
    });
  });
}

async function runOne(system: string, round: number, data: { L: string; R: string; events: number }, cp: string, work: string): Promise<Result> {
  const dir = path.join(work, `${system}-${round}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  let cmd: string[];
  if (system.startsWith('joinery')) {
    cmd = [process.execPath, BIN, 'run', '--left', `file:${data.L}`, '--right', `file:${data.R}`, '--format', 'json', ...JOIN,
      '--workers', String(WORKERS), '--state', 'lmdb', '--state-dir', path.join(dir, 'state'), '--out', `file:${path.join(dir, 'out.ndjson')}`,
      '--progress', 'off', '--log-level', 'warn', '--json'];
    if (system === 'joinery-ckpt') cmd.push('--checkpoint-dir', path.join(dir, 'ckpt'), '--checkpoint-interval', '10s');
  } else {
    cmd = ['java', `-Djava.io.tmpdir=${path.join(dir, 'tmp')}`, '-cp', cp, 'peers.flink.IntervalJoinJob', '--left', data.L, '--right', data.R,
      '--out', path.join(dir, 'out'), '--parallelism', String(WORKERS), '--backend', system.slice('flink-'.length), '--checkpoint-interval-ms', '10000',
      '--checkpoint-dir', path.join(dir, 'ckpt'), '--state-dir', path.join(dir, 'state'), '--lower-ms', '-120000', '--upper-ms', '3600000', '--max-delay-ms', '30000'];
  }
  const r = await timed(cmd, dir);
  const res: Result = { system, round, ok: false, wallS: r.wallS, cpuS: r.cpuS, pairs: NaN, jobEventsPerSec: NaN };
  try {
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    res.jobEventsPerSec = last.eventsPerSec;
    if (system.startsWith('joinery')) {
      res.pairs = lines(path.join(dir, 'out.ndjson'));
      res.jobCpuUsPerEvent = last.cpu?.usPerEvent;
      res.threads = last.cpu?.threads?.map((t: { name: string; usPerEvent: number }) => ({ name: t.name, usPerEvent: t.usPerEvent }));
    } else {
      const out = path.join(dir, 'out');
      res.pairs = fs.readdirSync(out).filter((n) => n.startsWith('part-')).reduce((a, n) => a + lines(path.join(out, n)), 0);
    }
    res.ok = true;
  } catch (e) {
    res.error = (e as Error).message;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return res;
}

async function main(): Promise<number> {
  if (!fs.existsSync(BIN) || !fs.existsSync(path.join(root, 'dist', 'src', 'cli.js'))) usage(`build first (npm run build): ${BIN} or dist/ missing`);
  const cp = needFlink ? flinkClasspath() : '';
  const data = dataSet();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-peers-run-'));
  const load = () => fs.existsSync('/proc/loadavg') ? fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'n/a';
  log(`${data.events.toLocaleString('en-US')} events (${data.L}, ${data.R}); ${SYSTEMS.join(', ')}; ${ROUNDS} round(s); ${WORKERS} workers; load ${load()}`);
  const results: Result[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const k = (round - 1) % SYSTEMS.length;
      for (const system of [...SYSTEMS.slice(k), ...SYSTEMS.slice(0, k)]) {
        const r = await runOne(system, round, data, cp, work);
        results.push(r);
        log(r.ok
          ? `round ${round} ${system.padEnd(13)} ${r.wallS.toFixed(1)} s, ${fmt(data.events / r.wallS)} events/s (job ${fmt(r.jobEventsPerSec)}), ${(r.cpuS * 1e6 / data.events).toFixed(1)} µs CPU/event, ${r.pairs.toLocaleString('en-US')} pairs; load ${load()}`
          : `round ${round} ${system} FAILED: ${r.error}`);
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return report(results, data.events);
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');

function report(results: Result[], events: number): number {
  const ok = results.filter((r) => r.ok);
  const rows = SYSTEMS.map((s) => {
    const rs = ok.filter((r) => r.system === s);
    const threadNames = [...new Set(rs.flatMap((r) => r.threads?.map((t) => t.name) ?? []))];
    return {
      system: s, runs: rs.length,
      eventsPerSec: median(rs.map((r) => events / r.wallS)),
      jobEventsPerSec: median(rs.map((r) => r.jobEventsPerSec)),
      cpuUsPerEvent: median(rs.map((r) => (r.cpuS * 1e6) / events)),
      jobCpuUsPerEvent: median(rs.flatMap((r) => (r.jobCpuUsPerEvent === undefined ? [] : [r.jobCpuUsPerEvent]))),
      threads: threadNames.map((name) => ({ name, usPerEvent: median(rs.flatMap((r) => r.threads?.filter((t) => t.name === name).map((t) => t.usPerEvent) ?? [])) })),
      pairs: [...new Set(rs.map((r) => r.pairs))],
    };
  });
  const allPairs = new Set(ok.map((r) => r.pairs));
  const failed = results.length - ok.length;
  const out: string[] = [];
  out.push(`realistic workload: ${events.toLocaleString('en-US')} events, ${WORKERS} workers / parallelism ${WORKERS}, medians of ${ROUNDS} interleaved round(s)`);
  out.push('| system | events/s (process wall) | events/s (job) | CPU µs/event (process) | joinery CPU µs/event by thread (run) | pairs |');
  out.push('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    if (r.runs === 0) { out.push(`| ${r.system} | failed | | | | |`); continue; }
    const th = r.threads.length ? `${r.jobCpuUsPerEvent.toFixed(1)}: ${r.threads.map((t) => `${t.name} ${t.usPerEvent.toFixed(1)}`).join(', ')}` : '';
    out.push(`| ${r.system} | ${fmt(r.eventsPerSec)} | ${fmt(r.jobEventsPerSec)} | ${r.cpuUsPerEvent.toFixed(1)} | ${th} | ${r.pairs.map((p) => p.toLocaleString('en-US')).join(' / ')} |`);
  }
  const by = Object.fromEntries(rows.filter((r) => r.runs > 0).map((r) => [r.system, r]));
  const ratios: Array<{ pair: string; eventsPerSec: number; jobEventsPerSec: number; cpuUsPerEvent: number }> = [];
  for (const [j, f] of [['joinery-ckpt', 'flink-rocksdb'], ['joinery-ckpt', 'flink-hashmap'], ['joinery', 'flink-rocksdb'], ['joinery', 'flink-hashmap']]) {
    if (!by[j] || !by[f]) continue;
    ratios.push({ pair: `${j} / ${f}`, eventsPerSec: by[j].eventsPerSec / by[f].eventsPerSec, jobEventsPerSec: by[j].jobEventsPerSec / by[f].jobEventsPerSec, cpuUsPerEvent: by[j].cpuUsPerEvent / by[f].cpuUsPerEvent });
  }
  if (ratios.length) {
    out.push('', '| ratio | events/s (process) | events/s (job) | CPU µs/event (lower = joinery cheaper) |', '| --- | --- | --- | --- |');
    for (const r of ratios) out.push(`| ${r.pair} | ${r.eventsPerSec.toFixed(2)}× | ${r.jobEventsPerSec.toFixed(2)}× | ${r.cpuUsPerEvent.toFixed(2)}× |`);
  }
  if (allPairs.size > 1) out.push('', `MISMATCH: pair counts differ: ${rows.map((r) => `${r.system} ${r.pairs.join('/')}`).join(', ')}`);
  if (failed) out.push('', `${failed} run(s) failed: ${results.filter((r) => !r.ok).map((r) => `${r.system} round ${r.round}: ${r.error}`).join('; ')}`);
  process.stdout.write(out.join('\n') + '\n');
  if (JSON_OUT) process.stdout.write(JSON.stringify({ events, workers: WORKERS, rounds: ROUNDS, gen: REALISTIC_GEN, systems: rows, ratios, runs: results }) + '\n');
  return failed === 0 && allPairs.size <= 1 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e) => { log(`failed: ${(e as Error).message}`); process.exitCode = 1; });
