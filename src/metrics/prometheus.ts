/**
 * GET /metrics: the engine's figures in the Prometheus text format, through prom-client (the only
 * file importing it). Every metric is read at scrape time from one EngineControl snapshot; the
 * latency histograms are the engine's HDR histograms (merged from the workers) exported with
 * fixed buckets.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { EngineControl, MetricsView } from '../control/engine-control.js';
import type { LatencyHistogram } from './histogram.js';

/** Bucket bounds of the latency histograms, in seconds. */
const BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300];
const SIDES = ['left', 'right'] as const;

/**
 * A Prometheus histogram whose buckets come from an HDR histogram. prom-client's Histogram only
 * counts observe() calls made on this thread; here the values are recorded in the workers, so the
 * registry is handed the metric object (name, help, type, values) that its own metrics produce.
 */
class HdrHistogramMetric {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, private readonly pick: (v: MetricsView) => LatencyHistogram, private readonly view: () => MetricsView | null) {}
  async get() {
    const v = this.view();
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    const h = v ? this.pick(v).bucketCounts(BUCKETS_S.map((s) => s * 1000)) : { cumulative: BUCKETS_S.map(() => 0), count: 0, sumMs: 0 };
    BUCKETS_S.forEach((le, i) => values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: h.cumulative[i] }));
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: h.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: h.sumMs / 1000 });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: h.count });
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: this.aggregator };
  }
  reset(): void {}
}

export class PrometheusExporter {
  readonly registry = new Registry();
  private snap: MetricsView | null = null;

  constructor(private readonly control: EngineControl) {
    const r = [this.registry];
    const view = () => this.snap;
    const counter = (name: string, help: string, labelNames: string[], fill: (v: MetricsView, set: (labels: Record<string, string | number>, n: number) => void) => void) =>
      new Counter({ name, help, labelNames, registers: r, collect() { this.reset(); const v = view(); if (v) fill(v, (l, n) => this.inc(l, n)); } });
    const gauge = (name: string, help: string, labelNames: string[], fill: (v: MetricsView, set: (labels: Record<string, string | number>, n: number) => void) => void) =>
      new Gauge({ name, help, labelNames, registers: r, collect() { this.reset(); const v = view(); if (v) fill(v, (l, n) => { if (Number.isFinite(n)) this.set(l, n); }); } });

    counter('joinery_events_in_total', 'Records read from the sources, per side', ['side'], (v, set) => { for (const s of SIDES) set({ side: s }, v.status.counters.eventsIn[s]); });
    counter('joinery_events_processed_total', 'Events applied by the workers (joined or buffered), per side', ['side'], (v, set) => { for (const s of SIDES) set({ side: s }, v.status.counters.eventsProcessed[s]); });
    counter('joinery_pairs_total', 'Joined pairs emitted', [], (v, set) => set({}, v.status.counters.pairs));
    counter('joinery_output_records_total', 'Output records written (pairs and unmatched rows)', [], (v, set) => set({}, v.status.counters.outputRecords));
    counter('joinery_unmatched_total', 'Events emitted unmatched by outer joins, per side', ['side'], (v, set) => { for (const s of SIDES) set({ side: s }, v.status.counters.unmatched[s]); });
    counter('joinery_duplicates_total', 'Re-delivered events dropped', [], (v, set) => set({}, v.status.counters.duplicates));
    counter('joinery_late_events_total', 'Events behind the watermark (written to --late-out or counted)', [], (v, set) => set({}, v.status.counters.late));
    counter('joinery_dead_letters_total', 'Malformed records (written to --dead-letter or counted)', [], (v, set) => set({}, v.status.counters.deadLetters));
    counter('joinery_key_overflow_total', 'Events diverted by --max-key-entries (their key held the maximum on their side), per side', ['side'], (v, set) => { for (const s of SIDES) set({ side: s }, v.status.counters.keyOverflow[s]); });
    gauge('joinery_hot_key_entries', 'Events buffered for the hottest keys (top 10, per side)', ['key', 'side'], (v, set) => { for (const k of v.status.topKeys.byEntries) set({ key: k.key, side: k.side }, k.entries); });
    gauge('joinery_hot_key_pairs_per_event', 'Most pairs one event produced, for keys whose events produced 10000 or more (top 10)', ['key'], (v, set) => { for (const k of v.status.topKeys.byPairsPerEvent) set({ key: k.key }, k.maxPairsPerEvent); });
    counter('joinery_backpressure_waits_total', 'Times routing waited for ring space', [], (v, set) => set({}, v.status.counters.backpressureWaits));
    gauge('joinery_state_entries', 'Events buffered in the join state, per worker', ['worker'], (v, set) => { for (const w of v.status.workers) set({ worker: w.index }, w.stateEntries); });
    gauge('joinery_state_bytes', 'Approximate bytes of the join state, per worker', ['worker'], (v, set) => { for (const w of v.status.workers) set({ worker: w.index }, w.stateBytes); });
    gauge('joinery_state_memory_bytes', 'Bytes of the join buffer held in memory (time buckets not sealed into LMDB; --state-memory bounds their sum), per worker', ['worker'], (v, set) => { for (const w of v.status.workers) set({ worker: w.index }, w.stateMemoryBytes); });
    gauge('joinery_state_index_bytes', 'Bytes of memory held by the join buffer\'s indexes (key index, sealed buckets\' filters, frozen group tables; outside --state-memory), per worker', ['worker'], (v, set) => { for (const w of v.status.workers) set({ worker: w.index }, w.stateIndexBytes); });
    gauge('joinery_ring_fill_ratio', 'Fill of each worker\'s input ring, 0..1', ['worker'], (v, set) => { for (const w of v.status.workers) set({ worker: w.index }, w.ringFill); });
    gauge('joinery_worker_watermark_seconds', 'Watermark applied by each worker (event time, epoch seconds)', ['worker'], (v, set) => { for (const w of v.status.workers) if (w.watermarkMs !== null) set({ worker: w.index }, w.watermarkMs / 1000); });
    gauge('joinery_watermark_seconds', 'Engine watermark (event time, epoch seconds)', [], (v, set) => { if (v.status.watermarkMs !== null) set({}, v.status.watermarkMs / 1000); });
    gauge('joinery_watermark_lag_seconds', 'Max event time seen minus the watermark', [], (v, set) => { if (v.status.watermarkLagMs !== null) set({}, v.status.watermarkLagMs / 1000); });
    gauge('joinery_partition_max_event_time_seconds', 'Max event time seen per input partition', ['side', 'partition'], (v, set) => { for (const p of v.status.partitions) if (p.maxEventTimeMs !== null) set({ side: p.side, partition: p.partition }, p.maxEventTimeMs / 1000); });
    gauge('joinery_partition_idle', 'Input partition idle (1) or holding the watermark (0)', ['side', 'partition'], (v, set) => { for (const p of v.status.partitions) set({ side: p.side, partition: p.partition }, p.idle ? 1 : 0); });
    gauge('joinery_consumer_lag', 'Kafka records behind the partition end (highest high watermark seen − next offset)', ['side', 'topic', 'partition'], (v, set) => { for (const p of v.status.partitions) if (p.lag !== undefined) set({ side: p.side, topic: p.topic ?? '', partition: p.partition }, p.lag); });
    gauge('joinery_consumer_offset', 'Kafka next offset read per partition', ['side', 'topic', 'partition'], (v, set) => { for (const p of v.status.partitions) if (p.offset !== undefined) set({ side: p.side, topic: p.topic ?? '', partition: p.partition }, p.offset); });
    gauge('joinery_committed_offset', 'Kafka next offset committed per partition', ['side', 'topic', 'partition'], (v, set) => { for (const p of v.status.partitions) if (p.committedOffset !== undefined) set({ side: p.side, topic: p.topic ?? '', partition: p.partition }, p.committedOffset); });
    gauge('joinery_paused', 'Routing paused by POST /pause (1) or running (0)', [], (v, set) => set({}, v.status.paused ? 1 : 0));
    counter('joinery_checkpoints_total', 'Checkpoints completed', [], (v, set) => set({}, v.checkpoints.completed));
    counter('joinery_checkpoint_failures_total', 'Checkpoints that failed', [], (v, set) => set({}, v.checkpoints.failures));
    gauge('joinery_checkpoint_duration_seconds', 'Duration of the last checkpoint', [], (v, set) => { if (v.checkpoints.last) set({}, v.checkpoints.last.durationMs / 1000); });
    gauge('joinery_checkpoint_size_bytes', 'Size of the last checkpoint', [], (v, set) => { if (v.checkpoints.last) set({}, v.checkpoints.last.bytes); });
    this.registry.registerMetric(new HdrHistogramMetric('joinery_latency_seconds', 'Processing latency per event: router read → output written', (v) => v.hub.latency, view) as unknown as Metric);
    this.registry.registerMetric(new HdrHistogramMetric('joinery_event_lag_seconds', 'Output written − event time, per event', (v) => v.hub.lag, view) as unknown as Metric);
    collectDefaultMetrics({ register: this.registry, prefix: 'joinery_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(): Promise<string> {
    this.snap = this.control.metricsView();
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = null;
    }
  }
}
