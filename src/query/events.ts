/**
 * The events page's data (`POST /api/v1/events`): every event name of a tenant over a range, with its count
 * and sparkline, when it was first and last seen, whether the tenant's plan has it, what the conventions say
 * of it, its violations by type and action with a sample, and how many of its messages wait in quarantine.
 *
 * Counts come from the observed-schema files (by the day the collector received the message), violations
 * from the violation files (by the event's own day), both through the read cache. Tracking-plan data spans
 * a tenant's merchants: a merchant token is refused.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sqlIn, sqlString } from '../jobs/engine.js';
import { daysBetween } from '../lib/dates.js';
import { isObject } from '../lib/json.js';
import { lintNames, SEED_CONVENTIONS } from '../plan/lint.js';
import type { EventShape } from '../plan/observe.js';
import type { CompiledPlan } from '../plan/plan.js';
import type { ReadCache } from './cache.js';
import { resolveRange } from './model.js';
import type { Scope } from './tokens.js';

const SQL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql');
const q = (name: string, slots: Record<string, string> = {}) => sqlIn(SQL_DIR, name, slots);

/** Points of a sparkline at most: a day each up to a month, equal parts of the range beyond. */
const MAX_BUCKETS = 30;

export interface EventsQuery {
  tenant: string;
  dateRange: { from: string | null; to: string };
}

type Parsed = { ok: true; query: EventsQuery } | { ok: false; status: 400 | 403; code: 'invalid_query' | 'forbidden'; message: string };

/** `{"date_range": "30d" | ["YYYY-MM-DD", "YYYY-MM-DD"] | …}` (default 30d), for a tenant token only. */
export function parseEvents(body: unknown, scope: Scope, today: string): Parsed {
  if (scope.merchant !== undefined) return { ok: false, status: 403, code: 'forbidden', message: 'Events and tracking-plan health span every merchant of the tenant: a merchant token cannot read them.' };
  const b = body ?? {};
  if (!isObject(b)) return { ok: false, status: 400, code: 'invalid_query', message: 'The body must be a JSON object.' };
  for (const k of Object.keys(b)) if (k !== 'date_range') return { ok: false, status: 400, code: 'invalid_query', message: `Unknown field "${k.slice(0, 50)}".` };
  const range = resolveRange(b.date_range ?? '30d', today);
  if (typeof range === 'string') return { ok: false, status: 400, code: 'invalid_query', message: range };
  return { ok: true, query: { tenant: scope.tenant, dateRange: range } };
}

export interface EventRow {
  event: string;
  /** Messages observed in the range (track calls by name; identify calls as `identify`). */
  count: number;
  /** The count in each part of the range (see the answer's `sparkline`). */
  daily: number[];
  first_seen: string | null;
  last_seen: string | null;
  /** Whether the tenant's plan has the event; null when the tenant has no plan. */
  planned: boolean | null;
  /** What the naming conventions (seed 002) say of it. */
  conventions: Array<{ kind: string; detail: string }>;
  violations: Array<{ type: string; action: string; count: number; messages: number }>;
  sample: { type: string; action: string; message_id: string; field: string; message: string } | null;
  /** Blocked messages, kept in quarantine, and the command that lets in those the current plan passes. */
  quarantined: number;
  replay: string | null;
}

export interface EventsPage {
  events: EventRow[];
  sparkline: { from: string; to: string; points: number; days_per_point: number };
  plan: boolean;
}

export async function eventsPage(cache: ReadCache, query: EventsQuery, plans: ReadonlyMap<string, CompiledPlan>): Promise<EventsPage> {
  await cache.eventsReady();
  const tenant = query.tenant;
  const to = query.dateRange.to;
  const earliest = (await cache.read<{ d: string | null }>('SELECT min(day)::VARCHAR AS d FROM event_days WHERE tenantid = $tenant', { tenant }))[0]?.d ?? null;
  const from = query.dateRange.from ?? (earliest !== null && earliest < to ? earliest : to);
  const days = daysBetween(from, to).length;
  const buckets = Math.min(days, MAX_BUCKETS);
  const range = { tenant, from, to };
  const plan = plans.get(tenant);
  const forbidden = Object.keys((plan ?? SEED_CONVENTIONS).plan.conventions.forbiddenProperties);
  const [counts, seen, violations, quarantined, props] = await Promise.all([
    cache.read<{ event: string; bucket: number; n: bigint }>(q('events_counts'), { ...range, buckets, days }),
    cache.read<{ event: string; first_seen: string; last_seen: string }>(q('events_seen'), { tenant }),
    cache.read<{ event: string; type: string; action: string; n: bigint; messages: bigint; sample_time: bigint; sample_id: string; sample_field: string; sample_message: string }>(q('events_violations'), range),
    cache.read<{ event: string; n: bigint; first_day: string; last_day: string }>(q('events_quarantined'), range),
    forbidden.length === 0 ? Promise.resolve([]) : cache.read<{ event: string; property: string; n: bigint }>(q('events_properties', { properties: forbidden.map(sqlString).join(', ') }), range),
  ]);

  const rows = new Map<string, EventRow>();
  const row = (event: string) => {
    let r = rows.get(event);
    if (!r) rows.set(event, (r = { event, count: 0, daily: new Array<number>(buckets).fill(0), first_seen: null, last_seen: null, planned: null, conventions: [], violations: [], sample: null, quarantined: 0, replay: null }));
    return r;
  };
  for (const c of counts) {
    const r = row(c.event);
    r.count += Number(c.n);
    r.daily[c.bucket] = (r.daily[c.bucket] ?? 0) + Number(c.n);
  }
  const samples = new Map<string, { time: number; sample: NonNullable<EventRow['sample']> }>();
  for (const v of violations) {
    const r = row(v.event);
    r.violations.push({ type: v.type, action: v.action, count: Number(v.n), messages: Number(v.messages) });
    const time = Number(v.sample_time);
    const best = samples.get(v.event);
    if (!best || time < best.time) samples.set(v.event, { time, sample: { type: v.type, action: v.action, message_id: v.sample_id, field: v.sample_field, message: v.sample_message } });
  }
  for (const [event, s] of samples) row(event).sample = s.sample;
  for (const x of quarantined) {
    const r = row(x.event);
    r.quarantined = Number(x.n);
    r.replay = `tracklake plan replay --tenant ${tenant} --from ${x.first_day} --to ${x.last_day}`;
  }
  // Seen dates for the range's events only: the page lists what happened in the range.
  for (const s of seen) {
    const r = rows.get(s.event);
    if (r) Object.assign(r, { first_seen: s.first_seen, last_seen: s.last_seen });
  }

  // The conventions, as `plan lint` checks them, over the range's names and the forbidden properties seen.
  const named = new Map<string, number>();
  for (const r of rows.values()) if (r.event !== 'identify' && r.count > 0) named.set(r.event, r.count);
  const observed = new Map<string, EventShape>();
  for (const p of props) {
    const shape = observed.get(p.event) ?? { count: rows.get(p.event)?.count ?? 0, properties: {} };
    shape.properties[p.property] = { string: Number(p.n) };
    observed.set(p.event, shape);
  }
  for (const f of lintNames(tenant, named, observed, plan ?? SEED_CONVENTIONS, plan !== undefined)) {
    for (const name of f.names?.map((n) => n.name) ?? [f.event]) {
      const r = rows.get(name);
      if (!r) continue;
      if (f.kind === 'unplanned') r.planned = false;
      else r.conventions.push({ kind: f.kind, detail: f.detail });
    }
  }
  if (plan) for (const r of rows.values()) r.planned ??= r.event === 'identify' || named.has(r.event);
  for (const r of rows.values()) r.violations.sort((a, b) => b.count - a.count || (a.type < b.type ? -1 : 1));
  const events = [...rows.values()].sort((a, b) => b.count - a.count || (a.event < b.event ? -1 : 1));
  return { events, sparkline: { from, to, points: buckets, days_per_point: days / buckets }, plan: plan !== undefined };
}

