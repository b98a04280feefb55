/**
 * The read side's query, as data before it is SQL (the habit of Plausible's Stats API v2): one step parses
 * a request body into a validated, normalised Query, turning every mistake into a rejection that names it;
 * SQL is built later from a closed set of pieces, with user values only ever as parameters.
 *
 * The token's scope is part of the query: a merchant token's merchant is added as a filter here, whatever
 * the request says, and a filter naming another merchant is refused (403).
 */
import { DAY_MS } from '../lib/dates.js';
import type { Scope } from './tokens.js';

/** Where a metric's numbers come from: the aggregate files or the session files. */
export type Family = 'aggregates' | 'sessions';

export const SESSION_METRICS = ['sessions', 'bounce_rate', 'avg_session_seconds', 'events'] as const;
export const DIMENSIONS: Record<Family, readonly string[]> = {
  aggregates: ['time:day', 'time:month', 'merchant', 'product'],
  sessions: ['time:day', 'time:month', 'source', 'devicetype', 'landing_page'],
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
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** A real calendar day written YYYY-MM-DD. */
function isDay(s: unknown): s is string {
  return typeof s === 'string' && DAY_RE.test(s) && dayOf(Date.parse(`${s}T00:00:00Z`)) === s;
}

/** The family of each metric name, or undefined for a name that is not a metric. */
export function metricFamily(name: string, aggregateMetrics: readonly string[]): Family | undefined {
  if (aggregateMetrics.includes(name)) return 'aggregates';
  if ((SESSION_METRICS as readonly string[]).includes(name)) return 'sessions';
  return undefined;
}

/** A range's days; ranges end today (`today` is the caller's clock, so tests pin it). */
export function resolveRange(range: unknown, today: string): { from: string | null; to: string } | string {
  if (Array.isArray(range)) {
    if (range.length !== 2 || !isDay(range[0]) || !isDay(range[1])) return '"date_range" as a list is two days, ["YYYY-MM-DD", "YYYY-MM-DD"].';
    if (range[0] > range[1]) return `"date_range" starts (${range[0]}) after it ends (${range[1]}).`;
    return { from: range[0], to: range[1] };
  }
  const t = Date.parse(`${today}T00:00:00Z`);
  switch (range) {
    case '7d':
      return { from: dayOf(t - 6 * DAY_MS), to: today };
    case '30d':
      return { from: dayOf(t - 29 * DAY_MS), to: today };
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

  const filters: Filter[] = [];
  const rawFilters = body.filters ?? [];
  if (!Array.isArray(rawFilters)) return bad('"filters" is a list of ["is" | "is_not", dimension, [values]].');
  for (const f of rawFilters) {
    if (!Array.isArray(f) || f.length !== 3 || (f[0] !== 'is' && f[0] !== 'is_not') || typeof f[1] !== 'string' || !Array.isArray(f[2])) {
      return bad('Each filter is ["is" | "is_not", dimension, [values]].');
    }
    const [op, dimension, values] = f as ['is' | 'is_not', string, unknown[]];
    if (dimension.startsWith('time:') || !validFor(dimension)) return bad(`Cannot filter on "${dimension.slice(0, 50)}" for these metrics.`);
    if (values.length === 0 || values.length > MAX_FILTER_VALUES || !values.every((v) => typeof v === 'string' && v.length <= 256)) {
      return bad(`A filter's values are 1-${MAX_FILTER_VALUES} strings of at most 256 characters.`);
    }
    // Values are plain values: they reach SQL only as parameters, whatever they contain.
    filters.push({ op, dimension, values: [...new Set(values as string[])] });
  }

  // The merchant scope: every read is limited to the token's merchant, and naming another is forbidden.
  const merchant = scope.merchant ?? null;
  if (merchant !== null) {
    if (families.has('sessions')) return { ok: false, status: 403, code: 'forbidden', message: 'A merchant token reads its products\' aggregates only; session metrics span merchants.' };
    for (const f of filters) {
      if (f.dimension !== 'merchant') continue;
      const others = f.op === 'is' ? f.values.filter((v) => v !== merchant) : [];
      if (others.length > 0) return { ok: false, status: 403, code: 'forbidden', message: 'This token reads one merchant only; the filter names another.' };
    }
  }

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
