/**
 * `joinery verify`: recompute the interval join of two input files as a batch and compare it with
 * a joined output as a multiset of rows (key, leftId, leftTs, rightId, rightTs; unmatched rows of
 * outer kinds with null for the absent side). Exit 0 when equal, 1 when not.
 */
import * as fs from 'node:fs';
import { endpointsOf, filePath } from '../config/endpoints.js';
import type { Config } from '../config/schema.js';
import { JoineryError } from '../core/errors.js';
import { batchJoin, checkCapacity, Grouped } from './batch.js';
import { Explainer, whereFields, type Example, type MissingCause } from './explain.js';
import { readInput, type SideEvents } from './inputs.js';
import { KeyTable } from './keys.js';
import { readOutput } from './output.js';
import { Progress } from './progress.js';
import { RowCounts } from './rows.js';
import { formatReport } from './report.js';

export const EXIT_DIFFERENT = 1;

export interface InputReport { file: string; records: number; deadLetters: number; redeliveries: number; lateCandidates: number; joinable: number }

export interface VerifyReport {
  equal: boolean;
  join: { kind: string; lowerMs: number; upperMs: number; maxDelayMs: number };
  expected: number; got: number; missing: number; extra: number; duplicated: number; unreadable: number;
  expectedPairs: number; expectedUnmatchedLeft: number; expectedUnmatchedRight: number;
  missingCauses: Record<MissingCause, number>;
  inputs: { left: InputReport; right: InputReport; output: { source: string; rows: number } };
  examples: { missing: Example[]; extra: Example[]; duplicated: Example[]; unreadable: Array<{ outputLine?: number; outputRecord?: string; reason: string }> };
  elapsedMs: number; inputEventsPerSec: number; cpuUsPerEvent: number;
  /** Wall time per phase (reading the left input, the right, joining, reading the output, comparing). */
  phasesMs: Record<string, number>;
}

function fileOf(f: string, flag: string): string {
  try {
    fs.accessSync(f, fs.constants.R_OK);
  } catch (e) {
    throw new JoineryError('E_INPUT', `cannot read --${flag} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return f;
}

function inputReport(ev: SideEvents, g: Grouped): InputReport {
  return { file: ev.path, records: ev.read, deadLetters: ev.dead, redeliveries: g.redeliveries, lateCandidates: ev.lateCandidates, joinable: ev.n - g.redeliveries };
}

export async function verify(cfg: Config, progressOn: boolean): Promise<VerifyReport> {
  const ep = endpointsOf(cfg);
  const output = filePath(ep.output);
  const files = { left: fileOf(filePath(ep.left)!, 'left'), right: fileOf(filePath(ep.right)!, 'right'), output: output === null ? undefined : fileOf(output, 'output') };
  const format = cfg.format ?? 'json';
  const cpu0 = process.cpuUsage();
  const progress = new Progress(progressOn);
  const keys = new KeyTable();
  const fields = (side: 0 | 1) => ({
    key: (side === 0 ? cfg.leftKey : cfg.rightKey) ?? cfg.key,
    time: (side === 0 ? cfg.leftTime : cfg.rightTime) ?? cfg.time,
    id: (side === 0 ? cfg.leftId : cfg.rightId) ?? cfg.id,
  });
  progress.setPhase('readLeft');
  const leftEv = await readInput(0, files.left, format, fields(0), keys, cfg.maxDelayMs, progress);
  progress.setPhase('readRight');
  const rightEv = await readInput(1, files.right, format, fields(1), keys, cfg.maxDelayMs, progress);
  progress.setPhase('join');
  checkCapacity(leftEv); checkCapacity(rightEv);
  const left = new Grouped(leftEv, keys.size), right = new Grouped(rightEv, keys.size);
  const counts = new RowCounts();
  const exp = batchJoin(keys, left, right, cfg.join, cfg.lowerMs, cfg.upperMs, counts);
  progress.setPhase('readOutput');
  const out = await readOutput(cfg, files.output, keys, [left, right], counts, progress);
  progress.setPhase('compare');
  const explain = new Explainer(keys, [left, right], cfg.maxDelayMs, cfg.lowerMs, cfg.upperMs);
  let missing = 0;
  const missingExamples: Example[] = [];
  const missingCauses: Record<MissingCause, number> = { late: 0, 'duplicate-id': 0, unknown: 0 };
  counts.forEach((code, expected, got) => {
    if (got >= expected) return;
    missing += expected - got;
    const { ex, cause } = explain.missing(code, expected, got);
    missingCauses[cause] += expected - got;
    if (missingExamples.length < cfg.examples) missingExamples.push(ex);
  });
  progress.done();
  const elapsedMs = progress.elapsedMs();
  const cpu = process.cpuUsage(cpu0);
  const inputEvents = leftEv.read + rightEv.read;
  return {
    equal: missing === 0 && out.extra === 0 && out.duplicated === 0 && out.unreadable === 0,
    join: { kind: cfg.join, lowerMs: cfg.lowerMs, upperMs: cfg.upperMs, maxDelayMs: cfg.maxDelayMs },
    expected: exp.rows, got: out.rows, missing, extra: out.extra, duplicated: out.duplicated, unreadable: out.unreadable,
    expectedPairs: exp.pairs, expectedUnmatchedLeft: exp.unmatchedLeft, expectedUnmatchedRight: exp.unmatchedRight,
    missingCauses,
    inputs: { left: inputReport(leftEv, left), right: inputReport(rightEv, right), output: { source: cfg.output!, rows: out.rows } },
    examples: {
      missing: missingExamples,
      extra: out.extraExamples.map((r) => explain.extra(r)),
      duplicated: out.duplicatedExamples.map((r) => explain.duplicated(r)),
      unreadable: out.unreadableExamples.map((u) => ({ ...whereFields(u.where), reason: u.reason })),
    },
    elapsedMs: Math.round(elapsedMs),
    inputEventsPerSec: Math.round(inputEvents / (elapsedMs / 1000)),
    cpuUsPerEvent: inputEvents === 0 ? 0 : Number(((cpu.user + cpu.system) / inputEvents).toFixed(2)),
    phasesMs: progress.phasesMs,
  };
}

/** The command: report on stdout (text, or one JSON object with --json), exit 0 equal / 1 different. */
export async function runVerify(cfg: Config, progressOn: boolean): Promise<number> {
  const r = await verify(cfg, progressOn);
  process.stdout.write(cfg.json ? JSON.stringify(r) + '\n' : formatReport(r));
  return r.equal ? 0 : EXIT_DIFFERENT;
}
