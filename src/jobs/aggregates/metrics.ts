/**
 * Metrics are data: a name, the canonical events it counts, and a measure (count, or sum of `value`).
 * view, share and chat are built in (seed 003); the config file's `metrics` adds more, e.g.
 * {"name": "sales", "events": ["sales"], "measure": "sum"}.
 */
import { AGGREGATE_TYPES, headerOf, LAKE } from '../../lake/layout.js';
import { createHash } from 'node:crypto';

export interface MetricDef {
  name: string;
  events: readonly string[];
  measure: 'count' | 'sum';
}

export const BUILTIN_METRICS: readonly MetricDef[] = [
  { name: 'view', events: ['view'], measure: 'count' },
  { name: 'share', events: ['share'], measure: 'count' },
  { name: 'chat', events: ['chat'], measure: 'count' },
];

export function metricSet(extra: readonly MetricDef[] = []): MetricDef[] {
  return [...BUILTIN_METRICS, ...extra];
}

/** A fingerprint of one metric's definition: when it changes, the metric is recomputed everywhere. */
export function metricFingerprint(m: MetricDef): string {
  return createHash('sha1').update(JSON.stringify([1, m.name, [...m.events].sort(), m.measure])).digest('hex').slice(0, 12);
}

export const AGGREGATE_COLUMNS = Object.keys(AGGREGATE_TYPES) as Array<keyof typeof AGGREGATE_TYPES>;
export const AGGREGATE_HEADER = headerOf(LAKE.aggregatesDaily);
