/** Parsing of the CLI's unit-bearing values: durations (→ milliseconds), sizes (→ bytes) and times (→ epoch milliseconds). */
import { usageError } from './errors.js';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "5s", "-2m", "1.5h", "3d" or plain milliseconds ("1000", "-30"). Returns NaN when malformed. */
export function parseDurationMs(text: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return NaN;
  const value = Number(m[1]) * DURATION_MS[m[2] ?? 'ms'];
  return Math.round(value);
}

export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const abs = Math.abs(ms);
  for (const [unit, f] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (abs >= f && abs % f === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_BYTES: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "16MiB", "64k", "1048576". Binary multiples. Returns NaN when malformed. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return NaN;
  const f = SIZE_BYTES[m[2].toLowerCase()];
  if (f === undefined) return NaN;
  return Math.round(Number(m[1]) * f);
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3}GiB`;
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2}MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}KiB`;
  return `${n}`;
}

/** Wall clock in epoch milliseconds with sub-millisecond precision, comparable across threads. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A point in time (`--rebuild-from`, `--from`, `--to`): ISO-8601 or epoch milliseconds. */
export function parseTime(text: string, flag = 'rebuild-from'): number {
  const t = text.trim();
  if (/^-?\d+$/.test(t)) {
    // the range of a JavaScript date (±8.64e15 ms, ±275,000 years), which is also the router's limit on event times
    const ms = Number(t);
    if (Math.abs(ms) <= 8.64e15) return ms;
    throw usageError(`--${flag}: ${t} ms is out of range (at most ±8640000000000000 ms, i.e. ±275,000 years from 1970)`);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  throw usageError(`--${flag}: expected an ISO-8601 time (2026-01-01T00:00:00Z) or epoch milliseconds (got ${JSON.stringify(text)})`);
}
