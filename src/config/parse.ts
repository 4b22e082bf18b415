import { usageError } from '../core/errors.js';
import { parseBytes, parseDurationMs, formatBytes, formatDurationMs } from '../core/units.js';
import { parseTime } from '../core/units.js';
import { parseSinkSpec, parseSourceSpec, prefixOf, sinkEndpoint, sourceEndpoint } from './endpoints.js';
import { DURATION_LIMIT_MS, OPTIONS, type Command, type Config, type OptionSpec } from './schema.js';
import { sameFile } from './paths.js';

export function optionsFor(command: Command): OptionSpec[] {
  return OPTIONS.filter((o) => o.commands.includes(command));
}

export function defaultFor(o: OptionSpec, command: Command): unknown {
  return o.defaults && command in o.defaults ? o.defaults[command] : o.default;
}

function rangeText(o: OptionSpec, lo: number | undefined, hi: number | undefined): string {
  const f = (n: number) => o.type === 'duration' ? formatDurationMs(n) : o.type === 'bytes' ? formatBytes(n) : String(n);
  if (lo !== undefined && hi !== undefined) return `must be between ${f(lo)} and ${f(hi)}`;
  return lo !== undefined ? `must be ≥ ${f(lo)}` : `must be ≤ ${f(hi!)}`;
}

/** Text → typed value of one option. `where` names the origin in errors (default `--flag`; `JOINERY_X`, `file.yaml: flag`). */
export function parseValue(o: OptionSpec, raw: string, where = `--${o.flag}`): unknown {
  const bad = (what: string) => usageError(`${where}: ${o.secret ? what : `${what} (got ${JSON.stringify(raw)})`}`);
  switch (o.type) {
    case 'string':
      if (raw === '') throw bad('needs a value');
      return raw;
    case 'list': {
      const parts = raw.split(',').map((s) => s.trim());
      if (parts.length === 0 || parts.some((p) => p === '')) throw bad('expects a comma-separated list of field names');
      return parts;
    }
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw bad('expects a whole number');
      const n = Number(raw);
      const hi = o.max ?? Number.MAX_SAFE_INTEGER;
      if ((o.min !== undefined && n < o.min) || n > hi || !Number.isSafeInteger(n)) throw bad(rangeText(o, o.min ?? -Number.MAX_SAFE_INTEGER, hi));
      return n;
    }
    case 'float': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw bad('expects a number');
      if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) throw bad(rangeText(o, o.min, o.max));
      return n;
    }
    case 'duration': {
      if (o.off && raw.trim() === 'off') return 0;
      const n = parseDurationMs(raw);
      if (Number.isNaN(n)) throw bad(`expects a duration such as 500ms, 5s, 2m, 1h, 1d or plain milliseconds${o.off ? ', or off' : ''}`);
      const lo = o.min ?? -DURATION_LIMIT_MS, hi = o.max ?? DURATION_LIMIT_MS;
      if (!(n >= lo && n <= hi)) throw bad(rangeText(o, lo, hi));
      return n;
    }
    case 'bytes': {
      const n = parseBytes(raw);
      if (Number.isNaN(n)) throw bad('expects a size such as 65536, 64k, 16m');
      const hi = o.max ?? Number.MAX_SAFE_INTEGER;
      if ((o.min !== undefined && n < o.min) || !(n <= hi)) throw bad(rangeText(o, o.min ?? 0, hi));
      return n;
    }
    case 'enum':
      if (!o.values!.includes(raw)) throw bad(`must be one of ${o.values!.join('|')}`);
      return raw;
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw bad('expects true or false');
  }
}

/** argv (after the subcommand) → validated, frozen config. Throws JoineryError E_USAGE naming the flag. */
export function parseArgs(command: Command, argv: readonly string[]): Config {
  return finishConfig(command, flagValues(command, argv));
}

/** The values given as flags in argv (option key → typed value), nothing else. Throws E_USAGE naming the flag. */
export function flagValues(command: Command, argv: readonly string[]): Map<string, unknown> {
  const specs = optionsFor(command);
  const byFlag = new Map(specs.map((o) => [o.flag, o]));
  const values = new Map<string, unknown>();
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') { values.set('help', true); continue; }
    if (!arg.startsWith('--')) throw usageError(`unexpected argument ${JSON.stringify(arg)} (flags start with --; see joinery ${command} --help)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const o = byFlag.get(name);
    if (!o) {
      const other = OPTIONS.find((x) => x.flag === name);
      throw usageError(other
        ? `--${name} does not apply to 'joinery ${command}' (it is a flag of: ${other.commands.join(', ')})`
        : `unknown flag --${name} (see joinery ${command} --help)`);
    }
    if (seen.has(name)) throw usageError(`--${name} given twice`);
    seen.add(name);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (o.type === 'bool') raw = 'true';
    else {
      if (i + 1 >= argv.length) throw usageError(`--${name} needs a value`);
      raw = argv[++i];
    }
    values.set(o.key, parseValue(o, raw));
  }
  return values;
}

/**
 * Defaults of the command overlaid with `values` (option key → typed value), validated and frozen.
 * `requireInputs: false` (config print) lets the inputs and outputs a command needs be missing;
 * every other check still applies.
 */
export function finishConfig(command: Command, values: ReadonlyMap<string, unknown>, opts: { requireInputs?: boolean } = {}): Config {
  const cfg: Record<string, unknown> = { command };
  for (const o of optionsFor(command)) cfg[o.key] = values.has(o.key) ? values.get(o.key) : defaultFor(o, command);
  const c = cfg as unknown as Config;
  if (!c.help) validate(c, opts.requireInputs ?? true);
  return Object.freeze(c);
}

/** --http value → host and port. A bare port (or :port) means 127.0.0.1. Throws E_USAGE. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]*):)?(\d+)$/.exec(v.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw usageError(`--http: expects HOST:PORT or PORT (got ${JSON.stringify(v)})`);
  let host = m[1] ?? '';
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host: host === '' ? '127.0.0.1' : host, port };
}

/** Loopback addresses: binding to them needs no token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function validate(c: Config, requireInputs: boolean): void {
  const isKafka = (v: string | undefined) => v !== undefined && prefixOf(v) === 'kafka';
  const required = (missing: boolean, message: string): boolean => {
    if (missing && requireInputs) throw usageError(message);
    return missing;
  };
  if (c.command === 'run' && !required(!c.left, '--left is required (file:PATH, kafka:TOPIC or gen:)') &&
    !required(!c.right, '--right is required (file:PATH, kafka:TOPIC or gen:)')) {
    const left = sourceEndpoint(c.left!, 'left'), right = sourceEndpoint(c.right!, 'right');
    if (left.kind !== right.kind) throw usageError(`--left and --right must be of the same kind (both file:, both kafka: or both gen:), got ${left.kind}: and ${right.kind}:`);
    if (left.kind === 'kafka' && left.spec === right.spec) throw usageError('--left and --right must be different Kafka topics');
    // a directory name, part of offset metadata (member/id) and of a transactional id
    if (c.member !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(c.member)) {
      throw usageError(`--member: ${JSON.stringify(c.member)} is not a usable member name (1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)`);
    }
    if (c.exitWhenIdleMs < 0) throw usageError('--exit-when-idle must not be negative');
    if (c.resumeAt !== undefined && c.rebuildFrom === undefined) throw usageError('--resume-at goes with --rebuild-from TIME (it says where the rebuilt output continues)');
    if (c.rebuildFrom !== undefined) {
      parseTime(c.rebuildFrom);
      if (left.kind === 'gen') throw usageError('--rebuild-from needs file: or kafka: inputs (the generator cannot be replayed to a position)');
      if (left.kind === 'file' && c.resumeAt === undefined) throw usageError('--rebuild-from with file inputs needs --resume-at LEFT_BYTE,RIGHT_BYTE (byte offsets of the first record the lost run had not processed) or --resume-at MANIFEST');
    }
  }
  if (c.command === 'backfill') {
    for (const [flag, v] of [['left', c.left], ['right', c.right]] as const) {
      if (!required(!v, `--${flag} is required (file:PATH or kafka:TOPIC)`) && !['file', 'kafka'].includes(parseSourceSpec(v!)?.kind ?? '')) {
        throw usageError(`--${flag}: backfill reads files (file:PATH: NDJSON, FlatBuffers or Parquet) or Kafka topics (kafka:TOPIC), got ${JSON.stringify(v)}`);
      }
    }
    if (c.left && c.right && isKafka(c.left) !== isKafka(c.right)) throw usageError('--left and --right must be of the same kind (both file: or both kafka:)');
    if (isKafka(c.left) && c.left === c.right) throw usageError('--left and --right must be different Kafka topics');
    if (!isKafka(c.left) && [c.out, c.lateOut, c.deadLetter].some(isKafka)) throw usageError('a backfill from files writes files, stdout or null (kafka: sinks need Kafka inputs)');
    if (!required(c.to === undefined, '--to TIME is required (the end of the event-time range, exclusive)')) {
      const to = parseTime(c.to!, 'to');
      const from = c.from === 'earliest' ? -Infinity : parseTime(c.from, 'from');
      if (!(from < to)) throw usageError(`--from (${c.from}) must be before --to (${c.to})`);
    }
    if (c.rebuildFrom !== undefined) throw usageError('--rebuild-from is for run (a live job after a backfill); a backfill starts with an empty join buffer');
  }
  if ((isKafka(c.left) || isKafka(c.right)) && (c.format as string) === 'parquet') {
    throw usageError('--format parquet is for file inputs (kafka: records are JSON or FlatBuffers)');
  }
  if (c.command === 'gen') {
    if (c.brokers && (c.format as string) === 'parquet') throw usageError('--format parquet writes files (--left-out/--right-out); Kafka records are JSON or FlatBuffers');
    if (c.brokers) {
      required(!c.leftTopic || !c.rightTopic, '--brokers needs --left-topic TOPIC and --right-topic TOPIC');
      if (c.leftTopic && c.leftTopic === c.rightTopic) throw usageError('--left-topic and --right-topic must be different topics');
      if (c.leftOut || c.rightOut) throw usageError('writes either files (--left-out/--right-out) or Kafka topics (--brokers), not both');
    } else {
      required(!c.leftOut || !c.rightOut, '--left-out FILE and --right-out FILE are required (or --brokers with --left-topic and --right-topic)');
      if (c.leftOut && c.rightOut && sameFile(c.leftOut, c.rightOut)) throw usageError(`--left-out ${c.leftOut} and --right-out ${c.rightOut} are the same file: give each stream its own`);
    }
  }
  if (c.command === 'verify') {
    for (const [flag, v] of [['left', c.left], ['right', c.right]] as const) {
      if (!required(!v, `--${flag} is required (file:PATH or kafka:TOPIC)`) && !['file', 'kafka'].includes(parseSourceSpec(v!)?.kind ?? '')) {
        throw usageError(`--${flag}: verify reads file:PATH or kafka:TOPIC, got ${JSON.stringify(v)}`);
      }
    }
    const outputKind = c.output === undefined ? undefined : parseSinkSpec(c.output)?.kind;
    if (!required(!c.output, '--output is required (file:PATH or kafka:TOPIC)') && outputKind !== 'file' && outputKind !== 'kafka') {
      throw usageError(`--output: use file:PATH or kafka:TOPIC, got ${JSON.stringify(c.output)}`);
    }
    if (c.lowerMs > c.upperMs) throw usageError(`--lower (${formatDurationMs(c.lowerMs)}) must not exceed --upper (${formatDurationMs(c.upperMs)})`);
    if (c.maxDelayMs < 0) throw usageError('--max-delay must not be negative');
    const leftKey = c.leftKey ?? c.key, rightKey = c.rightKey ?? c.key;
    if (leftKey.length !== rightKey.length) throw usageError(`the join key has ${leftKey.length} field(s) on the left but ${rightKey.length} on the right: --left-key/--right-key/--key must name as many fields per side`);
  }
  if (c.command === 'topics') required(!c.brokers || !c.leftTopic || !c.rightTopic, '--brokers, --left-topic and --right-topic are required');
  const needsBrokers = [c.left, c.right, c.out, c.lateOut, c.deadLetter, c.output].some(isKafka);
  if (needsBrokers && !c.brokers) throw usageError('kafka: sources and sinks need --brokers HOST:PORT[,…]');
  if (c.command === 'run' || c.command === 'demo' || c.command === 'bench' || c.command === 'backfill') {
    if (c.lowerMs > c.upperMs) throw usageError(`--lower (${formatDurationMs(c.lowerMs)}) must not exceed --upper (${formatDurationMs(c.upperMs)})`);
    if (c.maxDelayMs < 0) throw usageError('--max-delay must not be negative');
    if (c.idleTimeoutMs <= 0) throw usageError('--idle-timeout must be positive');
    if ((c.ringSizeBytes & (c.ringSizeBytes - 1)) !== 0) throw usageError(`--ring-size must be a power of two (got ${c.ringSizeBytes})`);
    const leftKey = c.leftKey ?? c.key, rightKey = c.rightKey ?? c.key;
    if (leftKey.length !== rightKey.length) {
      throw usageError(`the join key has ${leftKey.length} field(s) on the left (${leftKey.join(',')}) but ${rightKey.length} on the right (${rightKey.join(',')}): --left-key/--right-key/--key must name as many fields per side (matched in order)`);
    }
    if ((c.maxDriftMs ?? 0) < 0 || c.maxFutureMs < 0) throw usageError('--max-drift and --max-future must not be negative (0 or off disables them)');
    if (c.bucketMs !== undefined && c.bucketMs < 10) throw usageError('--bucket must be at least 10ms');
    const sinks = ([['out', c.out], ['late-out', c.lateOut], ['dead-letter', c.deadLetter]] as const)
      .flatMap(([flag, v]) => (v === undefined ? [] : [sinkEndpoint(v, flag)]));
    const files = sinks.filter((e) => e.kind === 'file' || e.kind === 'kafka').map((e) => e.spec);
    if (new Set(files).size !== files.length) throw usageError('--out, --late-out and --dead-letter must name different files or topics');
    if (c.outFormat && !isKafka(c.out)) throw usageError('--out-format applies to --out kafka:TOPIC only (files and stdout are NDJSON)');
  }
  if (c.http !== undefined) {
    const { host } = parseListen(c.http);
    if (!isLoopback(host) && !c.httpToken) throw usageError(`--http ${c.http} binds beyond this machine: give --http-token TOKEN (or JOINERY_HTTP_TOKEN), or bind 127.0.0.1`);
  }
  if (c.httpToken !== undefined && c.http === undefined) throw usageError('--http-token needs --http HOST:PORT');
  if (c.genDisorderMs < 0 || c.genPlayDelayMs < 0) throw usageError('generator durations must not be negative');
  if (c.genPlayProb > 1 || c.genOrphanPlays > 1 || c.genDuplicates > 1) throw usageError('generator probabilities must be ≤ 1');
}

function showDefault(o: OptionSpec, command: Command): string {
  const d = defaultFor(o, command);
  if (d === undefined) return '';
  if (o.type === 'duration') return formatDurationMs(d as number);
  if (o.type === 'bytes') return formatBytes(d as number);
  if (o.type === 'list') return (d as string[]).join(',');
  if (o.type === 'float' && o.key === 'rate' && d === 0) return '0 (unlimited)';
  return String(d);
}

export function helpText(command: Command, summary: string): string {
  const rows = optionsFor(command).map((o) => {
    const left = `  --${o.flag}${o.type === 'bool' ? '' : ' ' + (o.placeholder ?? (o.type === 'enum' ? o.values!.join('|') : o.type.toUpperCase()))}`;
    const d = showDefault(o, command);
    return `${left.padEnd(40)} ${o.doc}${d ? ` [default: ${d}]` : ''}`;
  });
  return `joinery ${command} — ${summary}\n\nFlags:\n${rows.join('\n')}\n`;
}

/** A table cell: GitHub tables split on every unescaped `|`, code spans included. */
function cell(text: string): string {
  return text.replace(/\\?\|/g, '\\|');
}

/** The README's flag table, generated from the schema (tools/readme-flags.ts keeps the README in step). */
export function flagTableMarkdown(): string {
  const lines = ['| flag | commands | default | meaning |', '| --- | --- | --- | --- |'];
  for (const o of OPTIONS) {
    const val = o.type === 'bool' ? '' : ' ' + (o.placeholder ?? (o.type === 'enum' ? o.values!.join('|') : o.type.toUpperCase()));
    const d = showDefault(o, o.commands[0]);
    const per = o.defaults ? Object.entries(o.defaults).map(([k, v]) => `${k}: ${o.type === 'duration' ? formatDurationMs(v as number) : String(v)}`).join('; ') : '';
    lines.push(`| ${cell(`\`--${o.flag}${val}\``)} | ${o.commands.join(', ')} | ${cell(`${d ? '`' + d + '`' : ''}${per ? ` (${per})` : ''}`)} | ${cell(o.doc)} |`);
  }
  return lines.join('\n');
}
