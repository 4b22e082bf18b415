/**
 * Test orchestrator behind `npm test` (`tsc -p . && node dist/test/run-tests.js`):
 *
 * 1. A Kafka broker: JOINERY_TEST_KAFKA=HOST:PORT if given (used as is, never stopped), else one
 *    started with tools/kafka/start — its own state file per run (JOINERY_KAFKA_STATE, unless set),
 *    so concurrent runs do not share or stop each other's broker. A broker that does not start is a
 *    failure (exit 1, with the broker log's path): Kafka tests are never skipped.
 * 2. `node --test --test-concurrency=1 <every dist/test/**\/*.test.js>` with inherited stdio and
 *    JOINERY_TEST_KAFKA in its environment. Arguments filter the files (substring of the path),
 *    e.g. `node dist/test/run-tests.js kafka/`.
 * 3. tools/kafka/stop, always (on failure the data dir with kafka.log is kept and its path printed).
 * Exits with the test runner's exit code.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));      // dist/test
const root = path.resolve(here, '..', '..');
const testDir = here;
const startScript = path.join(root, 'tools', 'kafka', 'start');
const stopScript = path.join(root, 'tools', 'kafka', 'stop');

function say(line: string): void {
  process.stderr.write(`[run-tests] ${line}\n`);
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.isFile() && e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

interface Started { bootstrap: string; logPath: string | null }

/** Run tools/kafka/start; its last stdout line is the bootstrap address. stderr is shown and scanned for the log path. */
function startBroker(env: NodeJS.ProcessEnv): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(startScript, [], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); process.stderr.write(d); });
    child.on('error', (e) => reject(Object.assign(e, { logPath: logPathIn(err) })));
    child.on('close', (code) => {
      const logPath = logPathIn(err);
      const last = out.trim().split('\n').pop()?.trim() ?? '';
      if (code === 0 && /^[^\s:]+:\d+$/.test(last)) resolve({ bootstrap: last, logPath });
      else reject(Object.assign(new Error(`tools/kafka/start exited with ${code}${last ? ` (last stdout line: ${JSON.stringify(last)})` : ''}`), { logPath }));
    });
  });
}

function logPathIn(stderr: string): string | null {
  const m = /log file: (\S+)/.exec(stderr) ?? /log: (\S+)/.exec(stderr);
  return m ? m[1] : null;
}

function stopBroker(env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(stopScript, [], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (e) => { say(`tools/kafka/stop failed: ${e.message}`); resolve(1); });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

function runTests(files: string[], env: NodeJS.ProcessEnv, onChild: (pid: number | undefined) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: root, env, stdio: 'inherit' });
    onChild(child.pid);
    child.on('error', (e) => { say(`cannot run node --test: ${e.message}`); resolve(1); });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  let files = findTests(testDir);
  if (filters.length > 0) files = files.filter((f) => filters.some((x) => path.relative(root, f).includes(x)));
  if (files.length === 0) {
    say(`no test files found under ${path.relative(root, testDir)}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
    return 1;
  }

  const env: NodeJS.ProcessEnv = { ...process.env };
  const given = env.JOINERY_TEST_KAFKA?.trim();
  let owned = false;
  let ownState = false;
  let logPath: string | null = null;
  if (given) {
    say(`using the Kafka broker given in JOINERY_TEST_KAFKA=${given}`);
  } else {
    if (!env.JOINERY_KAFKA_STATE) {
      env.JOINERY_KAFKA_STATE = path.join(os.tmpdir(), `joinery-kafka-test-${process.pid}.state`);
      ownState = true;
    }
    say(`starting a Kafka broker for the tests (tools/kafka/start, state ${env.JOINERY_KAFKA_STATE})`);
    try {
      const s = await startBroker(env);
      env.JOINERY_TEST_KAFKA = s.bootstrap;
      logPath = s.logPath;
      owned = true;
      say(`Kafka broker ready at ${s.bootstrap}${logPath ? ` (log ${logPath})` : ''}`);
    } catch (e) {
      const lp = (e as { logPath?: string | null }).logPath;
      say(`FAILED to start the Kafka broker: ${(e as Error).message}`);
      say(`broker log: ${lp ?? '(no log path reported; see the output above)'}`);
      say('the Kafka tests need a broker (Java 17+ and Maven, see tools/kafka/README.md); they are not skipped');
      await stopBroker(env); // clean up a half-started JVM, if any
      if (ownState) fs.rmSync(`${env.JOINERY_KAFKA_STATE}.lock`, { force: true });
      return 1;
    }
  }

  let childPid: number | undefined;
  const forward = (sig: NodeJS.Signals) => () => {
    if (childPid) try { process.kill(childPid, sig); } catch { /* already gone */ }
  };
  const onInt = forward('SIGINT'), onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  let code = 1;
  try {
    code = await runTests(files, env, (pid) => { childPid = pid; });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (owned) {
      if (code !== 0) {
        env.JOINERY_KAFKA_KEEP = '1';
        if (logPath) say(`tests failed; the broker log is kept at ${logPath}`);
      }
      await stopBroker(env);
      if (ownState) fs.rmSync(`${env.JOINERY_KAFKA_STATE}.lock`, { force: true });
    }
  }
  return code;
}

main().then((code) => process.exit(code), (e) => {
  say(`orchestrator error: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
