/**
 * Structured logs on stderr for lifecycle events (start, config, sources opened, HTTP endpoint,
 * pause/resume, finished, errors). One JSON object per line when stderr is not a terminal
 * (`{"time":"…","level":"info","msg":"…",…fields}`), a short human line on a terminal. Every stderr
 * message goes through here, so a log collector reading a pipe sees nothing but JSON lines; the
 * `joinery: …` messages written for people (`say`) keep their own text on a terminal (the multi-line
 * end-of-run summary is one of them there; in JSON it is the `finished` record). The one exception
 * is `progress`: a line a terminal redraws in place, which its callers write only to a terminal.
 * No other file in src/ writes to stderr or the console (test/unit/log-path.test.ts checks).
 *
 * A module singleton (`log`): the CLI configures it once (`configureLog`), everything else imports it.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type LogFields = Record<string, unknown>;

interface Out { write(s: string): unknown; isTTY?: boolean }

export class Logger {
  private rank = RANK.info;
  private json: boolean;
  constructor(private out: Out = process.stderr, level: LogLevel = 'info', json?: boolean) {
    this.rank = RANK[level];
    this.json = json ?? !out.isTTY;
  }

  configure(o: { level?: LogLevel; json?: boolean; out?: Out }): void {
    if (o.out) { this.out = o.out; this.json = !o.out.isTTY; }
    if (o.level) this.rank = RANK[o.level];
    if (o.json !== undefined) this.json = o.json;
  }

  get level(): LogLevel { return LOG_LEVELS[this.rank]; }
  get isJson(): boolean { return this.json; }
  enabled(level: LogLevel): boolean { return RANK[level] <= this.rank; }

  error(msg: string, fields?: LogFields): void { this.emit('error', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.emit('warn', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.emit('info', msg, fields); }
  debug(msg: string, fields?: LogFields): void { this.emit('debug', msg, fields); }

  /**
   * A message written for people (`joinery: …` lines): in JSON a record like any other; on a
   * terminal the text as it reads, its code (`fields.code`) in brackets after it.
   */
  say(level: LogLevel, msg: string, fields?: LogFields): void { this.emit(level, msg, fields, true); }

  /**
   * Redraw the live progress line on a terminal (callers check that stderr is one): `line` replaces
   * what the line showed; '' clears it; `final` ends it with a newline so that it stays.
   */
  progress(line: string, final = false): void {
    this.out.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
  }

  private emit(level: LogLevel, msg: string, fields?: LogFields, plain = false): void {
    if (RANK[level] > this.rank) return;
    const time = new Date();
    if (this.json) {
      const rec: LogFields = { time: time.toISOString(), level, msg };
      if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in rec)) rec[k] = v;
      this.out.write(JSON.stringify(rec, jsonSafe) + '\n');
      return;
    }
    if (plain) {
      const code = fields?.code;
      this.out.write(`\r\x1b[K${msg}${typeof code === 'string' ? ` [${code}]` : ''}\n`);
      return;
    }
    // Terminal: clear a progress line first, then "HH:MM:SS level message k=v …".
    const hms = time.toTimeString().slice(0, 8);
    const extra = fields ? Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${human(v)}`).join(' ') : '';
    this.out.write(`\r\x1b[K${hms} ${level.padEnd(5)} ${msg}${extra ? '  ' + extra : ''}\n`);
  }
}

function jsonSafe(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (v instanceof Error) return { name: v.name, message: v.message };
  return v;
}

function human(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v, jsonSafe);
}

export const log = new Logger();

export function configureLog(o: { level?: LogLevel; json?: boolean }): void {
  log.configure(o);
}
