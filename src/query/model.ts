/**
 * The read side's query, as data before it is SQL (the habit of Plausible's Stats API v2): one step parses
 * a request body into a validated, normalised Query, turning every mistake into a rejection that names it;
 * SQL is built later from a closed set of pieces, with user values only ever as parameters.
 *
 * The token's scope is part of the query: a merchant token's merchant is added as a filter here, whatever
 * the request says, and a filter naming another merchant is refused (403).
 */
import { addDays, isDay } from '../lib/dates.js';
import type { Scope } from './tokens.js';
import { isObject } from '../lib/json.js';

/** Where a metric's numbers come from: the aggregate files or the session files. */
export type Family = 'aggregates' | 'sessions';

export const SESSION_METRICS = ['sessions', 'bounce_rate', 'avg_session_seconds', 'events'] as const;
export const DIMENSIONS: Record<Family, readonly string[]> = {
  aggregates: ['time:day', 'time:month', 'merchant', 'product'],
  sessions: ['time:day', 'time:month', 'source', 'devicetype', 'landing_page'],
};
/**
 * What each family can be filtered on: its own dimensions, and for sessions also the merchant and product
 * (sessions with an event of that merchant or product), so a filter on either changes every panel.
 */
export const FILTERS: Record<Family, readonly string[]> = {
  aggregates: ['merchant', 'product'],
  sessions: ['source', 'devicetype', 'landing_page', 'merchant', 'product'],
};
const RANGES = ['7d', '30d', 'month', 'year', 'all'] as const;
export const MAX_LIMIT = 10_000;
const MAX_FILTER_VALUES = 1_000;
const MAX_DIMENSIONS = 3;

export interface Filter {
  op: 'is' | 'is_not';
  dimension: string;
  values: string[];
}

export interface Query {
  metrics: string[];
  /** Inclusive UTC days; `from` null for "all". */
  dateRange: { from: string | null; to: string };
  dimensions: string[];
  filters: Filter[];
  orderBy: Array<[string, 'asc' | 'desc']>;
  limit: number;
  offset: number;
  compare: 'previous_period' | null;
  /** The scope the token grants, applied to every read. */
  tenant: string;
  merchant: string | null;
}

export type QueryResult = { ok: true; query: Query } | { ok: false; status: 400 | 403; code: 'invalid_query' | 'forbidden'; message: string };

const bad = (message: string): QueryResult => ({ ok: false, status: 400, code: 'invalid_query', message });
/** A real calendar day written YYYY-MM-DD. */
const isDayValue = (s: unknown): s is string => typeof s === 'string' && isDay(s);

/** The family of each metric name, or undefined for a name that is not a metric. */
export function metricFamily(name: string, aggregateMetrics: readonly string[]): Family | undefined {
  if (aggregateMetrics.includes(name)) return 'aggregates';
  if ((SESSION_METRICS as readonly string[]).includes(name)) return 'sessions';
  return undefined;
}

/** A range's days; ranges end today (`today` is the caller's clock, so tests pin it). */
export function resolveRange(range: unknown, today: string): { from: string | null; to: string } | string {
  if (Array.isArray(range)) {
    if (range.length !== 2 || !isDayValue(range[0]) || !isDayValue(range[1])) return '"date_range" as a list is two days, ["YYYY-MM-DD", "YYYY-MM-DD"].';
    if (range[0] > range[1]) return `"date_range" starts (${range[0]}) after it ends (${range[1]}).`;
    return { from: range[0], to: range[1] };
  }
  switch (range) {
    case '7d':
      return { from: addDays(today, -6), to: today };
    case '30d':
      return { from: addDays(today, -29), to: today };
    case 'month':
      return { from: `${today.slice(0, 7)}-01`, to: today };
    case 'year':
      return { from: `${today.slice(0, 4)}-01-01`, to: today };
    case 'all':
      return { from: null, to: today };
    default:
      return `"date_range" is one of ${RANGES.join(', ')} or ["YYYY-MM-DD", "YYYY-MM-DD"].`;
  }
}

/**
 * Parses and validates a query body for a token's scope. `aggregateMetrics` are view, share, chat and the
 * configuration's own metrics; `today` is a YYYY-MM-DD day.
 */
export function parseQuery(body: unknown, scope: Scope, aggregateMetrics: readonly string[], today: string): QueryResult {
  if (!isObject(body)) return bad('The body must be a JSON object.');
  const known = new Set(['metrics', 'date_range', 'dimensions', 'filters', 'order_by', 'limit', 'offset', 'compare']);
  for (const k of Object.keys(body)) if (!known.has(k)) return bad(`Unknown field "${k.slice(0, 50)}".`);

  const metrics = body.metrics;
  if (!Array.isArray(metrics) || metrics.length === 0 || !metrics.every((m) => typeof m === 'string')) return bad('"metrics" is a non-empty list of metric names.');
  const families = new Set<Family>();
  for (const m of metrics as string[]) {
    const f = metricFamily(m, aggregateMetrics);
    if (!f) return bad(`Unknown metric "${m.slice(0, 50)}"; known: ${[...aggregateMetrics, ...SESSION_METRICS].join(', ')}.`);
    families.add(f);
  }
  if (new Set(metrics).size !== metrics.length) return bad('"metrics" names a metric twice.');

  const range = resolveRange(body.date_range ?? '30d', today);
  if (typeof range === 'string') return bad(range);

  const dims = body.dimensions ?? [];
  if (!Array.isArray(dims) || !dims.every((d) => typeof d === 'string')) return bad('"dimensions" is a list of dimension names.');
  if (dims.length > MAX_DIMENSIONS) return bad(`At most ${MAX_DIMENSIONS} dimensions.`);
  if (new Set(dims).size !== dims.length) return bad('"dimensions" names a dimension twice.');
  // A dimension must exist for every metric asked for.
  const validFor = (d: string) => [...families].every((f) => DIMENSIONS[f].includes(d));
  for (const d of dims as string[]) {
    if (!validFor(d)) {
      const metric = (metrics as string[]).find((m) => !DIMENSIONS[metricFamily(m, aggregateMetrics)!].includes(d))!;
      return bad(`Metric "${metric}" has no dimension "${d.slice(0, 50)}"; it has ${DIMENSIONS[metricFamily(metric, aggregateMetrics)!].join(', ')}.`);
    }
  }

  const filters = parseFilters(body.filters, (d) => [...families].every((fam) => FILTERS[fam].includes(d)), 'these metrics');
  if (!Array.isArray(filters)) return bad(filters.message);

  // The merchant scope: every read is limited to the token's merchant, and naming another is forbidden.
  const merchant = scope.merchant ?? null;
  if (merchant !== null && families.has('sessions')) return { ok: false, status: 403, code: 'forbidden', message: 'A merchant token reads its products\' aggregates only; session metrics span merchants.' };
  const scoped = outOfScope(filters, scope);
  if (scoped) return scoped;

  const orderBy: Array<[string, 'asc' | 'desc']> = [];
  const rawOrder = body.order_by ?? [];
  if (!Array.isArray(rawOrder)) return bad('"order_by" is a list of [metric or dimension, "asc" | "desc"].');
  for (const o of rawOrder) {
    if (!Array.isArray(o) || o.length !== 2 || typeof o[0] !== 'string' || (o[1] !== 'asc' && o[1] !== 'desc')) return bad('Each "order_by" entry is [metric or dimension, "asc" | "desc"].');
    if (!(metrics as string[]).includes(o[0]) && !(dims as string[]).includes(o[0])) return bad(`"order_by" names "${o[0].slice(0, 50)}", which is neither a metric nor a dimension of the query.`);
    orderBy.push([o[0], o[1]]);
  }

  const limit = body.limit ?? 100;
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_LIMIT) return bad(`"limit" is a whole number from 1 to ${MAX_LIMIT}.`);
  const offset = body.offset ?? 0;
  if (!Number.isInteger(offset) || (offset as number) < 0) return bad('"offset" is a whole number of at least 0.');
  const compare = body.compare ?? null;
  if (compare !== null && compare !== 'previous_period') return bad('"compare" is "previous_period" or absent.');
  if (compare !== null && range.from === null) return bad('"compare" needs a range with a start, not "all".');
  // Periods of different lengths have no day-to-day match by month; a daily series or totals compare.
  if (compare !== null && (dims as string[]).includes('time:month')) return bad('"compare" works with "time:day" or without a time dimension, not with "time:month".');

  return {
    ok: true,
    query: {
      metrics: metrics as string[],
      dateRange: range,
      dimensions: dims as string[],
      filters,
      orderBy,
      limit: limit as number,
      offset: offset as number,
      compare,
      tenant: scope.tenant,
      merchant,
    },
  };
}

export interface FunnelQuery {
  steps: string[];
  dateRange: { from: string | null; to: string };
  /** Only facts of these merchants/products count (the page's filters); the token's merchant always applies. */
  filters: Filter[];
  tenant: string;
  merchant: string | null;
}

export interface FlowQuery extends Omit<FunnelQuery, 'steps'> {
  from: string;
  depth: number;
  limit: number;
}

export const MAX_STEPS = 10;
const EVENT_RE = /^.{1,200}$/su;

/**
 * A body's filters, `["is" | "is_not", dimension, [values]]`, on the dimensions `allowed` takes, or the
 * message of the first mistake. Values are plain values: they reach SQL only as parameters or escaped
 * literals, whatever they contain.
 */
function parseFilters(raw: unknown, allowed: (dimension: string) => boolean, what: string): Filter[] | { message: string } {
  const filters: Filter[] = [];
  if (raw === undefined) return filters;
  if (!Array.isArray(raw)) return { message: '"filters" is a list of ["is" | "is_not", dimension, [values]].' };
  for (const f of raw) {
    if (!Array.isArray(f) || f.length !== 3 || (f[0] !== 'is' && f[0] !== 'is_not') || typeof f[1] !== 'string' || !Array.isArray(f[2])) {
      return { message: 'Each filter is ["is" | "is_not", dimension, [values]].' };
    }
    const [op, dimension, values] = f as ['is' | 'is_not', string, unknown[]];
    if (!allowed(dimension)) return { message: `Cannot filter on "${dimension.slice(0, 50)}" for ${what}.` };
    if (values.length === 0 || values.length > MAX_FILTER_VALUES || !values.every((v) => typeof v === 'string' && v.length <= 256)) {
      return { message: `A filter's values are 1-${MAX_FILTER_VALUES} strings of at most 256 characters.` };
    }
    filters.push({ op, dimension, values: [...new Set(values as string[])] });
  }
  return filters;
}

/** 403 when a merchant token's filters name another merchant. */
function outOfScope(filters: readonly Filter[], scope: Scope): { ok: false; status: 403; code: 'forbidden'; message: string } | undefined {
  if (scope.merchant === undefined) return undefined;
  const others = filters.some((f) => f.dimension === 'merchant' && f.op === 'is' && f.values.some((v) => v !== scope.merchant));
  return others ? { ok: false, status: 403, code: 'forbidden', message: 'This token reads one merchant only; the filter names another.' } : undefined;
}

type Parsed<T> = { ok: true; query: T } | { ok: false; status: 400 | 403; code: 'invalid_query' | 'forbidden'; message: string };

function common(body: unknown, scope: Scope, today: string, known: string[]): Parsed<Omit<FunnelQuery, 'steps'>> {
  if (!isObject(body)) return bad('The body must be a JSON object.') as Parsed<never>;
  for (const k of Object.keys(body)) if (!known.includes(k)) return bad(`Unknown field "${k.slice(0, 50)}".`) as Parsed<never>;
  const range = resolveRange(body.date_range ?? '30d', today);
  if (typeof range === 'string') return bad(range) as Parsed<never>;
  // Facts carry the merchant and the product of each event, nothing of the session's.
  const filters = parseFilters(body.filters, (d) => d === 'merchant' || d === 'product', 'funnels and flows (merchant and product only)');
  if (!Array.isArray(filters)) return bad(filters.message) as Parsed<never>;
  const scoped = outOfScope(filters, scope);
  if (scoped) return scoped;
  return { ok: true, query: { dateRange: range, filters, tenant: scope.tenant, merchant: scope.merchant ?? null } };
}

/** `{"steps": ["load", "view", ...], "date_range": ..., "filters": ...}`: 2-10 event names, lower-cased as the tracking files write them. */
export function parseFunnel(body: unknown, scope: Scope, today: string): Parsed<FunnelQuery> {
  const c = common(body, scope, today, ['steps', 'date_range', 'filters']);
  if (!c.ok) return c;
  const steps = (body as Record<string, unknown>).steps;
  if (!Array.isArray(steps) || steps.length < 2 || steps.length > MAX_STEPS || !steps.every((s) => typeof s === 'string' && EVENT_RE.test(s.trim()))) {
    return bad(`"steps" is a list of 2-${MAX_STEPS} event names.`) as Parsed<never>;
  }
  return { ok: true, query: { ...c.query, steps: (steps as string[]).map((s) => s.trim().toLowerCase()) } };
}

/** `{"from": "view", "depth": 4, "date_range": ..., "limit": 20, "filters": ...}`. */
export function parseFlow(body: unknown, scope: Scope, today: string): Parsed<FlowQuery> {
  const c = common(body, scope, today, ['from', 'depth', 'date_range', 'limit', 'filters']);
  if (!c.ok) return c;
  const b = body as Record<string, unknown>;
  if (typeof b.from !== 'string' || !EVENT_RE.test(b.from.trim())) return bad('"from" is the event name the paths start after.') as Parsed<never>;
  const depth = b.depth ?? 4;
  if (!Number.isInteger(depth) || (depth as number) < 1 || (depth as number) > 10) return bad('"depth" is a whole number from 1 to 10.') as Parsed<never>;
  const limit = b.limit ?? 20;
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > 1000) return bad('"limit" is a whole number from 1 to 1000.') as Parsed<never>;
  return { ok: true, query: { ...c.query, from: b.from.trim().toLowerCase(), depth: depth as number, limit: limit as number } };
}
