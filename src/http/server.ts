/**
 * The node's HTTP endpoint (--http HOST:PORT), on node:http:
 *
 *   GET  /metrics      Prometheus text format
 *   GET  /status       JSON: workers (key groups, state, watermark), partitions (offset, lag), last checkpoint
 *   GET  /state?key=K  JSON: what is buffered for key K on each side
 *   POST /pause        stop reading input (state and positions kept; watermarks stand still)
 *   POST /resume       read on
 *   POST /checkpoint   take a checkpoint now → {"id": N} (409 without --checkpoint-dir)
 *
 * With --http-token every request must carry `Authorization: Bearer TOKEN` (401 otherwise).
 * Errors are JSON: {"error": CODE, "message": "what to do"}.
 */
import * as http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ControlError, type EngineControl } from '../control/engine-control.js';
import { JoineryError } from '../core/errors.js';
import { log } from '../core/log.js';
import { PrometheusExporter } from '../metrics/prometheus.js';

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
}

type Handler = (req: http.IncomingMessage, url: URL) => Promise<{ status?: number; json?: unknown; text?: string; type?: string }>;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class HttpEndpoint {
  private readonly server: http.Server;
  private readonly exporter: PrometheusExporter;
  private readonly routes: Record<string, Handler>;
  private readonly tokenDigest: Buffer | null;

  private constructor(private readonly control: EngineControl, private readonly opts: HttpOptions) {
    this.exporter = new PrometheusExporter(control);
    this.tokenDigest = opts.token ? digest(opts.token) : null;
    this.routes = {
      'GET /metrics': async () => ({ text: await this.exporter.render(), type: this.exporter.contentType }),
      'GET /status': async () => ({ json: this.control.status() }),
      'GET /state': async (_req, url) => {
        const key = url.searchParams.get('key');
        if (key === null) throw new ControlError(400, 'E_USAGE', 'give the key: GET /state?key=[812,44] (the key as the output shows it)');
        return { json: await this.control.inspect(key) };
      },
      'POST /pause': async () => ({ json: await this.control.pause() }),
      'POST /resume': async () => ({ json: this.control.resume() }),
      'POST /checkpoint': async () => ({ json: await this.control.checkpoint() }),
    };
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = 5_000;
  }

  /** Listen on host:port; E_HTTP (exit 3) when the address cannot be bound. */
  static async start(control: EngineControl, opts: HttpOptions): Promise<HttpEndpoint> {
    const e = new HttpEndpoint(control, opts);
    await new Promise<void>((resolve, reject) => {
      e.server.once('error', (err) => reject(new JoineryError('E_HTTP', `--http ${opts.host}:${opts.port}: cannot listen (${(err as Error).message}); pick a free port or another address`)));
      e.server.listen(opts.port, opts.host, () => resolve());
    });
    e.server.on('error', (err) => log.error('HTTP endpoint error', { error: err.message }));
    log.info(`HTTP endpoint listening on ${e.url}`, { url: e.url, token: opts.token ? 'required' : 'none' });
    return e;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get url(): string {
    const a = this.address;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.tokenDigest) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    // Compare digests (equal length) in constant time.
    return !!m && timingSafeEqual(digest(m[1].trim()), this.tokenDigest);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: string, type: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const sendError = (status: number, code: string, message: string) => send(status, JSON.stringify({ error: code, message }) + '\n', 'application/json');
    req.resume(); // no request bodies are read
    let url: URL;
    try {
      // an origin-form target is a path: `//status` must not parse as a host named "status"
      const target = req.url ?? '/';
      url = target.startsWith('/') ? new URL(`http://joinery${target}`) : new URL(target, 'http://joinery');
    } catch {
      return sendError(400, 'E_USAGE', 'malformed request URL');
    }
    if (!this.authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="joinery"');
      log.warn('HTTP request without a valid token refused', { method: req.method, path: url.pathname, remote: req.socket.remoteAddress });
      return sendError(401, 'E_UNAUTHORIZED', 'this endpoint needs the --http-token: send the header "Authorization: Bearer TOKEN"');
    }
    const route = this.routes[`${req.method} ${url.pathname}`];
    if (!route) {
      const other = Object.keys(this.routes).find((k) => k.endsWith(` ${url.pathname}`));
      if (other) return sendError(405, 'E_METHOD', `use ${other}`);
      return sendError(404, 'E_NOT_FOUND', `no ${url.pathname}; endpoints: ${Object.keys(this.routes).join(', ')}`);
    }
    log.debug('HTTP request', { method: req.method, path: url.pathname });
    try {
      const r = await route(req, url);
      if (r.text !== undefined) send(r.status ?? 200, r.text, r.type ?? 'text/plain; charset=utf-8');
      else send(r.status ?? 200, JSON.stringify(r.json, null, 1) + '\n', 'application/json');
    } catch (e) {
      if (e instanceof ControlError) return sendError(e.status, e.code, e.message);
      if (e instanceof JoineryError) return sendError(500, e.code, e.message);
      log.error('HTTP handler failed', { path: url.pathname, error: (e as Error).stack ?? String(e) });
      return sendError(500, 'E_INTERNAL', (e as Error).message);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
