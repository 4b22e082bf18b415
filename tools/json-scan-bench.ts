/**
 * Micro-benchmark of the NDJSON key/time/id extractor (src/codec/json.ts, json-scan.ts): CPU ns
 * per record over the records of NDJSON files, optionally against another build's extractor in
 * the same process, rounds interleaved, medians printed.
 *
 *   node dist/tools/json-scan-bench.js [--files A.ndjson,B.ndjson] [--rounds N] [--passes P]
 *       [--key profileId,titleId] [--time ts] [--id eventId] [--baseline OTHER/dist/src/codec/json.js]
 *
 * The files default to a `joinery gen --events 200000` pair (written to a temporary directory when
 * not given). A bare loop over the same bytes is measured too, as the floor the scanner is compared
 * with. Both extractors must return the same key, id, time and error for every record.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { JsonExtractor, type Extractor } from '../src/codec/json.js';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log('node dist/tools/json-scan-bench.js [--files A,B] [--rounds 7] [--passes 3] [--key F1,F2] [--time F] [--id F] [--baseline PATH/dist/src/codec/json.js]');
  process.exit(0);
}
const opt = (name: string, def?: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const rounds = Number(opt('rounds', '7')), passes = Number(opt('passes', '3'));
const key = opt('key', 'profileId,titleId')!.split(','), time = opt('time', 'ts')!, id = opt('id', 'eventId')!;
const baseline = opt('baseline');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

let files = opt('files')?.split(',');
if (!files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'json-scan-bench-'));
  files = [path.join(dir, 'L.ndjson'), path.join(dir, 'R.ndjson')];
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'joinery.js');
  execFileSync(process.execPath, [bin, 'gen', '--events', '200000', '--left-out', files[0], '--right-out', files[1], '--log-level', 'error']);
}

// all records of all files in one buffer, as the router sees them (line bytes without the newline)
const data = Buffer.concat(files.map((f) => fs.readFileSync(f)));
const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
const starts: number[] = [], ends: number[] = [];
for (let p = 0; p < bytes.length;) {
  let nl = data.indexOf(10, p);
  if (nl < 0) nl = bytes.length;
  if (nl > p) { starts.push(p); ends.push(nl); }
  p = nl + 1;
}
const n = starts.length;
const st = Int32Array.from(starts), en = Int32Array.from(ends);
console.log(`${n.toLocaleString('en-US')} records, ${(bytes.length / n).toFixed(1)} bytes each on average; key ${key.join(',')}, time ${time}, id ${id}; ${rounds} rounds × ${passes} passes, interleaved`);

interface Variant { name: string; ex: Extractor | null; ns: number[] }
const variants: Variant[] = [{ name: 'this build', ex: new JsonExtractor(key, time, id), ns: [] }];
if (baseline) {
  const mod = await import(pathToFileURL(path.resolve(baseline)).href) as { JsonExtractor: new (k: string[], t: string, i: string) => Extractor };
  variants.push({ name: `baseline ${baseline}`, ex: new mod.JsonExtractor(key, time, id), ns: [] });
}
variants.push({ name: 'bare loop over the bytes', ex: null, ns: [] });

const out = new Uint8Array(64 * 1024);
let sink = 0;

function pass(ex: Extractor): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (ex.extract(bytes, st[i], en[i], out)) { ok++; sink += ex.ts + ex.keyLen; }
  return ok;
}

function bare(): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let p = st[i], e = en[i]; p < e; p++) s += bytes[p];
  return s;
}

// same outcome for every record before timing anything
if (baseline) {
  const [a, b] = [variants[0].ex!, variants[1].ex!];
  const outB = new Uint8Array(64 * 1024);
  for (let i = 0; i < n; i++) {
    const ra = a.extract(bytes, st[i], en[i], out), rb = b.extract(bytes, st[i], en[i], outB);
    const same = ra === rb && (ra ? a.ts === b.ts && a.keyLen === b.keyLen && a.idLen === b.idLen
      && Buffer.compare(out.subarray(0, a.keyLen + a.idLen), outB.subarray(0, b.keyLen + b.idLen)) === 0 : a.error === b.error);
    if (!same) throw new Error(`record ${i} differs between the builds: ${data.toString('utf8', st[i], en[i])}`);
  }
}

for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    const c0 = process.cpuUsage();
    for (let p = 0; p < passes; p++) sink += v.ex ? pass(v.ex) : bare();
    const c = process.cpuUsage(c0);
    v.ns.push(((c.user + c.system) * 1000) / (n * passes));
  }
}
for (const v of variants) console.log(`${v.name.padEnd(40)} ${median(v.ns).toFixed(0).padStart(5)} ns CPU per record (median; runs ${v.ns.map((x) => x.toFixed(0)).join(' ')})`);
if (sink === 0.5) console.log(sink);
