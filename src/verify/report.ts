/** The human report of `joinery verify` (stdout). */
import { formatBytes, formatDurationMs } from '../core/units.js';
import type { Example } from './explain.js';
import type { VerifyReport } from './index.js';

const n = (x: number) => x.toLocaleString('en-US');
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

function side(id: string | null, ts: number | null, where: number | string | undefined, name: string): string {
  if (id === null) return `${name} —`;
  return `${name} ${id} @${ts}${where !== undefined ? ` (${name} record ${where})` : ''}`;
}

function example(e: Example): string {
  const where = e.outputLine !== undefined ? `output line ${e.outputLine}: ` : e.outputRecord !== undefined ? `output record ${e.outputRecord}: ` : '';
  const times = e.expected !== undefined && e.got !== undefined ? ` [expected ${e.expected}×, got ${e.got}×]` : '';
  return `  ${where}key ${e.key}  ${side(e.leftId, e.leftTs, e.leftLine ?? e.leftRecord, 'left')}  ${side(e.rightId, e.rightTs, e.rightLine ?? e.rightRecord, 'right')}${times}` +
    (e.cause ? `\n      ${e.cause}` : '');
}

export function formatReport(r: VerifyReport): string {
  const lines: string[] = [];
  const j = r.join;
  lines.push(`joinery verify: ${r.equal ? 'EQUAL' : 'DIFFERENT'} — ${j.kind} join [${formatDurationMs(j.lowerMs)}, ${formatDurationMs(j.upperMs)}]`);
  lines.push(`  expected ${n(r.expected)} rows (${n(r.expectedPairs)} pairs, ${n(r.expectedUnmatchedLeft)} unmatched left, ${n(r.expectedUnmatchedRight)} unmatched right)`);
  lines.push(`  got      ${n(r.got)} rows in ${r.inputs.output.source}`);
  lines.push(`  missing ${n(r.missing)}, extra ${n(r.extra)}, duplicated ${n(r.duplicated)}${r.unreadable ? `, unreadable output lines ${n(r.unreadable)}` : ''}`);
  if (r.missing > 0) {
    const c = r.missingCauses;
    lines.push(`  missing by likely cause: late ${n(c.late)}, duplicate id ${n(c['duplicate-id'])}, unknown ${n(c.unknown)}`);
  }
  for (const [name, s] of [['left', r.inputs.left], ['right', r.inputs.right]] as const) {
    lines.push(`  ${name} input ${s.file}: ${n(s.records)} records, ${n(s.joinable)} joinable, ${n(s.deadLetters)} dead letters, ${n(s.redeliveries)} re-deliveries dropped, ` +
      `${n(s.lateCandidates)} more than --max-delay ${formatDurationMs(j.maxDelayMs)} behind their input`);
  }
  const late = r.inputs.left.lateCandidates + r.inputs.right.lateCandidates;
  if (late > 0) {
    lines.push(`  note: the batch join includes every event; the ${n(late)} events behind their input by more than --max-delay may have been late in the run (dropped, on --late-out), and their rows then count as missing`);
  }
  const sections: Array<[string, Example[], number]> = [['missing', r.examples.missing, r.missing], ['extra', r.examples.extra, r.extra], ['duplicated', r.examples.duplicated, r.duplicated]];
  for (const [name, list, total] of sections) {
    if (list.length === 0) continue;
    lines.push(`${name} (${list.length < total ? `first ${list.length} of ${n(total)}` : n(total)}):`);
    for (const e of list) lines.push(example(e));
  }
  if (r.examples.unreadable.length > 0) {
    lines.push(`unreadable output lines (${r.examples.unreadable.length < r.unreadable ? `first ${r.examples.unreadable.length} of ${n(r.unreadable)}` : n(r.unreadable)}):`);
    for (const u of r.examples.unreadable) lines.push(`  output ${u.outputLine !== undefined ? `line ${u.outputLine}` : `record ${u.outputRecord}`}: ${u.reason}`);
  }
  const events = r.inputs.left.records + r.inputs.right.records;
  const sp = r.spill;
  lines.push(`verified ${n(events)} input events and ${n(r.got)} output rows in ${(r.elapsedMs / 1000).toFixed(1)} s: ${n(r.inputEventsPerSec)} input events/s, ${r.cpuUsPerEvent} µs CPU per input event` +
    ` (${sp.threads} thread${sp.threads === 1 ? '' : 's'}, ${sp.partitions} partitions, ${sp.spilledBytes > 0 ? `${mib(sp.spilledBytes)} spilled` : 'nothing spilled'} under --max-memory ${formatBytes(sp.maxMemoryBytes)})`);
  return lines.join('\n') + '\n';
}
