/**
 * The one object through which a running engine is observed and steered from outside (the HTTP
 * endpoint, tests): the engine hands it a view of its parts once its workers are ready
 * (`attach`), the CLI ends it (`detach`). Everything here reads what the engine already keeps;
 * the only steering is pause/resume of routing and the checkpoint hook.
 */
import type { Worker } from 'node:worker_threads';
import { canonicalKeyOfJsonArray } from '../codec/json.js';
import type { Config } from '../config/schema.js';
import { log } from '../core/log.js';
import { nowMs } from '../core/units.js';
import type { MetricsHub } from '../metrics/report.js';
import { keyGroupOf, murmur3 } from '../router/partitioner.js';
import type { Router } from '../router/router.js';
import type { PartitionPosition, Source } from '../source/source.js';
import type { InspectReply, InspectRequest } from '../worker/inspect.js';

/** What the engine hands over once its workers are ready. */
export interface EngineView {
  cfg: Config;
  router: Router;
  hub: MetricsHub;
  /** Key-group range [start, end) of each worker. */
  ranges: ReadonlyArray<readonly [number, number]>;
  threads: readonly Worker[];
  sources: readonly Source[];
}

export interface CheckpointInfo { id: number; [k: string]: unknown }

export type Phase = 'starting' | 'running' | 'finished' | 'failed';

const SIDES = ['left', 'right'] as const;
const INSPECT_TIMEOUT_MS = 10_000;

/** An error the HTTP layer turns into a status code and a JSON body {error, code, message}. */
export class ControlError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}

const num = (x: number): number | null => (Number.isFinite(x) ? x : null);

export class EngineControl {
  /**
   * Take a checkpoint now and return its id. Supplied by the checkpoint coordinator when
   * --checkpoint-dir is configured; unset, POST /checkpoint answers 409.
   */
  checkpointNow?: () => Promise<CheckpointInfo>;
  /** Routing paused (true) or resumed (false) by request: the CLI pauses the source's Kafka partitions. */
  onPauseChange?: (paused: boolean) => void;
  /** Checkpoint figures for /status and /metrics (the coordinator reports through recordCheckpoint). */
  readonly checkpoints = { completed: 0, failures: 0, last: null as null | { id: number; at: string; durationMs: number; bytes: number } };
  /** Committed source positions (Kafka next offsets) by "topic/partition", noted by the CLI's commit hook. */
  readonly committed = new Map<string, number>();

  phase: Phase = 'starting';
  failure: string | null = null;
  private view: EngineView | null = null;
  private startedAt = Date.now();
  private inspectSeq = 0;
  private readonly inspectWaiters = new Map<number, (r: InspectReply) => void>();

  /** Called by the engine once its workers are ready. */
  attach(view: EngineView): void {
    this.view = view;
    this.phase = 'running';
    this.startedAt = Date.now();
    for (const t of view.threads) {
      t.on('message', (m: { type?: string }) => {
        if (m?.type !== 'inspected') return;
        const r = m as InspectReply;
        this.inspectWaiters.get(r.id)?.(r);
      });
    }
  }

  /** Called when the run has ended (failure = the error it ended with). */
  detach(failure?: Error | null): void {
    this.phase = failure ? 'failed' : 'finished';
    if (failure) this.failure = failure.message;
    this.view?.router.gate.resume();
  }

  /** A checkpoint finished (ok) or failed: figures for /status and /metrics. */
  recordCheckpoint(r: { ok: boolean; id?: number; durationMs?: number; bytes?: number }): void {
    if (!r.ok) { this.checkpoints.failures++; return; }
    this.checkpoints.completed++;
    this.checkpoints.last = { id: r.id ?? 0, at: new Date().toISOString(), durationMs: r.durationMs ?? 0, bytes: r.bytes ?? 0 };
  }

  noteCommitted(positions: ReadonlyArray<{ topic: string; partition: number; offset: string }>): void {
    for (const p of positions) this.committed.set(`${p.topic}/${p.partition}`, Number(p.offset));
  }

  get paused(): boolean {
    return this.view?.router.gate.paused ?? false;
  }

  private running(): EngineView {
    if (!this.view || this.phase !== 'running') {
      throw new ControlError(409, 'E_NOT_RUNNING', this.phase === 'starting' ? 'the engine is still starting; retry in a moment' : `the engine has ${this.phase}`);
    }
    return this.view;
  }

  /** Stop pulling input. Resolves once routing has stopped (or after 2 s; `parked` tells which). */
  async pause(): Promise<{ paused: true; parked: boolean }> {
    const v = this.running();
    const was = v.router.gate.paused;
    v.router.gate.pause();
    if (!was) {
      this.onPauseChange?.(true);
      log.info('paused: no more input is read until POST /resume', { watermarkMs: num(v.router.currentWatermark()) });
    }
    let timer: NodeJS.Timeout | undefined;
    const parked = await Promise.race([
      v.router.gate.whenParked().then(() => true),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), 2_000); }),
    ]);
    clearTimeout(timer);
    return { paused: true, parked };
  }

  resume(): { paused: false } {
    const v = this.running();
    if (v.router.gate.paused) {
      v.router.gate.resume();
      this.onPauseChange?.(false);
      log.info('resumed');
    }
    return { paused: false };
  }

  async checkpoint(): Promise<CheckpointInfo> {
    if (!this.checkpointNow) throw new ControlError(409, 'E_NO_CHECKPOINTS', 'checkpoints are not configured: start joinery with --checkpoint-dir DIR to take them');
    this.running();
    return this.checkpointNow();
  }

  /** Per partition of every source: watermark, idleness and, where known, offset and lag. */
  private partitions(v: EngineView, now: number) {
    const positions = new Map<string, PartitionPosition>();
    for (const s of v.sources) for (const p of s.positions?.() ?? []) positions.set(`${p.side}:${p.partition}`, p);
    // While paused, partitions are judged as of the pause (the pause does not count as silence).
    return v.router.tracker.view(v.router.gate.pausedSince ?? now).map((p) => {
      const pos = positions.get(`${p.side}:${p.partition}`);
      const committed = pos?.topic !== undefined ? this.committed.get(`${pos.topic}/${p.partition}`) : undefined;
      return {
        side: SIDES[p.side], partition: p.partition, topic: pos?.topic,
        maxEventTimeMs: num(p.maxTs), watermarkMs: num(p.watermark), idle: p.idle, ended: p.ended,
        offset: pos?.offset, committedOffset: committed, endOffset: pos?.end, lag: pos?.lag, paused: pos?.paused,
      };
    });
  }

  /** GET /status */
  status(): Record<string, unknown> {
    const base = { phase: this.phase, paused: this.paused, startedAt: new Date(this.startedAt).toISOString(), uptimeMs: Date.now() - this.startedAt, failure: this.failure ?? undefined };
    const v = this.view;
    if (!v) return { ...base, workers: [], partitions: [], lastCheckpoint: null, checkpointsEnabled: !!this.checkpointNow };
    const now = nowMs();
    const wm = v.router.currentWatermark(), maxTs = v.router.tracker.maxEventTime();
    const fill = v.router.ringFill();
    const hub = v.hub, c = v.router.counters;
    const overflow = hub.keyOverflow();
    return {
      ...base,
      watermarkMs: num(wm), maxEventTimeMs: num(maxTs),
      watermarkLagMs: Number.isFinite(wm) && Number.isFinite(maxTs) ? maxTs - wm : null,
      counters: {
        eventsIn: { left: c.read[0], right: c.read[1] },
        eventsProcessed: { left: sumSide(hub, 0), right: sumSide(hub, 1) },
        pairs: hub.sum('pairs'), outputRecords: hub.sum('outputRecords'), duplicates: hub.sum('duplicates'),
        late: c.late, deadLetters: c.dead,
        keyOverflow: { left: overflow[0], right: overflow[1] },
        unmatched: { left: hub.sum('unmatchedLeft'), right: hub.sum('unmatchedRight') },
        backpressureWaits: c.backpressureWaits,
      },
      workers: v.ranges.map((r, i) => {
        const s = hub.workers[i];
        return {
          index: i, keyGroups: [r[0], r[1]], stateEntries: s?.stateEntries ?? 0, stateBytes: s?.stateBytes ?? 0,
          stateMemoryBytes: s?.stateMemoryBytes ?? 0, stateIndexBytes: s?.stateIndexBytes ?? 0, watermarkMs: s ? num(s.watermarkMs) : null, ringFill: fill[i],
          eventsProcessed: { left: s?.events[0] ?? 0, right: s?.events[1] ?? 0 },
        };
      }),
      partitions: this.partitions(v, now),
      // Keys holding the most buffered entries (per side) and producing the most pairs per event; see --max-key-entries.
      topKeys: { maxKeyEntries: v.cfg.maxKeyEntries || null, ...hub.topKeys() },
      checkpointsEnabled: !!this.checkpointNow,
      lastCheckpoint: this.checkpoints.last,
    };
  }

  /** Figures for /metrics (one consistent read per scrape). */
  metricsView(): MetricsView | null {
    const v = this.view;
    if (!v) return null;
    const st = this.status() as unknown as StatusShape;
    return { status: st, hub: v.hub, checkpoints: this.checkpoints };
  }

  /**
   * GET /state?key=…: what the owning worker buffers for the key on each side. `keyParam` is the
   * key as the output shows it (a JSON array such as [812,44] or ["a",3]) or its values comma-separated
   * (812,44; numbers stay numbers, so a numeric string needs the JSON form).
   */
  async inspect(keyParam: string): Promise<Record<string, unknown>> {
    const v = this.running();
    const keyText = canonicalKey(keyParam);
    // A key of the wrong arity can never be buffered: say so instead of answering with empty lists.
    const fields = v.cfg.leftKey ?? v.cfg.key;
    const given = (JSON.parse(keyText) as unknown[]).length;
    if (given !== fields.length) {
      throw new ControlError(400, 'E_USAGE', `the join key has ${fields.length} field${fields.length === 1 ? '' : 's'} (${fields.join(',')}); ?key has ${given}: give all of them, e.g. ?key=[${fields.map((_, i) => i + 1).join(',')}]`);
    }
    const bytes = Buffer.from(keyText, 'utf8');
    const keyHash = murmur3(bytes, 0, bytes.length);
    const keyGroup = keyGroupOf(keyHash);
    const worker = v.ranges.findIndex(([s, e]) => keyGroup >= s && keyGroup < e);
    const id = ++this.inspectSeq;
    const reply = await new Promise<InspectReply | null>((resolve) => {
      const timer = setTimeout(() => { this.inspectWaiters.delete(id); resolve(null); }, INSPECT_TIMEOUT_MS);
      this.inspectWaiters.set(id, (r) => { clearTimeout(timer); this.inspectWaiters.delete(id); resolve(r); });
      const req: InspectRequest = { type: 'inspect', id, key: keyText, keyGroup, keyHash };
      v.threads[worker].postMessage(req);
    });
    if (!reply) throw new ControlError(503, 'E_WORKER', `worker ${worker} did not answer within ${INSPECT_TIMEOUT_MS / 1000}s (busy or finished)`);
    if (reply.error) throw new ControlError(500, 'E_STATE', `worker ${worker}: ${reply.error}`);
    // The joined bit is kept only for the sides an outer join emits unmatched; elsewhere it says nothing.
    const tracked = [v.cfg.join === 'left' || v.cfg.join === 'full', v.cfg.join === 'right' || v.cfg.join === 'full'];
    const side = (entries: InspectReply['left'], s: 0 | 1) => entries.map((e) => ({ ...e, joined: tracked[s] ? e.joined : null }));
    return {
      key: JSON.parse(keyText), keyGroup, worker, watermarkMs: num(v.router.currentWatermark()),
      left: side(reply.left, 0), right: side(reply.right, 1), truncated: reply.truncated,
    };
  }
}

function sumSide(hub: MetricsHub, side: 0 | 1): number {
  let t = 0;
  for (const w of hub.workers) if (w) t += w.events[side];
  return t;
}

/** Key parameter → the router's canonical key text (JSON array text of scalar values, src/codec/json.ts). */
export function canonicalKey(param: string): string {
  const p = param.trim();
  if (p === '') throw new ControlError(400, 'E_USAGE', 'give the key as ?key=[812,44] (a JSON array, as in the output) or ?key=812,44');
  let text: string;
  if (p.startsWith('[')) {
    let values: unknown;
    try { values = JSON.parse(p); } catch { throw new ControlError(400, 'E_USAGE', `key ${JSON.stringify(p)} is not a JSON array`); }
    if (!Array.isArray(values)) throw new ControlError(400, 'E_USAGE', 'key must be a JSON array');
    text = p;
  } else {
    // numbers stay numbers, with their exact digits when written as JSON numbers
    text = '[' + p.split(',').map((s) => {
      const t = s.trim();
      if (JSON_NUMBER.test(t)) return t;
      return t !== '' && Number.isFinite(Number(t)) ? String(Number(t)) : JSON.stringify(t);
    }).join(',') + ']';
  }
  const key = canonicalKeyOfJsonArray(text);
  if (key === undefined) throw new ControlError(400, 'E_USAGE', 'key values must be strings, numbers or booleans');
  return key;
}
const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

export interface StatusShape {
  phase: Phase; paused: boolean; uptimeMs: number;
  watermarkMs: number | null; maxEventTimeMs: number | null; watermarkLagMs: number | null;
  counters: {
    eventsIn: { left: number; right: number }; eventsProcessed: { left: number; right: number };
    pairs: number; outputRecords: number; duplicates: number; late: number; deadLetters: number; keyOverflow: { left: number; right: number };
    unmatched: { left: number; right: number }; backpressureWaits: number;
  };
  workers: Array<{ index: number; keyGroups: [number, number]; stateEntries: number; stateBytes: number; stateMemoryBytes: number; stateIndexBytes: number; watermarkMs: number | null; ringFill: number }>;
  topKeys: { maxKeyEntries: number | null } & ReturnType<MetricsHub['topKeys']>;
  partitions: Array<{ side: 'left' | 'right'; partition: number; topic?: string; maxEventTimeMs: number | null; watermarkMs: number | null; idle: boolean; offset?: number; committedOffset?: number; endOffset?: number; lag?: number }>;
}

export interface MetricsView {
  status: StatusShape;
  hub: MetricsHub;
  checkpoints: EngineControl['checkpoints'];
}
