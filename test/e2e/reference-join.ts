import * as fs from 'node:fs';
/**
 * An independent batch interval join, written from docs/architecture.md §2 without any engine code: read
 * both inputs whole, drop repeated ids per side, join with nested loops per key, add unmatched
 * rows for outer kinds. The engine's streaming output must equal this as a multiset.
 */
export type Rec = Record<string, unknown>;

/** The records of an NDJSON file (blank lines skipped). */
export function readNdjson(f: string): Rec[] {
  return fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

export interface RefOptions { keyFields: string[]; timeField: string; idField: string; lowerMs: number; upperMs: number; kind: 'inner' | 'left' | 'right' | 'full' }

export function canonical(o: { leftId: unknown; rightId: unknown; key: unknown; leftTs: unknown; rightTs: unknown; left: unknown; right: unknown }): string {
  return JSON.stringify([o.leftId, o.rightId, o.key, o.leftTs, o.rightTs, o.left, o.right]);
}

function dedup(recs: Rec[], idField: string): Rec[] {
  const seen = new Set<unknown>();
  return recs.filter((r) => (seen.has(r[idField]) ? false : (seen.add(r[idField]), true)));
}

export function referenceJoin(leftIn: Rec[], rightIn: Rec[], o: RefOptions): string[] {
  const left = dedup(leftIn, o.idField), right = dedup(rightIn, o.idField);
  const keyOf = (r: Rec) => o.keyFields.map((f) => r[f]);
  const byKey = new Map<string, Rec[]>();
  for (const r of right) {
    const k = JSON.stringify(keyOf(r));
    const list = byKey.get(k);
    if (list) list.push(r); else byKey.set(k, [r]);
  }
  const out: string[] = [];
  const rightMatched = new Set<Rec>();
  for (const l of left) {
    const key = keyOf(l);
    let matched = false;
    for (const r of byKey.get(JSON.stringify(key)) ?? []) {
      const d = (r[o.timeField] as number) - (l[o.timeField] as number);
      if (d >= o.lowerMs && d <= o.upperMs) {
        matched = true;
        rightMatched.add(r);
        out.push(canonical({ leftId: l[o.idField], rightId: r[o.idField], key, leftTs: l[o.timeField], rightTs: r[o.timeField], left: l, right: r }));
      }
    }
    if (!matched && (o.kind === 'left' || o.kind === 'full')) {
      out.push(canonical({ leftId: l[o.idField], rightId: null, key, leftTs: l[o.timeField], rightTs: null, left: l, right: null }));
    }
  }
  if (o.kind === 'right' || o.kind === 'full') {
    for (const r of right) {
      if (!rightMatched.has(r)) out.push(canonical({ leftId: null, rightId: r[o.idField], key: keyOf(r), leftTs: null, rightTs: r[o.timeField], left: null, right: r }));
    }
  }
  return out;
}

/** Compare multisets; returns a short description of the difference, or '' when equal. */
export function multisetDiff(expected: string[], actual: string[]): string {
  const count = new Map<string, number>();
  for (const e of expected) count.set(e, (count.get(e) ?? 0) + 1);
  for (const a of actual) count.set(a, (count.get(a) ?? 0) - 1);
  const missing: string[] = [], extra: string[] = [];
  for (const [k, v] of count) {
    if (v > 0) missing.push(`${v}× ${k}`);
    if (v < 0) extra.push(`${-v}× ${k}`);
  }
  if (missing.length === 0 && extra.length === 0) return '';
  return `expected ${expected.length}, got ${actual.length}; missing ${missing.length} distinct (e.g. ${missing.slice(0, 2).join(' | ').slice(0, 600)}); extra ${extra.length} distinct (e.g. ${extra.slice(0, 2).join(' | ').slice(0, 600)})`;
}
