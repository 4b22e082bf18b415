// A joinery process run as a node: spawned with --http, its endpoint's URL read from its JSON logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';

export interface Running {
  child: ChildProcess;
  url: Promise<string>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stderr(): string;
}

export function startNode(args: string[], env: NodeJS.ProcessEnv = process.env): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  let resolveUrl!: (u: string) => void, rejectUrl!: (e: Error) => void;
  const url = new Promise<string>((res, rej) => { resolveUrl = res; rejectUrl = rej; });
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const line of stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try { const o = JSON.parse(line); if (typeof o.url === 'string') resolveUrl(o.url); } catch { /* partial line */ }
    }
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => { rejectUrl(new Error(`joinery exited (${code}) before its HTTP endpoint was up:\n${stderr}`)); resolve({ code, stdout, stderr }); });
  });
  url.catch(() => {});
  return { child, url, done, stderr: () => stderr };
}

export async function request(url: string, opts: { method?: string; token?: string } = {}): Promise<{ status: number; body: string; json: any; type: string }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const r = await fetch(url, { method: opts.method ?? 'GET', headers });
  const body = await r.text();
  let json: unknown = undefined;
  try { json = JSON.parse(body); } catch { /* text */ }
  return { status: r.status, body, json, type: r.headers.get('content-type') ?? '' };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until pred holds (or fail after timeoutMs). */
export async function until<T>(what: string, get: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (pred(v)) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(50);
  }
}
