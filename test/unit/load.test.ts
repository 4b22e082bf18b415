import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatConfig, loadConfig, resolveValues } from '../../src/config/load.js';
import { JoineryError } from '../../src/core/errors.js';
import { joinery, lastJson } from '../e2e/cli.js';

const base = ['--left', 'file:a.ndjson', '--right', 'file:b.ndjson'];
const files = (m: Record<string, string>) => (f: string) => { if (!(f in m)) throw new Error(`ENOENT: ${f}`); return m[f]; };

function fails(fn: () => unknown, code: string, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof JoineryError && e.code === code && e.exitCode === 2 && re.test(e.message));
}

test('precedence: flags > JOINERY_* env > config file > defaults, and each value says where it came from', () => {
  const yaml = 'workers: 3\nmax-delay: 7s\nupper: 5m\nidle-timeout: 1m\nkey: [a, b]\nstate: memory\n';
  const env = { JOINERY_WORKERS: '5', JOINERY_UPPER: '2m', JOINERY_CONFIG: 'c.yaml', JOINERY_TEST_KAFKA: 'h:1', JOINERY_SOMETHING_ELSE: 'x' };
  const { config, origins } = loadConfig('run', [...base, '--upper', '1m'], env, files({ 'c.yaml': yaml }));
  assert.equal(config.upperMs, 60_000);          // flag beats env and file
  assert.equal(config.workers, 5);               // env beats file
  assert.equal(config.maxDelayMs, 7_000);        // file beats default
  assert.equal(config.idleTimeoutMs, 60_000);
  assert.deepEqual(config.key, ['a', 'b']);
  assert.equal(config.state, 'memory');
  assert.equal(config.lowerMs, 0);               // default
  assert.deepEqual(origins.get('upperMs'), { kind: 'flag' });
  assert.deepEqual(origins.get('workers'), { kind: 'env', name: 'JOINERY_WORKERS' });
  assert.deepEqual(origins.get('maxDelayMs'), { kind: 'file', file: 'c.yaml' });
  assert.deepEqual(origins.get('lowerMs'), { kind: 'default' });
});

test('JSON config files, --config as a flag, and keys of other commands are skipped', () => {
  const json = JSON.stringify({ workers: 4, 'max-delay': 250, partitions: 9, 'left-out': 'x', json: true });
  const { config } = loadConfig('run', [...base, '--config', 'c.json'], {}, files({ 'c.json': json }));
  assert.equal(config.workers, 4);
  assert.equal(config.maxDelayMs, 250); // plain numbers are milliseconds, as on the command line
  assert.equal(config.json, true);
  assert.equal((config as unknown as Record<string, unknown>).partitions, undefined);
});

test('config errors name the file, the key and what to do (exit 2)', () => {
  const load = (text: string, name = 'c.yaml') => () => loadConfig('run', [...base, '--config', name], {}, files({ [name]: text }));
  fails(load('bogus: 1\n'), 'E_CONFIG', /c\.yaml: unknown key "bogus"/);
  fails(load('maxDelayMs: 5\n'), 'E_CONFIG', /write it as the flag name "max-delay"/);
  fails(load('workers: two\n'), 'E_CONFIG', /c\.yaml: workers: expects a whole number/);
  fails(load('workers: [1\n'), 'E_CONFIG', /not valid YAML/);
  fails(load('{"workers": }', 'c.json'), 'E_CONFIG', /not valid JSON/);
  fails(load('- a\n- b\n'), 'E_CONFIG', /mapping of flag names/);
  fails(load('help: true\n'), 'E_CONFIG', /cannot be set in a config file/);
  fails(() => loadConfig('run', [...base, '--config', 'missing.yaml'], {}, files({})), 'E_CONFIG', /cannot read config file missing\.yaml/);
  fails(() => loadConfig('run', base, { JOINERY_WORKERS: '0' }, files({})), 'E_USAGE', /JOINERY_WORKERS: must be between 1 and 64/);
  // combinations are validated after merging
  fails(() => loadConfig('run', [...base, '--lower', '5m'], { JOINERY_UPPER: '1m' }, files({})), 'E_USAGE', /--lower .* must not exceed --upper/);
});

test('--http beyond loopback needs a token from somewhere; the token is never printed', () => {
  fails(() => loadConfig('run', [...base, '--http', '0.0.0.0:9090'], {}, files({})), 'E_USAGE', /--http-token/);
  const { config } = loadConfig('run', [...base, '--http', '0.0.0.0:9090'], { JOINERY_HTTP_TOKEN: 'abc' }, files({}));
  assert.equal(config.httpToken, 'abc');
  assert.equal(loadConfig('run', [...base, '--http', '9090'], {}, files({})).config.http, '9090');
  const r = resolveValues('run', [...base, '--http', '0.0.0.0:9090'], { JOINERY_HTTP_TOKEN: 'abc' }, files({}));
  const text = formatConfig('run', r);
  assert.doesNotMatch(text, /abc/);
  assert.match(text, /^# http-token: \(secret, not shown\)  # env JOINERY_HTTP_TOKEN$/m);
  fails(() => loadConfig('run', [...base, '--http', 'nowhere'], {}, files({})), 'E_USAGE', /--http: expects HOST:PORT/);
});

test('joinery config print and a run configured by file + env + flags (CLI)', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-config-'));
  try {
    const L = path.join(tmp, 'l.ndjson'), R = path.join(tmp, 'r.ndjson'), cfgFile = path.join(tmp, 'joinery.yaml');
    fs.writeFileSync(L, '{"profileId":1,"titleId":2,"ts":1000,"eventId":"i1"}\n');
    fs.writeFileSync(R, '{"profileId":1,"titleId":2,"ts":2000,"eventId":"p1"}\n');
    fs.writeFileSync(cfgFile, `# a node's config\nleft: file:${L}\nright: file:${R}\nworkers: 3\nmax-delay: 7s\nout: null\nstate: memory\n`);
    const env = { ...process.env, JOINERY_WORKERS: '4', JOINERY_CONFIG: cfgFile };
    const p = await joinery(['config', 'print', '--max-delay', '9s'], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^workers: 4  # env JOINERY_WORKERS$/m);
    assert.match(p.stdout, /^max-delay: 9s  # flag --max-delay$/m);
    assert.match(p.stdout, new RegExp(`^state: "memory"  # file ${cfgFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    assert.match(p.stdout, /^upper: 10m  # default$/m);
    assert.match(p.stdout, /^# late-out: \(unset\)$/m);
    // the printed config is itself a valid config file
    fs.writeFileSync(path.join(tmp, 'printed.yaml'), p.stdout);
    const again = await joinery(['config', 'print', '--config', path.join(tmp, 'printed.yaml')], { env: { ...process.env } });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^workers: 4  # file /m);

    const r = await joinery(['run', '--json', '--lower', '0'], { env });
    assert.equal(r.code, 0, r.stderr);
    const s = lastJson(r.stdout) as { workers: number; pairs: number; state: string };
    assert.equal(s.workers, 4);
    assert.equal(s.state, 'memory');
    assert.equal(s.pairs, 1);

    const bad = await joinery(['config', 'print', '--workers', '0'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--workers: must be between 1 and 64/);
    const invalid = await joinery(['config', 'print', '--lower', '1h'], { env });
    assert.equal(invalid.code, 2, 'the listing is printed, then the validation error');
    assert.match(invalid.stdout, /^lower: 1h  # flag --lower$/m);
    assert.match(invalid.stderr, /must not exceed --upper/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
