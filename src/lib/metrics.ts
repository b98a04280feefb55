/** The collector's Prometheus metrics, in a registry of its own (no process-wide default registry). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface LogState {
  bytes: number;
  segments: number;
  lagSeconds: number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly accepted = new Counter({ name: 'tracklake_events_accepted_total', help: 'Messages accepted and logged', labelNames: ['tenant'], registers: [this.registry] });
  readonly rejected = new Counter({ name: 'tracklake_events_rejected_total', help: 'Messages rejected, by reason code', labelNames: ['reason'], registers: [this.registry] });
  readonly crossNodeDuplicates = new Counter({ name: 'tracklake_events_duplicate_across_nodes_total', help: 'Messages left out when their segment shipped: another collector on the bucket shipped the same messageId first (dedupRedisUrl)', registers: [this.registry] });
  readonly duplicates = new Counter({ name: 'tracklake_events_duplicate_total', help: 'Messages acknowledged but not written again (messageId seen within the window)', registers: [this.registry] });
  readonly requests = new Counter({ name: 'tracklake_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly clientMetrics = new Counter({ name: 'tracklake_client_metrics_requests_total', help: "Requests of analytics.js's own usage metrics (POST /v1/m), counted and not stored", registers: [this.registry] });
  readonly suppressed = new Counter({ name: 'tracklake_events_suppressed_total', help: 'Messages acknowledged and written nowhere: their subject is suppressed (privacy regulations)', labelNames: ['tenant'], registers: [this.registry] });
  readonly shipFiltered = new Counter({ name: 'tracklake_records_erased_at_ship_total', help: 'Logged messages left out when their segment shipped: a suppression or deletion arrived after they were acknowledged', labelNames: ['tenant'], registers: [this.registry] });
  readonly violations = new Counter({ name: 'tracklake_plan_violations_total', help: "Tracking-plan violations, by tenant, violation type and the action taken on the message", labelNames: ['tenant', 'type', 'action'], registers: [this.registry] });
  readonly rowsWritten = new Counter({ name: 'tracklake_rows_written_total', help: 'Rows written to storage', labelNames: ['kind'], registers: [this.registry] });
  readonly uploadFailures = new Counter({ name: 'tracklake_upload_failures_total', help: 'Failed uploads to storage (each is retried)', registers: [this.registry] });
  /** How long each durable write to the log took: an acknowledgement waits for one (group commit). */
  readonly logWrites = new Histogram({ name: 'tracklake_log_write_seconds', help: 'Durable writes to the local log (each acknowledges every request in it), by duration', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  /** The duplicate index's state, read at each scrape (set by the ingest node). */
  dedupState: () => { windowSeconds: number; ids: number; bytes: number } = () => ({ windowSeconds: 0, ids: 0, bytes: 0 });
  readonly dedupWindow: Gauge = new Gauge({ name: 'tracklake_dedup_window_seconds', help: 'Effective duplicate window: the configured one, or shorter when the memory budget cut the oldest ids off', registers: [this.registry], collect: (): void => this.dedupWindow.set(this.dedupState().windowSeconds) });
  readonly dedupIds: Gauge = new Gauge({ name: 'tracklake_dedup_ids', help: 'Message ids held by the duplicate index', registers: [this.registry], collect: (): void => this.dedupIds.set(this.dedupState().ids) });
  readonly dedupBytes: Gauge = new Gauge({ name: 'tracklake_dedup_bytes', help: 'Memory of the duplicate index', registers: [this.registry], collect: (): void => this.dedupBytes.set(this.dedupState().bytes) });
  /** The log's state, read at each scrape so a gauge is never older than the scrape (set by the shipper). */
  logState: () => LogState = () => ({ bytes: 0, segments: 0, lagSeconds: 0 });
  readonly logBytes: Gauge = new Gauge({ name: 'tracklake_log_buffered_bytes', help: 'Bytes in the local log not yet shipped to storage', registers: [this.registry], collect: (): void => this.logBytes.set(this.logState().bytes) });
  readonly backlog: Gauge = new Gauge({ name: 'tracklake_upload_backlog_segments', help: 'Sealed log segments waiting for upload', registers: [this.registry], collect: (): void => this.backlog.set(this.logState().segments) });
  readonly lagSeconds: Gauge = new Gauge({ name: 'tracklake_upload_lag_seconds', help: 'Age of the oldest event not yet in storage', registers: [this.registry], collect: (): void => this.lagSeconds.set(this.logState().lagSeconds) });

  /** Destinations (forward/): per destination, what was delivered, retried, dead-lettered, handed over. */
  readonly forwardDelivered = new Counter({ name: 'tracklake_forward_delivered_total', help: 'Messages a destination accepted', labelNames: ['destination'], registers: [this.registry] });
  readonly forwardRetried = new Counter({ name: 'tracklake_forward_retries_total', help: 'Batches sent again after a failure (timeouts, 408, 429, 5xx, closed connections)', labelNames: ['destination'], registers: [this.registry] });
  readonly forwardDeadLettered = new Counter({ name: 'tracklake_forward_dead_lettered_total', help: 'Messages refused (4xx) or still failing after maxAttempts, stored under deadletter/<name>/', labelNames: ['destination'], registers: [this.registry] });
  readonly forwardLeftOut = new Counter({ name: 'tracklake_forward_left_out_total', help: 'Messages not forwarded: a suppression or deletion of their subject reached this node after they were acknowledged', labelNames: ['destination'], registers: [this.registry] });
  readonly forwardHandedOver = new Counter({ name: 'tracklake_forward_handed_over_total', help: "Messages moved to the bucket's backlog (destinations/<name>/backlog/) because the destination fell maxLagBytes behind", labelNames: ['destination'], registers: [this.registry] });
  /** Each destination's lag, read at each scrape (set by forward/destinations.ts). */
  forwardState: () => Array<{ destination: string; lagSeconds: number; lagBytes: number }> = () => [];
  readonly forwardLagSeconds: Gauge = new Gauge({
    name: 'tracklake_forward_lag_seconds', help: 'Age of the oldest message a destination has not accepted yet (0 when caught up)', labelNames: ['destination'], registers: [this.registry],
    collect: (): void => {
      for (const s of this.forwardState()) this.forwardLagSeconds.set({ destination: s.destination }, s.lagSeconds);
    },
  });
  readonly forwardLagBytes: Gauge = new Gauge({
    name: 'tracklake_forward_lag_bytes', help: 'Bytes of the local log a destination has not read yet', labelNames: ['destination'], registers: [this.registry],
    collect: (): void => {
      for (const s of this.forwardState()) this.forwardLagBytes.set({ destination: s.destination }, s.lagBytes);
    },
  });

  constructor() {
    // GC buckets fine enough to tell a 50 ms pause from a 500 ms one (the default jumps from 0.1 s to 1 s).
    collectDefaultMetrics({ register: this.registry, gcDurationBuckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
  }
}
