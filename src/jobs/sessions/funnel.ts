/** Funnels and event flows over the track facts of a range of days. */
import { daysBetween } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { withJob } from '../context.js';
import { type Engine, sql, sqlString } from '../engine.js';
import { relationSql } from '../tracks.js';
import { sessionPaths, TRACK_FACT_COLUMNS, TRACK_FACT_TYPES } from './job.js';


export interface FunnelStep {
  step: string;
  sessions: number;
  /** Sessions reaching this step / sessions reaching the first, 0..1. */
  conversion: number;
}

/** The track-facts files of the days from..to that the sessions job has written. */
export async function factFiles(store: ObjectStore, from: string, to: string): Promise<ObjectInfo[]> {
  const keys = new Set(daysBetween(from, to).map(sessionPaths.trackFacts));
  return (await store.list('track_facts/')).filter((x) => keys.has(x.key));
}

/** The days to read, and the tenant to count; `files`, when the caller has listed the days' facts already. */
export interface FactRange {
  from: string;
  to: string;
  tenant?: string;
  files?: ObjectInfo[];
}

async function withFacts<T>(store: ObjectStore, r: FactRange, body: (engine: Engine, facts: string) => Promise<T>): Promise<T> {
  return withJob(store, {}, async ({ engine, stager }) => {
    const infos = r.files ?? (await factFiles(store, r.from, r.to));
    const staged = await stager.objects(infos, TRACK_FACT_COLUMNS.join(','));
    return body(engine, relationSql(staged.files.map((f) => f.file), TRACK_FACT_TYPES));
  });
}

const tenantFilter = (tenant?: string) => (tenant ? `AND tenantid = ${sqlString(tenant)}` : '');

/**
 * The funnel's statement over a relation of facts (tenantid, session_id, sequence, event), with `filter` an
 * SQL condition fragment ("AND ...") of escaped literals. Shared by `tracklake funnel` and the read side.
 */
export function funnelStatement(facts: string, steps: readonly string[], filter: string): string {
  const ctes = steps.map((step, i) =>
    i === 0
      ? `s1 AS (SELECT tenantid, session_id, min(sequence) AS seq FROM facts WHERE event = ${sqlString(step)} GROUP BY ALL)`
      : `s${i + 1} AS (SELECT f.tenantid, f.session_id, min(f.sequence) AS seq FROM facts AS f JOIN s${i} AS p ON p.tenantid = f.tenantid AND p.session_id = f.session_id AND f.sequence > p.seq WHERE f.event = ${sqlString(step)} GROUP BY ALL)`,
  );
  const counts = steps.map((_, i) => `(SELECT count(*) FROM s${i + 1}) AS c${i + 1}`).join(', ');
  return sql('funnel', { facts, events: [...new Set(steps)].map(sqlString).join(', '), tenant_filter: filter, step_ctes: ctes.join(',\n'), counts });
}

/** The funnel statement's one row as steps with their conversion from the first. */
export function funnelSteps(steps: readonly string[], row: Record<string, bigint> | undefined): FunnelStep[] {
  const n = steps.map((_, i) => Number(row?.[`c${i + 1}`] ?? 0n));
  return steps.map((step, i) => ({ step, sessions: n[i]!, conversion: n[0]! > 0 ? n[i]! / n[0]! : 0 }));
}

export interface FlowPath {
  /** The events after the first occurrence, in order; empty when the session ended there. */
  events: string[];
  sessions: number;
}

export function flowStatement(facts: string, o: { event: string; depth?: number; limit?: number }, filter: string): string {
  return sql('flow', { facts, event: sqlString(o.event), tenant_filter: filter, depth: String(o.depth ?? 4), limit: String(o.limit ?? 20) });
}

export function flowPaths(rows: Array<{ path: unknown; sessions: bigint }>): FlowPath[] {
  return rows.map((r) => ({ events: listOf(r.path), sessions: Number(r.sessions) }));
}

/** A DuckDB LIST value as read by the Node API (a DuckDBListValue, whose `items` are the elements). */
function listOf(v: unknown): string[] {
  const items = (v as { items?: unknown[] } | null)?.items ?? [];
  return items.map(String);
}

export async function funnel(store: ObjectStore, o: FactRange & { steps: string[] }): Promise<FunnelStep[]> {
  return withFacts(store, o, async (engine, facts) => {
    const [row] = await engine.all<Record<string, bigint>>(funnelStatement(facts, o.steps, tenantFilter(o.tenant)));
    return funnelSteps(o.steps, row);
  });
}

export async function flow(store: ObjectStore, o: FactRange & { event: string; depth?: number; limit?: number }): Promise<FlowPath[]> {
  return withFacts(store, o, async (engine, facts) => flowPaths(await engine.all<{ path: unknown; sessions: bigint }>(flowStatement(facts, o, tenantFilter(o.tenant)))));
}
