import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinery, lastJson } from './cli.js';
import { request, sleep, startNode, until } from './node.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-http-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A paced generator run: 10,000 events at 5,000 events/s of wall time (event time follows the pace).
const GEN = (name: string, rate = 5000) => ['run', '--left', 'gen:', '--right', 'gen:', '--rate', String(rate), '--events', '10000', '--seed', '11',
  '--gen-profiles', '300', '--gen-titles', '40', '--gen-play-delay', '500ms', '--upper', '2s', '--idle-timeout', '300ms',
  '--state-dir', path.join(tmp, `state-${name}`), '--out', `file:${path.join(tmp, `${name}.ndjson`)}`, '--json'];

const pairsOf = (name: string) => fs.readFileSync(path.join(tmp, `${name}.ndjson`), 'utf8').split('\n').filter(Boolean)
  .map((l) => { const o = JSON.parse(l); return `${o.leftId}|${o.rightId}`; }).sort();

const eventsIn = (s: any) => s.counters.eventsIn.left + s.counters.eventsIn.right;

test('pause/resume: input stops while paused, state and positions stay, nothing is lost or late across it; /state, /status, /metrics answer', async (t) => {
  const ref = await joinery(GEN('ref'));
  assert.equal(ref.code, 0, ref.stderr);
  const refSummary = lastJson(ref.stdout);

  const node = startNode([...GEN('paused'), '--http', '127.0.0.1:0']);
  t.after(() => { node.child.kill(); });
  const url = await node.url;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  await until('input to flow', () => request(`${url}/status`), (r) => r.status === 200 && r.json.phase === 'running' && eventsIn(r.json) > 2000);

  const p = await request(`${url}/pause`, { method: 'POST' });
  assert.equal(p.status, 200, p.body);
  assert.deepEqual(p.json, { paused: true, parked: true });
  const s1 = (await request(`${url}/status`)).json;
  assert.equal(s1.paused, true);
  await sleep(900); // three idle timeouts: a paused partition must not turn idle
  const s2 = (await request(`${url}/status`)).json;
  assert.equal(eventsIn(s2), eventsIn(s1), 'no input is read while paused');
  assert.ok(eventsIn(s2) < 10_000, 'paused before the end of input');
  assert.equal(s2.watermarkMs, s1.watermarkMs, 'the watermark stands still while paused');
  assert.ok(s2.partitions.every((x: any) => x.idle === false), 'no partition idles because of the pause');
  assert.equal(s2.workers.length, 2);
  assert.deepEqual(s2.workers.map((w: any) => w.keyGroups), [[0, 2048], [2048, 4096]]);
  assert.ok(s2.workers.some((w: any) => w.stateEntries > 0), 'state is kept while paused');
  assert.equal(s2.lastCheckpoint, null);

  // /metrics: the Prometheus text format, with the engine's figures.
  const m = await request(`${url}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.type, /^text\/plain/);
  for (const line of m.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?([0-9.e+-]+|NaN|\+Inf|-Inf)$/, line);
  }
  const metric = (re: RegExp) => Number(re.exec(m.body)?.[1]);
  assert.equal(metric(/^joinery_events_in_total\{side="left"\} (\S+)$/m) + metric(/^joinery_events_in_total\{side="right"\} (\S+)$/m), eventsIn(s2));
  assert.equal(metric(/^joinery_paused (\S+)$/m), 1);
  assert.ok(metric(/^joinery_state_entries\{worker="0"\} (\S+)$/m) >= 0);
  // The buffer is in memory (within the default --state-memory): both figures, and they agree.
  assert.ok(s2.workers.some((w: any) => w.stateMemoryBytes > 0), 'open buckets hold memory');
  assert.ok(metric(/^joinery_state_memory_bytes\{worker="0"\} (\S+)$/m) + metric(/^joinery_state_memory_bytes\{worker="1"\} (\S+)$/m) > 0);
  assert.ok(s2.workers.every((w: any) => w.stateIndexBytes > 0), 'the key index holds memory');
  assert.ok(metric(/^joinery_state_index_bytes\{worker="0"\} (\S+)$/m) > 0);
  assert.ok(metric(/^joinery_latency_seconds_count (\S+)$/m) > 0);
  assert.match(m.body, /^joinery_latency_seconds_bucket\{le="\+Inf"\} \d+$/m);
  assert.match(m.body, /^joinery_ring_fill_ratio\{worker="1"\} /m);
  assert.match(m.body, /^joinery_watermark_lag_seconds /m);
  assert.match(m.body, /^# TYPE joinery_checkpoint_failures_total counter$/m);

  // /state: a key that joined is buffered on both sides, with ids and payloads.
  const first = JSON.parse(fs.readFileSync(path.join(tmp, 'paused.ndjson'), 'utf8').split('\n')[0]);
  const st = await request(`${url}/state?key=${encodeURIComponent(JSON.stringify(first.key))}`);
  assert.equal(st.status, 200, st.body);
  assert.deepEqual(st.json.key, first.key);
  assert.ok(st.json.left.some((e: any) => e.id === first.leftId && e.payload.eventId === first.leftId && e.ts === first.leftTs), st.body);
  assert.ok(st.json.right.some((e: any) => e.id === first.rightId), st.body);
  const st2 = await request(`${url}/state?key=${first.key.join(',')}`);
  assert.deepEqual(st2.json.left, st.json.left, 'key=812,44 is the same key as [812,44]');
  assert.equal((await request(`${url}/state`)).status, 400);
  assert.deepEqual((await request(`${url}/state?key=["nobody",0]`)).json.left, []);
  // One value for a two-field key: 400 naming the arity, not 200 with empty lists.
  const short = await request(`${url}/state?key=1`);
  assert.equal(short.status, 400, short.body);
  assert.match(short.body, /2 fields \(profileId,titleId\); \?key has 1/);

  const r = await request(`${url}/resume`, { method: 'POST' });
  assert.deepEqual(r.json, { paused: false });
  const done = await node.done;
  assert.equal(done.code, 0, done.stderr);
  const s = lastJson(done.stdout) as any;
  assert.deepEqual(s.eventsIn, refSummary.eventsIn, 'every event was read');
  assert.equal(s.late, 0, 'no record turned late across the pause');
  assert.equal(refSummary.late, 0);
  assert.equal(s.pairs, refSummary.pairs);
  assert.ok(s.pairs > 100, `pairs: ${s.pairs}`);
  assert.deepEqual(pairsOf('paused'), pairsOf('ref'), 'the same pairs as without a pause');
});

test('--http-token is checked on every request; POST /checkpoint without --checkpoint-dir is 409', async (t) => {
  const node = startNode([...GEN('token', 2000), '--http', '127.0.0.1:0'], { ...process.env, JOINERY_HTTP_TOKEN: 's3cret' });
  t.after(() => { node.child.kill(); });
  const url = await node.url;
  for (const path of ['/status', '/metrics', '/state?key=1,2']) {
    const none = await request(`${url}${path}`);
    assert.equal(none.status, 401, path);
    assert.equal(none.json.error, 'E_UNAUTHORIZED');
    assert.match(none.json.message, /Authorization: Bearer/);
    assert.equal((await request(`${url}${path}`, { token: 'wrong' })).status, 401, path);
  }
  assert.equal((await request(`${url}/pause`, { method: 'POST' })).status, 401);
  await until('the engine to run', () => request(`${url}/status`, { token: 's3cret' }), (r) => r.status === 200 && r.json.phase === 'running');
  assert.equal((await request(`${url}/metrics`, { token: 's3cret' })).status, 200);
  const c = await request(`${url}/checkpoint`, { method: 'POST', token: 's3cret' });
  assert.equal(c.status, 409, c.body);
  assert.equal(c.json.error, 'E_NO_CHECKPOINTS');
  assert.match(c.json.message, /--checkpoint-dir/);
  assert.equal((await request(`${url}/checkpoint`, { token: 's3cret' })).status, 405);
  assert.equal((await request(`${url}/nothing`, { token: 's3cret' })).status, 404);
  // a path starting with two slashes is a path, not a host: the answer names it
  const doubled = await request(`${url}//status`, { token: 's3cret' });
  assert.equal(doubled.status, 404, doubled.body);
  assert.match(doubled.json.message, /^no \/\/status; endpoints: /);
  const done = await node.done;
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /s3cret/, 'the token is never logged');
});

test('POST /checkpoint with --checkpoint-dir takes a checkpoint now and returns its id; /status and /metrics show it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-http-ckpt-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const node = startNode([...GEN('ckpt', 2000), '--http', '127.0.0.1:0', '--checkpoint-dir', dir, '--checkpoint-interval', '1h']);
  t.after(() => { node.child.kill(); });
  const url = await node.url;
  await until('the engine to run', () => request(`${url}/status`), (r) => r.status === 200 && r.json.phase === 'running');
  const c1 = await request(`${url}/checkpoint`, { method: 'POST' });
  assert.equal(c1.status, 200, c1.body);
  const c2 = await request(`${url}/checkpoint`, { method: 'POST' });
  assert.equal(c2.status, 200, c2.body);
  assert.ok(c2.json.id > c1.json.id, `ids grow: ${c1.body} then ${c2.body}`);
  assert.ok(fs.existsSync(path.join(dir, 'manifests', `ckpt-${String(c2.json.id).padStart(9, '0')}.json`)), 'the manifest is on disk when the answer comes');
  const st = await request(`${url}/status`);
  assert.equal(st.json.lastCheckpoint.id, c2.json.id);
  const m = await request(`${url}/metrics`);
  assert.match(m.body, /^joinery_checkpoints_total(\{[^}]*\})? [2-9]/m);
  node.child.kill('SIGTERM');
  const done = await node.done;
  assert.equal(done.code, 0, done.stderr);
});

test('a checkpoint taken while paused, with a batch already read and held, then kill -9: the restart loses nothing', async (t) => {
  // Paused while waiting for the paced generator, the router takes its next batch and holds it; the
  // generator already counts that batch as delivered. A checkpoint then must not go in before it: a
  // restart from it would skip the batch (a full join shows every event, as a pair or unmatched).
  const FULL = ['--join', 'full'];
  const ref = await joinery([...GEN('heldref'), ...FULL]);
  assert.equal(ref.code, 0, ref.stderr);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joinery-http-held-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const args = [...GEN('held'), ...FULL, '--checkpoint-dir', dir, '--checkpoint-interval', '1h'];
  const node = startNode([...args, '--http', '127.0.0.1:0']);
  t.after(() => { node.child.kill('SIGKILL'); });
  const url = await node.url;
  await until('input to flow', () => request(`${url}/status`), (r) => r.status === 200 && r.json.phase === 'running' && eventsIn(r.json) > 2000);
  assert.equal((await request(`${url}/pause`, { method: 'POST' })).status, 200);
  await sleep(300); // the generator's next batch is due meanwhile: the router takes it and holds it
  const c = await request(`${url}/checkpoint`, { method: 'POST' });
  assert.equal(c.status, 200, c.body);
  node.child.kill('SIGKILL');
  await node.done;
  const r = await joinery(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /resuming from checkpoint/);
  const want = pairsOf('heldref'), got = pairsOf('held');
  const missing = want.filter((x) => !got.includes(x)), extra = got.filter((x) => !want.includes(x));
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), rows: got.length }, { missing: [], extra: [], rows: want.length });
});

test('--http beyond loopback needs a token (exit 2); a busy port fails before any work (exit 3)', async () => {
  const r = await joinery([...GEN('open'), '--http', '0.0.0.0:0']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--http-token/);
  assert.match(r.stderr, /E_USAGE/);

  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const b = await joinery([...GEN('busy'), '--http', `127.0.0.1:${port}`]);
    assert.equal(b.code, 3, b.stderr);
    assert.match(b.stderr, /E_HTTP/);
    assert.match(b.stderr, /cannot listen/);
    assert.equal(fs.existsSync(path.join(tmp, 'busy.ndjson')), false, 'no work was done');
  } finally {
    srv.close();
  }
});
