/**
 * Two input streams whose event times do not line up, for the alignment tests (--max-drift): each
 * side spreads `count` records evenly over its own event-time range, with up to `disorderMs` of
 * disorder, keys from a small space so that pairs exist.
 */
import type { Rec } from './reference-join.js';

export const T0 = Date.UTC(2026, 0, 1);
export const HOUR = 3_600_000;

export interface SideSpec { count: number; fromMs: number; toMs: number; prefix: string }

export function skewedSide(s: SideSpec, seed: number, disorderMs = 2_000): Rec[] {
  let x = seed >>> 0;
  const rnd = (): number => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
  const out: Rec[] = [];
  const step = (s.toMs - s.fromMs) / s.count;
  for (let i = 0; i < s.count; i++) {
    const ts = Math.round(s.fromMs + i * step + rnd() * step);
    out.push({ eventId: `${s.prefix}-${i}`, profileId: 1 + Math.floor(rnd() * 400), titleId: 1 + Math.floor(rnd() * 25), ts, arrive: ts + rnd() * disorderMs });
  }
  out.sort((a, b) => (a.arrive as number) - (b.arrive as number));
  for (const r of out) delete r.arrive;
  return out;
}

export const ndjson = (recs: Rec[]): string => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';

/**
 * The most records of `all` whose event times fall within any span of `spanMs`: what the join
 * buffer may hold when it holds that much event time.
 */
export function mostWithin(all: Rec[], spanMs: number): number {
  const ts = all.map((r) => r.ts as number).sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; j < ts.length; j++) {
    while (ts[j] - ts[i] > spanMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}
