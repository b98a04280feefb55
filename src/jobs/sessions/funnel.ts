/** Funnels and event flows over the track facts of a range of days. */
import { daysBetween } from '../../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../../storage/store.js';
import { withJob } from '../context.js';
import { type Engine, sql, sqlString } from '../engine.js';
import { relationSql, TRACK_TYPES } from '../tracks.js';
import { sessionPaths, TRACK_FACT_COLUMNS } from './job.js';

const FACT_TYPES = { ...TRACK_TYPES, userid: 'VARCHAR', session_id: 'VARCHAR', sequence: 'BIGINT' };

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
  return withJob(store, undefined, async ({ engine, stager }) => {
    const infos = r.files ?? (await factFiles(store, r.from, r.to));
    const staged = await stager.objects(infos, TRACK_FACT_COLUMNS.join(','));
    return body(engine, relationSql(staged.files.map((f) => f.file), FACT_TYPES));
  });
}

const tenantFilter = (tenant?: string) => (tenant ? `AND tenantid = ${sqlString(tenant)}` : '');

export async function funnel(store: ObjectStore, o: FactRange & { steps: string[] }): Promise<FunnelStep[]> {
  return withFacts(store, o, async (engine, facts) => {
    const ctes = o.steps.map((step, i) =>
      i === 0
        ? `s1 AS (SELECT tenantid, session_id, min(sequence) AS seq FROM facts WHERE event = ${sqlString(step)} GROUP BY ALL)`
        : `s${i + 1} AS (SELECT f.tenantid, f.session_id, min(f.sequence) AS seq FROM facts AS f JOIN s${i} AS p ON p.tenantid = f.tenantid AND p.session_id = f.session_id AND f.sequence > p.seq WHERE f.event = ${sqlString(step)} GROUP BY ALL)`,
    );
    const counts = o.steps.map((_, i) => `(SELECT count(*) FROM s${i + 1}) AS c${i + 1}`).join(', ');
    const [row] = await engine.all<Record<string, bigint>>(
      sql('funnel', { facts, events: [...new Set(o.steps)].map(sqlString).join(', '), tenant_filter: tenantFilter(o.tenant), step_ctes: ctes.join(',\n'), counts }),
    );
    const n = o.steps.map((_, i) => Number(row![`c${i + 1}`]));
    return o.steps.map((step, i) => ({ step, sessions: n[i]!, conversion: n[0]! > 0 ? n[i]! / n[0]! : 0 }));
  });
}

export async function flow(store: ObjectStore, o: FactRange & { event: string; depth?: number; limit?: number }): Promise<Array<{ path: string; sessions: number }>> {
  return withFacts(store, o, async (engine, facts) => {
    const rows = await engine.all<{ path: string; sessions: bigint }>(
      sql('flow', { facts, event: sqlString(o.event), tenant_filter: tenantFilter(o.tenant), depth: String(o.depth ?? 4), limit: String(o.limit ?? 20) }),
    );
    return rows.map((r) => ({ path: r.path, sessions: Number(r.sessions) }));
  });
}
