import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatConfig, loadConfig, resolveValues, unknownEnvWarnings } from './config/load.js';
import { finishConfig, helpText, parseListen } from './config/parse.js';
import { COMMANDS, type Command, type Config } from './config/schema.js';
import { genStartOf, lockCheckpoints, openCheckpoints, startOf } from './checkpoint/index.js';
import { endpointsOf } from './config/endpoints.js';
import { EngineControl } from './control/engine-control.js';
import { lockDir } from './core/dirlock.js';
import { EXIT_CODES, JoineryError } from './core/errors.js';
import { exitSoon, isExiting } from './core/exit.js';
import { configureLog, log } from './core/log.js';
import { claimOutputPaths } from './config/paths.js';
import { exitCodeOf, formatSummary, runEngine, type EngineOptions, type Summary } from './engine.js';
import { genOptionsFrom } from './source/generator.js';
import { GeneratorSource } from './source/gen-source.js';
import { openIO, type InputContext, type OpenedIO } from './source/registry.js';

const SUMMARIES: Record<Command, string> = {
  run: 'join two streams (files, Kafka topics or the built-in generator) and write the joined stream (file, stdout or a Kafka topic)',
  demo: 'the embedded default job: generator → engine → summary, no flags needed',
  bench: 'whole-pipeline benchmark replaying a pre-generated, pre-encoded data set from memory',
  gen: "write the generator's two streams (impressions, plays) to files or Kafka topics",
  topics: 'check that both input Kafka topics exist and are co-partitioned',
  verify: 'recompute the join of two input files as a batch and compare it with a joined output (exit 0 equal, 1 different)',
  backfill: 'the same join over a bounded stretch of event time (--from, --to) of files or Kafka topics, as fast as the machine allows',
};

function usage(): string {
  return `joinery — a single-node stream-join engine

Usage: joinery <command> [flags]

Commands:
${COMMANDS.map((c) => `  ${c.padEnd(8)} ${SUMMARIES[c]}`).join('\n')}

  config   'joinery config print [COMMAND] [flags]': the effective config and where each value came from

Run 'joinery <command> --help' for the flags of a command. Every flag can also come from a config
file (--config FILE, JSON or YAML, keys are flag names) or a JOINERY_* environment variable
(--max-delay → JOINERY_MAX_DELAY); precedence: flags > environment > file > defaults.
Quick start:  joinery demo
`;
}

function progressOn(cfg: Config): boolean {
  return cfg.progress === 'on' || (cfg.progress === 'auto' && !!process.stderr.isTTY);
}

/** The summary: on a terminal the engine (or the group member) printed it as text; in JSON it is this record. */
function printResult(cfg: Config, s: Summary): void {
  if (log.isJson) log.info('finished', { command: cfg.command, ...s });
  if (cfg.json) process.stdout.write(JSON.stringify(s) + '\n');
}

/** Run fn with the HTTP endpoint up when --http is given (started first, so a busy port fails before any work). */
async function withEndpoint<T>(cfg: Config, fn: (control: EngineControl | undefined) => Promise<T>): Promise<T> {
  if (!cfg.http) return fn(undefined);
  const { HttpEndpoint } = await import('./http/server.js');
  const control = new EngineControl();
  const endpoint = await HttpEndpoint.start(control, { ...parseListen(cfg.http), token: cfg.httpToken });
  try {
    const r = await fn(control);
    control.detach(null);
    return r;
  } catch (e) {
    control.detach(e as Error);
    throw e;
  } finally {
    await endpoint.close();
  }
}

function logStart(cfg: Config): void {
  log.info(`joinery ${cfg.command} starting`, {
    left: cfg.left, right: cfg.right, join: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs, key: cfg.key,
    workers: cfg.workers, state: cfg.state, stateDir: cfg.state === 'memory' ? undefined : cfg.stateDir, out: cfg.out, config: cfg.config,
  });
}

async function cmdRun(cfg: Config): Promise<number> {
  claimOutputPaths(cfg);
  if (cfg.state !== 'memory') lockDir(cfg.stateDir, '--state-dir');
  logStart(cfg);
  return withEndpoint(cfg, (control) => runWith(cfg, control));
}

async function runWith(cfg: Config, control: EngineControl | undefined): Promise<number> {
  const ep = endpointsOf(cfg);
  const kafkaIn = ep.left!.kind === 'kafka';
  // Kafka input with checkpoints: one member of the consumer group, state moving with partitions
  // (file output has one writer and one length to cut back to, so it stays single-node).
  if (kafkaIn && cfg.checkpointDir && ep.out?.kind !== 'file' && cfg.rebuildFrom === undefined) {
    const { runMember } = await import('./member.js');
    const s = await runMember({ cfg, control, progress: progressOn(cfg) });
    printResult(cfg, s);
    return exitCodeOf(s);
  }
  const anyKafka = [ep.left, ep.out, ep.lateOut, ep.deadLetter].some((e) => e?.kind === 'kafka');
  if (anyKafka) (await (await import('./kafka/adapters.js')).kafkaAdapter()).checkClient({ groupMemberCheckpoints: false });
  const extra: Partial<EngineOptions> = {};
  const closers: Array<() => Promise<void>> = [];
  // Checkpoints first: a restore decides where the sources start. With exactly-once Kafka → Kafka
  // the output transaction is the commit point: resume from the checkpoint whose id the group's
  // committed offsets carry (a newer manifest whose transaction never committed is set aside).
  let committedId: number | undefined;
  if (kafkaIn) {
    const kafkaIO = await import('./kafka/io.js');
    if (kafkaIO.isTransactional(cfg, !!cfg.checkpointDir)) committedId = await kafkaIO.committedCheckpointId(cfg);
  }
  if (cfg.checkpointDir) lockCheckpoints(cfg.checkpointDir); // (a group member locks its own DIR/members/NAME)
  const ck = await openCheckpoints(cfg, committedId);
  if (ck) closers.push(() => ck.pool.close());
  let io: OpenedIO;
  try {
    let startOffsets: InputContext['logStartOffsets'];
    if (ep.left!.kind === 'kafka' && ep.right!.kind === 'kafka') {
      startOffsets = startOf(ck, (await import('./kafka/options.js')).kafkaSourceName(ep.left!.topic, ep.right!.topic))?.log;
    }
    // Rebuild without a checkpoint (--rebuild-from): where the replay starts and where it ends.
    if (cfg.rebuildFrom !== undefined) {
      const rb = await import('./rebuild/plan.js');
      if (kafkaIn) {
        const k = await rb.logPlan(cfg, await (await import('./kafka/rebuild.js')).kafkaRebuildLog(cfg));
        extra.rebuild = k.plan;
        startOffsets = k.startOffsets;
      } else {
        extra.rebuild = rb.filePlan(cfg);
      }
    }
    io = await openIO({ cfg, ck, control, logStartOffsets: startOffsets });
  } catch (e) {
    for (const c of closers) await c().catch(() => {});
    throw e;
  }
  const { sources, formats } = io;
  Object.assign(extra, io.engine);
  log.info('sources opened', { sources: sources.map((x) => x.name), partitions: sources.reduce((n, x) => n + x.partitions.length, 0), formats });
  const s = await runEngine(cfg, { sources, formats, progress: progressOn(cfg), printSummary: true, checkpoints: ck, handleSignals: true, control, ...extra });
  printResult(cfg, s);
  return exitCodeOf(s);
}


async function cmdGen(cfg: Config): Promise<number> {
  if (!cfg.brokers) return (await import('./gen-command.js')).runGenCommand(cfg);
  (await (await import('./kafka/adapters.js')).kafkaAdapter()).checkClient({ groupMemberCheckpoints: false });
  const { parseBrokers } = await import('./kafka/options.js');
  const { runGenToKafka } = await import('./gen-kafka.js');
  await runGenToKafka(cfg, {
    brokers: parseBrokers(cfg.brokers), leftTopic: cfg.leftTopic!, rightTopic: cfg.rightTopic!, partitions: cfg.partitions,
    format: cfg.format ?? 'flatbuffers', compression: cfg.compression, connectTimeoutMs: cfg.connectTimeoutMs,
  });
  return 0;
}

async function cmdTopics(cfg: Config): Promise<number> {
  const { parseBrokers } = await import('./kafka/options.js');
  const { runTopicsCheck } = await import('./kafka/topics.js');
  return runTopicsCheck(parseBrokers(cfg.brokers!), cfg.leftTopic!, cfg.rightTopic!, { connectTimeoutMs: cfg.connectTimeoutMs });
}

/** Rough demo pace on the 2-core reference machine, for the "expect about" line only. */
const DEMO_EVENTS_PER_SEC_2_CORES = 250_000;

async function cmdDemo(cfg: Config): Promise<number> {
  const tmp = cfg.stateDir === './joinery-state' ? fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-demo-')) : null;
  const c: Config = { ...cfg, stateDir: tmp ?? cfg.stateDir };
  claimOutputPaths(c);
  if (c.state !== 'memory') lockDir(c.stateDir, '--state-dir');
  if (c.checkpointDir) lockCheckpoints(c.checkpointDir);
  log.say('info', `joinery demo: ${c.events.toLocaleString('en-US')} generated impression/play events (seed ${c.seed}), ` +
    `${c.join} interval join [${c.lowerMs}ms, ${c.upperMs}ms] on (${c.key.join(', ')}), ${c.workers} worker(s), ${c.state} state` +
    `${c.state === 'lmdb' ? ` in ${c.stateDir}` : ''}, output → ${c.out}`);
  // Without a terminal there is no progress line: say how long the silence will last.
  if (!progressOn(c)) {
    const expectS = Math.max(1, Math.round(c.events / DEMO_EVENTS_PER_SEC_2_CORES));
    log.say('info', `joinery demo: expect about ${expectS} s on 2 cores (no progress line without a terminal; the summary follows)`);
  }
  logStart(c);
  try {
    const ck = await openCheckpoints(c);
    const s = await withEndpoint(c, (control) => runEngine(c, { sources: [new GeneratorSource(genOptionsFrom(c), undefined, genStartOf(ck))], formats: ['flatbuffers', 'flatbuffers'], progress: progressOn(c), printSummary: true, checkpoints: ck, handleSignals: true, control }));
    printResult(c, s);
    return exitCodeOf(s);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const CONFIG_USAGE = `joinery config print [COMMAND] [flags]

Print the effective configuration of COMMAND (${COMMANDS.join(', ')}; default run) as a config file
(usable as --config FILE), one "flag: value  # origin" line per option, where origin is the flag,
the JOINERY_* variable, the config file or the default. Flags are those of COMMAND. The listing is
printed even when inputs the command needs are not given yet (say, run without --left): a final
"# joinery COMMAND cannot start yet: …" comment says which. A bad combination of values prints the
listing, then the error (exit 2).
`;

/** `joinery config print [COMMAND] [flags]`: the effective config of COMMAND (default run) with each value's origin. */
function cmdConfig(rest: string[]): number {
  const [sub, ...more] = rest;
  const isHelp = (a: string | undefined) => a === '--help' || a === '-h' || a === 'help';
  if (isHelp(sub) || (sub === 'print' && more.some(isHelp))) {
    process.stdout.write(CONFIG_USAGE);
    return 0;
  }
  if (sub !== 'print') throw new JoineryError('E_USAGE', `expected 'joinery config print [COMMAND] [flags]'${sub ? `, got ${JSON.stringify(sub)}` : ''}`);
  let command: Command = 'run';
  if (more[0] && !more[0].startsWith('-')) {
    if (!(COMMANDS as string[]).includes(more[0])) throw new JoineryError('E_USAGE', `unknown command ${JSON.stringify(more[0])} (one of ${COMMANDS.join(', ')})`);
    command = more.shift() as Command;
  }
  const r = resolveValues(command, more, process.env);
  let missing = '';
  try {
    finishConfig(command, r.values, { requireInputs: false });
  } catch (e) {
    process.stdout.write(formatConfig(command, r));
    throw e; // a bad combination: the listing, then the error (exit 2)
  }
  try {
    finishConfig(command, r.values);
  } catch (e) {
    if (!(e instanceof JoineryError)) throw e;
    missing = `# joinery ${command} cannot start yet: ${e.message}\n`;
  }
  process.stdout.write(formatConfig(command, r) + missing);
  return 0;
}

/** Exit code when stdout's reader has gone (\`| head\`): 128 + SIGPIPE, as a shell reports for a tool SIGPIPE ended. */
export const EXIT_BROKEN_PIPE = 141;

/**
 * A closed stdout or stderr (the reader went away) ends the process quietly, as Unix tools do;
 * other write errors on them (a full disk behind a redirect) are E_OUTPUT. Without a listener the
 * error would be thrown from the stream, and the exit would then hang on the worker threads.
 */
function watchStdio(): void {
  for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || name === 'stderr') { exitSoon(EXIT_BROKEN_PIPE); return; }
      try { log.say('error', `joinery: writing ${name} failed: ${e.message}`, { code: 'E_OUTPUT', exitCode: EXIT_CODES.E_OUTPUT }); } catch { /* stderr gone */ }
      exitSoon(EXIT_CODES.E_OUTPUT);
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  watchStdio();
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command ? 0 : 2;
  }
  if (command === '--version') {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (command !== 'config' && !(COMMANDS as string[]).includes(command)) {
    log.say('error', `joinery: unknown command ${JSON.stringify(command)}`, { code: 'E_USAGE', exitCode: EXIT_CODES.E_USAGE });
    if (!log.isJson) log.say('info', `\n${usage().trimEnd()}`); // the usage text is for a person (a log reader gets the record)
    return 2;
  }
  try {
    for (const w of unknownEnvWarnings(process.env)) log.warn(w, { code: 'W_ENV' });
    if (command === 'config') return cmdConfig(rest);
    const cmd = command as Command;
    const { config: cfg, origins } = loadConfig(cmd, rest, process.env);
    configureLog({ level: cfg.logLevel });
    if (cfg.help) {
      process.stdout.write(helpText(cmd, SUMMARIES[cmd]));
      return 0;
    }
    const fromElsewhere = [...origins.entries()].filter(([, o]) => o.kind === 'env' || o.kind === 'file').map(([k, o]) => `${k}=${o.kind === 'env' ? o.name : 'file'}`);
    if (fromElsewhere.length > 0) log.debug('config from environment/file', { values: fromElsewhere });
    switch (cmd) {
      case 'run': return await cmdRun(cfg);
      case 'demo': return await cmdDemo(cfg);
      case 'gen': return await cmdGen(cfg);
      case 'topics': return await cmdTopics(cfg);
      case 'bench': return await (await import('./bench.js')).runBench(cfg);
      case 'verify': return await (await import('./verify/index.js')).runVerify(cfg, progressOn(cfg));
      case 'backfill': return await (await import('./backfill/index.js')).runBackfill(cfg, progressOn(cfg));
    }
    return 2;
  } catch (e) {
    if (isExiting()) return process.exitCode as number; // ending at once (closed stdout, second signal): nothing more to say
    const label = command === 'config' && rest[0] === 'print' ? 'config print' : command;
    if (e instanceof JoineryError) {
      log.say('error', `joinery ${label}: ${e.message}`, { code: e.code, exitCode: e.exitCode });
      return e.exitCode;
    }
    if (log.isJson) {
      log.error(`joinery ${command}: internal error: ${(e as Error)?.stack ?? String(e)}`, { code: 'E_INTERNAL', exitCode: EXIT_CODES.E_INTERNAL });
      return EXIT_CODES.E_INTERNAL;
    }
    throw e;
  }
}

export { formatSummary };
