/**
 * Where a command's configuration comes from, in order of precedence:
 *
 *   flags  >  JOINERY_* environment variables  >  config file (--config FILE / JOINERY_CONFIG)  >  defaults
 *
 * All three use the one option schema (src/config/schema.ts) and its names: the file's keys are
 * flag names (`max-delay: 5s`, `workers: 4`), the environment variable of `--max-delay` is
 * `JOINERY_MAX_DELAY`. Values are parsed and validated exactly as flags are. The only file
 * importing the `yaml` package (YAML 1.2 is a superset of JSON, so it reads both).
 */
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { JoineryError } from '../core/errors.js';
import { formatBytes, formatDurationMs } from '../core/units.js';
import { defaultFor, finishConfig, flagValues, optionsFor, parseValue } from './parse.js';
import { envName, OPTIONS, type Command, type Config, type OptionSpec } from './schema.js';

export type Origin =
  | { kind: 'default' }
  | { kind: 'file'; file: string }
  | { kind: 'env'; name: string }
  | { kind: 'flag' };

export interface Resolved {
  /** Option key → typed value, for every option given somewhere (defaults not included). */
  values: Map<string, unknown>;
  /** Option key → where its value came from (every option of the command). */
  origins: Map<string, Origin>;
}

export type ReadFile = (file: string) => string;
const readUtf8: ReadFile = (f) => fs.readFileSync(f, 'utf8');

/** Options that cannot come from the environment or a file. */
const FLAG_ONLY = new Set(['help']);

function configError(message: string): JoineryError {
  return new JoineryError('E_CONFIG', message);
}

/** Parse the options of `command` set in `env` (JOINERY_*). Variables of other commands and unknown JOINERY_* names are ignored. */
export function envValues(command: Command, env: NodeJS.ProcessEnv): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const o of optionsFor(command)) {
    if (FLAG_ONLY.has(o.key)) continue;
    const raw = env[envName(o)];
    if (raw === undefined || raw === '') continue;
    out.set(o.key, parseValue(o, raw, envName(o)));
  }
  return out;
}

/** One value of a config file → the option's typed value (strings parse as flags do; numbers, booleans and lists are taken as such). */
function fileValue(o: OptionSpec, v: unknown, where: string): unknown {
  let raw: string;
  if (typeof v === 'string') raw = v;
  else if (typeof v === 'number' && o.type !== 'string' && o.type !== 'enum' && o.type !== 'list' && o.type !== 'bool') raw = String(v);
  else if (typeof v === 'boolean' && o.type === 'bool') raw = String(v);
  else if (Array.isArray(v) && o.type === 'list' && v.every((x) => typeof x === 'string')) raw = v.join(',');
  else if (typeof v === 'number' && (o.type === 'string' || o.type === 'enum')) raw = String(v);
  else throw configError(`${where}: expects ${o.type === 'list' ? 'a list of field names' : `a ${o.type}`}, not ${JSON.stringify(v)}`);
  try {
    return parseValue(o, raw, where);
  } catch (e) {
    throw configError((e as Error).message);
  }
}

/** Read a JSON or YAML config file: a mapping of flag names to values. Keys of other commands are skipped. */
export function fileValues(command: Command, file: string, read: ReadFile = readUtf8): Map<string, unknown> {
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    throw configError(`cannot read config file ${file} (--config): ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw configError(`config file ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw configError(`config file ${file} must hold a mapping of flag names to values (e.g. "workers: 4")`);
  const applicable = new Set(optionsFor(command).map((o) => o.key));
  const out = new Map<string, unknown>();
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    const o = OPTIONS.find((x) => x.flag === name);
    if (!o) {
      const byKey = OPTIONS.find((x) => x.key === name);
      throw configError(`config file ${file}: unknown key "${name}"${byKey ? ` (write it as the flag name "${byKey.flag}")` : ' (keys are flag names without --, see joinery <command> --help)'}`);
    }
    if (FLAG_ONLY.has(o.key) || o.key === 'config') throw configError(`config file ${file}: "${name}" cannot be set in a config file`);
    if (!applicable.has(o.key) || v === null) continue; // a file may serve several commands
    out.set(o.key, fileValue(o, v, `${file}: ${name}`));
  }
  return out;
}

/** Every option given for `command` by flags, environment or file, with its origin. Does not validate combinations. */
export function resolveValues(command: Command, argv: readonly string[], env: NodeJS.ProcessEnv = process.env, read: ReadFile = readUtf8): Resolved {
  const flags = flagValues(command, argv);
  const envs = envValues(command, env);
  const file = (flags.get('config') ?? envs.get('config')) as string | undefined;
  const files = file !== undefined ? fileValues(command, file, read) : new Map<string, unknown>();
  const values = new Map<string, unknown>();
  const origins = new Map<string, Origin>();
  for (const o of optionsFor(command)) {
    const k = o.key;
    if (flags.has(k)) { values.set(k, flags.get(k)); origins.set(k, { kind: 'flag' }); }
    else if (envs.has(k)) { values.set(k, envs.get(k)); origins.set(k, { kind: 'env', name: envName(o) }); }
    else if (files.has(k)) { values.set(k, files.get(k)); origins.set(k, { kind: 'file', file: file! }); }
    else origins.set(k, { kind: 'default' });
  }
  return { values, origins };
}

/** The effective, validated config of `command` (flags > env > file > defaults) and where each value came from. */
export function loadConfig(command: Command, argv: readonly string[], env: NodeJS.ProcessEnv = process.env, read: ReadFile = readUtf8): { config: Config; origins: Map<string, Origin> } {
  const { values, origins } = resolveValues(command, argv, env, read);
  return { config: finishConfig(command, values), origins };
}

export function originText(o: Origin, spec: OptionSpec): string {
  switch (o.kind) {
    case 'flag': return `flag --${spec.flag}`;
    case 'env': return `env ${o.name}`;
    case 'file': return `file ${o.file}`;
    case 'default': return 'default';
  }
}

function valueText(o: OptionSpec, v: unknown): string {
  if (o.type === 'duration') return formatDurationMs(v as number);
  if (o.type === 'bytes') return formatBytes(v as number);
  if (o.type === 'list') return (v as string[]).join(',');
  return String(v);
}

/**
 * `joinery config print`: the effective config of a command as a YAML config file (usable as
 * --config), one `flag: value  # origin` line per option; unset options and secrets as comments.
 */
export function formatConfig(command: Command, r: Resolved): string {
  const lines = [`# joinery ${command}: effective configuration (precedence: flags > JOINERY_* env > config file > defaults)`];
  for (const o of optionsFor(command)) {
    if (FLAG_ONLY.has(o.key) || o.key === 'config') continue;
    const origin = r.origins.get(o.key) ?? { kind: 'default' };
    const v = r.values.has(o.key) ? r.values.get(o.key) : defaultFor(o, command);
    const from = originText(origin, o);
    if (v === undefined) lines.push(`# ${o.flag}: (unset)`);
    else if (o.secret) lines.push(`# ${o.flag}: (secret, not shown)  # ${from}`);
    else {
      const t = valueText(o, v);
      const yamlValue = typeof v === 'number' || typeof v === 'boolean' ? t : JSON.stringify(t);
      lines.push(`${o.flag}: ${yamlValue}  # ${from}`);
    }
  }
  const cfgOrigin = r.origins.get('config');
  if (r.values.has('config')) lines.push(`# read from config file ${String(r.values.get('config'))} (${cfgOrigin ? originText(cfgOrigin, OPTIONS.find((x) => x.key === 'config')!) : ''})`);
  return lines.join('\n') + '\n';
}

/**
 * JOINERY_* variables the tools and tests read on purpose (tools/kafka, the Kafka client, test
 * runners, fault injection, the switches of the native and WebAssembly fast paths): not options,
 * never warned about.
 */
const OTHER_ENV = [/^JOINERY_KAFKA_/, /^JOINERY_TEST_/, /^JOINERY_FAST_SKIP$/, /^JOINERY_KAFKAJS_FAST$/, /^JOINERY_KAFKAJS_SKIP_PATCH$/, /^JOINERY_INJECT_FAULTS$/,
  /^JOINERY_CRC32C$/, /^JOINERY_JSON_WASM$/];

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** One warning per JOINERY_* variable that is no option of any command (a typo is otherwise silently ignored), naming the nearest option. */
export function unknownEnvWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = new Map(OPTIONS.filter((o) => !FLAG_ONLY.has(o.key)).map((o) => [envName(o), o]));
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('JOINERY_') || known.has(name) || OTHER_ENV.some((re) => re.test(name))) continue;
    let best: OptionSpec | null = null, bestD = Infinity;
    for (const [n, o] of known) { const d = editDistance(name, n); if (d < bestD) { bestD = d; best = o; } }
    const hint = best && bestD <= Math.max(3, Math.floor(name.length / 3)) ? `; did you mean ${envName(best)} (--${best.flag})?` : '; see joinery <command> --help for the flags (JOINERY_<FLAG>)';
    out.push(`unknown environment variable ${name} ignored${hint}`);
  }
  return out;
}
