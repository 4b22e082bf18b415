/**
 * What the Kafka tests share: the broker address test/run-tests.ts hands them, unique names, a
 * wait for open transactions to settle, and the tools/kafka scripts for tests that run a broker of
 * their own (to stop and restart it).
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import * as fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { topicOffsets } from '../../src/kafka/kafkajs/index.js';
import { BIN, joinery } from '../e2e/cli.js';
import { readNdjson, referenceJoin, type Rec, type RefOptions } from '../e2e/reference-join.js';

export function brokers(): string[] {
  const b = process.env.JOINERY_TEST_KAFKA?.trim();
  assert.ok(b, 'JOINERY_TEST_KAFKA is not set: the Kafka tests need a real broker; run them through `npm test` ' +
    '(test/run-tests.ts starts one with tools/kafka/start) or set JOINERY_TEST_KAFKA=HOST:PORT');
  return [b];
}

export const broker = (): string => brokers()[0];

let seq = 0;
export function uniq(what: string): string {
  return `jt-${what}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until no transaction is open on the topic (last stable offset = high watermark): the
 * coordinator writes a transaction's commit/abort markers just after EndTxn returns.
 */
export async function settled(t: string, bootstrap: readonly string[] = brokers(), timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [lso, hw] = await Promise.all([topicOffsets(bootstrap, t), topicOffsets(bootstrap, t, { isolation: 'read_uncommitted' })]);
    if (lso.every((o, i) => o.high === hw[i].high)) return;
    assert.ok(Date.now() < deadline, `${t}: a transaction is still open after ${timeoutMs / 1000} s (LSO ${JSON.stringify(lso)}, HW ${JSON.stringify(hw)})`);
    await sleep(20);
  }
}

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..'); // from dist/test/kafka
const TOOLS = path.join(ROOT, 'tools', 'kafka');

export interface ToolRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run a tools/kafka script (start, stop, restart) with the environment of a test's own broker. */
export function kafkaTool(env: NodeJS.ProcessEnv, name: 'start' | 'stop' | 'restart', args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = spawn(path.join(TOOLS, name), args, { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', (e) => resolve({ code: 127, signal: null, stdout, stderr: `${stderr}\n${e.message}` }));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A broker of a test's own (to stop and restart it): state and data under `dir`, never the shared one. */
export function ownBroker(dir: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, JOINERY_KAFKA_STATE: path.join(dir, 'kafka.state'), JOINERY_KAFKA_DATA: path.join(dir, 'kafka-data') };
  for (const k of ['JOINERY_KAFKA_PORT', 'JOINERY_KAFKA_CONTROLLER_PORT', 'JOINERY_KAFKA_KEEP']) delete env[k];
  const tool = (name: 'start' | 'stop' | 'restart', args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<ToolRun> => kafkaTool(env, name, args, extraEnv);
  /** Start it; returns its bootstrap address (fails the test, with the script's stderr, if it does not start). */
  const start = async (): Promise<string> => {
    const s = await tool('start');
    const addr = s.stdout.trim().split('\n').pop()?.trim() ?? '';
    assert.ok(s.code === 0 && /^127\.0\.0\.1:\d+$/.test(addr),
      `tools/kafka/start failed for this test's own broker (exit ${s.code}); Java 17+ and Maven are needed (tools/kafka/README.md):\n${s.stderr.trim().split('\n').slice(-30).join('\n')}`);
    return addr;
  };
  /** Stop it; when the test failed keep its data dir and log, and say where. */
  const stop = async (failed: boolean, label: string): Promise<void> => {
    const st = await tool('stop', [], failed ? { JOINERY_KAFKA_KEEP: '1' } : {});
    if (st.code !== 0) process.stderr.write(`${label} tools/kafka/stop: exit ${st.code}\n${st.stderr}\n`);
    if (failed) process.stderr.write(`${label} failed: this test's broker data dir and log are kept in ${dir} (kafka-data/kafka.log)\n`);
  };
  return { env, tool, start, stop };
}

/**
 * Inside a describe(): this file's own broker, started before its tests and stopped after them;
 * `dir` is removed once the tests set `failed = false`, else kept (with the broker's data and log).
 */
export function useOwnBroker(dir: string, label: string) {
  const own = ownBroker(dir);
  const state = { bootstrap: '', failed: true, tool: own.tool };
  before(async () => { state.bootstrap = await own.start(); }, { timeout: 120_000 });
  after(async () => {
    await own.stop(state.failed, label);
    if (!state.failed) fs.rmSync(dir, { recursive: true, force: true });
  });
  return state;
}

export const tail = (s: string, n = 30): string => s.trim().split('\n').slice(-n).join('\n');

/** One `joinery` CLI process of a Kafka test: stdout and stderr kept, its exit awaited. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  readonly startedAt = Date.now();

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (d: Buffer) => { this.stdout += d; });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => { this.code = code; this.signal = signal; resolve(); }));
  }

  get running(): boolean { return this.code === null && this.signal === null; }

  /** Poll until `ok()` (true); false when the process exits first; fails when the time runs out. */
  async until(what: string, ok: () => boolean, timeoutMs: number, pollMs = 20): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (!this.running) return false;
      assert.ok(Date.now() < deadline, `no ${what} within ${timeoutMs / 1000} s; its stderr:\n${tail(this.stderr)}`);
      await sleep(pollMs);
    }
    return true;
  }
}

/** A `joinery run --member NAME` process of a group test: waits that fail with its stderr. */
export class MemberProcess extends CliProcess {
  constructor(readonly name: string, args: string[]) {
    super(args);
  }

  /** Poll until `ok()`; fails if the member exits first or the time runs out. */
  async waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
    const reached = await this.until(`${what} from member ${this.name}`, ok, timeoutMs, 50);
    assert.ok(reached, `member ${this.name} exited (code ${this.code}, signal ${this.signal}) before ${what}; its stderr:\n${tail(this.stderr)}`);
  }

  /** Wait for the exit; SIGKILL and fail after `timeoutMs`. */
  async exit(timeoutMs: number): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => { t = setTimeout(() => r(true), timeoutMs); })]);
    clearTimeout(t);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await this.exited;
      assert.fail(`member ${this.name} did not exit within ${timeoutMs / 1000} s (killed); its stderr:\n${tail(this.stderr)}`);
    }
  }
}

/** What a test joining generated input gets from joinScaffold; tests clear `failed` when they pass. */
export interface JoinScaffold { left: Rec[]; right: Rec[]; expected: string[]; failed: boolean }

/**
 * The scaffolding of a describe block joining generated input: before its tests, the two NDJSON
 * files `gen` writes into `dir` and their batch join; after them, every process still running
 * killed and `dir` removed, or kept (and named on stderr) when a test failed.
 */
export function joinScaffold(label: string, dir: string, gen: string[], ref: RefOptions, processes: () => Iterable<CliProcess | null>): JoinScaffold {
  const s: JoinScaffold = { left: [], right: [], expected: [], failed: true };
  before(async () => {
    const lf = path.join(dir, 'l.ndjson'), rf = path.join(dir, 'r.ndjson');
    const g = await joinery(['gen', ...gen, '--format', 'json', '--left-out', lf, '--right-out', rf]);
    assert.equal(g.code, 0, g.stderr);
    s.left = readNdjson(lf); s.right = readNdjson(rf);
    s.expected = referenceJoin(s.left, s.right, ref);
  }, { timeout: 120_000 });
  after(async () => {
    for (const p of processes()) if (p?.running) { p.child.kill('SIGKILL'); await p.exited; }
    // JOINERY_TEST_KEEP=1 keeps it whatever the outcome (to look at a run that failed before a later test passed)
    if (s.failed || process.env.JOINERY_TEST_KEEP === '1') process.stderr.write(`[${label}] kept ${dir} for a look\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

/** Records keyed by the join key in the engine's canonical text (`[7,42]`, as `joinery gen --brokers` keys them): co-partitioned. */
export const keyedMessages = (recs: Rec[]) => recs.map((r) => ({ key: `[${r.profileId},${r.titleId}]`, value: JSON.stringify(r) }));

/** Split a side, in arrival order, at the first record past each time (the parts stay in arrival order). */
export function phases(recs: Rec[], cuts: number[]): Rec[][] {
  const out: Rec[][] = [];
  let from = 0;
  for (const c of cuts) {
    let i = recs.findIndex((r, j) => j >= from && (r.ts as number) > c);
    if (i < 0) i = recs.length;
    out.push(recs.slice(from, i));
    from = i;
  }
  out.push(recs.slice(from));
  return out;
}
